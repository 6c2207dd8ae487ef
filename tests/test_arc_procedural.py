"""The procedural ARC-like family (dataset_scripts/arc_procedural.py): its primitives, valid ARC tasks that their
programs reproduce, held-out tasks that are really new, determinism, and the path through the ARC builder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dataset_scripts import arc_procedural as P
from dataset_scripts.build_arc_dataset import _validate_task
from dataset_scripts.build_arc_dataset import main as build_arc
from dataset_scripts.build_arc_procedural import main as build_family
from dataset_scripts.common import dataset_arrays, load_hrm_dataset, run_cli
from modeling_hrm.pipeline_puzzle_solving import parse_arc_task


@pytest.fixture(scope="module")
def family():
    return P.generate_family(num_train=34, num_heldout=12, seed=0)


def _program(entry: dict) -> tuple:
    steps = []
    for step in entry["program"]:
        param = step["param"]
        if step["op"] == "recolor":
            param = tuple(tuple(p) for p in param)
        elif isinstance(param, list):
            param = tuple(param)
        steps.append(P.Step(step["op"], param))
    return tuple(steps)


def test_primitives():
    g = np.array([[1, 0, 2],
                  [0, 0, 0],
                  [0, 3, 0]])
    assert P.gravity(g, "down").tolist() == [[0, 0, 0], [0, 0, 0], [1, 3, 2]]
    assert P.gravity(g, "left").tolist() == [[1, 2, 0], [0, 0, 0], [3, 0, 0]]
    assert P.gravity(np.array([[1, 0, 2, 0]]), "right").tolist() == [[0, 0, 1, 2]]  # order kept
    assert P.translate(g, (1, 0)) is None  # the 3 would leave the grid
    assert P.translate(g[:2], (1, 0)).tolist() == [[0, 0, 0], [1, 0, 2]]
    assert P.recolor(g, ((1, 2), (2, 1))).tolist() == [[2, 0, 1], [0, 0, 0], [0, 3, 0]]  # at once, not in turn
    ring = np.array([[4, 4, 4, 0],
                     [4, 0, 4, 0],
                     [4, 4, 4, 0]])
    assert P.fill(ring, 7)[1].tolist() == [4, 7, 4, 0]  # the enclosed cell only, not the open border column
    assert P.copy(np.array([[5, 0, 0, 0]]), (0, 2)).tolist() == [[5, 0, 5, 0]]
    assert P.copy(np.array([[5, 5, 0]]), (0, 1)) is None  # the copy would cover a coloured cell


def test_tasks_are_valid_arc_tasks_their_programs_reproduce(family):
    training, heldout, listing = family
    assert len(training) == 34 and len(heldout) == 12
    for tid, task in {**training, **heldout}.items():
        P.check_task(task)
        parsed = parse_arc_task(json.dumps(task))  # what hrm-solve and the pipeline accept
        assert 2 <= len(parsed["train"]) <= 4 and len(parsed["test"]) == 1
        assert _validate_task(tid, task, need_test_outputs=True)  # what the ARC builder accepts
        program = _program(listing["tasks"][tid])
        for grid_in, grid_out in parsed["train"] + parsed["test"]:
            assert max(grid_in.shape + grid_out.shape) <= min(P.MAX_SIZE, P.CANVAS - 1)  # fits the small canvas
            assert np.array_equal(P.run_program(program, grid_in), grid_out), tid
        # the demonstrations show every colour the test input and a colour map need
        demo = set(np.concatenate([i.ravel() for i, _ in parsed["train"]]).tolist())
        needed = set(parsed["test"][0][0].ravel().tolist())
        needed |= {src for step in program if step.op == "recolor" for src, _ in step.param}
        assert needed <= demo, tid


def test_heldout_tasks_are_new_compositions_or_new_parameters(family):
    training, heldout, listing = family
    tasks = listing["tasks"]
    train_kinds = {tuple(s["op"] for s in tasks[t]["program"]) for t in training}
    assert train_kinds == {(op,) for op in P.PRIMITIVES} | set(P.TRAIN_COMPOSITIONS)
    whys = {tasks[t]["heldout"] for t in heldout}
    assert whys == {"new composition", "new parameters"}
    for tid in heldout:
        entry = tasks[tid]
        ops = tuple(s["op"] for s in entry["program"])
        if entry["heldout"] == "new composition":
            assert ops in P.HELDOUT_COMPOSITIONS and ops not in train_kinds
        else:
            (step,) = entry["program"]
            if step["op"] == "translate":
                assert max(map(abs, step["param"])) == 3
            else:  # recolor: a 3-cycle
                sources, targets = zip(*step["param"])
                assert len(step["param"]) == 3 and set(sources) == set(targets)
    for tid in training:  # training parameters never reach the held-out ranges
        for step in tasks[tid]["program"]:
            if step["op"] == "translate":
                assert max(map(abs, step["param"])) in (1, 2)
            if step["op"] == "recolor":
                sources, targets = zip(*step["param"])
                assert not set(sources) & set(targets)


def test_deterministic_given_the_seed_and_stable_when_grown(family):
    training, heldout, _ = family
    again = P.generate_family(num_train=34, num_heldout=12, seed=0)
    assert again[0] == training and again[1] == heldout
    bigger = P.generate_family(num_train=40, num_heldout=13, seed=0)
    assert all(bigger[0][t] == training[t] for t in training) and all(bigger[1][t] == heldout[t] for t in heldout)
    assert P.generate_family(num_train=34, num_heldout=12, seed=1)[0] != training


def test_check_task_rejects_invalid_tasks(family):
    task = next(iter(family[0].values()))
    pair = task["train"][0]
    cases = [
        ({**task, "train": task["train"][:1]}, r"2-4 demonstration pairs"),
        ({**task, "train": task["train"] + [pair] * 4}, r"2-4 demonstration pairs"),
        ({**task, "test": task["test"] * 2}, r"one test pair"),
        ({**task, "test": [{"input": pair["input"], "output": pair["input"]}]}, r"output equals the input"),
        ({**task, "test": [{"input": [[1] * 13] * 13, "output": [[2] * 13] * 13}]}, r"13x13 is larger than 12x12"),
        ({**task, "test": [{"input": [[1, 2], [3]], "output": [[1]]}]}, r"ragged"),
        ({**task, "test": [pair]}, r"same input appears twice"),
    ]
    for bad, pattern in cases:
        with pytest.raises(ValueError, match=pattern):
            P.check_task(bad)
    with pytest.raises(ValueError, match=r"one primitive or two different ones of fill, copy.*got \(.spin.,\)"):
        P.make_task(("spin",), np.random.default_rng(0))


def test_cli_output_builds_into_the_arc_layout(tmp_path):
    out = tmp_path / "tasks"
    listing = build_family(["--output-dir", str(out), "--num-train", "17", "--num-heldout", "6", "--quiet"])
    assert sorted(p.stem for p in (out / "training").glob("*.json")) == listing["training"]
    assert sorted(p.stem for p in (out / "evaluation").glob("*.json")) == listing["evaluation"]
    assert json.loads((out / "split.json").read_text())["tasks"].keys() == listing["tasks"].keys()

    held = build_arc(["--arc-dir", str(out), "--output-dir", str(tmp_path / "heldout"), "--split-mode", "heldout",
                      "--num-aug", "3", "--quiet"])
    assert held["evaluation_task_ids"] == listing["evaluation"] and held["training_task_ids"] == listing["training"]
    test = dataset_arrays(load_hrm_dataset(tmp_path / "heldout", "test")[0])
    assert (test["puzzle_identifiers"] == 0).all()  # never trained: the blank id
    names = held["puzzle_identifier_names"]
    assert not any(name.split("|")[0] in listing["evaluation"] for name in names)

    original = build_arc(["--arc-dir", str(out), "--output-dir", str(tmp_path / "original"), "--split-mode",
                          "original", "--num-aug", "3", "--quiet"])
    trained = {name.split("|")[0] for name in original["puzzle_identifier_names"][1:]}
    assert set(listing["evaluation"]) <= trained  # the upper bound: their demonstrations are trained on

    # the family's canvas (11x11, what the benchmark trains on) holds every grid: the same rows, cropped
    small = build_arc(["--arc-dir", str(out), "--output-dir", str(tmp_path / "small"), "--split-mode", "heldout",
                       "--num-aug", "3", "--canvas", str(P.CANVAS), "--quiet"])
    assert (small["seq_len"], small["puzzle_identifier_names"]) == (P.CANVAS ** 2, names)
    full, cropped = (dataset_arrays(load_hrm_dataset(tmp_path / name, "test")[0]) for name in ("heldout", "small"))
    for key in ("inputs", "labels"):  # test rows sit at the corner: the 11x11 corner of the 30x30 row, EOS and all
        corner = full[key].reshape(-1, 30, 30)[:, :P.CANVAS, :P.CANVAS].reshape(len(full[key]), -1)
        assert np.array_equal(corner, cropped[key])

    # a folder that is not an earlier output is refused before anything is written; an earlier output is rewritten
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("keep me")
    assert run_cli(build_family, ["--output-dir", str(tmp_path / "other")]) == 2
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == ["notes.txt"]
    build_family(["--output-dir", str(out), "--num-train", "3", "--num-heldout", "2", "--quiet"])
    assert len(list((out / "training").glob("*.json"))) == 3


def test_adaptation_benchmark_plans_its_core_time_and_keeps_its_work_dir_consistent(tmp_path, capsys):
    """benchmarks/arc_adaptation.py --plan prints every part and the expected core-minutes without running anything;
    a work dir holding builds of other settings is refused in one line before any training."""
    from benchmarks import arc_adaptation as bench

    work = tmp_path / "work"
    assert bench.main(["--plan", "--work-dir", str(work)]) == 0
    lines = capsys.readouterr().out.splitlines()
    parts = bench.plan(bench.resolve_args(["--work-dir", str(work)]))
    assert [name for name, _, _ in parts] == ["family and builds", "HRM training", "TRM training", "HRM held-out tasks",
                                              "TRM held-out tasks", "ARC-AGI-1 (arc_smoke, 30x30)"]
    total = sum(seconds for _, _, seconds in parts) / 60
    assert lines[-1].split()[:2] == ["total", f"{total:.1f}"] and not work.exists()
    assert "6 runs x 4000 steps" in "\n".join(lines) and "11x11 canvas" in lines[1]
    # fewer seeds and models: fewer runs, less time
    small = bench.plan(bench.resolve_args(["--models", "hrm", "--seeds", "0", "--arc-agi-tasks", "0"]))
    assert sum(s for _, _, s in small) < sum(s for _, _, s in parts) / 4

    build_family(["--output-dir", str(work / "tasks"), "--num-train", "17", "--num-heldout", "6", "--quiet"])
    build_arc(["--arc-dir", str(work / "tasks"), "--output-dir", str(work / "heldout"), "--split-mode", "heldout",
               "--num-aug", "1", "--quiet"])
    args = bench.resolve_args(["--work-dir", str(work), "--num-train", "17", "--num-heldout", "6"])
    with pytest.raises(SystemExit, match=r"heldout was built with --num-aug 1, seq_len 900; this run asks for "
                                         r"--num-aug 0, --canvas 11: choose another --work-dir"):
        bench.build_data(args, work)
    args = bench.resolve_args(["--work-dir", str(work), "--num-train", "18", "--num-heldout", "6"])
    with pytest.raises(SystemExit, match=r"a family of 17 training and 6 held-out tasks, seed 0; this run asks for "
                                         r"18, 6, seed 0"):
        bench.build_data(args, work)
