"""A procedural family of small ARC-like tasks (grids up to 12x12), to measure how a model does on tasks it never
trained on, on a CPU.

A task is a short *program*: one primitive or two applied in turn to a grid. Its 2-4 demonstration pairs and one
test pair are random inputs of the program's kind of scene with the program's outputs. The primitives:

| primitive | parameters | what it does |
|---|---|---|
| `recolor` | colour map | replaces colours (one or two replacements; held out: a 3-cycle) |
| `dihedral` | k = 1..7 | a flip or rotation (numbered as `formats.dihedral`) |
| `translate` | (dr, dc) | moves everything by (dr, dc); nothing may leave the grid (held out: a shift of 3) |
| `gravity` | down, up, left, right | every coloured cell falls to that side, keeping its order |
| `fill` | colour | background cells enclosed by coloured cells (not 4-connected to the border) take the colour |
| `copy` | (dr, dc) | a copy of the content at offset (dr, dc) is added, on background cells only |

Compositions are unordered pairs of primitives applied in the fixed order `PRIMITIVES` (so a pair names one
function: `recolor` after a move is the same as before it). Training tasks are the six primitives and the
`TRAIN_COMPOSITIONS`; held-out tasks are new compositions (`HELDOUT_COMPOSITIONS`, pairs never trained on, of
primitives that are) and new parameters (`translate` by 3 cells where training shifts by 1-2, `recolor` by a
3-cycle where training only replaces). Every task is a valid ARC task (`check_task`): 2-4 demonstration pairs and
one test pair of rectangular grids of colours 0-9 up to 12x12, every step of the program changes every grid, the
inputs differ, and every colour of the test input appears in a demonstration input (a colour map is shown before
it is asked for).

`dataset_scripts/build_arc_procedural.py` writes the tasks as ARC task JSON files (`training/`, `evaluation/`) with
a split listing; `build_arc_dataset.py --arc-dir` turns them into the normal ARC layout, with `--canvas CANVAS` (11)
into the same layout in an 11x11 canvas (grids are at most 10x10), the size a CPU trains on.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from dataset_scripts.formats import dihedral, validate_arc_grid

MAX_SIZE = 12
#: Input grids are MIN_SIDE..MAX_SIDE per side (a flip keeps them, so outputs too are at most MAX_SIDE <= MAX_SIZE).
MIN_SIDE, MAX_SIDE = 4, 10
#: The smallest ARC canvas that holds every grid of the family with its EOS border (`build_arc_dataset.py --canvas`):
#: 121 positions instead of the 30x30 layout's 900.
CANVAS = MAX_SIDE + 1
#: The primitives, in the order a composition applies them.
PRIMITIVES = ("fill", "copy", "gravity", "translate", "dihedral", "recolor")
GRAVITY = ("down", "up", "left", "right")
HELDOUT_COMPOSITIONS = (("fill", "recolor"), ("copy", "dihedral"), ("gravity", "translate"), ("translate", "recolor"))
TRAIN_COMPOSITIONS = tuple((a, b) for i, a in enumerate(PRIMITIVES) for b in PRIMITIVES[i + 1:]
                           if (a, b) not in HELDOUT_COMPOSITIONS)
#: Held-out kinds: "new composition" (each of HELDOUT_COMPOSITIONS) and "new parameters" (these single primitives).
HELDOUT_PARAMETERS = ("translate", "recolor")
MIN_DEMOS, MAX_DEMOS = 2, 4
ATTEMPTS = 200


# ----------------------------------------------------------------------------- primitives
def recolor(grid: np.ndarray, mapping: tuple[tuple[int, int], ...]) -> np.ndarray:
    lut = np.arange(10)
    for src, dst in mapping:
        lut[src] = dst
    return lut[grid]


def translate(grid: np.ndarray, shift: tuple[int, int]) -> np.ndarray | None:
    """Content moved by (dr, dc); None if a coloured cell would leave the grid."""
    rows, cols = np.nonzero(grid)
    rows, cols = rows + shift[0], cols + shift[1]
    h, w = grid.shape
    if len(rows) == 0 or rows.min() < 0 or cols.min() < 0 or rows.max() >= h or cols.max() >= w:
        return None
    out = np.zeros_like(grid)
    out[rows, cols] = grid[np.nonzero(grid)]
    return out


def gravity(grid: np.ndarray, direction: str) -> np.ndarray:
    """Coloured cells fall to one side, in order: `down` per column, `right` per row; `up`/`left` mirror them."""
    if direction == "up":
        return gravity(grid[::-1], "down")[::-1]
    if direction == "left":
        return gravity(grid[:, ::-1], "right")[:, ::-1]
    if direction == "right":
        return gravity(grid.T, "down").T
    out = np.zeros_like(grid)
    for c in range(grid.shape[1]):
        column = grid[:, c][grid[:, c] != 0]
        if len(column):
            out[-len(column):, c] = column
    return out


def enclosed(grid: np.ndarray) -> np.ndarray:
    """Background cells not 4-connected to the border through background."""
    h, w = grid.shape
    outside = np.zeros((h, w), bool)
    queue = deque((r, c) for r in range(h) for c in range(w)
                  if (r in (0, h - 1) or c in (0, w - 1)) and grid[r, c] == 0)
    for r, c in queue:
        outside[r, c] = True
    while queue:
        r, c = queue.popleft()
        for nr, nc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
            if 0 <= nr < h and 0 <= nc < w and not outside[nr, nc] and grid[nr, nc] == 0:
                outside[nr, nc] = True
                queue.append((nr, nc))
    return (grid == 0) & ~outside


def fill(grid: np.ndarray, colour: int) -> np.ndarray:
    out = grid.copy()
    out[enclosed(grid)] = colour
    return out


def copy(grid: np.ndarray, shift: tuple[int, int]) -> np.ndarray | None:
    """The grid plus its content at offset (dr, dc); None if the copy leaves the grid or covers a coloured cell."""
    moved = translate(grid, shift)
    if moved is None or ((moved != 0) & (grid != 0)).any():
        return None
    return np.where(moved != 0, moved, grid)


@dataclass(frozen=True)
class Step:
    """One primitive with its parameters (hashable, JSON-friendly through `to_json`)."""

    op: str
    param: object

    def __call__(self, grid: np.ndarray) -> np.ndarray | None:
        if self.op == "recolor":
            return recolor(grid, self.param)
        if self.op == "dihedral":
            return np.ascontiguousarray(dihedral(grid, self.param))
        if self.op == "translate":
            return translate(grid, self.param)
        if self.op == "gravity":
            return gravity(grid, self.param)
        if self.op == "fill":
            return fill(grid, self.param)
        if self.op == "copy":
            return copy(grid, self.param)
        raise ValueError(f"unknown primitive {self.op!r}; expected one of {', '.join(PRIMITIVES)}")

    def to_json(self) -> dict:
        param = [list(p) for p in self.param] if self.op == "recolor" else \
            list(self.param) if isinstance(self.param, tuple) else self.param
        return {"op": self.op, "param": param}


def run_program(program: tuple[Step, ...], grid: np.ndarray) -> np.ndarray | None:
    """The program's output, or None where a step does not apply or leaves its grid unchanged."""
    for step in program:
        out = step(grid)
        if out is None or (out.shape == grid.shape and (out == grid).all()):
            return None
        grid = out
    return grid


# ----------------------------------------------------------------------------- parameters and scenes
def _shift(rng: np.random.Generator, sizes: tuple[int, ...]) -> tuple[int, int]:
    """A shift whose larger component has one of `sizes` as its magnitude."""
    big = int(rng.choice(sizes)) * int(rng.choice((-1, 1)))
    small = int(rng.integers(-abs(big), abs(big) + 1))
    return (big, small) if rng.random() < 0.5 else (small, big)


def sample_param(op: str, rng: np.random.Generator, palette: list[int], heldout: bool) -> object:
    """Parameters of a primitive: the training ranges, or with `heldout` the new ones (translate, recolor)."""
    if op == "recolor":
        if heldout:  # a 3-cycle a -> b -> c -> a of palette colours
            a, b, c = (int(x) for x in rng.choice(palette, 3, replace=False))
            return ((a, b), (b, c), (c, a))
        srcs = [int(x) for x in rng.choice(palette, min(len(palette) - 1, int(rng.integers(1, 3))), replace=False)]
        targets = [c for c in range(1, 10) if c not in srcs]
        return tuple((s, int(rng.choice(targets))) for s in srcs)
    if op == "dihedral":
        return int(rng.integers(1, 8))
    if op == "translate":
        return _shift(rng, (3,) if heldout else (1, 2))
    if op == "gravity":
        return str(rng.choice(GRAVITY))
    if op == "fill":
        return int(rng.choice([c for c in range(1, 10) if c not in palette]))
    if op == "copy":
        return _shift(rng, (3, 4))
    raise ValueError(f"unknown primitive {op!r}")


def _sprite(rng: np.random.Generator, palette: list[int], max_side: int = 3) -> np.ndarray:
    """A small random shape (at least half its box coloured, no empty edge row or column)."""
    while True:
        h, w = (int(x) for x in rng.integers(2, max_side + 1, size=2))
        shape = rng.random((h, w)) < 0.7
        if shape.sum() * 2 >= h * w and shape.any(0).all() and shape.any(1).all():
            return np.where(shape, rng.choice(palette, size=(h, w)), 0)


def _outline(rng: np.random.Generator, palette: list[int], h: int, w: int) -> np.ndarray:
    box = np.full((h, w), int(rng.choice(palette)))
    box[1:-1, 1:-1] = 0
    return box


def _place(grid: np.ndarray, piece: np.ndarray, rng: np.random.Generator, gap: int = 1) -> bool:
    """Put `piece` somewhere it keeps `gap` background cells from other content; False if it did not fit."""
    h, w = grid.shape
    ph, pw = piece.shape
    if ph > h or pw > w:
        return False
    for _ in range(20):
        r, c = int(rng.integers(0, h - ph + 1)), int(rng.integers(0, w - pw + 1))
        if not grid[max(r - gap, 0):r + ph + gap, max(c - gap, 0):c + pw + gap].any():
            grid[r:r + ph, c:c + pw] = piece
            return True
    return False


def scene_kind(ops: tuple[str, ...]) -> str:
    """The inputs a program needs: enclosures to fill, one shape to copy, room to move, or cells to drop."""
    if "fill" in ops:
        return "outlines"
    if "copy" in ops:
        return "sprite"
    if "translate" in ops:
        return "objects"
    if "gravity" in ops:
        return "scatter"
    return "scatter_or_objects"


def sample_scene(kind: str, rng: np.random.Generator, palette: list[int], single: bool = False) -> np.ndarray:
    """A random input grid of a scene kind (`single`: one outline, for fill + copy)."""
    h, w = (int(x) for x in rng.integers(MIN_SIDE, MAX_SIDE + 1, size=2))
    grid = np.zeros((h, w), dtype=np.int64)
    if kind == "scatter_or_objects":
        kind = "scatter" if rng.random() < 0.5 else "objects"
    if kind == "scatter":
        density = rng.uniform(0.15, 0.45)
        grid = np.where(rng.random((h, w)) < density, rng.choice(palette, size=(h, w)), 0)
    elif kind == "objects":
        for _ in range(int(rng.integers(1, 3))):
            _place(grid, _sprite(rng, palette), rng)
    elif kind == "sprite":
        _place(grid, _sprite(rng, palette), rng, gap=0)
    elif kind == "outlines":
        for _ in range(1 if single else int(rng.integers(1, 3))):
            oh, ow = (int(x) for x in rng.integers(3, 6, size=2))
            _place(grid, _outline(rng, palette, oh, ow), rng)
    else:
        raise ValueError(f"unknown scene kind {kind!r}")
    return grid


# ----------------------------------------------------------------------------- tasks
def sample_program(ops: tuple[str, ...], rng: np.random.Generator, palette: list[int],
                   new_parameters: bool = False) -> tuple[Step, ...]:
    """Steps for primitives `ops`, put in the order of PRIMITIVES (`new_parameters`: the held-out ranges)."""
    ordered = sorted(ops, key=PRIMITIVES.index)
    return tuple(Step(op, sample_param(op, rng, palette, new_parameters)) for op in ordered)


def make_task(ops: tuple[str, ...], rng: np.random.Generator, new_parameters: bool = False,
              num_demos: int | None = None) -> tuple[dict, tuple[Step, ...]]:
    """A valid ARC task of the program kind `ops` (one or two primitives) and the program that made it.

    Parameters, palette and grids are drawn until every pair is valid (see `check_task`); `ValueError` if no
    task turns up in ATTEMPTS draws (a kind of program that cannot be made).
    """
    unknown = [op for op in ops if op not in PRIMITIVES]
    if unknown or not 1 <= len(ops) <= 2 or len(set(ops)) != len(ops):
        raise ValueError(f"a program is one primitive or two different ones of {', '.join(PRIMITIVES)}; got {ops}")
    kind = scene_kind(ops)
    single = "fill" in ops and "copy" in ops
    num_demos = int(rng.integers(MIN_DEMOS, MAX_DEMOS + 1)) if num_demos is None else num_demos
    for _ in range(ATTEMPTS):
        fewest = 3 if new_parameters and "recolor" in ops else 2  # a 3-cycle needs three colours
        palette = sorted(int(c) for c in rng.choice(np.arange(1, 10), int(rng.integers(fewest, 5)), replace=False))
        program = sample_program(ops, rng, palette, new_parameters)
        pairs = []
        for _ in range(num_demos + 1):
            for _ in range(20):
                grid = sample_scene(kind, rng, palette, single)
                out = run_program(program, grid)
                if out is not None and not any(np.array_equal(grid, p[0]) for p in pairs):
                    pairs.append((grid, out))
                    break
            else:
                break
        if len(pairs) < num_demos + 1:
            continue
        task = {"train": [{"input": i.tolist(), "output": o.tolist()} for i, o in pairs[:-1]],
                "test": [{"input": pairs[-1][0].tolist(), "output": pairs[-1][1].tolist()}]}
        try:
            check_task(task)
            _check_shown(task, program)
        except ValueError:
            continue
        return task, program
    raise ValueError(f"no valid task of program {'+'.join(ops)} in {ATTEMPTS} draws")


def _check_shown(task: dict, program: tuple[Step, ...]) -> None:
    """The demonstrations show what the test asks: every colour of the test input, and every colour a colour map
    replaces, appears in a demonstration input."""
    demo_colours = set(np.unique(np.concatenate([np.ravel(p["input"]) for p in task["train"]])).tolist())
    needed = set(np.unique(task["test"][0]["input"]).tolist())
    for step in program:
        if step.op == "recolor":
            needed |= {src for src, _ in step.param}
    if not needed <= demo_colours:
        raise ValueError(f"colours {sorted(needed - demo_colours)} appear in no demonstration input")


def check_task(task: dict, max_size: int = MAX_SIZE) -> None:
    """Raise `ValueError` unless `task` is a valid ARC task of this family: 2-4 demonstration pairs and one test
    pair, each an input and an output grid (rectangular, colours 0-9, at most max_size x max_size), the output
    differing from the input, and no input given twice."""
    if not isinstance(task, dict) or set(task) != {"train", "test"}:
        raise ValueError("a task is an object with exactly a 'train' and a 'test' list")
    if not (isinstance(task["train"], list) and MIN_DEMOS <= len(task["train"]) <= MAX_DEMOS):
        raise ValueError(f"a task has {MIN_DEMOS}-{MAX_DEMOS} demonstration pairs")
    if not (isinstance(task["test"], list) and len(task["test"]) == 1):
        raise ValueError("a task has one test pair")
    inputs = []
    for part in ("train", "test"):
        for i, pair in enumerate(task[part]):
            if not isinstance(pair, dict) or set(pair) != {"input", "output"}:
                raise ValueError(f"{part} pair {i}: expected exactly an 'input' and an 'output'")
            grids = [validate_arc_grid(pair[key], f"{part} pair {i} {key}") for key in ("input", "output")]
            for key, grid in zip(("input", "output"), grids):
                if max(grid.shape) > max_size:
                    raise ValueError(f"{part} pair {i} {key}: {grid.shape[0]}x{grid.shape[1]} is larger than "
                                     f"{max_size}x{max_size}")
            if np.array_equal(*grids):
                raise ValueError(f"{part} pair {i}: the output equals the input")
            if any(np.array_equal(grids[0], seen) for seen in inputs):
                raise ValueError(f"{part} pair {i}: the same input appears twice")
            inputs.append(grids[0])


def program_name(ops: tuple[str, ...]) -> str:
    return "+".join(sorted(ops, key=PRIMITIVES.index))


def family_plan(num_train: int, num_heldout: int) -> tuple[list[tuple[str, ...]], list[tuple[tuple[str, ...], str]]]:
    """Program kinds of the training and held-out tasks, spread evenly (round robin) over the kinds:
    training = the six primitives and TRAIN_COMPOSITIONS; held-out = HELDOUT_COMPOSITIONS ("new composition")
    and HELDOUT_PARAMETERS ("new parameters")."""
    train_kinds = [(op,) for op in PRIMITIVES] + list(TRAIN_COMPOSITIONS)
    heldout_kinds = [(pair, "new composition") for pair in HELDOUT_COMPOSITIONS] + \
                    [((op,), "new parameters") for op in HELDOUT_PARAMETERS]
    return ([train_kinds[i % len(train_kinds)] for i in range(num_train)],
            [heldout_kinds[i % len(heldout_kinds)] for i in range(num_heldout)])


def generate_family(num_train: int, num_heldout: int, seed: int = 0) -> tuple[dict[str, dict], dict[str, dict], dict]:
    """(training tasks, held-out tasks, split listing): tasks by id; the listing names each task's split, program
    (steps with parameters) and, for held-out tasks, why it is new. Deterministic given `seed`; task i draws from
    its own generator, so a larger family keeps the smaller one's tasks."""
    if num_train < 1 or num_heldout < 1:
        raise ValueError(f"the family needs at least one training and one held-out task, got {num_train} and "
                         f"{num_heldout}")
    train_kinds, heldout_kinds = family_plan(num_train, num_heldout)
    training, heldout, listing = {}, {}, {}
    for index, ops in enumerate(train_kinds):
        rng = np.random.default_rng([seed, 0, index])
        task, program = make_task(ops, rng)
        tid = f"t{index:04d}-{program_name(ops)}"
        training[tid] = task
        listing[tid] = {"split": "training", "program": [s.to_json() for s in program], "heldout": None}
    for index, (ops, why) in enumerate(heldout_kinds):
        rng = np.random.default_rng([seed, 1, index])
        task, program = make_task(ops, rng, new_parameters=why == "new parameters")
        tid = f"h{index:04d}-{program_name(ops)}"
        heldout[tid] = task
        listing[tid] = {"split": "evaluation", "program": [s.to_json() for s in program], "heldout": why}
    return training, heldout, {
        "family": "arc-procedural", "seed": seed, "max_size": MAX_SIZE, "primitives": list(PRIMITIVES),
        "train_compositions": ["+".join(p) for p in TRAIN_COMPOSITIONS],
        "heldout_compositions": ["+".join(p) for p in HELDOUT_COMPOSITIONS],
        "heldout_parameters": {"translate": "shift of 3 cells (training: 1-2)",
                               "recolor": "a 3-cycle of colours (training: one or two replacements)"},
        "training": sorted(training), "evaluation": sorted(heldout), "tasks": listing}


__all__ = ["MAX_SIZE", "CANVAS", "PRIMITIVES", "TRAIN_COMPOSITIONS", "HELDOUT_COMPOSITIONS", "HELDOUT_PARAMETERS", "Step",
           "run_program", "make_task", "check_task", "family_plan", "generate_family", "recolor", "translate",
           "gravity", "fill", "copy", "enclosed"]
