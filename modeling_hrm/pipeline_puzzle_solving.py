"""The `puzzle-solving` pipeline: give a puzzle as a person writes it, get the answer in the same form.

```python
import modeling_hrm  # registers the HRM / TRM classes and this pipeline with transformers
from transformers import pipeline

solver = pipeline("puzzle-solving", model="path/to/model-or-hub-id")
solver("53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79")
# {'kind': 'sudoku', 'answer': '534678912672195348...', 'valid': True, 'steps': 3, 'q_halt_confidence': 0.98}
solver([puzzle_a, puzzle_b, puzzle_c], batch_size=64)   # a list is solved in batches, one dict per puzzle
```
Where this package is not installed, the same works with `trust_remote_code=True`: every saved model folder
carries this file (see "Remote code" below).

Inputs (the kind is read from the input; `kind=` forces it):
- Sudoku: a string of 16 / 36 / 81 cells (ASCII digits; `.`, `0` or `_` = blank; spaces, newlines and `| + - ,`
  are layout, so a pretty-printed grid works; any other character is refused by name), or an (n, n) grid of digits
  (list of lists or array, 0 = blank). The answer comes back in the same form: the string with every cell filled
  in (layout kept), or a grid.
- Maze: text, one line per row, `#` wall, space open, `S` start, `G` goal. The answer is the same text with the
  predicted path marked `o`.
- ARC: a task (dict or JSON text: {"train": [...], "test": [{"input": grid}, ...]}), or a bare grid for a model
  trained on ARC.
- A `Path` (or the name of an existing file) stands for the text in it: `solver("task.json")`. Each test input is solved in 8 dihedral versions that vote (as the original evaluator);
  `answer` holds one output grid per test input, `attempts` the two best-ranked ones.

Each result is a dict: `kind`, `answer`, `valid` (Sudoku: a complete rule-abiding grid that keeps every clue;
maze: a shortest S→G path that changes nothing else; ARC: absent, or `correct` per test input where the task
gives the test outputs), `steps` (ACT segments used), `q_halt_confidence` (sigmoid of the Q-halt logit at the
stopping segment: the model's own estimate that it is right) and, with `return_trace=True`, `trace` (the answer
after every segment, in the same form). Options (at construction or per call): `max_steps` (segment budget,
default the model's `halt_max_steps`; more = inference-time scaling), `early_exit` (stop a puzzle when its Q
head says halt; False runs every puzzle for `max_steps`), `return_trace`, `batch_size` (model rows per
forward), `num_candidates` (candidate search: K trajectories per puzzle from perturbed initial states; a Sudoku or
maze answer is the most confident *valid* candidate where one is, else the most confident; every ARC candidate
votes; the result says which `candidate` answered), ARC's `puzzle_id` / `augment` / `arc_versions`, and `adapt_steps`
(an ARC task the model never trained on: first learn its puzzle-embedding rows from its demonstrations with the
network frozen, `adaptation.adapt_to_task`; the model keeps them, and a task adapted to before, also in a saved and
reloaded model, is solved with its rows without asking), and `search` (test-time search, modeling_hrm/search.py: a
setting as a dict, a `SearchSetting` or text such as "depth=64 breadth=8 kind=symmetry selector=vote"; each puzzle
answers with the candidate its selector picks, and the result says which `candidate`; needs the hrm package).

Bad input raises `PuzzleError` (a `ValueError`) with one line naming the problem: wrong size, unknown symbol,
clashing clues, a Sudoku with no solution, a maze without a start or goal or with no path, an ARC task with a
ragged or oversized grid, a puzzle the model was not trained for (vocabulary / sequence length), a value that is
no puzzle (None, bytes, a number). In a list, the message starts with the puzzle's index. Options are typed
(dataset_scripts/validation.py): `early_exit`, `return_trace` and `augment` take True or False (the string "false"
is refused, not read as true), `puzzle_id` an integer, `arc_versions` a list; a wrong type raises `OptionTypeError`
(a `TypeError` and a `ValueError`). A list whose rows would not fit in memory is solved in smaller batches; a
request that cannot fit at all (`num_candidates` far beyond memory) is refused in one line. `hrm-solve` is a command line over this pipeline and prints the
same messages.

The pipeline works for every model with the `solve` interface (HRM and TRM alike); it reads only
`config.vocab_size`, `config.seq_len` and `config.num_puzzle_identifiers`, never the model class.

Remote code
-----------
Puzzles are parsed, encoded and checked by `dataset_scripts.formats` (the code the datasets were built
with), ARC answers are voted by `dataset_scripts.arc`, Sudoku solvability is checked by
`dataset_scripts.sudoku`'s solver. The model package may import those (the layers are
dataset_scripts <- modeling_hrm <- training), but remote code copies a model folder's Python files flat and
cannot reach a package that is not installed. So `save_pretrained` of a model writes, next to the weights, this
file and verbatim copies of those three modules (`formats.py`, `arc.py`, `sudoku.py`; their absolute
`dataset_scripts` imports made relative: the folder is flat), and names the pipeline in `config.json`
(`custom_pipelines`). Below, the installed package is used where it exists; otherwise the relative imports
pick up the copies, which transformers' remote-code loader fetches along with this file. One source of truth,
no second copy of the formats in the repository; a folder is self-contained as saved.

Where this package is installed (`import modeling_hrm`), its registered pipeline serves the task and the
`custom_pipelines` entry of a loaded config is ignored, as its registered model classes win over a folder's
`auto_map`: no `trust_remote_code` is needed then.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import Pipeline

try:  # the installed package
    from dataset_scripts.arc import grid_to_str, invert_arc_version, rank_candidates, str_to_grid
    from dataset_scripts.formats import (MAZE_GOAL, MAZE_START, arc_canvas_needed, arc_canvas_size,
                                         check_color_perm, check_maze_solution, check_sudoku_grid,
                                         check_sudoku_solution, decode_maze, decode_sudoku, dihedral, encode_arc_grid,
                                         encode_sudoku, maze_bfs_distances, parse_maze, parse_sudoku,
                                         validate_arc_grid)
    from dataset_scripts.sudoku import SudokuSolver
    from dataset_scripts.validation import check_bool, check_int, check_sequence, describe, loads_json
except ImportError:  # remote code: the copies saved next to the weights
    from .arc import grid_to_str, invert_arc_version, rank_candidates, str_to_grid
    from .formats import (MAZE_GOAL, MAZE_START, arc_canvas_needed, arc_canvas_size, check_color_perm,
                          check_maze_solution, check_sudoku_grid, check_sudoku_solution, decode_maze, decode_sudoku,
                          dihedral, encode_arc_grid, encode_sudoku, maze_bfs_distances, parse_maze, parse_sudoku,
                          validate_arc_grid)
    from .sudoku import SudokuSolver
    from .validation import check_bool, check_int, check_sequence, describe, loads_json

TASK = "puzzle-solving"
KINDS = ("sudoku", "maze", "arc")
ARC_VOCAB_SIZE, ARC_SEQ_LEN, MAZE_VOCAB_SIZE = 12, 900, 6
# Solvability of a Sudoku is checked by the reference solver (nodes of ~20 µs) only where it matters: after the
# model, for an answer that is not valid (a valid answer proves a solution exists, at no cost). `parse_puzzle`
# (hrm-solve, before loading the model) also runs a short search that refutes nearly every unsolvable grid at once.
PRECHECK_NODES, POSTCHECK_NODES = 2_000, 200_000
# The modules of dataset_scripts this file needs, copied into every saved model folder (see the module doc).
BUNDLED_MODULES = ("formats", "arc", "sudoku", "validation")
CUSTOM_PIPELINES = {TASK: {"impl": "pipeline_puzzle_solving.PuzzleSolvingPipeline", "pt": ["AutoModel"],
                           "type": "multimodal"}}


class PuzzleError(ValueError):
    """An invalid puzzle, or one the model cannot take; the message is one line naming the problem."""


# ---------------------------------------------------------------------------------------------------------
# Parsing: the puzzle as written → grid(s), validated; model-independent
# ---------------------------------------------------------------------------------------------------------
@dataclass
class Puzzle:
    """A parsed puzzle and what is needed to give the answer back in the form it came in.

    `grid`: Sudoku digits (0 = blank) or maze token ids; `tests`: ARC (input, output or None) per test input;
    `form`: "text" (a string), "grid" (lists), "array" (numpy) or "task" (an ARC dict / JSON);
    `source`: the input as given; `solvable`: Sudoku only, True / False / None (not decided yet)."""

    kind: str
    form: str
    source: Any
    grid: np.ndarray | None = None
    tests: list = field(default_factory=list)
    solvable: bool | None = None


def _is_grid(value) -> bool:
    """A 2-D grid of numbers (list of lists or array), as opposed to a list of puzzles."""
    if isinstance(value, np.ndarray):
        return value.ndim == 2
    # (A row of scalars, text ones included: a grid with a string cell is a grid with a bad cell, not a list of
    # text puzzles, which would be strings, not rows.)
    return (isinstance(value, (list, tuple)) and len(value) > 0 and isinstance(value[0], (list, tuple, np.ndarray))
            and all(not isinstance(v, (list, tuple, np.ndarray, dict)) for v in value[0]))


def is_batch(inputs) -> bool:
    """A list of puzzles (strings, tasks or grids) rather than one puzzle (a grid is a list of rows)."""
    if isinstance(inputs, np.ndarray):
        return inputs.ndim == 3
    return isinstance(inputs, (list, tuple)) and not _is_grid(inputs)


def guess_kind(puzzle) -> str:
    """Sudoku, maze or ARC from the way the puzzle is written (a grid of numbers counts as a Sudoku)."""
    if isinstance(puzzle, dict):
        return "arc"
    if isinstance(puzzle, str):
        text = puzzle.strip()
        if text.startswith("{"):
            return "arc"
        if "#" in text or ("S" in text and "G" in text):
            return "maze"
    return "sudoku"


def _sudoku_solvable(grid: np.ndarray, max_nodes: int) -> bool | None:
    result = SudokuSolver(grid.shape[0]).solve(grid, limit=1, max_nodes=max_nodes)
    if result.solutions:
        return True
    return False if result.complete else None


NO_SUDOKU_SOLUTION = "invalid Sudoku: no valid solution exists (the givens do not clash, but no grid completes them)"


def _sudoku_cells(puzzle) -> np.ndarray:
    """A Sudoku given as a grid (list of rows or 2-D array) → (n, n) int64; the first cell that is not a whole number
    is named (a bool, a string digit, NaN...)."""
    if isinstance(puzzle, np.ndarray):
        if puzzle.ndim != 2:
            raise ValueError(f"a Sudoku grid must be 2-D (rows of cells), got shape {puzzle.shape}")
        if puzzle.dtype.kind in "iu":
            return puzzle.astype(np.int64)
        puzzle = puzzle.tolist()
    if not all(isinstance(row, (list, tuple)) for row in puzzle):
        raise ValueError("a Sudoku grid must be a list of rows, each a list of cells")
    widths = sorted({len(row) for row in puzzle})
    if len(widths) > 1:
        raise ValueError(f"ragged grid: its rows have {widths} cells")
    for r, row in enumerate(puzzle):
        for c, cell in enumerate(row):
            whole = (isinstance(cell, (int, np.integer)) and not isinstance(cell, (bool, np.bool_))) or \
                (isinstance(cell, (float, np.floating)) and np.isfinite(cell) and cell == int(cell))
            if not whole or not 0 <= cell <= 9:
                raise ValueError(f"cells must be whole numbers 0..9 (0 = blank); row {r + 1}, column {c + 1} holds "
                                 f"{describe(cell)}")
    return np.asarray(puzzle, dtype=np.int64).reshape(len(puzzle), -1)


def parse_sudoku_puzzle(puzzle, precheck: bool = True) -> Puzzle:
    if isinstance(puzzle, str):
        form = "text"
        try:
            grid = parse_sudoku(puzzle)
        except ValueError as err:
            raise PuzzleError(f"invalid Sudoku: {err}") from None
    else:
        form = "array" if isinstance(puzzle, np.ndarray) else "grid"
        try:
            grid = _sudoku_cells(puzzle)
            check_sudoku_grid(grid)
        except (ValueError, TypeError) as err:
            raise PuzzleError(f"invalid Sudoku: {err}") from None
    solvable = _sudoku_solvable(grid, PRECHECK_NODES) if precheck else None
    if solvable is False:
        raise PuzzleError(NO_SUDOKU_SOLUTION)
    return Puzzle("sudoku", form, puzzle, grid=grid, solvable=solvable)


def parse_maze_puzzle(puzzle) -> Puzzle:
    if not isinstance(puzzle, str):
        raise PuzzleError(f"invalid maze: give the maze as text (# wall, space open, S start, G goal), "
                          f"got {type(puzzle).__name__}")
    try:
        grid = np.asarray(parse_maze(puzzle), dtype=np.int64)
    except ValueError as err:
        raise PuzzleError(f"invalid maze: {err}") from None
    start, goal = (tuple(np.argwhere(grid == t)[0]) for t in (MAZE_START, MAZE_GOAL))
    if maze_bfs_distances(grid, start)[goal] < 0:
        raise PuzzleError("invalid maze: no path from S to G exists")
    return Puzzle("maze", "text", puzzle, grid=grid)


def parse_arc_puzzle(puzzle) -> Puzzle:
    """An ARC task (dict or JSON text) or a bare test grid → its test inputs (and outputs where given)."""
    if _is_grid(puzzle):
        try:
            grid = validate_arc_grid(np.asarray(puzzle).tolist(), name="ARC grid")
        except ValueError as err:
            raise PuzzleError(f"invalid ARC grid: {err}") from None
        return Puzzle("arc", "array" if isinstance(puzzle, np.ndarray) else "grid", puzzle,
                      tests=[(grid.astype(np.int64), None)])
    return Puzzle("arc", "task", puzzle, tests=parse_arc_task(puzzle)["test"])


def parse_arc_task(task) -> dict:
    """Validate an ARC task (dict or JSON text) → {"train": [(in, out)], "test": [(in, out or None)]} of int grids."""
    if isinstance(task, str):
        try:
            task = loads_json(task, "the task")
        except json.JSONDecodeError as err:
            raise PuzzleError(f"invalid ARC task: not valid JSON ({err.msg} at line {err.lineno})") from None
        except ValueError as err:  # a key given twice
            raise PuzzleError(f"invalid ARC task: {err}") from None
    if not isinstance(task, dict) or not isinstance(task.get("test"), list) or not task["test"]:
        raise PuzzleError('invalid ARC task: expected a JSON object with a non-empty "test" list (and a "train" list)')
    parsed = {"train": [], "test": []}
    for split in ("train", "test"):
        pairs = task.get(split, [])
        if not isinstance(pairs, list):
            raise PuzzleError(f'invalid ARC task: "{split}" must be a list of pairs')
        for i, pair in enumerate(pairs):
            if not isinstance(pair, dict) or "input" not in pair:
                raise PuzzleError(f'invalid ARC task: {split} pair {i} has no "input"')
            if split == "train" and "output" not in pair:
                raise PuzzleError(f'invalid ARC task: train pair {i} has no "output"')
            try:  # train pairs are checked too: a broken task file should not pass silently
                grids = [validate_arc_grid(pair[key], name=f"{split} pair {i} {key}").astype(np.int64)
                         for key in ("input", "output") if key in pair]
            except ValueError as err:
                raise PuzzleError(f"invalid ARC task: {err}") from None
            parsed[split].append((grids[0], grids[1] if len(grids) > 1 else None))
    return parsed


def arc_task_key(parsed: dict) -> str:
    """The key of an ARC task in `config.adapted_tasks`: a digest of its demonstration pairs and test inputs (test
    outputs left out, so the task with or without its answers is the same task). `parsed`: `parse_arc_task`'s."""
    import hashlib

    content = {"train": [[i.tolist(), o.tolist()] for i, o in parsed["train"]],
               "test": [i.tolist() for i, _ in parsed["test"]]}
    return hashlib.sha256(json.dumps(content, separators=(",", ":")).encode()).hexdigest()[:16]


def adapted_arc_versions(config, parsed: dict) -> list[tuple[int, np.ndarray, int]] | None:
    """The (dihedral, colour permutation, puzzle id) versions `adapt_to_task` learned for this task (recorded in
    `config.adapted_tasks`, so they are saved with the model), or None if the task was not adapted to."""
    entry = (getattr(config, "adapted_tasks", None) or {}).get(arc_task_key(parsed))
    if entry is None:
        return None
    return [(int(k), np.array([int(c) for c in perm], dtype=np.uint8), int(pid)) for k, perm, pid in entry["versions"]]


def read_if_file(puzzle):
    """The text of a file when `puzzle` is a `Path` or names an existing file (a task.json, a maze.txt)."""
    if isinstance(puzzle, Path) or (isinstance(puzzle, str) and "\n" not in puzzle and len(puzzle) < 4096
                                    and not puzzle.lstrip().startswith("{") and Path(puzzle).is_file()):
        try:
            return Path(puzzle).read_text()
        except (OSError, UnicodeDecodeError) as err:
            raise PuzzleError(f"cannot read the puzzle file {str(puzzle)!r}: {err}") from None
    return puzzle


def check_puzzle_type(puzzle) -> None:
    """`PuzzleError` naming what was given when it is none of the forms a puzzle takes (None, bytes, a number...)."""
    if isinstance(puzzle, (str, dict, list, tuple, np.ndarray)):
        return
    if isinstance(puzzle, (bytes, bytearray)):
        raise PuzzleError("a puzzle must be text, not bytes: decode it first (e.g. data.decode('utf-8'))")
    raise PuzzleError(f"a puzzle must be text, a grid (list of rows or a 2-D array), an ARC task (dict or JSON "
                      f"text) or a file path; got {describe(puzzle)}")


def parse_puzzle(puzzle, kind: str | None = None, precheck: bool = True) -> Puzzle:
    """Validate a puzzle as a person writes it (see the module doc), or the file holding it; `kind` forces the
    puzzle kind. `precheck`: also search briefly for a Sudoku solution (an unsolvable grid fails here, before any
    model runs)."""
    puzzle = read_if_file(puzzle)
    check_puzzle_type(puzzle)
    kind = kind or guess_kind(puzzle)
    if kind not in KINDS:
        raise PuzzleError(f"unknown puzzle kind {kind!r}; expected one of {', '.join(KINDS)}")
    if kind == "sudoku":
        return parse_sudoku_puzzle(puzzle, precheck)
    return {"maze": parse_maze_puzzle, "arc": parse_arc_puzzle}[kind](puzzle)


def check_model_fits(config, puzzle: Puzzle) -> None:
    """`PuzzleError` unless the model's vocabulary and sequence length are those of this kind and size."""
    if puzzle.kind == "sudoku":
        n = puzzle.grid.shape[0]
        vocab, seq_len, what = n + 2, n * n, f"a {n}×{n} Sudoku"
    elif puzzle.kind == "maze":
        h, w = puzzle.grid.shape
        vocab, seq_len, what = MAZE_VOCAB_SIZE, h * w, f"a {h}×{w} maze"
    else:
        check_arc_grids_fit(config, [grid for grid, _ in puzzle.tests])
        return
    if (config.seq_len, config.vocab_size) != (seq_len, vocab):
        raise PuzzleError(f"{what} needs a model with seq_len={seq_len}, vocab_size={vocab}, but this model has "
                          f"seq_len={config.seq_len}, vocab_size={config.vocab_size} (trained on another puzzle "
                          f"kind or size?)")


def arc_canvas(config) -> int | None:
    """The side N of an ARC model's canvas (vocab 12, seq_len N * N: 30, or smaller for a small-grid build), or
    None for a model of another puzzle kind."""
    return arc_canvas_size(config.seq_len) if config.vocab_size == ARC_VOCAB_SIZE else None


def check_arc_grids_fit(config, grids) -> int:
    """The model's ARC canvas, after checking that it can take these grids (each with its EOS border, as the
    builder's `--canvas`); one-line `PuzzleError` naming the first grid that does not fit."""
    canvas = arc_canvas(config)
    if canvas is None:
        raise PuzzleError(f"an ARC grid needs a model with seq_len={ARC_SEQ_LEN} (a 30x30 canvas, or N*N for an NxN "
                          f"one), vocab_size={ARC_VOCAB_SIZE}, but this model has seq_len={config.seq_len}, "
                          f"vocab_size={config.vocab_size} (trained on another puzzle kind or size?)")
    for grid in grids:
        need = arc_canvas_needed(*np.shape(grid))
        if need > canvas:
            raise PuzzleError(f"an ARC grid of {np.shape(grid)[0]}x{np.shape(grid)[1]} needs a canvas of at least "
                              f"{need}x{need} (seq_len {need * need}), but this model's canvas is {canvas}x{canvas} "
                              f"(seq_len {config.seq_len})")
    return canvas


def arc_plan(config, puzzle_id: int = 0, augment: bool = True, arc_versions=None) -> list[tuple[int, np.ndarray, int]]:
    """The (dihedral, colour permutation, puzzle id) versions an ARC test input is solved in, which then vote.

    `arc_versions`: the versions a model was trained on, each with its own puzzle id (for a task of the
    training set: `dataset_scripts.arc.task_versions_from_metadata(meta, task_id)`). Without it, the 8 dihedral
    versions (or only the input itself, `augment=False`) all with `puzzle_id` (0, the blank id, for tasks the
    model never saw; a trained id names one version, so it is refused with `augment`)."""
    augment, puzzle_id = check_bool(augment, "augment"), check_int(puzzle_id, "puzzle_id")
    if arc_versions is not None:
        arc_versions = check_sequence(arc_versions, "arc_versions")
        plan = []
        for version in arc_versions:
            try:
                k, perm, pid = version
                perm = check_color_perm(perm)
                if not 0 <= int(k) <= 7:
                    raise ValueError(f"dihedral must be 0..7, got {k}")
            except (TypeError, ValueError) as err:
                raise PuzzleError(f"invalid ARC version {version!r}: expected (dihedral 0-7, colour permutation of "
                                  f"0..9, puzzle id) ({err})") from None
            plan.append((int(k), perm, int(pid)))
        if not plan:
            raise PuzzleError("no ARC versions to solve (arc_versions=[])")
    elif puzzle_id != 0 and augment:
        raise PuzzleError(f"puzzle id {puzzle_id} names one trained version of a task; to vote over the versions "
                          "pass the ids the dataset gave each of them (arc_versions=, hrm-solve --dataset), or solve "
                          "only that version (augment=False, hrm-solve --no-augment)")
    else:
        identity = np.arange(10, dtype=np.uint8)
        plan = [(k, identity, int(puzzle_id)) for k in (range(8) if augment else [0])]
    limit = config.num_puzzle_identifiers
    bad = sorted({pid for _, _, pid in plan if not 0 <= pid < limit})
    if bad:
        raise PuzzleError(f"puzzle id {bad[0]} is outside the model's {limit} puzzle identifiers (0..{limit - 1})")
    return plan


# ---------------------------------------------------------------------------------------------------------
# Answers in the form the puzzle came in
# ---------------------------------------------------------------------------------------------------------
def _sudoku_answer(puzzle: Puzzle, digits: np.ndarray):
    if puzzle.form == "grid":
        return digits.tolist()
    if puzzle.form == "array":
        return digits
    # The input text with every cell replaced by the answer's digit: layout (separators, newlines) is kept.
    cells = iter("." if d == 0 else str(int(d)) for d in digits.reshape(-1))
    return re.sub(r"[0-9._]", lambda _: next(cells), puzzle.source)


def _maze_answer(puzzle: Puzzle, tokens: np.ndarray) -> str:
    text = decode_maze(tokens)
    if "\n" not in puzzle.source.strip("\n"):  # a maze given flat on one line comes back flat
        text = text.replace("\n", "")
    return text + "\n" if puzzle.source.endswith("\n") else text


def _arc_answer(puzzle: Puzzle, grid: np.ndarray):
    return grid if puzzle.form == "array" else np.asarray(grid).tolist()


# ---------------------------------------------------------------------------------------------------------
# The pipeline
# ---------------------------------------------------------------------------------------------------------
class PuzzleSolvingPipeline(Pipeline):
    """Solve Sudoku, maze and ARC puzzles with an HRM or TRM model (see the module doc for inputs and outputs).

    ```python
    solver = pipeline("puzzle-solving", model="path/or/repo")      # after `import modeling_hrm`
    solver(puzzle, max_steps=16, early_exit=False, return_trace=True)
    ```
    """

    _load_tokenizer = False
    _load_feature_extractor = False
    _load_image_processor = False
    _load_processor = False
    _load_video_processor = False

    def _sanitize_parameters(self, kind=None, max_steps=None, early_exit=None, return_trace=None, puzzle_id=None,
                             augment=None, arc_versions=None, num_candidates=None, adapt_steps=None, search=None):
        preprocess, forward, postprocess = {}, {}, {}
        if kind is not None:
            if kind not in KINDS:
                raise PuzzleError(f"unknown puzzle kind {kind!r}; expected one of {', '.join(KINDS)}")
            preprocess["kind"] = kind
        # Typed options: a boolean is True or False (the string "false" is not read as true), an id an integer, a
        # list of versions a list (dataset_scripts/validation.py).
        if puzzle_id is not None:
            preprocess["puzzle_id"] = check_int(puzzle_id, "puzzle_id")  # its range: arc_plan, by the model
        if augment is not None:
            preprocess["augment"] = check_bool(augment, "augment")
        if arc_versions is not None:
            preprocess["arc_versions"] = check_sequence(arc_versions, "arc_versions")
        if adapt_steps is not None:
            if isinstance(adapt_steps, bool) or not isinstance(adapt_steps, int) or adapt_steps < 1:
                raise ValueError(f"adapt_steps must be a positive integer, got {adapt_steps!r}")
            preprocess["adapt_steps"] = adapt_steps
        if max_steps is not None:
            if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
                raise ValueError(f"max_steps must be a positive integer, got {max_steps!r}")
            forward["max_steps"] = max_steps
        if early_exit is not None:
            forward["early_exit"] = check_bool(early_exit, "early_exit")
        if return_trace is not None:
            forward["return_trace"] = postprocess["return_trace"] = check_bool(return_trace, "return_trace")
        if num_candidates is not None:
            if isinstance(num_candidates, bool) or not isinstance(num_candidates, int) or num_candidates < 1:
                raise ValueError(f"num_candidates must be a positive integer, got {num_candidates!r}")
            forward["num_candidates"] = num_candidates
        if search is not None:
            try:
                from modeling_hrm import search as test_time_search
            except ImportError:  # remote code: search is part of the hrm package
                raise PuzzleError("search= needs the hrm package installed (modeling_hrm.search)") from None
            forward["search"] = test_time_search.as_setting(search, {}).check()  # checks every field's type
            if forward.get("return_trace") or forward.get("num_candidates", 1) > 1:
                raise ValueError("search= replaces num_candidates and cannot be traced (return_trace): the answer "
                                 "comes from the candidate the selector picks")
        if forward.get("return_trace") and forward.get("num_candidates", 1) > 1:
            raise ValueError("return_trace needs num_candidates=1: the model traces only the candidate its Q head "
                             "picks, and the pipeline may answer with another (a valid one)")
        return preprocess, forward, postprocess

    # -- one puzzle → model rows ----------------------------------------------------------------------------
    def preprocess(self, puzzle, kind=None, puzzle_id=0, augment=True, arc_versions=None, adapt_steps=None):
        config = self.model.config
        puzzle = read_if_file(puzzle)
        if kind is None and _is_grid(puzzle) and arc_canvas(config) is not None:
            kind = "arc"  # a bare grid given to an ARC model is a test input, not a Sudoku
        parsed = parse_puzzle(puzzle, kind, precheck=False)  # solvability: checked after the model, if needed
        check_model_fits(config, parsed)
        plan = None
        if parsed.kind == "sudoku":
            rows = encode_sudoku(parsed.grid).reshape(1, -1)
        elif parsed.kind == "maze":
            rows = parsed.grid.reshape(1, -1)
        else:
            if adapt_steps is not None or (parsed.form == "task" and arc_versions is None and puzzle_id == 0
                                           and augment):
                arc_versions = self._adapted_versions(puzzle, parsed, adapt_steps, arc_versions, puzzle_id)
            plan = arc_plan(config, puzzle_id, augment, arc_versions)
            try:
                canvas = arc_canvas(config)
                rows = np.stack([np.asarray(encode_arc_grid(dihedral(perm[grid], k), canvas=canvas)).reshape(-1)
                                 for grid, _ in parsed.tests for k, perm, _ in plan])
            except ValueError as err:
                raise PuzzleError(f"invalid ARC task: {err}") from None
        ids = [0] * len(rows) if plan is None else [pid for _ in parsed.tests for _, _, pid in plan]
        return {"input_ids": torch.as_tensor(np.asarray(rows, dtype=np.int64)),
                "puzzle_identifiers": torch.as_tensor(ids, dtype=torch.long), "puzzle": parsed, "plan": plan}

    def _adapted_versions(self, puzzle, parsed: Puzzle, adapt_steps, arc_versions, puzzle_id):
        """With `adapt_steps`: learn the task's puzzle-embedding rows first (`adaptation.adapt_to_task`; the model
        keeps them). Without: the rows of an earlier adaptation to this task, if any (None otherwise)."""
        if adapt_steps is None:
            return adapted_arc_versions(self.model.config, parse_arc_task(puzzle))
        if parsed.form != "task":
            raise PuzzleError("adapt_steps needs an ARC task with demonstration pairs, not a bare grid")
        if arc_versions is not None or puzzle_id != 0:
            raise PuzzleError("adapt_steps learns new puzzle-embedding rows; it cannot be combined with arc_versions "
                              "or puzzle_id, which name trained ones")
        try:
            from modeling_hrm.adaptation import adapt_to_task
        except ImportError:  # remote code: the adaptation is part of the hrm package
            raise PuzzleError("adapt_steps needs the hrm package installed (modeling_hrm.adaptation)") from None
        return adapt_to_task(self.model, puzzle, steps=adapt_steps).versions

    # -- model rows → predictions ---------------------------------------------------------------------------
    def _forward(self, model_inputs, max_steps=None, early_exit=True, return_trace=False, num_candidates=1,
                 search=None):
        if search is not None:
            return self._search(model_inputs, search)
        search = {"num_candidates": num_candidates} if num_candidates > 1 else {}
        was_training = self.model.training
        self.model.eval()  # a model handed over mid-training: in training mode halting explores
        try:
            res = self.model.solve(model_inputs["input_ids"], puzzle_identifiers=model_inputs["puzzle_identifiers"],
                                   max_steps=max_steps, early_exit=early_exit, return_trace=return_trace, **search)
        finally:
            self.model.train(was_training)
        out = {key: model_inputs[key] for key in model_inputs if key not in ("input_ids", "puzzle_identifiers")}
        if search:  # every candidate, rows first: (rows, K, seq_len) and (rows, K)
            out.update(predictions=res.candidate_predictions.transpose(0, 1), steps=res.candidate_steps.t(),
                       q_halt_logits=res.candidate_q_halt_logits.t().float())
        else:
            out.update(predictions=res.predictions[:, None], steps=res.steps[:, None],
                       q_halt_logits=res.q_halt_logits.float()[:, None])
        out["trace"] = res.trace if return_trace else None
        return out

    def _search(self, model_inputs, setting):
        """`search=`: one test-time search setting on these rows (modeling_hrm/search.py); each row's answer is
        the candidate the selector picks."""
        try:
            from modeling_hrm.search import search
        except ImportError:  # remote code: search is part of the hrm package
            raise PuzzleError("search= needs the hrm package installed (modeling_hrm.search)") from None

        puzzle = model_inputs.get("puzzle")
        task, shape = model_inputs.get("search_task") or (puzzle.kind, _grid_shape(puzzle))
        res = search(self.model, model_inputs["input_ids"], model_inputs["puzzle_identifiers"], setting, task=task,
                     grid_shape=shape)
        rows = np.arange(len(res.chosen))
        out = {key: model_inputs[key] for key in model_inputs if key not in ("input_ids", "puzzle_identifiers")}
        out.update(predictions=torch.as_tensor(res.predictions)[:, None],
                   steps=torch.as_tensor(res.chosen_steps())[:, None],
                   q_halt_logits=torch.as_tensor(res.q_halt_logits[res.chosen, rows])[:, None],
                   search_chosen=torch.as_tensor(res.chosen), trace=None)
        return out

    # -- predictions → the answer in the puzzle's form ------------------------------------------------------
    def postprocess(self, model_outputs, return_trace=False):
        puzzle: Puzzle = model_outputs["puzzle"]
        preds = model_outputs["predictions"].numpy()  # (rows, candidates, seq_len)
        steps = model_outputs["steps"]
        confidence = torch.sigmoid(model_outputs["q_halt_logits"])
        trace = model_outputs["trace"]
        if puzzle.kind == "arc":
            return self._postprocess_arc(puzzle, model_outputs["plan"], preds, steps, confidence, trace)
        if puzzle.kind == "sudoku":
            n = puzzle.grid.shape[0]
            to_answer = lambda tokens: _sudoku_answer(puzzle, decode_sudoku(tokens, n))  # noqa: E731
            is_valid = lambda tokens: _passes(check_sudoku_solution, puzzle.grid, decode_sudoku(tokens, n))  # noqa
        else:
            to_answer = lambda tokens: _maze_answer(puzzle, tokens.reshape(puzzle.grid.shape))  # noqa: E731
            is_valid = lambda tokens: _passes(check_maze_solution, puzzle.grid, tokens.reshape(puzzle.grid.shape))  # noqa
        # The most confident candidate (ties: the lower index, the unperturbed run first), or the most confident
        # valid one where there is one.
        order = sorted(range(preds.shape[1]), key=lambda c: (-float(confidence[0, c]), c))
        best = next((c for c in order if is_valid(preds[0, c])), None)
        valid = best is not None
        best = order[0] if best is None else best
        if puzzle.kind == "sudoku" and not valid and puzzle.solvable is None and \
                _sudoku_solvable(puzzle.grid, POSTCHECK_NODES) is False:
            raise PuzzleError(NO_SUDOKU_SOLUTION)
        result = {"kind": puzzle.kind, "answer": to_answer(preds[0, best]), "valid": valid,
                  "steps": int(steps[0, best]), "q_halt_confidence": float(confidence[0, best])}
        if preds.shape[1] > 1:
            result["candidate"] = best
        if "search_chosen" in model_outputs:
            result["candidate"] = int(model_outputs["search_chosen"][0])
        if return_trace:
            result["trace"] = [to_answer(trace[s, 0].numpy()) for s in range(int(steps[0, best]))]
        return result

    def _postprocess_arc(self, puzzle: Puzzle, plan, preds, steps, confidence, trace):
        """Each test input's versions vote (ties by mean confidence); the first version carries the trace."""
        result = {"kind": "arc", "answer": [], "attempts": [], "steps": [], "q_halt_confidence": []}
        if any(expected is not None for _, expected in puzzle.tests):
            result["correct"] = []
        if trace is not None:
            result["trace"] = []
        for t, (_, expected) in enumerate(puzzle.tests):
            rows = range(t * len(plan), (t + 1) * len(plan))
            # Every candidate of every version votes, weighted in ties by its confidence.
            voters = [(r, c) for r in rows for c in range(preds.shape[1])]
            votes = [grid_to_str(invert_arc_version(preds[r, c], plan[r - rows[0]][0], plan[r - rows[0]][1]))
                     for r, c in voters]
            ranked = rank_candidates(votes, [float(confidence[r, c]) for r, c in voters])
            best = next(voter for voter, vote in zip(voters, votes) if vote == ranked[0][0])
            attempts = [str_to_grid(answer) for answer, _, _ in ranked[:2]]
            result["answer"].append(_arc_answer(puzzle, attempts[0]))
            result["attempts"].append([_arc_answer(puzzle, a) for a in attempts])
            result["steps"].append(int(steps[best]))
            result["q_halt_confidence"].append(float(ranked[0][2]))
            if expected is not None:
                result["correct"].append(any(a.shape == expected.shape and (a == expected).all() for a in attempts))
            elif "correct" in result:
                result["correct"].append(None)
            if trace is not None:
                k0, perm0, _ = plan[0]
                first = rows[0]
                result["trace"].append([_arc_answer(puzzle, invert_arc_version(trace[s, first].numpy(), k0, perm0))
                                        for s in range(int(steps[first, 0]))])
        if puzzle.form != "task":  # a bare grid: one test input, answered as one grid
            result = {key: value[0] if isinstance(value, list) else value for key, value in result.items()}
        return result

    # -- several puzzles: one batch of model rows, not one forward per puzzle -------------------------------
    def __call__(self, puzzles, batch_size: int | None = None, **kwargs):
        """Solve one puzzle (→ a dict) or a list of puzzles (→ a list of dicts, solved `batch_size` model rows
        at a time; an ARC test input takes one row per version)."""
        pre, fwd, post = self._sanitize_parameters(**kwargs)
        pre, fwd, post = ({**self._preprocess_params, **pre}, {**self._forward_params, **fwd},
                          {**self._postprocess_params, **post})
        if not is_batch(puzzles):  # (Pipeline.__call__ would take a grid, a list of rows, for a list of inputs)
            return self.run_single(puzzles, pre, fwd, post)
        if batch_size is None:
            batch_size = self._batch_size or 256
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        encoded = []
        for i, puzzle in enumerate(puzzles):
            try:
                encoded.append(self.preprocess(puzzle, **pre))
            except PuzzleError as err:
                raise PuzzleError(f"puzzle {i}: {err}") from None
        if not encoded:
            return []
        ids = torch.cat([e["input_ids"] for e in encoded])
        pids = torch.cat([e["puzzle_identifiers"] for e in encoded])
        context = {}
        if "search" in fwd:  # the search needs the kind (symmetries, validity) of the puzzles it sees
            kinds = {(e["puzzle"].kind, _grid_shape(e["puzzle"])) for e in encoded}
            if len(kinds) > 1:
                raise PuzzleError("search= needs the puzzles of a list to be of one kind and size")
            context["search_task"] = kinds.pop()
        if "search" not in fwd:  # (a search splits its trajectories into chunks that fit by itself)
            batch_size = self._rows_that_fit(batch_size, fwd.get("num_candidates", 1))
        chunks = [self.forward({"input_ids": ids[s:s + batch_size], "puzzle_identifiers": pids[s:s + batch_size],
                                **context}, **fwd) for s in range(0, len(ids), batch_size)]
        joined = {key: torch.cat([c[key] for c in chunks], dim=1 if key == "trace" else 0)
                  for key in ("predictions", "steps", "q_halt_logits", "search_chosen") if key in chunks[0]}
        if fwd.get("return_trace"):  # chunks may stop after different numbers of segments: pad by repetition
            length = max(c["trace"].shape[0] for c in chunks)
            joined["trace"] = torch.cat([torch.cat([c["trace"], c["trace"][-1:].expand(length - c["trace"].shape[0],
                                                                                        *c["trace"].shape[1:])])
                                         for c in chunks], dim=1)
        results, start = [], 0
        for i, e in enumerate(encoded):
            rows = slice(start, start + len(e["input_ids"]))
            start = rows.stop
            outputs = {"puzzle": e["puzzle"], "plan": e["plan"], **{k: v[rows] for k, v in joined.items()},
                       "trace": joined["trace"][:, rows] if "trace" in joined else None}
            try:
                results.append(self.postprocess(outputs, **post))
            except PuzzleError as err:
                raise PuzzleError(f"puzzle {i}: {err}") from None
        return results

    def _rows_that_fit(self, batch_size: int, num_candidates: int) -> int:
        """At most `batch_size` model rows per forward, fewer where their `num_candidates` trajectories each would not
        fit in the memory budget of a search chunk (modeling_hrm.search's estimate): a long list is split into
        batches that fit instead of failing in an allocation."""
        try:
            from modeling_hrm.search import SearchSetting, bytes_per_trajectory, default_memory_budget
        except ImportError:  # remote code without the hrm package: the batch size as given
            return batch_size
        per_row = num_candidates * bytes_per_trajectory(self.model.config, SearchSetting())
        return max(1, min(batch_size, default_memory_budget(self.model.device) // max(per_row, 1)))

    def save_pretrained(self, save_directory, **kwargs):
        """Save the model; its folder carries this pipeline (see `save_pipeline_files`)."""
        self.model.save_pretrained(save_directory, **kwargs)


def _grid_shape(puzzle: Puzzle) -> tuple[int, int] | None:
    """(height, width) of a Sudoku or maze grid; None for ARC (grids in a square canvas)."""
    return None if puzzle.grid is None else tuple(puzzle.grid.shape)


def _passes(check, *args) -> bool:
    try:
        check(*args)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------------------------------------------
# Registration and the files a saved model folder carries
# ---------------------------------------------------------------------------------------------------------
def register_pipeline() -> None:
    """Register `puzzle-solving` with transformers' pipeline registry (done by `import modeling_hrm`)."""
    from transformers import AutoModel
    from transformers.pipelines import PIPELINE_REGISTRY

    if PIPELINE_REGISTRY.supported_tasks.get(TASK, {}).get("impl") is not PuzzleSolvingPipeline:
        PIPELINE_REGISTRY.register_pipeline(TASK, pipeline_class=PuzzleSolvingPipeline, pt_model=AutoModel)


def _bundled_sources() -> dict[str, str]:
    """{file name: source} of the dataset_scripts modules this file needs, with their absolute package imports
    made relative (`from dataset_scripts import formats` → `from . import formats`): a model folder is flat."""
    import importlib

    sources = {}
    for name in BUNDLED_MODULES:
        try:
            module = importlib.import_module(f"dataset_scripts.{name}")
        except ImportError:  # remote code re-saving a model: the copies are the siblings of this file
            module = importlib.import_module(f"{__package__}.{name}")
        text = Path(module.__file__).read_text(encoding="utf-8")
        text = re.sub(r"^(\s*)from dataset_scripts\.(\w+) import", r"\1from .\2 import", text, flags=re.MULTILINE)
        sources[f"{name}.py"] = re.sub(r"^(\s*)from dataset_scripts import", r"\1from . import", text,
                                       flags=re.MULTILINE)
    return sources


def save_pipeline_files(save_directory) -> list[Path]:
    """Write this file and the dataset_scripts modules it needs into a saved model folder, so that
    `pipeline("puzzle-solving", model=folder, trust_remote_code=True)` works without this package.
    (`config.json` names the pipeline through `CUSTOM_PIPELINES`; the model's `save_pretrained` does both.)"""
    folder = Path(save_directory)
    written = [folder / Path(__file__).name]
    shutil.copyfile(__file__, written[0])
    for name, text in _bundled_sources().items():
        (folder / name).write_text(text, encoding="utf-8")
        written.append(folder / name)
    return written


__all__ = ["PuzzleSolvingPipeline", "PuzzleError", "Puzzle", "parse_puzzle", "check_model_fits", "arc_plan",
           "arc_task_key", "adapted_arc_versions",
           "guess_kind", "is_batch", "register_pipeline", "save_pipeline_files", "CUSTOM_PIPELINES", "TASK"]
