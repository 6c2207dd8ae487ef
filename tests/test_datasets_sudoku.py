"""Sudoku: solver, generator, augmentation, CSV reading and the builder end to end."""

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dataset_scripts import formats as F
from dataset_scripts.build_sudoku_dataset import main as build_sudoku
from dataset_scripts.common import dataset_arrays, load_hrm_dataset, load_hrm_metadata
from dataset_scripts.sudoku import SudokuSolver, augment_sudoku, generate_puzzle

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("n", [4, 6, 9])
def test_generator_gives_unique_valid_minimal_puzzles(n):
    solver = SudokuSolver(n)
    rng = random.Random(n)
    for _ in range(3):
        p, s, rating = generate_puzzle(n, rng, solver)
        F.check_sudoku_solution(p.reshape(n, n), s.reshape(n, n))
        assert solver.count_solutions(p) == 1
        assert rating == solver.rating(p) >= 0
        # minimal: removing any clue makes the solution non-unique
        i = int(np.flatnonzero(p)[0])
        q = p.copy()
        q[i] = 0
        assert solver.count_solutions(q) == 2


def test_solver_counts_multiple_solutions_and_conflicts():
    solver = SudokuSolver(4)
    assert solver.count_solutions([0] * 16, limit=5) == 5
    assert solver.count_solutions([1, 1] + [0] * 14) == 0
    res = solver.solve([0] * 16, limit=1)
    F.check_sudoku_grid(np.array(res.solutions[0]).reshape(4, 4), complete=True)


@pytest.mark.parametrize("n", [4, 6, 9])
def test_augmentation_keeps_validity_and_is_detected_as_variant(n):
    rng = random.Random(0)
    ps, ss = zip(*[generate_puzzle(n, rng)[:2] for _ in range(3)])
    ps, ss = np.stack(ps), np.stack(ss)
    src = np.repeat(np.arange(3), 200)
    ap, as_ = augment_sudoku(ps, ss, src, np.random.default_rng(1))
    assert F.sudoku_batch_valid(ap, as_).all()
    assert np.array_equal(ap > 0, np.take_along_axis(ap, np.zeros_like(ap), 1) * 0 + (ap > 0))
    assert ((ap > 0).sum(1) == (ps[src] > 0).sum(1)).all()  # clue count kept
    assert len({r.tobytes() for r in ap}) > 150  # really shuffled
    keys = F.sudoku_variant_keys(ps, all_symmetries=True)
    hit = np.isin(F.sudoku_variant_keys(ap, all_symmetries=False), keys)
    if n in (4, 6):
        assert hit.all()  # full symmetry group: every augmentation is recognised
    else:
        assert hit.mean() < 0.5  # 9x9: only relabelling x dihedral is detected


def test_sudoku_6x6_has_no_transpose():
    rng = np.random.default_rng(0)
    from dataset_scripts.sudoku import sudoku_augment_transform

    pos, _ = sudoku_augment_transform(6, 500, rng)
    rows = pos // 6
    # without transpose every output row reads from a single input row
    assert (rows == rows[:, ::6].repeat(6, axis=1)).all()
    pos4, _ = sudoku_augment_transform(4, 500, rng)
    rows4 = pos4 // 4
    assert not (rows4 == rows4[:, ::4].repeat(4, axis=1)).all()


def test_build_generated_4x4_end_to_end(tmp_path):
    out = tmp_path / "sudoku4"
    build_sudoku(["--output-dir", str(out), "--size", "4", "--num-train", "30", "--num-test", "10",
                  "--num-aug", "5", "--seed", "3", "--quiet"])
    assert sorted(p.name for p in (out / "data").iterdir()) == ["test-00000-of-00001.parquet",
                                                                "train-00000-of-00001.parquet"]
    card = (out / "README.md").read_text()
    assert card.startswith("---\n") and "configs:" in card and "path: data/train-*" in card
    assert "license: apache-2.0" in card and "no transpose" not in card and "--num-aug 5" in card
    meta = load_hrm_metadata(out)
    assert meta["task"] == "sudoku" and meta["vocab_size"] == 6 and meta["seq_len"] == 16
    assert meta["pad_id"] == 0 and meta["ignore_label_id"] == -100 and meta["num_puzzle_identifiers"] == 1
    assert meta["puzzle_identifier_names"] == ["<blank>"] and meta["token_names"][1] == "<blank>"
    train, meta2 = load_hrm_dataset(out, "train")
    test, _ = load_hrm_dataset(out, "test")
    assert meta2 == meta
    assert str(train.features["inputs"]) == "List(Value('uint8'), length=16)"
    assert str(train.features["puzzle_identifiers"]) == "Value('int32')"
    assert train.num_rows == meta["num_rows"]["train"] and test.num_rows == 10
    tr, te = dataset_arrays(train), dataset_arrays(test)
    assert tr["inputs"].dtype == np.uint8 and tr["inputs"].shape == (train.num_rows, 16)
    assert tr["group_id"].dtype == np.int32 and (tr["puzzle_identifiers"] == 0).all()
    for arr in (tr, te):
        assert F.sudoku_batch_valid(arr["inputs"].astype(int) - 1, arr["labels"].astype(int) - 1).all()
        assert arr["labels"].min() >= 2 and arr["inputs"].min() >= 1  # labels all scored, never PAD
    # no leak, also not as a variant under the full 4x4 symmetry group x relabelling
    test_keys = F.sudoku_variant_keys(te["inputs"].astype(int) - 1, all_symmetries=True)
    assert not np.isin(F.sudoku_variant_keys(tr["inputs"].astype(int) - 1, False), test_keys).any()
    solver = SudokuSolver(4)
    assert all(solver.count_solutions(p - 1) == 1 for p in te["inputs"].astype(int))


def test_build_6x6_card_says_no_transpose(tmp_path):
    out = tmp_path / "s6"
    build_sudoku(["--output-dir", str(out), "--size", "6", "--num-train", "5", "--num-test", "3", "--num-aug", "2",
                  "--quiet"])
    assert "no transpose, because 2x3 boxes" in (out / "README.md").read_text()
    assert load_hrm_metadata(out)["box_shape"] == [2, 3]


def _write_csv(path, rows):
    with open(path, "w") as f:
        f.write("source,question,answer,rating\n")
        for r in rows:
            f.write(",".join(str(x) for x in r) + "\n")


def _s(arr):
    return "".join("." if v == 0 else str(int(v)) for v in arr)


def test_build_from_csv_reports_malformed_rows_and_drops_variant_leak(tmp_path, capsys):
    rng = random.Random(5)
    puzzles = [generate_puzzle(9, rng)[:2] for _ in range(5)]
    test_p, test_s = puzzles[0]
    # deliberate leak: the test puzzle relabelled (d -> 10 - d) and rotated by 90 degrees
    relabel = np.array([0, 9, 8, 7, 6, 5, 4, 3, 2, 1])
    leak_p = F.dihedral(relabel[test_p].reshape(9, 9), 1).reshape(-1)
    leak_s = F.dihedral(relabel[test_s].reshape(9, 9), 1).reshape(-1)
    bad_answer = puzzles[2][1].copy()
    bad_answer[[0, 1]] = bad_answer[[1, 0]]
    train_rows = [("gen", _s(p), _s(s), 3) for p, s in puzzles[1:]]
    train_rows += [("leak", _s(leak_p), _s(leak_s), 1),                      # line 6
                   ("bad", _s(puzzles[2][0])[:80], _s(puzzles[2][1]), 0),     # line 7: 80 chars
                   ("bad", _s(puzzles[2][0])[:-1] + "x", _s(puzzles[2][1]), 0),  # line 8: unknown symbol
                   ("bad", _s(puzzles[2][0]), _s(bad_answer), 0),             # line 9: answer invalid
                   ("bad", _s(puzzles[2][0]), _s(puzzles[2][1]), "hard"),      # line 10: rating
                   ("bad", "1", "2")]                                        # line 11: 3 fields
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    _write_csv(csv_dir / "train.csv", train_rows)
    _write_csv(csv_dir / "test.csv", [("gen", _s(test_p), _s(test_s), 7)])
    out = tmp_path / "ds"
    meta = build_sudoku(["--output-dir", str(out), "--source", "csv", "--csv-dir", str(csv_dir), "--num-aug", "3"])
    err = capsys.readouterr().err
    for line, what in ((7, "80 characters"), (8, "unknown symbol"), (9, "not a valid complete grid"),
                       (10, "rating 'hard'"), (11, "fields")):
        assert f"line {line}" in err and what in err, (line, what, err)
    assert "skipped 5 malformed row(s)" in err
    assert "dropped 1 puzzle(s) that are test puzzles up to relabelling/symmetry" in err
    assert meta["num_train_puzzles"] == 4 and meta["num_rows"]["train"] == 16 and meta["num_rows"]["test"] == 1
    assert meta["leaks_dropped"]["train_puzzles"] == 1
    card = (out / "README.md").read_text()
    assert "license: other" in card and str(csv_dir) in card
    tr = dataset_arrays(load_hrm_dataset(out, "train")[0])
    assert sorted(set(tr["group_id"].tolist())) == [0, 1, 2, 3]


def test_csv_subsample_is_seeded(tmp_path):
    rng = random.Random(1)
    rows = [("g", _s(p), _s(s), 0) for p, s in (generate_puzzle(4, rng)[:2] for _ in range(12))]
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    _write_csv(csv_dir / "train.csv", rows[:10])
    _write_csv(csv_dir / "test.csv", rows[10:])
    picks = []
    for seed in (0, 0, 1):
        out = tmp_path / f"o{len(picks)}"
        build_sudoku(["--output-dir", str(out), "--source", "csv", "--csv-dir", str(csv_dir), "--subsample-size", "4",
                      "--seed", str(seed), "--quiet"])
        picks.append(dataset_arrays(load_hrm_dataset(out, "train")[0])["inputs"].tobytes())
    assert picks[0] == picks[1]
    assert len(load_hrm_dataset(tmp_path / "o0", "train")[0]) <= 4


def test_script_and_module_entry_points(tmp_path):
    for cmd in ([sys.executable, str(REPO / "dataset_scripts" / "build_sudoku_dataset.py")],
                [sys.executable, "-m", "dataset_scripts.build_sudoku_dataset"]):
        out = tmp_path / str(len(cmd))
        r = subprocess.run(cmd + ["--output-dir", str(out), "--size", "4", "--num-train", "3", "--num-test", "2",
                                  "--quiet"], cwd=tmp_path if len(cmd) == 2 else REPO, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        meta = json.loads((out / "hrm_dataset.json").read_text())
        assert "build_sudoku_dataset" in meta["build_command"] and "--num-train 3" in meta["build_command"]
    r = subprocess.run([sys.executable, "-m", "dataset_scripts.build_sudoku_dataset", "--output-dir",
                        str(tmp_path / "x"), "--source", "csv"], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().startswith("error: --source csv needs --csv-dir")
    assert "Traceback" not in r.stderr
