"""The open-world benchmark's protocol (benchmarks/open_world.py): matched baselines, budgets, the choice made on
validation, resumable records and the RESULT line, on small hand-made records (no training)."""

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import open_world as ow  # noqa: E402

META = {"task": "sudoku", "seq_len": 36, "vocab_size": 8, "num_puzzle_identifiers": 1, "grid_height": 6,
        "grid_width": 6}


def _args(tmp_path, models=tuple(ow.MODELS), budget=16.0):
    return SimpleNamespace(models=list(models), budget_tflops=budget, task="sudoku6", seeds=[0, 1, 2],
                           results_dir=str(tmp_path / "results"), runs_dir=str(tmp_path / "runs"))


def test_plan_matches_parameters_and_compute_and_buys_steps_from_the_budget(tmp_path):
    plan = ow.plan(_args(tmp_path), META)
    for baseline, model in (("baseline_params_trm", "trm"), ("baseline_params_hrm", "hrm")):
        assert abs(plan[baseline]["parameters"] / plan[model]["parameters"] - 1) < 0.03, baseline
    # The compute-matched baseline's one pass costs what TRM's trained segments cost per puzzle.
    ratio = (plan["baseline_compute"]["inference_mflop_per_puzzle_trained_segments"]
             / plan["trm"]["inference_mflop_per_puzzle_trained_segments"])
    assert abs(ratio - 1) < 0.02
    for name, p in plan.items():
        assert p["steps"] == int(16e12 // (p["gflop_per_step"] * 1e9)), name
        assert p["halt_max_steps"] == (ow.trained_segments(name) or 1), name


def test_a_budget_too_small_for_one_step_is_one_line(tmp_path, capsys):
    dataset = tmp_path / "data"
    dataset.mkdir()
    (dataset / "hrm_dataset.json").write_text(json.dumps(META))
    assert ow.main(["plan", "--dataset", str(dataset), "--budget-tflops", "0.001"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "buys no optimizer step" in err


def _record(tmp_path, name, lr, warmup, seed, val_exact, test_exact, deep):
    rec = Path(tmp_path / "results" / "sudoku6" / name / ow.cell_name(lr, warmup, seed))
    rec.mkdir(parents=True)
    buckets = {"1-2": 1.0, "search": deep}
    val = {"1": {"segments": 1, "early_exit": False, "exact": val_exact / 2, "mean_segments": 1.0},
           "4": {"segments": 4, "early_exit": False, "exact": val_exact, "mean_segments": 4.0}}
    test = {k: {**v, "exact": test_exact if k == "4" else test_exact / 2, "per_bucket": buckets,
                "inference_mflop_per_puzzle": 100.0} for k, v in val.items()}
    (rec / "validation.json").write_text(json.dumps(val))
    (rec / "test.json").write_text(json.dumps(test))
    (rec / "curve.json").write_text(json.dumps([{"step": 10, "validation_exact": val_exact}]))
    (rec / "wall.json").write_text(json.dumps({"wall_seconds": 60.0}))


def test_the_cell_is_chosen_on_validation_and_the_result_line_reports_test(tmp_path):
    args = _args(tmp_path, models=("trm", "baseline_params_trm"))
    # seed 0 grid: the cell best on validation is not the best on test, and must still win
    values = {cell: (0.1, 0.1) for cell in ow.cells()}
    values.update({(3e-3, 0.05): (0.9, 0.5), (3e-3, 0.2): (0.8, 0.99)})
    for (lr, wu), (val, test) in values.items():
        _record(tmp_path, "trm", lr, wu, 0, val, test, deep=test)
        _record(tmp_path, "baseline_params_trm", lr, wu, 0, val / 2, test / 2, deep=0.0)
    chosen = ow.tuning(args)["chosen"]
    assert (chosen["trm"]["lr"], chosen["trm"]["warmup"], chosen["trm"]["setting"]) == (3e-3, 0.05, "4")
    for seed in (1, 2):
        _record(tmp_path, "trm", 3e-3, 0.05, seed, 0.9, 0.7, deep=0.4)
        _record(tmp_path, "baseline_params_trm", 3e-3, 0.05, seed, 0.45, 0.25, deep=0.0)
    record = {"task": "sudoku6", "budget_tflops": 16.0, "seeds": [0, 1, 2], "bucket_order": ["1-2", "search"],
              "tuning": ow.tuning(args), "runs": [ow.read_run(args, m, 3e-3, 0.05, s)
                                                  for m in args.models for s in (0, 1, 2)]}
    line = ow.result_line(record)
    assert line == ("RESULT task=sudoku6 budget_tflops=16 hrm=n/a trm=63.3 baseline_params=25.0 baseline_compute=n/a "
                    "seeds=0,1,2 deepest_bucket=search deep_trm=43.3 deep_baseline_best=0.0")
    assert record["runs"][0]["test_trained_segments"]["exact"] == 0.5  # the 4-segment test entry
    best = ow.best_baseline(record)  # what the quick start quotes: the baseline best on validation, seed means
    assert best == {"name": "baseline_params_trm", "seeds": 3, "test": pytest.approx(0.25), "deep": 0.0,
                    "deepest_bucket": "search"}


def test_an_incomplete_grid_chooses_nothing(tmp_path):
    args = _args(tmp_path, models=("trm",))
    _record(tmp_path, "trm", 3e-3, 0.05, 0, 0.9, 0.9, deep=0.9)
    assert ow.tuning(args)["chosen"]["trm"] is None
    with pytest.raises(ow.BenchmarkError, match="not complete"):
        ow.do_seeds(args)


def test_a_run_locked_by_a_live_process_is_left_to_it(tmp_path):
    import os
    import subprocess

    args = _args(tmp_path, models=("trm",))
    job = ("trm", 3e-3, 0.05, 0)
    lock = ow.lock_file(args, *job)
    lock.parent.mkdir(parents=True)
    assert not ow.running_elsewhere(args, job)
    lock.write_text(str(os.getpid()))
    assert ow.running_elsewhere(args, job)
    gone = subprocess.Popen(["true"])
    gone.wait()
    lock.write_text(str(gone.pid))
    assert not ow.running_elsewhere(args, job)


def test_a_run_is_claimed_once(tmp_path):
    """Two invocations cannot both start a run: the lock is created atomically before the run's process starts;
    a lock whose process is gone is taken over."""
    import subprocess

    args = _args(tmp_path, models=("trm",))
    job = ("trm", 3e-3, 0.05, 0)
    assert ow.claim(args, job)
    assert not ow.claim(args, job)  # held by this (live) process
    gone = subprocess.Popen(["true"])
    gone.wait()
    ow.lock_file(args, *job).write_text(str(gone.pid))
    assert ow.claim(args, job, pid=12345678)
    assert ow.lock_file(args, *job).read_text() == "12345678"
