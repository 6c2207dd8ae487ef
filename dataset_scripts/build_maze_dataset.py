"""Build an HRM maze dataset in the Hub layout (parquet shards + card + hrm_dataset.json).

Sources:
  --source generate   offline generator: random maze (depth-first carving plus a few extra
                      openings so that paths can loop), random start S and goal G with a BFS
                      shortest path of at least --min-path-length moves (the hardness filter)
                      and, by default, a unique shortest path (so the label is well defined).
  --source csv        the `sapientinc/maze-30x30-hard-1k` CSV format (train.csv / test.csv with
                      columns source, question, answer, rating; characters '# SGo'), from a
                      local folder or a Hub dataset repo id (--csv-dir).

Tokens: PAD 0, '#' 1, ' ' 2, 'S' 3, 'G' 4, 'o' 5; labels = the solved grid (path marked 'o').

Example:
  python dataset_scripts/build_maze_dataset.py --output-dir data/maze-15 --size 15 \\
      --num-train 1000 --num-test 200 --min-path-length 30 --dihedral-aug
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from collections import deque

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import pyarrow as pa

from dataset_scripts.common import (set_build_command, Reporter, SplitWriter, base_columns, find_leaks, finish,
                                    first_duplicates, metadata_dict, run_cli, write_card, write_metadata, builder_parser, MAX_REPORTED)
from dataset_scripts.formats import (MAZE_CHARS, MAZE_GOAL, MAZE_OPEN, MAZE_PATH, MAZE_START, MAZE_TOKEN_NAMES,
                                     MAZE_WALL, check_maze_solution, dihedral, maze_variant_keys)



#: Carved mazes per window when the generator judges whether its acceptance rate can still reach the count.
RATE_WINDOW = 2000


def build_parser() -> argparse.ArgumentParser:
    p = builder_parser(__doc__)
    p.add_argument("--source", choices=("generate", "csv"), default="generate")
    p.add_argument("--size", type=int, default=30, help="maze side for --source generate (>= 5)")
    p.add_argument("--num-train", type=int, default=1000)
    p.add_argument("--num-test", type=int, default=1000)
    p.add_argument("--min-path-length", type=int, default=0,
                   help="hardness filter: shortest S->G path must have at least this many moves "
                        "(maze-30x30-hard uses > 110); the depth knob")
    p.add_argument("--max-path-length", type=int, default=None,
                   help="depth knob: shortest S->G path must have at most this many moves")
    p.add_argument("--loop-fraction", type=float, default=0.02,
                   help="fraction of remaining inner walls opened after carving (creates alternative routes)")
    p.add_argument("--allow-multiple-shortest", action="store_true",
                   help="generator: do not require the shortest path to be unique")
    p.add_argument("--csv-dir", help="folder with train.csv/test.csv, or a Hub dataset repo id")
    p.add_argument("--subsample-size", type=int, default=None, help="seeded subsample of the CSV train split")
    p.add_argument("--dihedral-aug", action="store_true",
                   help="add the 7 other dihedral images of every train maze (square mazes only)")
    p.add_argument("--license", default=None)
    return p


# ----------------------------------------------------------------------------- generator


def carve_maze(size: int, loop_fraction: float, rng: random.Random) -> np.ndarray:
    """Random maze as a token grid (walls 1, open 2): depth-first carving on the odd cells,
    then ``loop_fraction`` of the remaining walls between two cells opened."""
    grid = np.full((size, size), MAZE_WALL, dtype=np.uint8)
    cells = [(r, c) for r in range(1, size - 1, 2) for c in range(1, size - 1, 2)]
    start = rng.choice(cells)
    grid[start] = MAZE_OPEN
    stack = [start]
    while stack:
        r, c = stack[-1]
        nbrs = [(r + dr, c + dc) for dr, dc in ((-2, 0), (2, 0), (0, -2), (0, 2))
                if 0 < r + dr < size - 1 and 0 < c + dc < size - 1 and grid[r + dr, c + dc] == MAZE_WALL]
        if not nbrs:
            stack.pop()
            continue
        nr, nc = rng.choice(nbrs)
        grid[(r + nr) // 2, (c + nc) // 2] = MAZE_OPEN
        grid[nr, nc] = MAZE_OPEN
        stack.append((nr, nc))
    # Walls separating two open cells horizontally or vertically.
    walls = [(r, c) for r in range(1, size - 1) for c in range(1, size - 1) if grid[r, c] == MAZE_WALL and (
        (grid[r - 1, c] == MAZE_OPEN and grid[r + 1, c] == MAZE_OPEN and r % 2 == 0) or
        (grid[r, c - 1] == MAZE_OPEN and grid[r, c + 1] == MAZE_OPEN and c % 2 == 0))]
    for w in rng.sample(walls, int(round(loop_fraction * len(walls)))):
        grid[w] = MAZE_OPEN
    return grid


def bfs(grid: np.ndarray, src: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """BFS from ``src``: (distance, number of shortest paths capped at 2), -1 = unreachable."""
    h, w = grid.shape
    dist = np.full((h, w), -1, dtype=np.int32)
    ways = np.zeros((h, w), dtype=np.int8)
    dist[src] = 0
    ways[src] = 1
    q = deque([src])
    while q:
        r, c = q.popleft()
        d = dist[r, c] + 1
        for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if 0 <= rr < h and 0 <= cc < w and grid[rr, cc] != MAZE_WALL:
                if dist[rr, cc] < 0:
                    dist[rr, cc] = d
                    ways[rr, cc] = ways[r, c]
                    q.append((rr, cc))
                elif dist[rr, cc] == d:
                    ways[rr, cc] = min(2, ways[rr, cc] + ways[r, c])
    return dist, ways


def shortest_path(dist: np.ndarray, goal: tuple[int, int]) -> list[tuple[int, int]]:
    """Cells strictly between source and goal on a shortest path (walking distances down)."""
    path = []
    r, c = goal
    h, w = dist.shape
    while dist[r, c] > 1:
        for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if 0 <= rr < h and 0 <= cc < w and dist[rr, cc] == dist[r, c] - 1:
                r, c = rr, cc
                break
        path.append((r, c))
    return path[::-1]


def max_possible_path(size: int) -> int:
    """Upper bound on a shortest path in a generated size x size maze: every move enters a new open
    cell, and only the (size - 2)^2 inner cells can be open."""
    return (size - 2) ** 2 - 1


def try_maze(size: int, min_path: int, loop_fraction: float, unique: bool, rng: random.Random,
             max_path: int | None = None) -> tuple[np.ndarray, np.ndarray, int] | None:
    """One carved maze with a random S and a random G whose shortest path has min_path..max_path
    moves (unique if asked): ``(question, answer, path_length)``, or None when this maze has no such G."""
    grid = carve_maze(size, loop_fraction, rng)
    open_cells = np.argwhere(grid == MAZE_OPEN)
    s = tuple(int(x) for x in open_cells[rng.randrange(len(open_cells))])
    dist, ways = bfs(grid, s)
    ok = (dist >= max(1, min_path)) & ((ways == 1) if unique else True)
    if max_path is not None:
        ok &= dist <= max_path
    cand = np.argwhere(ok)
    if len(cand) == 0:
        return None
    g = tuple(int(x) for x in cand[rng.randrange(len(cand))])
    q = grid.copy()
    q[s], q[g] = MAZE_START, MAZE_GOAL
    a = q.copy()
    for cell in shortest_path(dist, g):
        a[cell] = MAZE_PATH
    return q, a, int(dist[g])


def generate_maze(size: int, min_path: int, loop_fraction: float, unique: bool, rng: random.Random,
                  max_tries: int = 200, max_path: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """One maze: ``(question, answer, path_length)`` token grids, min_path <= shortest path <= max_path."""
    for _ in range(max_tries):
        maze = try_maze(size, min_path, loop_fraction, unique, rng, max_path)
        if maze is not None:
            return maze
    raise ValueError(f"no {size}x{size} maze with a shortest path of {_range_text(min_path, max_path)} moves found "
                     f"in {max_tries} tries; widen the path-length range or change --size")


def _range_text(min_path: int, max_path: int | None) -> str:
    return f"{max(1, min_path)}..{max_path}" if max_path is not None else f">= {max(1, min_path)}"


def check_path_range(size: int, min_path: int, max_path: int | None) -> None:
    """ValueError when no generated maze of this size can have a shortest path in the range."""
    most = max_possible_path(size)
    if min_path > most:
        raise ValueError(f"--min-path-length {min_path} is more than a {size}x{size} maze can have "
                         f"(at most {most} moves); raise --size")
    if max_path is not None and max_path < 1:
        raise ValueError(f"--max-path-length must be at least 1, got {max_path}")
    if max_path is not None and max_path < min_path:
        raise ValueError(f"--max-path-length {max_path} is below --min-path-length {min_path}")


def generate_mazes(count: int, args, rng: random.Random, seen: set[int], report: Reporter, label: str):
    """``count`` distinct mazes (no two dihedral images of each other, none in ``seen``) with a shortest path
    in the requested range. Fails fast with a report of what was found when the rate of the first attempts
    shows the attempt budget cannot be enough (a range that few or no mazes reach, or too few distinct mazes)."""
    qs, ans, lens = [], [], []
    attempts = dupes = misses = 0
    budget, probe = 100 * count + 2000, RATE_WINDOW
    window_start = 0  # accepted mazes when the current window of attempts began
    wanted = _range_text(args.min_path_length, args.max_path_length)

    def give_up(reason: str) -> ValueError:
        return ValueError(f"{label}: {reason}; found {len(qs)} of {count} distinct {args.size}x{args.size} mazes "
                          f"with a shortest path of {wanted} moves in {attempts} carved mazes ({misses} had no such "
                          f"goal, {dupes} were duplicates or dihedral images); ask for fewer mazes, a wider "
                          "path-length range or another --size")

    while len(qs) < count:
        if attempts >= budget:
            raise give_up("attempt budget spent")
        if attempts and attempts % probe == 0:  # the rate falls as the distinct mazes run out: judge the latest window
            if len(qs) == window_start or (count - len(qs)) * probe > (len(qs) - window_start) * (budget - attempts):
                raise give_up(f"at the rate of the last {probe} attempts ({len(qs) - window_start} accepted) the "
                              f"budget of {budget} attempts cannot be enough")
            window_start = len(qs)
        attempts += 1
        maze = try_maze(args.size, args.min_path_length, args.loop_fraction, not args.allow_multiple_shortest, rng,
                        args.max_path_length)
        if maze is None:
            misses += 1
            continue
        q, a, n = maze
        key = int(maze_variant_keys(q.reshape(1, -1), args.size, args.size, all_symmetries=False)[0])
        if key in seen:
            dupes += 1
            continue
        seen.update(int(k) for k in maze_variant_keys(q.reshape(1, -1), args.size, args.size, all_symmetries=True))
        qs.append(q.reshape(-1))
        ans.append(a.reshape(-1))
        lens.append(n)
    report(f"{label}: {count} mazes from {attempts} carved ({dupes} duplicates/dihedral variants rejected, "
           f"{misses} without a goal at {wanted} moves)")
    return np.stack(qs), np.stack(ans), np.asarray(lens, dtype=np.int32)


def _histogram(lengths: np.ndarray) -> dict[str, int]:
    values, counts = np.unique(lengths, return_counts=True)
    return {str(int(v)): int(c) for v, c in zip(values, counts)}


def depth_section(train_lengths: np.ndarray, test_lengths: np.ndarray) -> str:
    """Card section with the depth (shortest-path length) distribution of both splits, before augmentation."""
    tr, te = _histogram(train_lengths), _histogram(test_lengths)
    keys = sorted(set(tr) | set(te), key=int)
    return "\n".join(["## Depth distribution", "",
                      "Moves on the shortest S->G path (`path_length` column), counts of mazes before augmentation.",
                      "", "| path length | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys),
                      "| train | " + " | ".join(str(tr.get(k, 0)) for k in keys) + " |",
                      "| test | " + " | ".join(str(te.get(k, 0)) for k in keys) + " |"])


# ----------------------------------------------------------------------------- CSV


def read_maze_csv(path: str, label: str, report: Reporter):
    """Read and validate a maze CSV: returns ``(questions, answers, path_lengths, side)``.

    Invalid rows (field count, length not a square / other rows' length, unknown character,
    not exactly one S and G, answer not a shortest path) are reported with their line and skipped.
    """
    import csv

    lut = np.zeros(256, dtype=np.uint8)
    for i, ch in enumerate(MAZE_CHARS):
        lut[ord(ch)] = i + 1
    qs, ans, lens, bad = [], [], [], []
    side = None
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or "question" not in header or "answer" not in header:
            raise ValueError(f"{path}: header must contain question and answer, got {header}")
        qi, ai = header.index("question"), header.index("answer")
        for row in reader:
            line = reader.line_num
            if len(row) != len(header):
                bad.append(f"line {line}: {len(row)} fields, expected {len(header)}")
                continue
            q, a = row[qi], row[ai]
            if side is None:
                side = int(round(len(q) ** 0.5))
            if len(q) != side * side or len(a) != side * side:
                bad.append(f"line {line}: question/answer have {len(q)}/{len(a)} characters, expected {side * side}")
                continue
            unknown = set(q + a) - set(MAZE_CHARS)
            if unknown:
                bad.append(f"line {line}: unknown character(s) {sorted(unknown)}")
                continue
            qg = lut[np.frombuffer(q.encode("ascii"), np.uint8)].reshape(side, side)
            ag = lut[np.frombuffer(a.encode("ascii"), np.uint8)].reshape(side, side)
            try:
                n = check_maze_solution(qg, ag)
            except ValueError as exc:
                bad.append(f"line {line}: {exc}")
                continue
            qs.append(qg.reshape(-1))
            ans.append(ag.reshape(-1))
            lens.append(n)
    for b in bad[:MAX_REPORTED]:
        report(f"{label}: skipped {b}", always=True)
    if bad:
        report(f"{label}: skipped {len(bad)} malformed row(s) in {path}", always=True)
    if not qs:
        raise ValueError(f"{path}: no valid maze rows")
    return np.stack(qs), np.stack(ans), np.asarray(lens, np.int32), side


def _csv_path(csv_dir: str, name: str) -> str:
    from dataset_scripts.build_sudoku_dataset import _csv_path as sudoku_csv_path

    return sudoku_csv_path(csv_dir, name)


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    set_build_command("dataset_scripts.build_maze_dataset", argv)
    report = Reporter(args.quiet)
    if args.source == "generate":
        if args.size < 5:
            raise ValueError("--size must be at least 5")
        check_path_range(args.size, args.min_path_length, args.max_path_length)
        seen: set[int] = set()
        te_q, te_a, te_n = generate_mazes(args.num_test, args, random.Random(f"{args.seed}-test"), seen, report, "test")
        tr_q, tr_a, tr_n = generate_mazes(args.num_train, args, random.Random(f"{args.seed}-train"), seen, report,
                                          "train")
        side = args.size
        source_text = (f"Generated offline by `dataset_scripts/build_maze_dataset.py` (seed {args.seed}): {side}x{side} "
                       f"mazes carved depth-first with {args.loop_fraction:.0%} of the remaining inner walls opened, "
                       f"random S and G with a BFS shortest path of {_range_text(args.min_path_length, args.max_path_length)} moves"
                       + ("" if args.allow_multiple_shortest else " and a unique shortest path") + ".")
        license = args.license or "apache-2.0"
        license_note = "Generated by the hrm project's code; released under the project's licence."
    else:
        if not args.csv_dir:
            raise ValueError("--source csv needs --csv-dir (a folder with train.csv/test.csv or a Hub repo id)")
        tr_q, tr_a, tr_n, side = read_maze_csv(_csv_path(args.csv_dir, "train.csv"), "train", report)
        te_q, te_a, te_n, side_te = read_maze_csv(_csv_path(args.csv_dir, "test.csv"), "test", report)
        if side_te != side:
            raise ValueError(f"train mazes are {side}x{side} but test mazes are {side_te}x{side_te}")
        if args.min_path_length or args.max_path_length is not None:
            top = args.max_path_length if args.max_path_length is not None else np.inf
            k1 = (tr_n >= args.min_path_length) & (tr_n <= top)
            k2 = (te_n >= args.min_path_length) & (te_n <= top)
            tr_q, tr_a, tr_n, te_q, te_a, te_n = tr_q[k1], tr_a[k1], tr_n[k1], te_q[k2], te_a[k2], te_n[k2]
        if args.subsample_size is not None and args.subsample_size < len(tr_q):
            sel = np.sort(np.random.default_rng(args.seed).choice(len(tr_q), args.subsample_size, replace=False))
            tr_q, tr_a, tr_n = tr_q[sel], tr_a[sel], tr_n[sel]
        source_text = (f"Converted from the CSV files of `{args.csv_dir}` (maze-30x30-hard-1k format). Every answer "
                       "was re-checked to be a shortest S->G path. --min-path-length "
                       f"{args.min_path_length}; train subsample {args.subsample_size or 'all'} (seed {args.seed}).")
        license = args.license or "other"
        license_note = f"Inherits the licence of the source dataset `{args.csv_dir}`; check its card."
    if len(tr_q) == 0 or len(te_q) == 0:
        raise ValueError("no mazes left in train or test")
    # Every answer must be a shortest path (generated ones too: an independent re-check).
    for label, qs, ans in (("train", tr_q, tr_a), ("test", te_q, te_a)):
        for i in range(len(qs)):
            check_maze_solution(qs[i].reshape(side, side), ans[i].reshape(side, side))

    test_keys = maze_variant_keys(te_q, side, side, all_symmetries=True)
    leak = find_leaks(maze_variant_keys(tr_q, side, side, all_symmetries=False), test_keys)
    if leak.any():
        report(f"train: dropped {int(leak.sum())} maze(s) that are test mazes or their dihedral images "
               f"(first: train maze {int(np.flatnonzero(leak)[0])})", always=True)
        tr_q, tr_a, tr_n = tr_q[~leak], tr_a[~leak], tr_n[~leak]
    dup_test = int(first_duplicates(maze_variant_keys(te_q, side, side, all_symmetries=False)).sum())

    os.makedirs(args.output_dir, exist_ok=True)
    w = SplitWriter(args.output_dir, "test")
    cols = base_columns(te_q, te_a, np.zeros(len(te_q), np.int32), np.arange(len(te_q)))
    cols["path_length"] = pa.array(te_n, type=pa.int32())
    w.write(cols)
    w.close()
    n_test, schema = w.num_rows, w.schema

    group = np.arange(len(tr_q))
    q, a, n = tr_q, tr_a, tr_n
    if args.dihedral_aug:
        grids_q, grids_a = tr_q.reshape(-1, side, side), tr_a.reshape(-1, side, side)
        q = np.stack([dihedral(grids_q, k).reshape(len(tr_q), -1) for k in range(8)], axis=1).reshape(-1, side * side)
        a = np.stack([dihedral(grids_a, k).reshape(len(tr_q), -1) for k in range(8)], axis=1).reshape(-1, side * side)
        group, n = np.repeat(group, 8), np.repeat(tr_n, 8)
        aug_leak = find_leaks(maze_variant_keys(q, side, side, all_symmetries=False), test_keys)
        if aug_leak.any():  # cannot happen after the base check; kept as a guard
            raise ValueError(f"{int(aug_leak.sum())} augmented train mazes equal a test maze")
    w = SplitWriter(args.output_dir, "train")
    cols = base_columns(q, a, np.zeros(len(q), np.int32), group)
    cols["path_length"] = pa.array(n, type=pa.int32())
    w.write(cols)
    w.close()
    n_train = w.num_rows

    aug_text = ("Train split: each maze plus its 7 other dihedral images (rotations / reflections), build-time, "
                "sharing `group_id`. Test split: not augmented." if args.dihedral_aug else
                "None (pass `--dihedral-aug` for the 8 dihedral images of every train maze).")
    validation = (f"Every answer marks a 4-connected S->G chain whose length equals the BFS shortest distance. "
                  f"No train maze equals a test maze or one of its 8 dihedral images (dropped: {int(leak.sum())}). "
                  f"Duplicated test mazes: {dup_test}. Path lengths: train mean {tr_n.mean():.1f}, "
                  f"test mean {te_n.mean():.1f}, min {int(min(tr_n.min(), te_n.min()))}.")
    meta = metadata_dict(
        task="maze", vocab_size=6, seq_len=side * side, token_names=MAZE_TOKEN_NAMES,
        puzzle_identifier_names=["<blank>"], grid_height=side, grid_width=side,
        num_rows={"train": n_train, "test": n_test}, source=args.source,
        source_detail=args.csv_dir if args.source == "csv" else "generator",
        min_path_length=args.min_path_length, max_path_length=args.max_path_length,
        path_length_histogram={"train": _histogram(tr_n), "test": _histogram(te_n)}, dihedral_aug=bool(args.dihedral_aug), seed=args.seed,
        num_train_puzzles=int(len(tr_q)), num_test_puzzles=int(len(te_q)),
        mean_path_length={"train": float(tr_n.mean()), "test": float(te_n.mean())},
        leaks_dropped={"train_puzzles": int(leak.sum())},
    )
    write_metadata(args.output_dir, meta)
    write_card(args.output_dir, pretty_name=f"HRM Maze {side}x{side}", license=license,
               tags=["hrm", "maze", "path-finding", "reasoning", "puzzles"], splits=["train", "test"],
               num_rows=meta["num_rows"], schema=schema,
               description=(f"{side}x{side} mazes for the Hierarchical Reasoning Model. Tokens: PAD 0, '#' 1, ' ' 2, "
                            "'S' 3, 'G' 4, 'o' 5 (vocab 6). `inputs` is the maze, `labels` the maze with a shortest "
                            "S->G path marked 'o' (all cells scored); `path_length` counts its moves."),
               sources=source_text, augmentation=aug_text, validation=validation, meta=meta,
               license_note=license_note, extra_sections=depth_section(tr_n, te_n))
    finish(args, report, meta)
    return meta


if __name__ == "__main__":
    sys.exit(run_cli(main))
