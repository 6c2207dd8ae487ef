"""Token formats of the three HRM benchmarks (HRM_SPEC §5), shared by the dataset builders,
`hrm-solve` and the evaluator.

Every parser validates strictly and raises ``ValueError`` naming the problem; nothing is
silently repaired.

Token ids
---------
* Sudoku: PAD 0, blank 1, digit d -> d + 1 (vocab = n + 2, seq_len = n * n).
* Maze:   PAD 0, ``#`` 1, `` `` 2, ``S`` 3, ``G`` 4, ``o`` 5 (vocab 6, seq_len = H * W).
* ARC:    PAD 0, EOS 1, colour c -> c + 2 (vocab 12); every grid is placed in a 30x30 canvas
  with an EOS row just below it and an EOS column just right of it (where inside the canvas;
  the corner cell stays PAD, as in the original HRM code), seq_len 900. A smaller N x N canvas
  (seq_len N * N, `build_arc_dataset.py --canvas N`) is the same layout for tasks of small grids.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

# ----------------------------------------------------------------------------- common

PAD_ID = 0
IGNORE_LABEL_ID = -100

# ----------------------------------------------------------------------------- sudoku

SUDOKU_SIZES = (4, 6, 9)
SUDOKU_BLANK_ID = 1
#: Characters accepted as a blank cell in puzzle text.
SUDOKU_BLANK_CHARS = ".0_"
#: Layout characters ignored in puzzle text (so pretty-printed grids parse too).
SUDOKU_LAYOUT_CHARS = " \t\r\n|+-,"
#: Characters accepted as a clue: ASCII digits only. Other scripts' digits (full-width, Arabic-Indic...) are
#: refused by name: `str.isdigit` accepts them, and a reader of the text would count them differently.
SUDOKU_DIGIT_CHARS = "123456789"


def character_name(ch: str) -> str:
    """A character as an error message names it: "'x'", or "'２' (FULLWIDTH DIGIT TWO, U+FF12)" outside ASCII, so
    that a look-alike or an invisible character can be told from the one it resembles."""
    import unicodedata

    if ch.isascii() and ch.isprintable():
        return repr(ch)
    return f"{ch!r} ({unicodedata.name(ch, 'a control character')}, U+{ord(ch):04X})"


def sudoku_box_shape(n: int) -> tuple[int, int]:
    """Box shape (rows, cols) of an n x n Sudoku: 4 -> 2x2, 6 -> 2x3, 9 -> 3x3."""
    shapes = {4: (2, 2), 6: (2, 3), 9: (3, 3)}
    if n not in shapes:
        raise ValueError(f"unsupported Sudoku size {n}; expected one of {SUDOKU_SIZES}")
    return shapes[n]


def sudoku_token_names(n: int) -> list[str]:
    """Names of the Sudoku token ids (index = id)."""
    sudoku_box_shape(n)
    return ["<pad>", "<blank>"] + [str(d) for d in range(1, n + 1)]


def parse_sudoku(text: str, size: int | None = None) -> np.ndarray:
    """Parse a Sudoku from text into an (n, n) int array with 0 = blank.

    Accepts a flat string (``"53..7...."``) or a pretty-printed grid. The alphabet is explicit: the
    ASCII digits 1-9 are clues, ``.``, ``0`` and ``_`` are blanks, and space, tab, newline and
    ``| + - ,`` are layout (ignored); any other character, a look-alike digit of another script
    included, is refused by name. The cell count fixes the size (16, 36 or 81) unless ``size`` is
    given. Raises ``ValueError`` on an unknown symbol, a wrong length, a digit larger than the size,
    or two equal clues in a row, column or box.
    """
    if not isinstance(text, str):
        raise ValueError(f"Sudoku text must be a string, got {type(text).__name__}")
    cells = []
    for pos, ch in enumerate(text):
        if ch in SUDOKU_LAYOUT_CHARS:
            continue
        if ch in SUDOKU_BLANK_CHARS:
            cells.append(0)
        elif ch in SUDOKU_DIGIT_CHARS:
            cells.append(int(ch))
        else:
            raise ValueError(f"unknown Sudoku symbol {character_name(ch)} at character {pos}; a Sudoku is written "
                             f"with the ASCII digits 1-9, '.', '0' or '_' for a blank, and spaces, newlines or "
                             f"| + - , as layout")
    count = len(cells)
    if size is None:
        by_count = {n * n: n for n in SUDOKU_SIZES}
        if count not in by_count:
            raise ValueError(f"Sudoku has {count} cells; expected 16, 36 or 81")
        size = by_count[count]
    elif count != size * size:
        raise ValueError(f"Sudoku has {count} cells; expected {size * size} for size {size}")
    grid = np.asarray(cells, dtype=np.int64).reshape(size, size)
    check_sudoku_grid(grid, complete=False)
    return grid


def _sudoku_units(n: int) -> np.ndarray:
    """(3n, n) flat cell indices of every row, column and box."""
    br, bc = sudoku_box_shape(n)
    idx = np.arange(n * n).reshape(n, n)
    rows = [idx[r] for r in range(n)]
    cols = [idx[:, c] for c in range(n)]
    boxes = [idx[r:r + br, c:c + bc].reshape(-1) for r in range(0, n, br) for c in range(0, n, bc)]
    return np.stack(rows + cols + boxes)


def check_sudoku_grid(grid: np.ndarray, complete: bool = False) -> None:
    """Raise ``ValueError`` unless ``grid`` (n x n, 0 = blank) is a consistent Sudoku.

    ``complete=True`` additionally requires no blanks (a full valid solution).
    """
    grid = np.asarray(grid)
    if grid.ndim != 2 or grid.shape[0] != grid.shape[1]:
        raise ValueError(f"Sudoku grid must be square, got shape {grid.shape}")
    n = grid.shape[0]
    sudoku_box_shape(n)
    if grid.min() < 0 or grid.max() > n:
        raise ValueError(f"Sudoku digit out of range 0..{n}: found {int(grid.min())}..{int(grid.max())}")
    if complete and (grid == 0).any():
        raise ValueError(f"Sudoku solution has {int((grid == 0).sum())} blank cells")
    units = _sudoku_units(n)
    names = ["row"] * n + ["column"] * n + ["box"] * n
    flat = grid.reshape(-1)
    for u, cells in enumerate(units):
        vals = flat[cells]
        vals = vals[vals > 0]
        if len(np.unique(vals)) != len(vals):
            dup = int(np.bincount(vals).argmax())
            raise ValueError(f"Sudoku conflict: digit {dup} twice in {names[u]} {u % n + 1}")


def check_sudoku_solution(puzzle: np.ndarray, solution: np.ndarray) -> None:
    """Raise ``ValueError`` unless ``solution`` is a complete valid grid agreeing with the clues."""
    puzzle = np.asarray(puzzle)
    solution = np.asarray(solution)
    if puzzle.shape != solution.shape:
        raise ValueError(f"puzzle shape {puzzle.shape} != solution shape {solution.shape}")
    check_sudoku_grid(solution, complete=True)
    clash = (puzzle > 0) & (puzzle != solution)
    if clash.any():
        r, c = np.argwhere(clash)[0]
        raise ValueError(f"solution disagrees with clue at row {r + 1}, column {c + 1}")


def sudoku_batch_valid(puzzles: np.ndarray, solutions: np.ndarray) -> np.ndarray:
    """Vectorised validity check: (N, n*n) digit arrays (0 = blank) -> bool (N,) where the
    solution is complete, every unit holds each digit once, and the clues agree."""
    puzzles = np.asarray(puzzles)
    solutions = np.asarray(solutions)
    n = int(round(np.sqrt(solutions.shape[1])))
    units = _sudoku_units(n)
    vals = solutions[:, units]  # (N, 3n, n)
    onehot_ok = np.sort(vals, axis=2) == np.arange(1, n + 1)
    ok = onehot_ok.all(axis=(1, 2))
    ok &= ((puzzles == 0) | (puzzles == solutions)).all(axis=1)
    return ok


def encode_sudoku(grid: np.ndarray) -> np.ndarray:
    """Digits (n, n) or (n*n,) with 0 = blank -> uint8 tokens (n*n,): blank 1, d -> d + 1."""
    grid = np.asarray(grid)
    n = int(round(np.sqrt(grid.size)))
    if n * n != grid.size:
        raise ValueError(f"Sudoku has {grid.size} cells, not a square number")
    flat = grid.reshape(-1).astype(np.int64)
    if flat.min() < 0 or flat.max() > n:
        raise ValueError(f"Sudoku digit out of range 0..{n}")
    return (flat + 1).astype(np.uint8)


def decode_sudoku(tokens: np.ndarray, size: int | None = None) -> np.ndarray:
    """Tokens (n*n,) -> digits (n, n) with 0 = blank (PAD and blank tokens both become 0)."""
    tokens = np.asarray(tokens).reshape(-1).astype(np.int64)
    n = size or int(round(np.sqrt(tokens.size)))
    if n * n != tokens.size:
        raise ValueError(f"{tokens.size} Sudoku tokens; expected {n * n}")
    if tokens.min() < 0 or tokens.max() > n + 1:
        raise ValueError(f"Sudoku token out of range 0..{n + 1}")
    return np.maximum(tokens - 1, 0).reshape(n, n)


def format_sudoku(grid: np.ndarray) -> str:
    """Pretty-print a Sudoku (0 = blank shown as '.') with box separators."""
    grid = np.asarray(grid)
    n = grid.shape[0]
    br, bc = sudoku_box_shape(n)
    lines = []
    for r in range(n):
        if r and r % br == 0:
            lines.append("-+-".join("-" * (2 * bc - 1) for _ in range(n // bc)))
        parts = []
        for c0 in range(0, n, bc):
            parts.append(" ".join(str(int(v)) if v else "." for v in grid[r, c0:c0 + bc]))
        lines.append(" | ".join(parts))
    return "\n".join(lines)


# ----------------------------------------------------------------------------- maze

MAZE_CHARS = "# SGo"
MAZE_CHAR_TO_ID = {ch: i + 1 for i, ch in enumerate(MAZE_CHARS)}
MAZE_WALL, MAZE_OPEN, MAZE_START, MAZE_GOAL, MAZE_PATH = 1, 2, 3, 4, 5
MAZE_TOKEN_NAMES = ["<pad>", "#", " ", "S", "G", "o"]
_MAZE_LUT = np.zeros(256, dtype=np.uint8)
for _ch, _id in MAZE_CHAR_TO_ID.items():
    _MAZE_LUT[ord(_ch)] = _id


def parse_maze(text: str, height: int | None = None, width: int | None = None) -> np.ndarray:
    """Parse a maze into an (H, W) uint8 array of token ids (``#`` 1, space 2, S 3, G 4, o 5).

    ``text`` is either lines of equal length, or one flat string when ``height``/``width``
    (or a square cell count) fix the shape. Raises ``ValueError`` on an unknown character,
    ragged lines, a wrong length, or a count of S / G other than one.
    """
    if not isinstance(text, str):
        raise ValueError(f"maze text must be a string, got {type(text).__name__}")
    lines = text.split("\n")
    # Drop a trailing newline / "\r" but keep spaces: a space is an open cell.
    lines = [ln.rstrip("\r") for ln in lines]
    while lines and lines[-1] == "":
        lines.pop()
    if len(lines) == 1:
        flat = lines[0]
        if height is None and width is None:
            side = int(round(len(flat) ** 0.5))
            if side * side != len(flat):
                raise ValueError(f"flat maze has {len(flat)} cells; give height/width or use one line per row")
            height = width = side
        elif height is None:
            height = len(flat) // width
        elif width is None:
            width = len(flat) // height
        if height * width != len(flat):
            raise ValueError(f"flat maze has {len(flat)} cells; expected {height}x{width}={height * width}")
        lines = [flat[r * width:(r + 1) * width] for r in range(height)]
    if not lines:
        raise ValueError("empty maze")
    # Characters first: an invisible one (a byte-order mark, a tab) would otherwise show up as a ragged row.
    for r, ln in enumerate(lines):
        for c, ch in enumerate(ln):
            if ch not in MAZE_CHAR_TO_ID:
                raise ValueError(f"unknown maze character {character_name(ch)} at row {r + 1}, column {c + 1}; a "
                                 f"maze is written with '#' wall, ' ' open, 'S' start, 'G' goal and 'o' path")
    widths = {len(ln) for ln in lines}
    if len(widths) != 1:
        raise ValueError(f"ragged maze: row lengths {sorted(widths)}")
    if height is not None and len(lines) != height:
        raise ValueError(f"maze has {len(lines)} rows; expected {height}")
    if width is not None and len(lines[0]) != width:
        raise ValueError(f"maze has {len(lines[0])} columns; expected {width}")
    arr = np.frombuffer("".join(lines).encode("ascii"), dtype=np.uint8)
    grid = _MAZE_LUT[arr].reshape(len(lines), len(lines[0]))
    for tok, name in ((MAZE_START, "S"), (MAZE_GOAL, "G")):
        k = int((grid == tok).sum())
        if k != 1:
            raise ValueError(f"maze has {k} '{name}' cells; expected exactly 1")
    return grid


def decode_maze(tokens: np.ndarray, height: int | None = None, width: int | None = None) -> str:
    """Token ids (H*W,) or (H, W) -> maze text, one line per row (PAD shown as '?')."""
    tokens = np.asarray(tokens)
    if tokens.ndim == 1:
        if height is None and width is None:
            height = width = int(round(tokens.size ** 0.5))
        height = height or tokens.size // width
        width = width or tokens.size // height
        if height * width != tokens.size:
            raise ValueError(f"{tokens.size} maze tokens do not fill {height}x{width}")
        tokens = tokens.reshape(height, width)
    if tokens.max(initial=0) > 5:
        raise ValueError(f"maze token {int(tokens.max())} out of range 0..5")
    chars = np.array(list("?" + MAZE_CHARS))
    return "\n".join("".join(chars[row]) for row in tokens)


def maze_bfs_distances(grid: np.ndarray, source: tuple[int, int]) -> np.ndarray:
    """BFS distances (int32, -1 = unreachable) from ``source`` over non-wall cells of a token grid."""
    grid = np.asarray(grid)
    h, w = grid.shape
    passable = grid != MAZE_WALL
    dist = np.full((h, w), -1, dtype=np.int32)
    dist[source] = 0
    frontier = [source]
    d = 0
    while frontier:
        d += 1
        nxt = []
        for r, c in frontier:
            for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
                if 0 <= rr < h and 0 <= cc < w and passable[rr, cc] and dist[rr, cc] < 0:
                    dist[rr, cc] = d
                    nxt.append((rr, cc))
        frontier = nxt
    return dist


def check_maze_solution(question: np.ndarray, answer: np.ndarray) -> int:
    """Raise ``ValueError`` unless ``answer`` marks a shortest S->G path on ``question``.

    Both are (H, W) token grids. The answer must equal the question except that some open
    cells become path cells ``o``; the path cells plus S and G must form a 4-connected
    simple chain from S to G whose length equals the BFS distance. Returns the path length
    (number of moves S -> G).
    """
    q = np.asarray(question)
    a = np.asarray(answer)
    if q.shape != a.shape:
        raise ValueError(f"maze question shape {q.shape} != answer shape {a.shape}")
    changed = q != a
    if (changed & ~((q == MAZE_OPEN) & (a == MAZE_PATH))).any():
        r, c = np.argwhere(changed & ~((q == MAZE_OPEN) & (a == MAZE_PATH)))[0]
        raise ValueError(f"maze answer changes a non-open cell at row {r + 1}, column {c + 1}")
    if (q == MAZE_PATH).any():
        raise ValueError("maze question already contains path cells 'o'")
    starts = np.argwhere(q == MAZE_START)
    goals = np.argwhere(q == MAZE_GOAL)
    if len(starts) != 1 or len(goals) != 1:
        raise ValueError("maze must have exactly one S and one G")
    s, g = tuple(starts[0]), tuple(goals[0])
    dist = maze_bfs_distances(q, s)
    if dist[g] < 0:
        raise ValueError("maze goal is unreachable from start")
    path = set(map(tuple, np.argwhere(a == MAZE_PATH)))
    # Walk the chain from S; each step must have exactly one unvisited path/goal neighbour.
    on_chain = path | {g}
    cur, prev, steps = s, None, 0
    h, w = q.shape
    while cur != g:
        r, c = cur
        nbrs = [(rr, cc) for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1))
                if 0 <= rr < h and 0 <= cc < w and (rr, cc) in on_chain and (rr, cc) != prev]
        if len(nbrs) != 1:
            raise ValueError(f"maze path is not a simple chain at row {r + 1}, column {c + 1}")
        prev, cur = cur, nbrs[0]
        steps += 1
        if steps > len(on_chain):
            raise ValueError("maze path loops")
    if steps != len(path) + 1:
        raise ValueError(f"maze answer has {len(path) + 1 - steps} path cells off the S-G chain")
    if steps != dist[g]:
        raise ValueError(f"maze path has length {steps}, shortest is {int(dist[g])}")
    return steps


# ----------------------------------------------------------------------------- ARC

ARC_MAX_SIZE = 30
ARC_EOS_ID = 1
ARC_COLOR_OFFSET = 2
ARC_VOCAB_SIZE = 12
ARC_SEQ_LEN = ARC_MAX_SIZE * ARC_MAX_SIZE
ARC_TOKEN_NAMES = ["<pad>", "<eos>"] + [f"c{c}" for c in range(10)]


def validate_arc_grid(grid, name: str = "grid") -> np.ndarray:
    """Check an ARC grid (list of lists or array) and return it as (h, w) uint8.

    Raises ``ValueError`` naming the problem: not a list of rows, ragged rows, empty,
    non-integer cells, colours outside 0..9, or larger than 30x30.
    """
    if isinstance(grid, np.ndarray):
        arr = grid
        if arr.ndim != 2:
            raise ValueError(f"{name}: expected a 2-D grid, got {arr.ndim} dimensions")
    else:
        if not isinstance(grid, (list, tuple)) or not grid:
            raise ValueError(f"{name}: expected a non-empty list of rows")
        widths = set()
        for r, row in enumerate(grid):
            if not isinstance(row, (list, tuple)):
                raise ValueError(f"{name}: row {r} is not a list")
            widths.add(len(row))
        if len(widths) != 1:
            raise ValueError(f"{name}: ragged grid, row lengths {sorted(widths)}")
        for r, row in enumerate(grid):
            for v in row:
                if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                    raise ValueError(f"{name}: non-integer cell {v!r} in row {r}")
        arr = np.asarray(grid, dtype=np.int64)
    h, w = arr.shape
    if h == 0 or w == 0:
        raise ValueError(f"{name}: empty grid {h}x{w}")
    if h > ARC_MAX_SIZE or w > ARC_MAX_SIZE:
        raise ValueError(f"{name}: grid {h}x{w} larger than {ARC_MAX_SIZE}x{ARC_MAX_SIZE}")
    if arr.min() < 0 or arr.max() > 9:
        raise ValueError(f"{name}: colour out of range 0..9 (found {int(arr.min())}..{int(arr.max())})")
    return arr.astype(np.uint8)


def arc_canvas_size(seq_len: int) -> int | None:
    """The side N of the ARC canvas of a token layout of `seq_len` = N * N cells (2 <= N <= 30), else None."""
    n = int(round(float(seq_len) ** 0.5)) if isinstance(seq_len, (int, np.integer)) and seq_len > 0 else 0
    return n if 2 <= n <= ARC_MAX_SIZE and n * n == seq_len else None


def arc_canvas_needed(height: int, width: int) -> int:
    """The smallest canvas that holds an h x w grid with its EOS border: its longer side + 1, except that the full
    30x30 canvas holds any ARC grid (a 30-wide grid has no border there, as in the original layout)."""
    return min(max(height, width) + 1, ARC_MAX_SIZE)


def _canvas_of(tokens: np.ndarray) -> int:
    t = np.asarray(tokens)
    n = t.shape[0] if t.ndim == 2 and t.shape[0] == t.shape[1] else arc_canvas_size(t.size)
    if n is None:
        raise ValueError(f"{t.size} ARC tokens are not a square canvas of 2x2..{ARC_MAX_SIZE}x{ARC_MAX_SIZE} cells")
    return n


def encode_arc_grid(grid, offset: tuple[int, int] = (0, 0), canvas: int = ARC_MAX_SIZE) -> np.ndarray:
    """ARC grid (h, w) -> (canvas * canvas,) uint8 tokens (900 by default): colours + 2 placed at ``offset`` in a
    canvas x canvas PAD square, EOS (1) in the row just below and the column just right of the grid."""
    arr = validate_arc_grid(grid)
    h, w = arr.shape
    r0, c0 = offset
    if r0 < 0 or c0 < 0 or r0 + h > canvas or c0 + w > canvas:
        raise ValueError(f"grid {h}x{w} at offset {offset} does not fit in {canvas}x{canvas}")
    out = np.zeros((canvas, canvas), dtype=np.uint8)
    out[r0:r0 + h, c0:c0 + w] = arr + ARC_COLOR_OFFSET
    if r0 + h < canvas:
        out[r0 + h, c0:c0 + w] = ARC_EOS_ID
    if c0 + w < canvas:
        out[r0:r0 + h, c0 + w] = ARC_EOS_ID
    return out.reshape(-1)


def decode_arc_grid(tokens: np.ndarray, strict: bool = False) -> np.ndarray:
    """(N * N,) or (N, N) tokens (N = 30, or a smaller canvas) -> ARC grid (h, w) uint8, cropped at the EOS border.

    The grid is the largest rectangle anchored at the top-left corner whose cells are all
    colour tokens (a model's prediction may be ragged; this picks the best rectangle, as the
    original evaluator does). ``strict=True`` instead raises ``ValueError`` unless the
    tokens are exactly a well-formed encoding (as produced by ``encode_arc_grid``).
    """
    n = _canvas_of(tokens)
    t = np.asarray(tokens).reshape(n, n)
    is_colour = (t >= ARC_COLOR_OFFSET) & (t < ARC_COLOR_OFFSET + 10)
    # run[r] = number of leading colour cells in row r, clipped by the rows above.
    best_area, best = 0, (0, 0)
    width = n
    for r in range(n):
        row = is_colour[r]
        lead = int(np.argmin(row)) if not row.all() else n
        width = min(width, lead)
        if width == 0:
            break
        if (r + 1) * width > best_area:
            best_area, best = (r + 1) * width, (r + 1, width)
    h, w = best
    grid = (t[:h, :w].astype(np.int16) - ARC_COLOR_OFFSET).astype(np.uint8)
    if strict:
        if h == 0:
            raise ValueError("no ARC grid at the top-left corner")
        if not np.array_equal(encode_arc_grid(grid, canvas=n), t.reshape(-1)):
            raise ValueError(f"tokens are not a well-formed {h}x{w} ARC grid encoding")
    return grid


def arc_grid_location(tokens: np.ndarray) -> tuple[int, int, int, int]:
    """(r0, c0, h, w) of the (possibly translated) grid in a well-formed encoding."""
    n = _canvas_of(tokens)
    t = np.asarray(tokens).reshape(n, n)
    cells = np.argwhere(t >= ARC_COLOR_OFFSET)
    if len(cells) == 0:
        raise ValueError("no colour cells in ARC tokens")
    (r0, c0), (r1, c1) = cells.min(0), cells.max(0)
    return int(r0), int(c0), int(r1 - r0 + 1), int(c1 - c0 + 1)


# ----------------------------------------------------------------------------- symmetries

#: Dihedral transform k: 0 id, 1 rot90, 2 rot180, 3 rot270, 4 flip left-right,
#: 5 flip up-down, 6 transpose, 7 anti-transpose (same numbering as the original HRM code).
DIHEDRAL_INVERSE = (0, 3, 2, 1, 4, 5, 6, 7)


def dihedral(grid: np.ndarray, k: int) -> np.ndarray:
    """Apply dihedral transform ``k`` (0..7) to the last two axes of ``grid``."""
    g = np.asarray(grid)
    ax = (g.ndim - 2, g.ndim - 1)
    if k == 0:
        return g
    if k in (1, 2, 3):
        return np.rot90(g, k=k, axes=ax)
    if k == 4:
        return np.flip(g, axis=ax[1])
    if k == 5:
        return np.flip(g, axis=ax[0])
    if k == 6:
        return np.swapaxes(g, *ax)
    if k == 7:
        return np.flip(np.rot90(g, k=1, axes=ax), axis=ax[1])
    raise ValueError(f"dihedral index must be 0..7, got {k}")


def inverse_dihedral(grid: np.ndarray, k: int) -> np.ndarray:
    """Undo ``dihedral(grid, k)``."""
    if not 0 <= k <= 7:
        raise ValueError(f"dihedral index must be 0..7, got {k}")
    return dihedral(grid, DIHEDRAL_INVERSE[k])


def check_color_perm(perm: Sequence[int]) -> np.ndarray:
    """Validate a colour permutation (length 10, a permutation of 0..9) and return it as uint8."""
    p = np.asarray(perm)
    if p.shape != (10,) or sorted(p.tolist()) != list(range(10)):
        raise ValueError(f"colour permutation must be a permutation of 0..9, got {p.tolist()}")
    return p.astype(np.uint8)


def apply_color_perm(grid: np.ndarray, perm: Sequence[int]) -> np.ndarray:
    """Recolour: ``new[i, j] = perm[grid[i, j]]``."""
    return check_color_perm(perm)[np.asarray(grid)]


def inverse_color_perm(perm: Sequence[int]) -> np.ndarray:
    """The permutation that undoes ``perm``."""
    return np.argsort(check_color_perm(perm)).astype(np.uint8)


def arc_transform(grid: np.ndarray, k: int, perm: Sequence[int]) -> np.ndarray:
    """One ARC version of a grid: dihedral ``k`` then colour permutation ``perm``."""
    return apply_color_perm(dihedral(grid, k), perm)


def invert_arc_version(grid: np.ndarray, k: int, perm: Sequence[int]) -> np.ndarray:
    """Map a grid predicted for a version (dihedral ``k``, colours ``perm``) back to the
    original task's frame: undo the colour permutation, then the dihedral transform."""
    return inverse_dihedral(apply_color_perm(grid, inverse_color_perm(perm)), k)


# ----------------------------------------------------------------------------- canonical keys


def relabel_first_appearance(values: np.ndarray, num_symbols: int, keep_zero: bool = True) -> np.ndarray:
    """Vectorised canonical relabelling of rows of symbols (N, L) with values 0..num_symbols:
    symbols are renumbered in order of first appearance along each row (1, 2, ... when
    ``keep_zero``, where 0 stays 0; 0, 1, ... otherwise).

    Two rows that differ only by a relabelling of the (non-zero) symbols get the same result,
    a cheap canonical form for "digit relabelling" / "colour permutation" variants.
    """
    v = np.asarray(values, dtype=np.uint8)
    n_rows, length = v.shape
    lo = 1 if keep_zero else 0
    symbols = np.arange(lo, num_symbols + 1)
    first = np.empty((n_rows, len(symbols)), dtype=np.int32)
    rows = np.arange(n_rows)
    for j, s in enumerate(symbols):
        pos = (v == s).argmax(axis=1)
        first[:, j] = np.where(v[rows, pos] == s, pos, length)
    # rank of a symbol = number of symbols seen strictly earlier (absent symbols never occur).
    rank = (first[:, None, :] < first[:, :, None]).sum(axis=2, dtype=np.int32)
    out = np.zeros_like(v)
    for j, s in enumerate(symbols):  # uint8 passes, no (N, L) int64 index array
        out += (v == s) * (rank[:, j] + lo).astype(np.uint8)[:, None]
    return out


_HASH_COEFFS = (np.random.default_rng(20250626).integers(0, 2**63, size=4096, dtype=np.uint64) * np.uint64(2)
                + np.uint64(1))


def row_hashes(rows: np.ndarray, salt: int = 0) -> np.ndarray:
    """64-bit hash per row of a 2-D array of small non-negative ints (N, L) -> uint64 (N,).

    A random linear form with odd coefficients modulo 2**64: two different rows of values
    below 256 collide only with probability ~2**-64, and the computation is vectorised
    (millions of rows per second), so leak checks can use ``np.isin`` on the hashes.
    """
    rows = np.asarray(rows)
    if rows.ndim != 2 or rows.shape[1] > len(_HASH_COEFFS):
        raise ValueError(f"row_hashes needs a 2-D array with at most {len(_HASH_COEFFS)} columns")
    coeffs = _HASH_COEFFS[: rows.shape[1]]
    out = np.full(rows.shape[0], (int(salt) * 0x9E3779B97F4A7C15) % 2**64, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for start in range(0, rows.shape[0], 65536):  # bound the (chunk, L) uint64 temporary
            block = rows[start:start + 65536].astype(np.uint64)
            out[start:start + 65536] += (block * coeffs).sum(axis=1, dtype=np.uint64)
    return out


def sudoku_symmetries(n: int) -> tuple[int, ...]:
    """Dihedral transforms that map an n x n Sudoku to a Sudoku (keep the box shape):
    all 8 for square boxes, only id / rot180 / flips for 6x6 (2x3 boxes)."""
    br, bc = sudoku_box_shape(n)
    return tuple(range(8)) if br == bc else (0, 2, 4, 5)


def sudoku_position_group(n: int) -> np.ndarray:
    """Cell permutations (G, n*n) used for Sudoku variant detection: ``image = flat[:, pos]``.

    For 4x4 and 6x6 this is the whole validity-preserving group (band, row-in-band, stack,
    column-in-stack permutations, plus transpose for square boxes: 128 and 3456 elements),
    so a variant made by any augmentation move is detected. For 9x9 that group has 3.4M
    elements; only the 8 dihedral images are used (cheap), which with digit relabelling
    covers rotations, reflections and relabellings.
    """
    from itertools import permutations, product

    idx = np.arange(n * n).reshape(n, n)
    if n == 9:
        return np.stack([np.ascontiguousarray(dihedral(idx, k)).reshape(-1) for k in sudoku_symmetries(n)])
    br, bc = sudoku_box_shape(n)
    nb, ns = n // br, n // bc
    row_orders = []
    for bands in permutations(range(nb)):
        for inner in product(list(permutations(range(br))), repeat=nb):
            row_orders.append([b * br + inner[j][i] for j, b in enumerate(bands) for i in range(br)])
    col_orders = []
    for stacks in permutations(range(ns)):
        for inner in product(list(permutations(range(bc))), repeat=ns):
            col_orders.append([s * bc + inner[j][i] for j, s in enumerate(stacks) for i in range(bc)])
    rows = np.array(row_orders)
    cols = np.array(col_orders)
    pos = (rows[:, None, :, None] * n + cols[None, :, None, :]).reshape(-1, n * n)
    if br == bc:
        pos = np.concatenate([pos, pos % n * n + pos // n])
    return pos


def sudoku_variant_keys(puzzles: np.ndarray, all_symmetries: bool) -> np.ndarray:
    """Hash keys (uint64) for leak detection of Sudoku clue grids (N, n*n), 0 = blank.

    Each key hashes the puzzle relabelled by first appearance of its clues (so digit
    relabellings share it). With ``all_symmetries`` the keys of every image under
    ``sudoku_position_group`` are returned too (shape (G * N,)); a train puzzle that is a
    digit relabelling and/or such an image of a test puzzle then has its plain key in it.
    """
    puzzles = np.asarray(puzzles)
    n = int(round(np.sqrt(puzzles.shape[1])))
    if not all_symmetries:
        return row_hashes(relabel_first_appearance(puzzles, n))
    return sudoku_image_keys(puzzles, sudoku_position_group(n)).reshape(-1)


def sudoku_image_keys(puzzles: np.ndarray, group: np.ndarray) -> np.ndarray:
    """(N, G) uint64: the key ``row_hashes(relabel_first_appearance(image))`` of every image
    ``puzzles[:, group[g]]``, computed without building the G * N images.

    The key of an image is sum_d rank(d) * S(d): S(d) sums the hash coefficients of the positions the
    cells holding digit d land on, rank(d) (1, 2, ...) orders digits by the first position they land on.
    Both come from per-(puzzle, digit) reductions over the clues, so the cost is G x clues, not
    G x cells x symbols as with explicit images (6x6: 3,456 images per puzzle).
    """
    puzzles = np.asarray(puzzles, dtype=np.uint8)
    num, cells = puzzles.shape
    n = int(round(np.sqrt(cells)))
    group = np.asarray(group)
    landing = np.argsort(group, axis=1).T.astype(np.uint8)  # [i, g]: the position cell i lands on in image g
    coeff_at = _HASH_COEFFS[:cells][landing]  # (cells, G): the hash coefficient cell i gets in image g
    # Row `cells` pads the per-digit cell lists: it lands nowhere (255) and weighs nothing (0).
    landing = np.concatenate([landing, np.full((1, len(group)), 255, np.uint8)])
    coeff_at = np.concatenate([coeff_at, np.zeros((1, len(group)), np.uint64)])
    out = np.zeros((num, len(group)), dtype=np.uint64)
    per_chunk = max(1, 4_000_000 // (len(group) * cells))  # bound the (G, clues) temporaries
    for start in range(0, num, per_chunk):
        p = puzzles[start:start + per_chunk]
        rows, cols = np.nonzero(p)
        if len(rows) == 0:
            continue
        segment = rows * (n + 1) + p[rows, cols]  # (puzzle, digit), row-major order
        order = np.argsort(segment, kind="stable")
        segment, cols = segment[order], cols[order]
        new = np.r_[True, segment[1:] != segment[:-1]]
        starts = np.flatnonzero(new)
        seg_id = np.cumsum(new) - 1
        members = np.full((len(starts), n), cells)  # the cells of each (puzzle, digit), padded
        members[seg_id, np.arange(len(cols)) - starts[seg_id]] = cols
        first = landing[members[:, 0]]  # (segments, G): first position each digit lands on
        weight = coeff_at[members[:, 0]].copy()
        with np.errstate(over="ignore"):
            for k in range(1, n):
                np.minimum(first, landing[members[:, k]], out=first)
                weight += coeff_at[members[:, k]]
        seg_row, seg_digit = np.divmod(segment[starts], n + 1)
        dense_first = np.full((n, len(p), len(group)), 255, dtype=np.uint8)  # 255: digit absent
        dense_first[seg_digit - 1, seg_row] = first
        dense_weight = np.zeros((n, len(p), len(group)), dtype=np.uint64)
        dense_weight[seg_digit - 1, seg_row] = weight
        key = out[start:start + len(p)]
        with np.errstate(over="ignore"):
            for d in range(n):  # an absent digit has weight 0, so its rank does not matter
                rank = np.ones((len(p), len(group)), dtype=np.uint64)
                for other in range(n):
                    rank += dense_first[other] < dense_first[d]
                key += rank * dense_weight[d]
    return out


def maze_variant_keys(questions: np.ndarray, height: int, width: int, all_symmetries: bool) -> np.ndarray:
    """Hash keys (uint64) for leak detection of maze questions (N, H*W): the plain grid, or
    (with ``all_symmetries``) each of its 8 dihedral images, salted with the image shape."""
    grids = np.asarray(questions).reshape(-1, height, width)
    keys = []
    for k in (range(8) if all_symmetries else (0,)):
        img = np.ascontiguousarray(dihedral(grids, k))
        keys.append(row_hashes(img.reshape(len(grids), -1), salt=img.shape[1] * 1000 + img.shape[2]))
    return np.concatenate(keys)


def iter_chunks(seq: Iterable, size: int):
    """Yield lists of up to ``size`` items."""
    chunk = []
    for item in seq:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
