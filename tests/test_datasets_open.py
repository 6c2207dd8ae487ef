"""Open-world Sudoku data: fast symmetry keys, depth buckets, the validation split, openness figures and
deterministic multi-process generation (dataset_scripts/openness.py, build_sudoku_dataset.py)."""

import json
import random

import numpy as np
import pytest

from dataset_scripts import formats as F
from dataset_scripts import build_sudoku_dataset as builder
from dataset_scripts.common import dataset_arrays, load_hrm_dataset, load_hrm_metadata
from dataset_scripts.openness import is_open, lookup_answers, one_clue_variants, sudoku_openness
from dataset_scripts.sudoku import (SudokuSolver, VariantIndex, canonical_keys, depth_bucket_names, generate_candidate,
                                    parse_depth_buckets, variant_signatures)

BUCKETS = "1-2,3,4,5"


def _reference_image_keys(puzzles):
    """The keys of every symmetry image, built explicitly (what `sudoku_image_keys` avoids)."""
    n = int(round(np.sqrt(puzzles.shape[1])))
    images = puzzles[:, F.sudoku_position_group(n)].reshape(-1, n * n)
    return F.row_hashes(F.relabel_first_appearance(images, n))


def _puzzles(n, count, seed, extra=0):
    rng, solver = random.Random(seed), SudokuSolver(n)
    pairs = [generate_candidate(n, rng, solver, extra) for _ in range(count)]
    return np.stack([p for p, _ in pairs]), np.stack([s for _, s in pairs])


@pytest.mark.parametrize("n", [4, 6, 9])
def test_symmetry_keys_equal_the_explicit_images(n):
    puzzles, solutions = _puzzles(n, 6, seed=n, extra=n)
    for grids in (puzzles, solutions, np.zeros((2, n * n), np.uint8)):
        assert np.array_equal(F.sudoku_variant_keys(grids, all_symmetries=True), _reference_image_keys(grids))


def test_minimize_gives_the_same_puzzle_as_counting_solutions():
    solver, rng = SudokuSolver(6), random.Random(3)
    for _ in range(10):
        full = solver.solve([0] * 36, limit=1, rng=rng).solutions[0]
        order = rng.sample(range(36), 36)
        expected = list(full)
        for i in order:
            digit, expected[i] = expected[i], 0
            if solver.count_solutions(expected) != 1:
                expected[i] = digit
        assert solver.minimize(full, order) == expected


def test_variant_index_rejects_exactly_the_variants():
    puzzles, _ = _puzzles(6, 5, seed=1, extra=3)
    group = F.sudoku_position_group(6)
    relabel = np.array([0, 3, 5, 1, 6, 2, 4], np.uint8)
    variant = relabel[puzzles[2][group[1234]]]  # another puzzle's relabelled image under the position group
    stack = np.concatenate([puzzles, variant[None]])
    sigs = variant_signatures(stack)
    assert sigs[-1] == sigs[2] and len(set(sigs[:5].tolist())) == 5  # signatures are invariant and discriminate
    assert canonical_keys(variant[None])[0] == canonical_keys(puzzles[2:3])[0]
    index = VariantIndex()
    assert [index.add(p, s) for p, s in zip(stack, sigs)] == [True] * 5 + [False]
    near = puzzles[0].copy()
    near[np.flatnonzero(near)[0]] = 0  # one clue fewer: a different puzzle, with the same signature rarely
    assert index.add(near, variant_signatures(near[None])[0])


def test_depth_buckets_parse_and_name():
    buckets = parse_depth_buckets("1-2,3,7+,search")
    assert [(b.name, b.lo, b.hi) for b in buckets] == [("1-2", 1, 2), ("3", 3, 3), ("7+", 7, None), ("search", -1, -1)]
    names = depth_bucket_names(np.array([1, 2, 3, 4, 7, 12, -1, -2]), "1-2,3,7+,search")
    assert names.tolist() == ["1-2", "1-2", "3", "", "7+", "7+", "search", ""]
    for bad, pattern in (("1-2,x", "'x'.*not A, A-B"), ("3-1", "ascending"), ("0", "start at 1"),
                         ("1-3,3", "'1-3' and '3'.*overlap"), ("2+,5", "overlap"), ("", "''")):
        with pytest.raises(ValueError, match=pattern):
            parse_depth_buckets(bad)


def test_openness_counts_a_planted_case_exactly():
    """9x9 (symmetries: relabelling x dihedral), so unplanted overlaps cannot happen by chance."""
    n, solver, rng = 9, SudokuSolver(9), random.Random(7)
    train_p, train_s = _puzzles(n, 4, seed=11)
    relabel = np.array([0, 9, 8, 7, 6, 5, 4, 3, 2, 1], np.uint8)

    def image(grid):  # relabelled, rotated by 90 degrees
        return relabel[F.dihedral(grid.reshape(9, 9), 1).reshape(-1)]

    def fresh_puzzle(solution):  # a new minimal puzzle of the same answer
        return np.array(solver.minimize(solution.tolist(), rng.sample(range(81), 81)), np.uint8)

    removed = train_p[2].copy()
    removed[np.flatnonzero(removed)[0]] = 0
    added = train_p[3].copy()
    blank = np.flatnonzero(added == 0)[0]
    added[blank] = train_s[3][blank]
    neg_p, neg_s = _puzzles(n, 2, seed=99)
    evals = [(fresh_puzzle(image(train_s[0])), image(train_s[0])),  # answer = an image of a training answer
             (fresh_puzzle(train_s[1]), train_s[1]),                 # answer = a training answer, verbatim
             (image(removed), image(train_s[2])),                    # one clue removed, then an image
             (added, train_s[3]),                                    # one clue added
             (relabel[train_p[0]], relabel[train_s[0]]),             # the same puzzle, relabelled
             (neg_p[0], neg_s[0]), (neg_p[1], neg_s[1])]             # true negatives
    eval_p, eval_s = np.stack([e[0] for e in evals]), np.stack([e[1] for e in evals])
    fig = sudoku_openness(train_p, train_s, {"test": (eval_p, eval_s)})["test"]
    assert fig["answer_overlap_verbatim"] == 2      # planted 1 and 3
    assert fig["answer_overlap_symmetry"] == 5      # planted 0..4
    assert fig["near_duplicates"] == 3              # planted 2, 3, 4
    assert fig["exact_duplicates"] == 1             # planted 4
    assert fig["lookup_accuracy"] == pytest.approx(2 / 7)  # a verbatim training answer agrees with 1 and 3 only
    assert is_open(fig)[0] is False and "2 of 7 eval answers" in is_open(fig)[1]
    answers, found = lookup_answers(eval_p, np.concatenate([train_s, train_s[::-1]]))
    assert found.tolist() == [False, True, False, True, False, False, False]
    assert np.array_equal(answers[1], train_s[1]) and not answers[0].any()
    # Augmented training rows count for the verbatim figures: the relabelled answer of planted 4 among them.
    rows = np.concatenate([train_s, relabel[train_s[0]][None]])
    fig = sudoku_openness(train_p, train_s, {"test": (eval_p, eval_s)}, train_answer_rows=rows)["test"]
    assert fig["answer_overlap_verbatim"] == 3 and fig["lookup_accuracy"] == pytest.approx(3 / 7)
    open_fig = sudoku_openness(train_p, train_s, {"test": (eval_p[5:], eval_s[5:])})["test"]
    assert is_open(open_fig) == (True, "") and open_fig["lookup_accuracy"] == 0.0


def test_one_clue_variants_toggle_one_cell_each():
    puzzles, solutions = _puzzles(4, 2, seed=0, extra=2)
    variants, source = one_clue_variants(puzzles, solutions)
    assert variants.shape == (2 * 17, 16) and source.tolist() == [0] * 17 + [1] * 17
    diff = (variants.reshape(2, 17, 16) != puzzles[:, None, :]).sum(axis=2)
    assert (diff[:, 0] == 0).all() and (diff[:, 1:] == 1).all()
    assert ((variants == 0) | (variants == np.repeat(solutions, 17, axis=0))).all()


def _build(out, *extra, workers="1"):
    return builder.main(["--output-dir", str(out), "--size", "6", "--num-train", "60", "--num-val", "2",
                         "--num-test", "3", "--eval-buckets", BUCKETS, "--train-max-rounds", "3", "--seed", "5",
                         "--workers", workers, "--quiet", *extra])


def test_small_6x6_build_with_validation_buckets_and_openness(tmp_path):
    out = tmp_path / "s6"
    meta = _build(out)
    assert meta["num_rows"] == {"train": 60, "test": 12, "validation": 8} == load_hrm_metadata(out)["num_rows"]
    assert meta["depth_buckets"] == BUCKETS and meta["train_max_rounds"] == 3 and meta["require_open"] is True
    splits = {s: dataset_arrays(load_hrm_dataset(out, s)[0], columns=("inputs", "labels", "rounds"))
              for s in ("train", "test", "validation")}
    digits = {s: (a["inputs"].astype(np.uint8) - 1, a["labels"].astype(np.uint8) - 1) for s, a in splits.items()}
    assert splits["train"]["rounds"].max() <= 3
    for s, count in (("test", 3), ("validation", 2)):
        names, counts = np.unique(depth_bucket_names(splits[s]["rounds"], meta["depth_buckets"]), return_counts=True)
        assert dict(zip(names.tolist(), counts.tolist())) == {b: count for b in BUCKETS.split(",")}
        assert meta["rounds_histogram"][s] == builder.depth_histogram(splits[s]["rounds"])
    # Every split is distinct from every other up to relabelling and the full 6x6 symmetry group.
    classes = np.concatenate([canonical_keys(digits[s][0]) for s in digits])
    assert len(np.unique(classes)) == len(classes)
    # The recorded openness is what the module computes on the written rows; the build is open.
    again = sudoku_openness(*digits["train"], {s: digits[s] for s in ("test", "validation")})
    assert meta["openness"] == json.loads(json.dumps(again))
    for s in ("test", "validation"):
        assert meta["openness"][s]["answer_overlap_verbatim"] == 0 and meta["openness"][s]["lookup_accuracy"] == 0
        assert meta["openness"][s]["near_duplicates"] == 0
    card = (out / "README.md").read_text()
    assert "- split: validation\n    path: data/validation-*" in card
    assert "## Openness" in card and "| validation | 0 / 8 (0.0%)" in card and "never on test" in card
    assert "| validation | " in card.split("## Depth distribution")[1] and f"`{BUCKETS}`" in card


def test_output_does_not_depend_on_the_number_of_workers(tmp_path, monkeypatch):
    monkeypatch.setattr(builder, "INLINE_CHUNKS", 1)  # use the process pool from the second chunk on
    monkeypatch.setattr(builder, "POOL_MIN_SECONDS", 0.0)
    started = []
    real_stream = builder.Workers.stream

    def stream(self, *args, **kwargs):
        for chunk in real_stream(self, *args, **kwargs):
            started.append(self.executor is not None)
            yield chunk

    monkeypatch.setattr(builder.Workers, "stream", stream)
    files = {}
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}"
        _build(out, workers=workers)
        files[workers] = {p.name: p.read_bytes() for p in sorted((out / "data").iterdir())}
        assert any(started) == (workers == "2")  # the second build really ran in worker processes
        started.clear()
    assert files["1"] == files["2"]


def test_closed_world_4x4_is_reported_not_refused(tmp_path):
    meta = builder.main(["--output-dir", str(tmp_path / "s4"), "--size", "4", "--num-train", "200", "--num-test",
                         "30", "--num-aug", "2", "--quiet"])
    fig = meta["openness"]["test"]
    assert meta["require_open"] is False and fig["train_rows"] == meta["num_rows"]["train"] == 600
    assert fig["answer_overlap_verbatim"] > 0 and fig["lookup_accuracy"] > 0.5  # 288 grids: nearly all recalled
    # Forced open, the generator leaves out train puzzles with a test answer, but 4x4 puzzles stay near-duplicates.
    with pytest.raises(ValueError, match=r"test split is not open: .* within one clue of a training puzzle"):
        builder.main(["--output-dir", str(tmp_path / "s4-open"), "--size", "4", "--num-train", "200", "--num-test",
                      "30", "--require-open", "--quiet"])
    assert not (tmp_path / "s4-open" / "data").exists()  # refused before anything was written


def test_evaluate_reads_the_validation_split(tmp_path):
    import torch

    from modeling_hrm import HRMConfig, HRMForPuzzleSolving
    from training.hrm_evaluate import main as evaluate

    data = tmp_path / "s4"
    builder.main(["--output-dir", str(data), "--size", "4", "--num-train", "20", "--num-test", "3", "--num-val", "4",
                  "--quiet"])
    torch.manual_seed(0)
    model = tmp_path / "model"
    HRMForPuzzleSolving(HRMConfig.from_dataset_metadata(
        load_hrm_metadata(data), hidden_size=16, num_heads=2, puzzle_emb_ndim=16, H_layers=1, L_layers=1,
        H_cycles=1, L_cycles=1, halt_max_steps=2)).save_pretrained(model)
    code = evaluate(["--model", str(model), "--dataset", str(data), "--split", "validation", "--num-examples", "0",
                     "--output-dir", str(tmp_path / "eval")])
    assert code in (0, None)
    assert json.loads((tmp_path / "eval" / "results.json").read_text())["num_rows"] == 4


def test_csv_validation_is_held_out_from_train(tmp_path):
    puzzles, solutions = _puzzles(9, 12, seed=4)
    text = lambda grid: "".join("." if v == 0 else str(int(v)) for v in grid)  # noqa: E731
    csv = tmp_path / "csv"
    csv.mkdir()
    for name, rows in (("train.csv", range(10)), ("test.csv", range(10, 12))):
        (csv / name).write_text("source,question,answer,rating\n" + "".join(
            f"g,{text(puzzles[i])},{text(solutions[i])},0\n" for i in rows))
    meta = builder.main(["--output-dir", str(tmp_path / "out"), "--source", "csv", "--csv-dir", str(csv),
                         "--num-val", "3", "--quiet"])
    assert meta["num_rows"] == {"train": 7, "test": 2, "validation": 3} and meta["num_validation_puzzles"] == 3
    arrays = {s: dataset_arrays(load_hrm_dataset(tmp_path / "out", s)[0])["inputs"] for s in meta["num_rows"]}
    rows = [r.tobytes() for s in arrays for r in arrays[s]]
    assert len(set(rows)) == 12  # every CSV puzzle in exactly one split
    assert set(meta["openness"]) == {"test", "validation"} and meta["require_open"] is True
    with pytest.raises(ValueError, match="--num-val 10 leaves no train puzzles"):
        builder.main(["--output-dir", str(tmp_path / "out2"), "--source", "csv", "--csv-dir", str(csv),
                      "--num-val", "10", "--quiet"])
