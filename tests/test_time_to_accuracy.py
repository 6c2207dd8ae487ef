"""Time to accuracy: `training.target_exact_accuracy` stops a run at the first evaluation that reaches it, and
benchmarks/time_to_accuracy.py reports steps, training time and training FLOPs (at each step's depth) per variant."""

import argparse
import json
import time

import pytest

from training_fixtures import TINY_MODEL, tiny_args, write_tiny_sudoku


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_tiny_sudoku(tmp_path_factory.mktemp("data") / "sudoku4")


def test_training_stops_at_the_first_evaluation_reaching_the_target(dataset, tmp_path, monkeypatch):
    import training.evaluation as evaluation
    from training.train import parse_arguments, train

    accuracies, calls = [0.2, 0.6, 0.9], []

    def evaluate(model, arrays, **kwargs):  # a rising validation curve: 0.2 at step 5, 0.6 at step 10, ...
        a = accuracies[len(calls)]
        calls.append(a)
        time.sleep(0.01)  # an evaluation takes time, which the summary must count apart from training
        return {"exact_accuracy": a, "token_accuracy": a, "mean_steps": 1.0, "q_halt_accuracy": 1.0,
                "num_examples": 32.0}

    monkeypatch.setattr(evaluation, "evaluate_model", evaluate)
    summary = train(parse_arguments(tiny_args(dataset, tmp_path / "out", "--max_steps", "50", "--eval_steps", "5",
                                              "--target_exact_accuracy", "0.5")))
    assert summary["stopped_by"] == "target_exact_accuracy" and summary["step"] == 10
    assert calls == [0.2, 0.6]  # no second evaluation of the same step at the end
    assert summary["eval"]["exact_accuracy"] == 0.6
    assert 0.02 <= summary["eval_seconds"] < summary["train_seconds"]
    assert (tmp_path / "out" / "checkpoint-10" / "model").is_dir() and (tmp_path / "out" / "model").is_dir()


def test_time_to_accuracy_counts_steps_and_flops_at_each_depth(dataset, tmp_path, capsys):
    from benchmarks.time_to_accuracy import main
    from modeling_hrm import HRMConfig
    from modeling_hrm.flops import training_step_flops

    sets = sum((["--set", f"model.{k}={v}"] for k, v in TINY_MODEL.items()), [])
    sets += ["--set", "training.global_batch_size=16", "--set", "training.lr_warmup_steps=2"]
    out = tmp_path / "tta.json"
    code = main(["--config", "training/configs/sudoku_cpu.yaml", "--dataset", str(dataset), "--split", "test",
                 "--target", "1.0", "--seeds", "0", "--variants", "eager", "curriculum", "--curriculum", "1x1:0.5",
                 "--max-steps", "20", "--eval-steps", "10", *sets, "--runs-dir", str(tmp_path / "runs"),
                 "--output", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    runs = {r["variant"]: r for r in result["runs"]}
    config = HRMConfig(vocab_size=6, seq_len=16, num_puzzle_identifiers=8, **TINY_MODEL)  # the tiny set's shapes
    shallow = HRMConfig.from_dict({**config.to_dict(), "H_cycles": 1, "L_cycles": 1})
    assert runs["eager"]["steps"] == runs["curriculum"]["steps"] == 20  # 100% is out of reach in 20 steps
    assert not runs["eager"]["reached"] and [s for s, _ in runs["eager"]["eval_curve"]] == [10, 20]
    assert runs["eager"]["training_flops"] == pytest.approx(20 * training_step_flops(config, 16))
    assert runs["curriculum"]["training_flops"] == pytest.approx(10 * training_step_flops(shallow, 16)
                                                                 + 10 * training_step_flops(config, 16))
    assert 0 < runs["eager"]["train_seconds"]
    assert "| eager | 0/1 |" in capsys.readouterr().out


def test_time_to_accuracy_table_compares_with_eager():
    from benchmarks.time_to_accuracy import summarise

    args = argparse.Namespace(variants=["eager", "curriculum"], target=0.95, dataset="d", split="validation",
                              config="c.yaml", seeds=[0, 1])
    runs = [{"variant": "eager", "seed": s, "reached": True, "steps": 1000, "train_seconds": 600.0 + s,
             "training_flops": 4e15} for s in (0, 1)]
    runs += [{"variant": "curriculum", "seed": 0, "reached": True, "steps": 800, "train_seconds": 300.5,
              "training_flops": 2e15}, {"variant": "curriculum", "seed": 1, "reached": False, "steps": 2000,
                                        "train_seconds": 900.0, "training_flops": 5e15}]
    rows, table = summarise(args, runs)
    assert rows[1] == {"variant": "curriculum", "runs": 2, "reached": 1, "median_steps": 800,
                       "median_train_seconds": 300.5, "median_training_pflop": 2.0}
    assert "| curriculum | 1/2 | 800 | 5.0 min | 2.000 | 2.00x | 2.00x |" in table
