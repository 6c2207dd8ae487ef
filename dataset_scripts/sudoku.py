"""Sudoku reference solver (bitmasks + MRV, counts backtracks), unique-solution puzzle
generator with a difficulty rating, and the vectorised train augmentation of HRM_SPEC §5.

Sizes 4x4 (2x2 boxes), 6x6 (2x3 boxes: 2 rows x 3 columns) and 9x9 (3x3 boxes).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from .formats import sudoku_box_shape


@dataclass
class SolveResult:
    """Outcome of a search: up to ``limit`` solutions (flat digit lists), the number of
    backtracks (dead ends: a cell with no candidate left) and search nodes."""

    solutions: list[list[int]]
    backtracks: int
    nodes: int
    complete: bool = True  # False when ``max_nodes`` stopped the search early (absence of solutions unproven)


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
        full, popcount, digits_of = self.full, self.popcount, self.digits_of
        solutions: list[list[int]] = []
        stats = [0, 0]  # backtracks, nodes
        num_empty = len(empties)

        def search(depth: int) -> bool:
            """Returns True when the solution limit is reached (stop everything)."""
            if depth == num_empty:
                solutions.append(list(cells))
                return len(solutions) >= limit
            stats[1] += 1
            if max_nodes is not None and stats[1] > max_nodes:
                return True
            best_j, best_mask, best_count = -1, 0, n + 1
            for j in range(depth, num_empty):
                i = empties[j]
                m = full & ~(rows[row_of[i]] | cols[col_of[i]] | boxes[box_of[i]])
                cnt = popcount[m]
                if cnt < best_count:
                    best_j, best_mask, best_count = j, m, cnt
                    if cnt <= 1:
                        break
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
                           complete=max_nodes is None or stats[1] <= max_nodes or len(solutions) >= limit)

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
        n, full = self.n, self.full
        cells = [int(v) for v in np.asarray(grid).reshape(-1)]
        if len(cells) != n * n:
            raise ValueError(f"grid has {len(cells)} cells; expected {n * n}")
        units = self._units()
        rounds = 0
        while 0 in cells:
            used = [0] * len(units)
            for u, unit in enumerate(units):
                for i in unit:
                    if cells[i]:
                        used[u] |= 1 << (cells[i] - 1)
            cand = [0 if cells[i] else full & ~(used[self.row_of[i]] | used[n + self.col_of[i]] |
                                                used[2 * n + self.box_of[i]]) for i in range(n * n)]
            if any(cells[i] == 0 and cand[i] == 0 for i in range(n * n)):
                return -1  # contradiction: the clues admit no solution
            fills = {i: self.digits_of[cand[i]][0] for i in range(n * n) if self.popcount[cand[i]] == 1}
            for unit in units:
                for d in range(n):
                    places = [i for i in unit if cand[i] >> d & 1]
                    if len(places) == 1:
                        fills[places[0]] = d + 1
            if not fills:
                return -1
            for i, d in fills.items():
                cells[i] = d
            rounds += 1
        return rounds

    def _units(self) -> list[list[int]]:
        """Rows, then columns, then boxes (box b = ``box_of`` index), as lists of cell indices."""
        n = self.n
        rows = [[r * n + c for c in range(n)] for r in range(n)]
        cols = [[r * n + c for r in range(n)] for c in range(n)]
        boxes = [[i for i in range(n * n) if self.box_of[i] == b] for b in range(n)]
        return rows + cols + boxes


def generate_puzzle(n: int, rng: random.Random, solver: SudokuSolver | None = None, extra_clues: int = 0
                    ) -> tuple[np.ndarray, np.ndarray, int]:
    """One random unique-solution puzzle: ``(puzzle, solution, rating)`` as flat int arrays.

    A random full grid is drawn (random-order DFS), then clues are removed in random order
    whenever the puzzle stays uniquely solvable, giving a minimal puzzle. With
    ``extra_clues`` > 0, a random number 0..extra_clues of solution digits are given back
    (still unique; needed for 4x4, which has only a few dozen essentially different minimal
    puzzles).
    """
    solver = solver or SudokuSolver(n)
    full = solver.solve([0] * (n * n), limit=1, rng=rng).solutions[0]
    puzzle = list(full)
    order = list(range(n * n))
    rng.shuffle(order)
    for i in order:
        keep = puzzle[i]
        puzzle[i] = 0
        if solver.count_solutions(puzzle, limit=2) != 1:
            puzzle[i] = keep
    if extra_clues:
        blanks = [i for i in range(n * n) if puzzle[i] == 0]
        for i in rng.sample(blanks, min(len(blanks), rng.randint(0, extra_clues))):
            puzzle[i] = full[i]
    rating = solver.rating(puzzle)
    return np.array(puzzle, dtype=np.uint8), np.array(full, dtype=np.uint8), rating


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
