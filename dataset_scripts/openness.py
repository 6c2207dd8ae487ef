"""How open is an evaluation split? Overlap figures of Sudoku eval puzzles against the training rows.

A model can score on a held-out split by recalling a training answer instead of solving. These figures,
computed by `build_sudoku_dataset.py` for the test and validation splits and written to `hrm_dataset.json`
(`openness`) and the dataset card, say how much there is to recall:

* ``answer_overlap_verbatim``: eval answers equal to the answer of any training row (augmented copies included);
* ``answer_overlap_symmetry``: eval answers equal to a training answer up to digit relabelling and the
  position group of `formats.sudoku_position_group` (6x6 grids fall into only 49 such classes, so this is
  expected there; it is reported, not forbidden);
* ``near_duplicates``: eval puzzles within one clue (the same puzzle, one clue added or removed) of a
  training puzzle, up to the same symmetries;
* ``lookup_accuracy``: exact accuracy of answering each eval puzzle with a training answer (verbatim, any row)
  that agrees with its clues. 0 means there is nothing to look up; a closed world (4x4) scores ~100%.

An open family has verbatim overlap 0 and near-duplicates under ``NEAR_DUPLICATE_LIMIT``.
"""

from __future__ import annotations

import numpy as np

from .common import find_leaks, sorted_keys
from .formats import row_hashes, sudoku_variant_keys

#: An open split has fewer near-duplicate puzzles than this fraction (build fails with --require-open).
NEAR_DUPLICATE_LIMIT = 0.01
#: Near-duplicates are skipped above this many one-clue variants of training puzzles (rows x cells).
MAX_NEAR_DUPLICATE_VARIANTS = 40_000_000
#: Bits of the prefilter table of `_any_image_in` (2**24 bools = 16 MB).
PREFILTER_BITS = 24
#: The lookup baseline is skipped above this many cell comparisons (eval puzzles x candidate answers x cells).
MAX_LOOKUP_WORK = 2_000_000_000


def one_clue_variants(puzzles: np.ndarray, solutions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every puzzle itself, with each clue removed, and with each blank filled by its solution digit.

    Returns ``(variants, source)``: (N * (cells + 1), cells) digit grids and the row of ``puzzles`` each
    comes from."""
    puzzles = np.asarray(puzzles, dtype=np.uint8)
    solutions = np.asarray(solutions, dtype=np.uint8)
    num, cells = puzzles.shape
    variants = np.repeat(puzzles[:, None, :], cells + 1, axis=1)  # variant 0: the puzzle; 1 + i: cell i toggled
    toggled = np.where(puzzles > 0, 0, solutions)  # a clue is removed, a blank gets its solution digit
    idx = np.arange(cells)
    variants[:, 1 + idx, idx] = toggled
    return variants.reshape(-1, cells), np.repeat(np.arange(num), cells + 1)


def lookup_answers(eval_puzzles: np.ndarray, train_answers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each eval puzzle, the first training answer (distinct grids, in order of first appearance) that
    agrees with all its clues. Returns ``(answers (E, cells), found (E,) bool)``; rows without one are 0."""
    eval_puzzles = np.asarray(eval_puzzles, dtype=np.uint8)
    answers = np.asarray(train_answers, dtype=np.uint8)
    hashes = row_hashes(answers)
    order = np.argsort(hashes, kind="stable")
    first = order[np.r_[True, hashes[order][1:] != hashes[order][:-1]]] if len(order) else order
    answers = answers[np.sort(first)]  # distinct grids, in order of first appearance
    out = np.zeros_like(eval_puzzles)
    found = np.zeros(len(eval_puzzles), dtype=bool)
    if len(answers) == 0:
        return out, found
    for e, puzzle in enumerate(eval_puzzles):
        clues = np.flatnonzero(puzzle)
        candidates = answers
        if len(clues):  # narrow by the first clue before comparing all of them
            candidates = answers[answers[:, clues[0]] == puzzle[clues[0]]]
        agree = (candidates[:, clues] == puzzle[clues]).all(axis=1)
        if agree.any():
            out[e] = candidates[int(np.argmax(agree))]
            found[e] = True
    return out, found


def sudoku_openness(train_puzzles: np.ndarray, train_solutions: np.ndarray,
                    eval_splits: dict[str, tuple[np.ndarray, np.ndarray]], train_answer_rows: np.ndarray | None = None,
                    eval_puzzle_keys: dict[str, np.ndarray] | None = None) -> dict[str, dict]:
    """Openness figures of each eval split against training (digits, 0 = blank, flat (N, n*n) arrays).

    ``train_puzzles`` / ``train_solutions``: the distinct training puzzles (augmented copies are images of
    them under the symmetries, so they add nothing to the symmetric figures). ``eval_splits``: name ->
    (puzzles, solutions). ``train_answer_rows``: the answers of every training row, augmented copies
    included (default ``train_solutions``), for the verbatim figures. ``eval_puzzle_keys``: name ->
    ``sudoku_variant_keys(puzzles, all_symmetries=True)`` where already computed (the leak check has them).
    Returns name -> figures; counts are ints, ``None`` marks a figure skipped for size.
    """
    train_puzzles = np.asarray(train_puzzles, dtype=np.uint8)
    train_solutions = np.asarray(train_solutions, dtype=np.uint8)
    rows = train_solutions if train_answer_rows is None else np.asarray(train_answer_rows, dtype=np.uint8)
    cells = train_puzzles.shape[1]
    # Training side, once for all splits: plain keys (no G-fold images) of the answers and one-clue variants.
    train_answer_keys = sorted_keys(sudoku_variant_keys(train_solutions, all_symmetries=False))
    variant_keys = None
    if len(train_puzzles) * (cells + 1) <= MAX_NEAR_DUPLICATE_VARIANTS:
        variants, _ = one_clue_variants(train_puzzles, train_solutions)
        variant_keys = sudoku_variant_keys(variants, all_symmetries=False).reshape(len(train_puzzles), cells + 1)
    figures = {}
    for name, (eval_puzzles, eval_solutions) in eval_splits.items():
        eval_puzzles = np.asarray(eval_puzzles, dtype=np.uint8)
        eval_solutions = np.asarray(eval_solutions, dtype=np.uint8)
        num_eval = len(eval_puzzles)
        out: dict = {"eval_puzzles": int(num_eval), "train_rows": int(len(rows)),
                     "train_puzzles": int(len(train_puzzles))}
        out.update(answer_figures(eval_puzzles, eval_solutions, rows))
        # A training answer equal to an eval answer up to symmetry has its plain key among the eval answer's images.
        answer_images = sudoku_variant_keys(eval_solutions, all_symmetries=True).reshape(num_eval, -1)
        out["answer_overlap_symmetry"] = int(_any_image_in(answer_images, train_answer_keys).sum())
        if variant_keys is None:
            out["near_duplicates"] = out["exact_duplicates"] = None
        else:
            keys = (eval_puzzle_keys or {}).get(name)
            images = (sudoku_variant_keys(eval_puzzles, all_symmetries=True) if keys is None
                      else np.asarray(keys, dtype=np.uint64)).reshape(num_eval, -1)
            out["near_duplicates"] = int(_any_image_in(images, variant_keys).sum())
            out["exact_duplicates"] = int(_any_image_in(images, variant_keys[:, 0]).sum())
        figures[name] = out
    return figures


def _any_image_in(images: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """(E,) bool: whether any of the keys ``images[e]`` (E, G) is among ``keys``.

    Millions of image keys against up to a million keys: a bit table on the low ``PREFILTER_BITS`` bits of the
    keys rules out most images with one gather; only the rest are binary-searched."""
    keys = sorted_keys(keys)
    flat = images.reshape(-1)
    mask = np.uint64((1 << PREFILTER_BITS) - 1)
    table = np.zeros(1 << PREFILTER_BITS, dtype=bool)
    table[(keys & mask).astype(np.intp)] = True
    maybe = np.flatnonzero(table[(flat & mask).astype(np.intp)])
    hit = np.zeros(len(flat), dtype=bool)
    hit[maybe] = find_leaks(flat[maybe], keys)
    return hit.reshape(images.shape).any(axis=1)


def answer_figures(eval_puzzles: np.ndarray, eval_solutions: np.ndarray, train_answer_rows: np.ndarray) -> dict:
    """The verbatim figures: ``answer_overlap_verbatim`` (count) and ``lookup_accuracy`` (None above
    ``MAX_LOOKUP_WORK``) of eval puzzles against the answers of every training row."""
    eval_puzzles = np.asarray(eval_puzzles, dtype=np.uint8)
    eval_solutions = np.asarray(eval_solutions, dtype=np.uint8)
    rows = np.asarray(train_answer_rows, dtype=np.uint8)
    num_eval, cells = eval_puzzles.shape
    answer_keys = sorted_keys(row_hashes(rows))
    out = {"answer_overlap_verbatim": int(find_leaks(row_hashes(eval_solutions), answer_keys).sum())}
    num_answers = len(answer_keys)
    if num_eval * max(1, num_answers // max(1, int(round(np.sqrt(cells))))) * cells > MAX_LOOKUP_WORK:
        out["lookup_accuracy"] = None
    else:
        answers, found = lookup_answers(eval_puzzles, rows)
        correct = found & (answers == eval_solutions).all(axis=1)
        out["lookup_accuracy"] = float(correct.mean()) if num_eval else 0.0
    return out


def is_open(figures: dict) -> tuple[bool, str]:
    """``(open, reason)``: verbatim answer overlap 0 and near-duplicates under ``NEAR_DUPLICATE_LIMIT``."""
    num = max(1, figures["eval_puzzles"])
    if figures["answer_overlap_verbatim"]:
        return False, (f"{figures['answer_overlap_verbatim']} of {num} eval answers are the answer of a training row "
                       "(verbatim)")
    near = figures.get("near_duplicates")
    if near is not None and near / num >= NEAR_DUPLICATE_LIMIT:
        return False, (f"{near} of {num} eval puzzles ({100 * near / num:.1f}%) are within one clue of a training "
                       f"puzzle up to symmetry (limit {100 * NEAR_DUPLICATE_LIMIT:.0f}%)")
    return True, ""


def openness_section(openness: dict[str, dict], symmetry_text: str) -> str:
    """Card section: one row per eval split."""
    def pct(count, num):
        return "skipped (size)" if count is None else f"{count:,} / {num:,} ({100 * count / max(1, num):.1f}%)"

    lines = ["## Openness", "",
             "What a model could recall instead of solve, per eval split, against all training rows "
             f"(symmetries: {symmetry_text}). Verbatim answer overlap: eval answers equal to the answer of any "
             "training row (augmented copies included). Answer overlap up to symmetry: reported, not forbidden "
             "(6x6 grids fall into only 49 classes). Near-duplicates: eval puzzles equal, up to symmetry, to a "
             "training puzzle or to one with one clue added or removed. Lookup baseline: exact accuracy of "
             "answering each eval puzzle with a training answer that agrees with its clues (0% = nothing to look "
             "up). An open family has verbatim overlap 0 and near-duplicates under "
             f"{100 * NEAR_DUPLICATE_LIMIT:.0f}%.", "",
             "| split | verbatim answer overlap | answer overlap up to symmetry | near-duplicate puzzles "
             "| lookup baseline |", "|---|---|---|---|---|"]
    for split, f in openness.items():
        num = f["eval_puzzles"]
        lookup = "skipped (size)" if f["lookup_accuracy"] is None else f"{100 * f['lookup_accuracy']:.1f}%"
        lines.append(f"| {split} | {pct(f['answer_overlap_verbatim'], num)} | "
                     f"{pct(f['answer_overlap_symmetry'], num)} | {pct(f['near_duplicates'], num)} | {lookup} |")
    if any(f["near_duplicates"] is None or f["lookup_accuracy"] is None for f in openness.values()):
        lines += ["", f"Skipped for size: near-duplicates above {MAX_NEAR_DUPLICATE_VARIANTS:,} one-clue variants "
                      f"of training puzzles, the lookup baseline above {MAX_LOOKUP_WORK:,} cell comparisons."]
    return "\n".join(lines)
