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

Mazes (`maze_openness`, for `build_maze_dataset.py`) have the same figures under the 8 dihedral images: a
near-duplicate is one step away (a wall added or removed, S or G moved by one), and the lookup baseline answers
an eval maze with the mapped path of a training maze equal to it up to symmetry.
"""

from __future__ import annotations

import numpy as np

from .common import find_leaks, sorted_keys
from .formats import (MAZE_GOAL, MAZE_OPEN, MAZE_START, MAZE_WALL, inverse_dihedral, maze_variant_keys,
                      row_hashes, sudoku_variant_keys)

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


def maze_step_variant_keys(questions: np.ndarray, height: int, width: int) -> np.ndarray:
    """(N, 1 + cells + 8) plain keys (``maze_variant_keys``, no symmetry) of every maze itself, with one wall or open
    cell toggled, and with S or G moved by one onto an open neighbour (a move off the grid or onto a non-open cell
    repeats the maze's own key).

    Row hashes are linear in the cells: changing cell i from ``a`` to ``b`` adds ``coeff[i] * (b - a)`` (mod 2**64) to
    the key, so the variants' keys come from the maze's key without building a variant grid."""
    q = np.asarray(questions, dtype=np.uint8).reshape(-1, height * width)
    num, cells = q.shape
    base = maze_variant_keys(q, height, width, all_symmetries=False)
    coeff = row_hashes(np.eye(cells, dtype=np.uint8))  # what a unit in cell i adds to a row hash

    def times(keys, delta: int):  # keys * delta mod 2**64, delta possibly negative
        return keys * np.uint64(delta % 2**64)

    keys = np.empty((num, 1 + cells + 8), dtype=np.uint64)
    keys[:, 0] = base
    with np.errstate(over="ignore"):
        toggle = np.where(q == MAZE_WALL, times(coeff, MAZE_OPEN - MAZE_WALL),
                          np.where(q == MAZE_OPEN, times(coeff, MAZE_WALL - MAZE_OPEN), np.uint64(0)))
        keys[:, 1:1 + cells] = base[:, None] + toggle
        rows = np.arange(num)
        for m, token in enumerate((MAZE_START, MAZE_GOAL)):
            at = (q == token).argmax(axis=1)
            r, c = np.divmod(at, width)
            for d, (dr, dc) in enumerate(((-1, 0), (1, 0), (0, -1), (0, 1))):
                inside = (r + dr >= 0) & (r + dr < height) & (c + dc >= 0) & (c + dc < width)
                to = np.where(inside, (r + dr) * width + c + dc, at)
                movable = inside & (q[rows, to] == MAZE_OPEN) & (q[rows, at] == token)
                moved = base + times(coeff[to] - coeff[at], int(token) - MAZE_OPEN)  # at -> open, to -> token
                keys[:, 1 + cells + 4 * m + d] = np.where(movable, moved, base)
    return keys


def maze_lookup_answers(eval_questions: np.ndarray, train_questions: np.ndarray, train_answers: np.ndarray,
                        height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """For each eval maze, the answer of the first training maze equal to one of its dihedral images, mapped back
    by the inverse image. Returns ``(answers (E, cells), found (E,) bool)``; rows without one are 0."""
    eval_questions = np.asarray(eval_questions, dtype=np.uint8).reshape(-1, height * width)
    train_answers = np.asarray(train_answers, dtype=np.uint8).reshape(-1, height * width)
    train_keys = maze_variant_keys(train_questions, height, width, all_symmetries=False)
    order = np.argsort(train_keys, kind="stable")  # the leftmost equal key is the first training maze
    ordered = train_keys[order]
    out = np.zeros_like(eval_questions)
    found = np.zeros(len(eval_questions), dtype=bool)
    if len(ordered) == 0:
        return out, found
    images = maze_variant_keys(eval_questions, height, width, all_symmetries=True).reshape(8, -1).T  # (E, 8)
    pos = np.minimum(np.searchsorted(ordered, images), len(ordered) - 1)
    hit = ordered[pos] == images
    found = hit.any(axis=1)
    for e in np.flatnonzero(found):
        k = int(hit[e].argmax())  # dihedral(eval maze, k) is the training maze, so the eval answer is its inverse
        out[e] = inverse_dihedral(train_answers[order[pos[e, k]]].reshape(height, width), k).reshape(-1)
    return out, found


def maze_openness(train_questions: np.ndarray, train_answers: np.ndarray,
                  eval_splits: dict[str, tuple[np.ndarray, np.ndarray]], height: int, width: int,
                  train_answer_rows: np.ndarray | None = None) -> dict[str, dict]:
    """Openness figures of each maze eval split against training (token grids, flat (N, H*W) arrays), under the 8
    dihedral images.

    ``train_questions`` / ``train_answers``: the distinct training mazes. ``eval_splits``: name -> (questions,
    answers). ``train_answer_rows``: the answers of every training row, augmented copies included (default
    ``train_answers``), for the verbatim figure; an answer holds the walls, S, G and the path, so equal answers are
    equal mazes too. Figures as `sudoku_openness`: ``answer_overlap_verbatim``, ``answer_overlap_symmetry``,
    ``near_duplicates`` (eval mazes one step (a wall added or removed, S or G moved by one) or less from a training
    maze, up to symmetry; None above ``MAX_NEAR_DUPLICATE_VARIANTS``), ``exact_duplicates`` and
    ``lookup_accuracy`` (`maze_lookup_answers` scored exactly)."""
    cells = height * width
    train_questions = np.asarray(train_questions, dtype=np.uint8).reshape(-1, cells)
    train_answers = np.asarray(train_answers, dtype=np.uint8).reshape(-1, cells)
    rows = train_answers if train_answer_rows is None else np.asarray(train_answer_rows, np.uint8).reshape(-1, cells)

    def plain(grids):
        return maze_variant_keys(grids, height, width, all_symmetries=False)

    def images(grids):  # (N, 8)
        return maze_variant_keys(grids, height, width, all_symmetries=True).reshape(8, -1).T

    row_keys, answer_keys = sorted_keys(plain(rows)), sorted_keys(plain(train_answers))
    question_keys = sorted_keys(plain(train_questions))
    variant_keys = None
    if len(train_questions) * (cells + 9) <= MAX_NEAR_DUPLICATE_VARIANTS:
        variant_keys = maze_step_variant_keys(train_questions, height, width)
    figures = {}
    for name, (eval_questions, eval_answers) in eval_splits.items():
        eval_questions = np.asarray(eval_questions, dtype=np.uint8).reshape(-1, cells)
        eval_answers = np.asarray(eval_answers, dtype=np.uint8).reshape(-1, cells)
        num_eval = len(eval_questions)
        question_images = images(eval_questions)
        lookup, found = maze_lookup_answers(eval_questions, train_questions, train_answers, height, width)
        correct = found & (lookup == eval_answers).all(axis=1)
        figures[name] = {
            "eval_puzzles": int(num_eval), "train_rows": int(len(rows)), "train_puzzles": int(len(train_questions)),
            "answer_overlap_verbatim": int(find_leaks(plain(eval_answers), row_keys).sum()),
            "lookup_accuracy": float(correct.mean()) if num_eval else 0.0,
            "answer_overlap_symmetry": int(_any_image_in(images(eval_answers), answer_keys).sum()),
            "near_duplicates": (None if variant_keys is None
                                else int(_any_image_in(question_images, variant_keys).sum())),
            "exact_duplicates": int(_any_image_in(question_images, question_keys).sum()),
        }
    return figures


def is_open(figures: dict, step: str = "one clue") -> tuple[bool, str]:
    """``(open, reason)``: verbatim answer overlap 0 and near-duplicates under ``NEAR_DUPLICATE_LIMIT`` (``step``:
    what a near-duplicate differs by, for the reason: "one clue" for Sudoku, "one step" for mazes)."""
    num = max(1, figures["eval_puzzles"])
    if figures["answer_overlap_verbatim"]:
        return False, (f"{figures['answer_overlap_verbatim']} of {num} eval answers are the answer of a training row "
                       "(verbatim)")
    near = figures.get("near_duplicates")
    if near is not None and near / num >= NEAR_DUPLICATE_LIMIT:
        return False, (f"{near} of {num} eval puzzles ({100 * near / num:.1f}%) are within {step} of a training "
                       f"puzzle up to symmetry (limit {100 * NEAR_DUPLICATE_LIMIT:.0f}%)")
    return True, ""


#: What the figures of `openness_section` mean, per task (the card's text before the table).
OPENNESS_DEFINITIONS = {
    "sudoku": ("Answer overlap up to symmetry: reported, not forbidden (6x6 grids fall into only 49 classes). "
               "Near-duplicates: eval puzzles equal, up to symmetry, to a training puzzle or to one with one clue "
               "added or removed. Lookup baseline: exact accuracy of answering each eval puzzle with a training "
               "answer that agrees with its clues (0% = nothing to look up)."),
    "maze": ("An answer holds the walls, S, G and the path, so an equal answer is an equal maze. Near-duplicates: "
             "eval mazes equal, up to symmetry, to a training maze or to one with one wall added or removed or S or "
             "G moved by one cell. Lookup baseline: exact accuracy of answering each eval maze with the path of a "
             "training maze equal to it up to symmetry, mapped back (0% = nothing to look up)."),
}


def openness_section(openness: dict[str, dict], symmetry_text: str, task: str = "sudoku") -> str:
    """Card section: one row per eval split (``task``: a key of ``OPENNESS_DEFINITIONS``)."""
    def pct(count, num):
        return "skipped (size)" if count is None else f"{count:,} / {num:,} ({100 * count / max(1, num):.1f}%)"

    lines = ["## Openness", "",
             "What a model could recall instead of solve, per eval split, against all training rows "
             f"(symmetries: {symmetry_text}). Verbatim answer overlap: eval answers equal to the answer of any "
             f"training row (augmented copies included). {OPENNESS_DEFINITIONS[task]} An open family has verbatim "
             "overlap 0 and near-duplicates under "
             f"{100 * NEAR_DUPLICATE_LIMIT:.0f}%.", "",
             "| split | verbatim answer overlap | answer overlap up to symmetry | near-duplicate puzzles "
             "| lookup baseline |", "|---|---|---|---|---|"]
    for split, f in openness.items():
        num = f["eval_puzzles"]
        lookup = "skipped (size)" if f["lookup_accuracy"] is None else f"{100 * f['lookup_accuracy']:.1f}%"
        lines.append(f"| {split} | {pct(f['answer_overlap_verbatim'], num)} | "
                     f"{pct(f['answer_overlap_symmetry'], num)} | {pct(f['near_duplicates'], num)} | {lookup} |")
    if any(f["near_duplicates"] is None or f["lookup_accuracy"] is None for f in openness.values()):
        lines += ["", f"Skipped for size: near-duplicates above {MAX_NEAR_DUPLICATE_VARIANTS:,} "
                      f"{'one-step' if task == 'maze' else 'one-clue'} variants of training puzzles, the lookup "
                      f"baseline above {MAX_LOOKUP_WORK:,} cell comparisons."]
    return "\n".join(lines)
