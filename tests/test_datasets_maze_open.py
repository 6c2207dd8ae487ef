"""Open-world maze data: path-length buckets, the validation split, shallow training, openness figures under the
dihedral group and deterministic builds (build_maze_dataset.py, dataset_scripts/openness.py `maze_openness`), and
per-bucket accuracy in `evaluate_checkpoint` on such a build."""

import json
import random

import numpy as np
import pytest

from dataset_scripts import formats as F
from dataset_scripts.build_maze_dataset import bfs, generate_maze, main as build_maze, shortest_path
from dataset_scripts.common import dataset_arrays, load_hrm_dataset
from dataset_scripts.openness import is_open, maze_lookup_answers, maze_openness, maze_step_variant_keys
from dataset_scripts.sudoku import depth_bucket_names

BUCKETS = "4-10,11-20,21+"
SPLITS = ("train", "test", "validation")


def _build(out, seed="5"):
    return build_maze(["--output-dir", str(out), "--size", "9", "--num-train", "60", "--num-val", "2", "--num-test",
                       "3", "--eval-buckets", BUCKETS, "--train-max-path-length", "10", "--seed", seed, "--quiet"])


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("maze-open") / "m9"
    meta = _build(out)
    splits = {s: dataset_arrays(load_hrm_dataset(out, s)[0], columns=("inputs", "labels", "path_length"))
              for s in SPLITS}
    return out, meta, splits


def _solve(question):
    """The answer of a maze question: its shortest S->G path marked (the builder's BFS)."""
    dist, _ = bfs(question, tuple(np.argwhere(question == F.MAZE_START)[0]))
    answer = question.copy()
    for cell in shortest_path(dist, tuple(np.argwhere(question == F.MAZE_GOAL)[0])):
        answer[cell] = F.MAZE_PATH
    return answer


def test_open_build_has_buckets_validation_and_shallow_training(built):
    out, meta, splits = built
    assert meta["num_rows"] == {"train": 60, "test": 9, "validation": 6} and meta["num_validation_puzzles"] == 6
    assert meta["depth_buckets"] == BUCKETS and meta["train_max_path_length"] == 10 and meta["require_open"] is True
    assert splits["train"]["path_length"].max() <= 10
    for s, count in (("test", 3), ("validation", 2)):
        names, counts = np.unique(depth_bucket_names(splits[s]["path_length"], BUCKETS), return_counts=True)
        assert dict(zip(names.tolist(), counts.tolist())) == {b: count for b in BUCKETS.split(",")}
    for s in SPLITS:
        lengths = splits[s]["path_length"]
        assert sum(meta["path_length_histogram"][s].values()) == len(lengths)
        assert ((splits[s]["labels"] == F.MAZE_PATH).sum(1) + 1 == lengths).all()  # the real BFS depth
    # Every split is distinct from every other (and within itself) up to the 8 dihedral images.
    rows = np.concatenate([splits[s]["inputs"] for s in SPLITS])
    classes = F.maze_variant_keys(rows, 9, 9, all_symmetries=True).reshape(8, -1).min(axis=0)
    assert len(np.unique(classes)) == len(rows) == 75
    # The recorded openness is what the module computes on the written rows; the build is open.
    again = maze_openness(splits["train"]["inputs"], splits["train"]["labels"],
                          {s: (splits[s]["inputs"], splits[s]["labels"]) for s in ("test", "validation")}, 9, 9)
    assert meta["openness"] == json.loads(json.dumps(again))
    for s in ("test", "validation"):
        assert is_open(meta["openness"][s]) == (True, "") and meta["openness"][s]["lookup_accuracy"] == 0.0
    card = (out / "README.md").read_text()
    assert "- split: validation\n    path: data/validation-*" in card and "| validation | 0 / 6 (0.0%)" in card
    assert f"`{BUCKETS}`" in card and "- test: 4-10: 3, 11-20: 3, 21+: 3" in card and "S or G moved by one" in card


def test_build_is_deterministic_from_the_seed(built, tmp_path):
    out, _, _ = built

    def files(folder):
        return {p.name: p.read_bytes() for p in sorted((folder / "data").iterdir())}

    _build(tmp_path / "again")
    assert files(tmp_path / "again") == files(out)
    _build(tmp_path / "other", seed="6")
    assert files(tmp_path / "other") != files(out)


def test_step_variant_keys_are_the_keys_of_the_explicit_variants():
    rng = random.Random(1)
    mazes = np.stack([generate_maze(9, 4, 0.2, True, rng)[0] for _ in range(3)])
    computed = maze_step_variant_keys(mazes.reshape(3, -1), 9, 9)
    for q, keys in zip(mazes, computed):
        variants = [q]
        for cell in zip(*np.nonzero((q == F.MAZE_WALL) | (q == F.MAZE_OPEN))):
            v = q.copy()
            v[cell] = F.MAZE_OPEN if q[cell] == F.MAZE_WALL else F.MAZE_WALL
            variants.append(v)
        for token in (F.MAZE_START, F.MAZE_GOAL):
            r, c = np.argwhere(q == token)[0]
            for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
                if 0 <= rr < 9 and 0 <= cc < 9 and q[rr, cc] == F.MAZE_OPEN:
                    v = q.copy()
                    v[r, c], v[rr, cc] = F.MAZE_OPEN, token
                    variants.append(v)
        explicit = F.maze_variant_keys(np.stack(variants).reshape(len(variants), -1), 9, 9, all_symmetries=False)
        assert set(keys.tolist()) == set(explicit.tolist()) and len(set(explicit.tolist())) == len(variants)


def test_maze_openness_counts_a_planted_case_exactly():
    """11x11 mazes: with 8 images and ~10^9 layouts, unplanted overlaps cannot happen by chance."""
    rng = random.Random(7)
    train = [generate_maze(11, 6, 0.1, True, rng)[:2] for _ in range(4)]
    train_q = np.stack([q for q, _ in train])
    train_a = np.stack([a for _, a in train])
    holed = train_q[2].copy()
    border = next(c for c in range(1, 10) if holed[1, c] == F.MAZE_OPEN)
    holed[0, border] = F.MAZE_OPEN  # one wall removed (a dead end on the border: the path stays)
    moved = train_q[3].copy()
    r, c = np.argwhere(moved == F.MAZE_START)[0]
    rr, cc = next((r + dr, c + dc) for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1))
                  if moved[r + dr, c + dc] == F.MAZE_OPEN)
    moved[r, c], moved[rr, cc] = F.MAZE_OPEN, F.MAZE_START  # S moved by one cell
    other = random.Random(99)
    fresh = [generate_maze(11, 6, 0.1, True, other)[:2] for _ in range(2)]
    evals = [(train_q[0], train_a[0]),                                            # verbatim
             (F.dihedral(train_q[1], 3), F.dihedral(train_a[1], 3)),             # rotated
             (F.dihedral(holed, 5), F.dihedral(_solve(holed), 5)),                # one wall fewer, then flipped
             (moved, _solve(moved)),                                              # S moved by one
             *fresh]                                                              # true negatives
    eval_q = np.stack([q for q, _ in evals]).reshape(6, -1)
    eval_a = np.stack([a for _, a in evals]).reshape(6, -1)
    flat_q, flat_a = train_q.reshape(4, -1), train_a.reshape(4, -1)
    fig = maze_openness(flat_q, flat_a, {"test": (eval_q, eval_a)}, 11, 11)["test"]
    assert fig["answer_overlap_verbatim"] == 1      # planted 0
    assert fig["answer_overlap_symmetry"] == 2      # planted 0, 1
    assert fig["near_duplicates"] == 4              # planted 0..3
    assert fig["exact_duplicates"] == 2             # planted 0, 1
    assert fig["lookup_accuracy"] == pytest.approx(2 / 6)  # the rotated maze's path is mapped back
    assert is_open(fig)[0] is False
    answers, found = maze_lookup_answers(eval_q, flat_q, flat_a, 11, 11)
    assert found.tolist() == [True, True, False, False, False, False]
    assert np.array_equal(answers[1], eval_a[1]) and not answers[2].any()
    # Augmented training rows count for the verbatim figure: the rotated answer of planted 1 among them.
    rows = np.concatenate([flat_a, F.dihedral(train_a[1], 3).reshape(1, -1)])
    fig = maze_openness(flat_q, flat_a, {"test": (eval_q, eval_a)}, 11, 11, train_answer_rows=rows)["test"]
    assert fig["answer_overlap_verbatim"] == 2 and fig["train_rows"] == 5
    near_only = maze_openness(flat_q, flat_a, {"test": (eval_q[3:], eval_a[3:])}, 11, 11)["test"]
    ok, why = is_open(near_only, step="one step")
    assert near_only["answer_overlap_verbatim"] == 0 and not ok
    assert "1 of 3 eval puzzles (33.3%) are within one step" in why
    open_fig = maze_openness(flat_q, flat_a, {"test": (eval_q[4:], eval_a[4:])}, 11, 11)["test"]
    assert is_open(open_fig) == (True, "") and open_fig["lookup_accuracy"] == 0.0


def test_evaluate_checkpoint_reports_accuracy_per_path_length_bucket(built):
    import torch

    from modeling_hrm import HRMConfig, HRMForPuzzleSolving
    from training.evaluation import run_solve
    from training.hrm_evaluate import _summary, evaluate_checkpoint

    out, meta, _ = built
    ds, _ = load_hrm_dataset(out, "test")
    arrays = dataset_arrays(ds)
    torch.manual_seed(0)
    model = HRMForPuzzleSolving(HRMConfig(vocab_size=6, seq_len=81, hidden_size=16, num_heads=2, H_layers=1,
                                          L_layers=1, H_cycles=1, L_cycles=1, puzzle_emb_ndim=16,
                                          halt_max_steps=2)).eval()
    predicted = run_solve(model, arrays, max_steps=2, early_exit=False)["predictions"]
    right = np.zeros(9, bool)
    right[[0, 3, 4, 6, 7, 8]] = True  # rows are bucket by bucket, 3 each: 1/3, 2/3 and 3/3 right
    arrays["labels"] = np.where(right[:, None], predicted, arrays["labels"]).astype(arrays["labels"].dtype)
    arrays["labels"][~right, 0] = (predicted[~right, 0] % 5) + 1  # and the others differ somewhere
    res = evaluate_checkpoint(model, ds, meta, arrays, max_steps=2, budgets=[2], batch_size=9, num_examples=0)
    assert res["by_depth"] == {"4-10": {"exact_accuracy": pytest.approx(1 / 3), "num_puzzles": 3},
                               "11-20": {"exact_accuracy": pytest.approx(2 / 3), "num_puzzles": 3},
                               "21+": {"exact_accuracy": 1.0, "num_puzzles": 3}}
    assert "21+: 100.0% of 3" in _summary(res)
