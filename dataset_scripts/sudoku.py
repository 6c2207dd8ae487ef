"""Sudoku reference solver (bitmasks + MRV, counts backtracks), unique-solution puzzle
generator with a difficulty rating, and the vectorised train augmentation of HRM_SPEC §5.

Sizes 4x4 (2x2 boxes), 6x6 (2x3 boxes: 2 rows x 3 columns) and 9x9 (3x3 boxes).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

import numpy as np

from .formats import row_hashes, sudoku_box_shape, sudoku_image_keys, sudoku_position_group


@dataclass
class SolveResult:
    """Outcome of a search: up to ``limit`` solutions (flat digit lists), the number of
    backtracks (dead ends: a cell with no candidate left) and search nodes."""

    solutions: list[list[int]]
    backtracks: int
    nodes: int
    complete: bool = True  # False when ``max_nodes`` stopped the search early (absence of solutions unproven)
    first_backtracks: int | None = None  # backtracks before the first solution (= ``rating``); None: none found


class SudokuSolver:
    """Depth-first search with the minimum-remaining-values heuristic on digit bitmasks.

    The backtrack count of ``solve(grid, limit=1)`` (dead ends met before the first solution,
    digits tried in ascending order) is the difficulty rating used by the generator. It is
    deterministic, so the rating of a puzzle is reproducible.
    """

    def __init__(self, n: int):
        br, bc = sudoku_box_shape(n)
        self.n = n
        self.full = (1 << n) - 1
        self.row_of = [i // n for i in range(n * n)]
        self.col_of = [i % n for i in range(n * n)]
        self.box_of = [(i // n) // br * (n // bc) + (i % n) // bc for i in range(n * n)]
        self.popcount = [bin(m).count("1") for m in range(1 << n)]
        self.digits_of = [[d + 1 for d in range(n) if m >> d & 1] for m in range(1 << n)]

    def solve(self, grid, limit: int = 2, rng: random.Random | None = None,
              max_nodes: int | None = None) -> SolveResult:
        """Search ``grid`` (flat or 2-D, 0 = blank). Stops after ``limit`` solutions.

        With ``rng`` the candidate digits are tried in random order (used to make random full
        grids); otherwise ascending. Inconsistent clues give zero solutions. ``max_nodes`` bounds
        the search (a solvability check must not hang on a pathological grid); the result then
        says ``complete=False``.
        """
        n = self.n
        cells = [int(v) for v in np.asarray(grid).reshape(-1)]
        if len(cells) != n * n:
            raise ValueError(f"grid has {len(cells)} cells; expected {n * n}")
        rows = [0] * n
        cols = [0] * n
        boxes = [0] * n
        row_of, col_of, box_of = self.row_of, self.col_of, self.box_of
        empties = []
        for i, v in enumerate(cells):
            if v == 0:
                empties.append(i)
                continue
            bit = 1 << (v - 1)
            r, c, b = row_of[i], col_of[i], box_of[i]
            if rows[r] & bit or cols[c] & bit or boxes[b] & bit:
                return SolveResult([], 0, 0)
            rows[r] |= bit
            cols[c] |= bit
            boxes[b] |= bit
        digits_of = self.digits_of
        solutions: list[list[int]] = []
        stats = [0, 0, None]  # backtracks, nodes, backtracks at the first solution
        num_empty = len(empties)

        def search(depth: int) -> bool:
            """Returns True when the solution limit is reached (stop everything)."""
            if depth == num_empty:
                solutions.append(list(cells))
                if stats[2] is None:
                    stats[2] = stats[0]
                return len(solutions) >= limit
            stats[1] += 1
            if max_nodes is not None and stats[1] > max_nodes:
                return True
            best_j, best_mask, best_count = self._most_constrained(empties, depth, rows, cols, boxes)
            if best_count == 0:
                stats[0] += 1
                return False
            empties[depth], empties[best_j] = empties[best_j], empties[depth]
            i = empties[depth]
            r, c, b = row_of[i], col_of[i], box_of[i]
            digits = digits_of[best_mask]
            if rng is not None and len(digits) > 1:
                digits = digits[:]
                rng.shuffle(digits)
            for d in digits:
                bit = 1 << (d - 1)
                rows[r] |= bit
                cols[c] |= bit
                boxes[b] |= bit
                cells[i] = d
                stop = search(depth + 1)
                rows[r] ^= bit
                cols[c] ^= bit
                boxes[b] ^= bit
                cells[i] = 0
                if stop:
                    return True
            return False

        search(0)
        return SolveResult(solutions, stats[0], stats[1],
                           complete=max_nodes is None or stats[1] <= max_nodes or len(solutions) >= limit,
                           first_backtracks=stats[2])

    def minimize(self, full, order) -> list[int]:
        """Remove the clues of the complete grid ``full`` in ``order``, each one whenever the puzzle keeps its
        unique solution; returns the minimal puzzle (flat list, 0 = blank).

        The puzzle before a removal has the single solution ``full``, so removing clue i (digit v) keeps it
        unique exactly when no solution puts another digit at i: one existence search restricted to those
        digits, skipped when the other clues already rule them all out. Same result as
        ``count_solutions(puzzle) == 1`` per removal, several times faster.
        """
        n = self.n
        cells = [int(v) for v in full]
        rows, cols, boxes = [self.full] * n, [self.full] * n, [self.full] * n
        row_of, col_of, box_of = self.row_of, self.col_of, self.box_of
        for i in order:
            v = cells[i]
            bit = 1 << (v - 1)
            r, c, b = row_of[i], col_of[i], box_of[i]
            cells[i] = 0
            rows[r] ^= bit
            cols[c] ^= bit
            boxes[b] ^= bit
            others = self.full & ~(rows[r] | cols[c] | boxes[b]) & ~bit
            if others and self._completes(cells, rows, cols, boxes, i, others):
                cells[i] = v  # another solution exists without this clue: keep it
                rows[r] |= bit
                cols[c] |= bit
                boxes[b] |= bit
        return cells

    def _most_constrained(self, empties: list[int], start: int, rows: list[int], cols: list[int],
                          boxes: list[int]) -> tuple[int, int, int]:
        """The minimum-remaining-values choice of both searches: (position in ``empties``, candidate mask,
        candidate count) of the first blank from ``start`` on with the fewest candidates (stops at one)."""
        full, popcount, row_of, col_of, box_of = self.full, self.popcount, self.row_of, self.col_of, self.box_of
        best_j, best_mask, best_count = -1, 0, self.n + 1
        for j in range(start, len(empties)):
            k = empties[j]
            m = full & ~(rows[row_of[k]] | cols[col_of[k]] | boxes[box_of[k]])
            count = popcount[m]
            if count < best_count:
                best_j, best_mask, best_count = j, m, count
                if count <= 1:
                    break
        return best_j, best_mask, best_count

    def _completes(self, cells: list[int], rows: list[int], cols: list[int], boxes: list[int], i: int,
                   digits_mask: int) -> bool:
        """Whether the grid has a solution with one of ``digits_mask`` at the blank cell ``i`` (masks are
        restored before returning)."""
        n, digits_of = self.n, self.digits_of
        row_of, col_of, box_of = self.row_of, self.col_of, self.box_of
        empties = [j for j in range(n * n) if cells[j] == 0 and j != i]
        num_empty = len(empties)

        def search(depth: int) -> bool:
            if depth == num_empty:
                return True
            best_j, best_mask, best_count = self._most_constrained(empties, depth, rows, cols, boxes)
            if best_count == 0:
                return False
            empties[depth], empties[best_j] = empties[best_j], empties[depth]
            k = empties[depth]
            r, c, b = row_of[k], col_of[k], box_of[k]
            for d in digits_of[best_mask]:
                bit = 1 << (d - 1)
                rows[r] |= bit
                cols[c] |= bit
                boxes[b] |= bit
                found = search(depth + 1)
                rows[r] ^= bit
                cols[c] ^= bit
                boxes[b] ^= bit
                if found:
                    return True
            return False

        r, c, b = row_of[i], col_of[i], box_of[i]
        for d in digits_of[digits_mask]:
            bit = 1 << (d - 1)
            rows[r] |= bit
            cols[c] |= bit
            boxes[b] |= bit
            found = search(0)
            rows[r] ^= bit
            cols[c] ^= bit
            boxes[b] ^= bit
            if found:
                return True
        return False

    def count_solutions(self, grid, limit: int = 2) -> int:
        return len(self.solve(grid, limit=limit).solutions)

    def rating(self, grid) -> int:
        """Backtracks of the reference search to the first solution (the difficulty rating)."""
        return self.solve(grid, limit=1).backtracks

    def propagation_rounds(self, grid) -> int:
        """Depth of a puzzle: rounds of parallel single-propagation needed to solve it, -1 if it gets stuck.

        One round fills, all at once, every blank cell with one candidate left (naked single) and
        every digit with one possible place left in a row, column or box (hidden single), each judged
        on the grid as it was at the start of the round. A model that updates all cells in parallel
        needs about this many sequential steps; -1 means singles alone stall and search is needed.
        """
        n, full, popcount, digits_of = self.n, self.full, self.popcount, self.digits_of
        row_of, col_of, box_of = self.row_of, self.col_of, self.box_of
        cells = [int(v) for v in np.asarray(grid).reshape(-1)]
        if len(cells) != n * n:
            raise ValueError(f"grid has {len(cells)} cells; expected {n * n}")
        units = self._units()
        rows, cols, boxes = [0] * n, [0] * n, [0] * n
        for i, v in enumerate(cells):
            if v:
                rows[row_of[i]] |= 1 << (v - 1)
                cols[col_of[i]] |= 1 << (v - 1)
                boxes[box_of[i]] |= 1 << (v - 1)
        blanks = [i for i in range(n * n) if cells[i] == 0]
        cand = [0] * (n * n)
        rounds = 0
        while blanks:
            for i in blanks:
                cand[i] = full & ~(rows[row_of[i]] | cols[col_of[i]] | boxes[box_of[i]])
                if cand[i] == 0:
                    return -1  # contradiction: the clues admit no solution
            fills = {i: digits_of[cand[i]][0] for i in blanks if popcount[cand[i]] == 1}
            for unit in units:  # hidden singles: digits with exactly one place in the unit
                once = twice = 0
                for i in unit:
                    if not cells[i]:
                        twice |= once & cand[i]
                        once |= cand[i]
                single = once & ~twice
                while single:
                    bit = single & -single
                    single ^= bit
                    fills[next(i for i in unit if not cells[i] and cand[i] & bit)] = bit.bit_length()
            if not fills:
                return -1
            for i, d in fills.items():
                cells[i] = d
                rows[row_of[i]] |= 1 << (d - 1)
                cols[col_of[i]] |= 1 << (d - 1)
                boxes[box_of[i]] |= 1 << (d - 1)
            blanks = [i for i in blanks if not cells[i]]
            rounds += 1
        return rounds

    def _units(self) -> list[list[int]]:
        """Rows, then columns, then boxes (box b = ``box_of`` index), as lists of cell indices."""
        if getattr(self, "_unit_cells", None) is None:
            self._unit_cells = self._make_units()
        return self._unit_cells

    def _make_units(self) -> list[list[int]]:
        n = self.n
        rows = [[r * n + c for c in range(n)] for r in range(n)]
        cols = [[r * n + c for r in range(n)] for c in range(n)]
        boxes = [[i for i in range(n * n) if self.box_of[i] == b] for b in range(n)]
        return rows + cols + boxes


def generate_candidate(n: int, rng: random.Random, solver: SudokuSolver | None = None, extra_clues: int = 0
                       ) -> tuple[np.ndarray, np.ndarray]:
    """One random unique-solution puzzle without its rating: ``(puzzle, solution)`` as flat uint8 arrays.

    A random full grid is drawn (random-order DFS), then clues are removed in random order
    whenever the puzzle stays uniquely solvable, giving a minimal puzzle. With
    ``extra_clues`` > 0, a random number 0..extra_clues of solution digits are given back
    (still unique; needed for 4x4, which has only a few dozen essentially different minimal
    puzzles).
    """
    solver = solver or SudokuSolver(n)
    full = solver.solve([0] * (n * n), limit=1, rng=rng).solutions[0]
    order = list(range(n * n))
    rng.shuffle(order)
    puzzle = solver.minimize(full, order)
    if extra_clues:
        blanks = [i for i in range(n * n) if puzzle[i] == 0]
        for i in rng.sample(blanks, min(len(blanks), rng.randint(0, extra_clues))):
            puzzle[i] = full[i]
    return np.array(puzzle, dtype=np.uint8), np.array(full, dtype=np.uint8)


def generate_puzzle(n: int, rng: random.Random, solver: SudokuSolver | None = None, extra_clues: int = 0
                    ) -> tuple[np.ndarray, np.ndarray, int]:
    """One random unique-solution puzzle: ``(puzzle, solution, rating)`` as flat int arrays
    (``generate_candidate`` plus the backtrack rating of the reference solver)."""
    solver = solver or SudokuSolver(n)
    puzzle, full = generate_candidate(n, rng, solver, extra_clues)
    return puzzle, full, solver.rating(puzzle)


# ----------------------------------------------------------------------------- depth buckets


@dataclass(frozen=True)
class DepthBucket:
    """A range of propagation rounds (``rounds`` column): ``lo..hi`` inclusive, ``hi`` None = no upper bound
    (puzzles that need search excluded); the bucket ``search`` holds rounds -1 (singles stall)."""

    name: str
    lo: int
    hi: int | None

    def contains(self, rounds: np.ndarray) -> np.ndarray:
        rounds = np.asarray(rounds)
        if self.lo < 0:
            return rounds == -1
        return (rounds >= self.lo) & (True if self.hi is None else rounds <= self.hi)


SEARCH_BUCKET = "search"


def parse_depth_buckets(spec: str | list[DepthBucket]) -> list[DepthBucket]:
    """Parse a bucket spec such as ``"1-2,3,4,5,6,7+,search"`` into disjoint buckets.

    Items: ``A`` (exactly A rounds), ``A-B`` (A..B), ``A+`` (A or more, search excluded) and ``search``
    (singles stall: rounds -1). Raises ``ValueError`` naming the first malformed or overlapping item.
    """
    if not isinstance(spec, str):
        return list(spec)
    buckets: list[DepthBucket] = []
    for item in (part.strip() for part in spec.split(",")):
        m = re.fullmatch(r"(\d+)(?:-(\d+)|(\+))?", item)
        if item == SEARCH_BUCKET:
            bucket = DepthBucket(item, -1, -1)
        elif m:
            lo = int(m.group(1))
            hi = None if m.group(3) else int(m.group(2)) if m.group(2) else lo
            if lo < 1 or (hi is not None and hi < lo):
                raise ValueError(f"depth bucket {item!r} in {spec!r}: rounds start at 1 and a range must be "
                                 "ascending (A-B with 1 <= A <= B)")
            bucket = DepthBucket(item, lo, hi)
        else:
            raise ValueError(f"depth bucket {item!r} in {spec!r} is not A, A-B, A+ or 'search' "
                             "(example: \"1-2,3,4,5,6,7+,search\")")
        for other in buckets:
            if _overlap(bucket, other):
                raise ValueError(f"depth buckets {other.name!r} and {bucket.name!r} in {spec!r} overlap")
        buckets.append(bucket)
    return buckets


def _overlap(a: DepthBucket, b: DepthBucket) -> bool:
    if (a.lo < 0) != (b.lo < 0):
        return False
    inf = float("inf")
    return max(a.lo, b.lo) <= min(inf if a.hi is None else a.hi, inf if b.hi is None else b.hi)


def depth_bucket_index(rounds: np.ndarray, spec: str | list[DepthBucket]) -> np.ndarray:
    """Index (int64) of the bucket of each ``rounds`` value, -1 where no bucket holds it."""
    rounds = np.asarray(rounds)
    out = np.full(rounds.shape, -1, dtype=np.int64)
    for k, bucket in enumerate(parse_depth_buckets(spec)):
        out[bucket.contains(rounds)] = k
    return out


def depth_bucket_names(rounds: np.ndarray, spec: str | list[DepthBucket]) -> np.ndarray:
    """Bucket name of each ``rounds`` value (``""`` where none holds it): report accuracy per bucket with
    ``spec`` = the dataset's ``depth_buckets`` (``hrm_dataset.json``)."""
    names = np.array([b.name for b in parse_depth_buckets(spec)] + [""], dtype=object)
    return names[depth_bucket_index(rounds, spec)]


# ----------------------------------------------------------------------------- generation in chunks


@dataclass(frozen=True)
class RoundsFilter:
    """Which propagation depths a split keeps: ``lo``/``hi`` as ``--min-rounds``/``--max-rounds`` (None = no
    bound; a puzzle that needs search counts as deeper than any bound), and, when ``buckets`` is given, only
    depths inside one of them."""

    lo: int | None = None
    hi: int | None = None
    buckets: tuple[DepthBucket, ...] | None = None

    def accepts(self, rounds: int) -> bool:
        if self.lo is not None and 0 <= rounds < self.lo:
            return False
        if self.hi is not None and not 0 <= rounds <= self.hi:
            return False
        return self.buckets is None or self.bucket_of(rounds) >= 0

    def bucket_of(self, rounds: int) -> int:
        """Index of the bucket holding ``rounds`` (0 without buckets), -1 if none."""
        if self.buckets is None:
            return 0
        return next((k for k, b in enumerate(self.buckets) if b.contains(rounds)), -1)


_SOLVERS: dict[int, SudokuSolver] = {}


def rate_puzzles(puzzles: np.ndarray) -> np.ndarray:
    """(N,) int32 ratings (``SudokuSolver.rating``) of generated puzzles, each re-checked by the reference search
    to have exactly one solution (ValueError otherwise: a generator bug, not a data problem)."""
    puzzles = np.asarray(puzzles)
    if len(puzzles) == 0:
        return np.zeros(0, dtype=np.int32)
    n = int(round(np.sqrt(puzzles.shape[1])))
    solver = _SOLVERS.setdefault(n, SudokuSolver(n))
    ratings = np.empty(len(puzzles), dtype=np.int32)
    for i, puzzle in enumerate(puzzles):
        result = solver.solve(puzzle, limit=2)  # the rating is the backtracks before the first of them
        if len(result.solutions) != 1:
            raise ValueError(f"generator bug: a generated {n}x{n} puzzle has {len(result.solutions)} solutions")
        ratings[i] = result.first_backtracks
    return ratings


def generate_chunk(n: int, seed: str, attempts: int, extra_clues: int, rounds_filter: RoundsFilter,
                   min_rating: int | None = 0) -> dict:
    """``attempts`` generator draws from ``random.Random(seed)``, keeping the puzzles ``rounds_filter`` and
    ``min_rating`` accept (rated and re-checked by ``rate_puzzles``; ``min_rating=None``: neither, ratings -1,
    for a caller that rates only the puzzles it keeps).

    A chunk depends only on its arguments, so a build that draws chunk seeds in order and merges their
    results in order is the same for any number of worker processes. Returns the kept ``puzzles`` /
    ``solutions`` (k, n*n) uint8, ``rounds`` / ``ratings`` (k,) int32, ``signatures`` (k,) uint64
    (``variant_signatures``), ``attempts`` and ``rounds_seen`` (depth -> count over all draws).
    """
    solver = _SOLVERS.setdefault(n, SudokuSolver(n))
    rng = random.Random(seed)
    kept: list[tuple[np.ndarray, np.ndarray, int, int]] = []
    rounds_seen: dict[int, int] = {}
    for _ in range(attempts):
        puzzle, solution = generate_candidate(n, rng, solver, extra_clues)
        depth = solver.propagation_rounds(puzzle)
        rounds_seen[depth] = rounds_seen.get(depth, 0) + 1
        if not rounds_filter.accepts(depth):
            continue
        rating = -1 if min_rating is None else int(rate_puzzles(puzzle[None])[0])
        if min_rating is None or rating >= min_rating:
            kept.append((puzzle, solution, depth, rating))
    puzzles = np.stack([k[0] for k in kept]) if kept else np.zeros((0, n * n), np.uint8)
    return {"puzzles": puzzles, "solutions": np.stack([k[1] for k in kept]) if kept else puzzles.copy(),
            "rounds": np.array([k[2] for k in kept], np.int32), "ratings": np.array([k[3] for k in kept], np.int32),
            "signatures": variant_signatures(puzzles), "attempts": attempts, "rounds_seen": rounds_seen}


def variant_signatures(puzzles: np.ndarray) -> np.ndarray:
    """(N,) uint64 hash of quantities every relabelling / ``sudoku_position_group`` image of a puzzle shares:
    the sorted multiset, over its clues, of (clues in its row and column as an unordered pair, clues in its
    box, clues with its digit). Equal signatures are necessary, not sufficient, for two puzzles to be
    variants of each other: a cheap filter in front of the exact canonical key."""
    puzzles = np.asarray(puzzles)
    num = len(puzzles)
    n = int(round(np.sqrt(puzzles.shape[1]))) if num else 1
    if num == 0:
        return np.zeros(0, dtype=np.uint64)
    br, bc = sudoku_box_shape(n)
    grid = puzzles.reshape(num, n, n).astype(np.int64)
    clue = grid > 0
    in_row = np.broadcast_to(clue.sum(2, keepdims=True), grid.shape)
    in_col = np.broadcast_to(clue.sum(1, keepdims=True), grid.shape)
    boxes = clue.reshape(num, n // br, br, n // bc, bc).sum((2, 4))
    in_box = np.repeat(np.repeat(boxes, br, axis=1), bc, axis=2)
    per_digit = np.stack([(grid == d).sum((1, 2)) for d in range(n + 1)], axis=1)
    with_digit = np.take_along_axis(per_digit, grid.reshape(num, -1), axis=1).reshape(grid.shape)
    base = n + 1
    code = ((np.minimum(in_row, in_col) * base + np.maximum(in_row, in_col)) * base + in_box) * base + with_digit
    code = np.sort(np.where(clue, code + 1, 0).reshape(num, -1), axis=1)
    return row_hashes(code)


def canonical_keys(puzzles: np.ndarray) -> np.ndarray:
    """(N,) uint64: one key per class of puzzles equal up to digit relabelling and ``sudoku_position_group``
    (the smallest of the keys of its images)."""
    puzzles = np.asarray(puzzles)
    if len(puzzles) == 0:
        return np.zeros(0, dtype=np.uint64)
    n = int(round(np.sqrt(puzzles.shape[1])))
    return sudoku_image_keys(puzzles, sudoku_position_group(n)).min(axis=1)


class VariantIndex:
    """The puzzles accepted so far, up to digit relabelling and ``sudoku_position_group``.

    ``add`` computes exact canonical keys only for puzzles whose ``variant_signatures`` collide with an
    accepted one (rare for 6x6 and 9x9), so deduplicating tens of thousands of puzzles costs almost nothing.
    """

    def __init__(self):
        self._by_signature: dict[int, list[list]] = {}

    def add(self, puzzle: np.ndarray, signature: int) -> bool:
        """Accept ``puzzle`` unless it is a variant of an accepted puzzle; True when accepted."""
        entries = self._by_signature.get(int(signature))
        if entries is None:
            self._by_signature[int(signature)] = [[puzzle, None]]
            return True
        key = int(canonical_keys(puzzle[None])[0])
        for entry in entries:
            if entry[1] is None:
                entry[1] = int(canonical_keys(entry[0][None])[0])
            if entry[1] == key:
                return False
        entries.append([puzzle, key])
        return True


# ----------------------------------------------------------------------------- augmentation


def _random_perms(rng: np.random.Generator, shape: tuple[int, ...], k: int) -> np.ndarray:
    """Independent random permutations of range(k) along a new last axis."""
    return np.argsort(rng.random(shape + (k,)), axis=-1)


def sudoku_augment_transform(n: int, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``count`` validity-preserving Sudoku transforms.

    Returns ``(positions, digit_map)``: ``positions`` (count, n*n) gives for every output cell
    the input cell it reads, ``digit_map`` (count, n+1) maps digits (0 stays 0). Moves, per
    HRM_SPEC §5 generalised to box shape (br, bc): digit permutation; band permutation and
    row permutation within each band; stack permutation and column permutation within each
    stack; transpose with p = 0.5 only when boxes are square (for 6x6, 2x3 boxes would
    become 3x2, so no transpose).
    """
    br, bc = sudoku_box_shape(n)
    digit_map = np.concatenate([np.zeros((count, 1), np.int64), _random_perms(rng, (count,), n) + 1], axis=1)
    bands = _random_perms(rng, (count,), n // br)
    in_band = _random_perms(rng, (count, n // br), br)
    row_perm = (bands[:, :, None] * br + np.take_along_axis(in_band, bands[:, :, None], axis=1)).reshape(count, n)
    stacks = _random_perms(rng, (count,), n // bc)
    in_stack = _random_perms(rng, (count, n // bc), bc)
    col_perm = (stacks[:, :, None] * bc + np.take_along_axis(in_stack, stacks[:, :, None], axis=1)).reshape(count, n)
    positions = row_perm[:, :, None] * n + col_perm[:, None, :]
    if br == bc:
        flip = rng.random(count) < 0.5
        # Reading (r, c) from the transposed grid = reading (c, r) from the original.
        positions = np.where(flip[:, None, None], positions % n * n + positions // n, positions)
    return positions.reshape(count, n * n), digit_map


def augment_sudoku(puzzles: np.ndarray, solutions: np.ndarray, source_rows: np.ndarray,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Apply one random transform to each listed row: returns augmented (puzzles, solutions)
    for ``puzzles[source_rows]`` (digits, 0 = blank), fully vectorised."""
    n = int(round(np.sqrt(puzzles.shape[1])))
    positions, digit_map = sudoku_augment_transform(n, len(source_rows), rng)
    p = np.take_along_axis(puzzles[source_rows].astype(np.int64), positions, axis=1)
    s = np.take_along_axis(solutions[source_rows].astype(np.int64), positions, axis=1)
    p = np.take_along_axis(digit_map, p, axis=1).astype(np.uint8)
    s = np.take_along_axis(digit_map, s, axis=1).astype(np.uint8)
    return p, s
