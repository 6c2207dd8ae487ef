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

Open-world builds (docs/CONTRACTS.md §1), as for Sudoku: a validation split (--num-val) generated like test,
eval depth buckets over path lengths (--eval-buckets: --num-test / --num-val mazes per bucket), shallow training
(--train-max-path-length) and openness figures against train (dataset_scripts/openness.py `maze_openness`;
--require-open, default on for generated mazes of size >= 9, fails a build that is not open).

Examples:
  python dataset_scripts/build_maze_dataset.py --output-dir data/maze-15 --size 15 \\
      --num-train 1000 --num-test 200 --min-path-length 30 --dihedral-aug
  python -m dataset_scripts.build_maze_dataset --output-dir data/maze-21-open --size 21 \\
      --num-train 20000 --train-max-path-length 30 --num-val 50 --num-test 200 \\
      --eval-buckets "4-10,11-20,21-30,31-50,51+"
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from collections import deque
from typing import NamedTuple

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import pyarrow as pa

from dataset_scripts.common import (set_build_command, Reporter, SplitWriter, base_columns, find_leaks, finish,
                                    first_duplicates, metadata_dict, run_cli, sorted_keys, write_card, write_metadata,
                                    builder_parser, MAX_REPORTED)
from dataset_scripts.formats import (MAZE_CHARS, MAZE_GOAL, MAZE_OPEN, MAZE_PATH, MAZE_START, MAZE_TOKEN_NAMES,
                                     MAZE_WALL, check_maze_solution, dihedral, maze_variant_keys)
from dataset_scripts.openness import is_open, maze_openness, openness_section
from dataset_scripts.sudoku import DepthBucket, depth_bucket_names, parse_depth_buckets



#: Carved mazes per window when the generator judges whether its acceptance rate can still reach the count.
RATE_WINDOW = 2000

EVAL_SPLITS = ("test", "validation")
#: --require-open is on by default from this generated size on (smaller mazes are a closed world).
OPEN_MIN_SIZE = 9
SYMMETRY_TEXT = "the 8 dihedral images (rotations and reflections)"


def build_parser() -> argparse.ArgumentParser:
    p = builder_parser(__doc__)
    p.add_argument("--source", choices=("generate", "csv"), default="generate")
    p.add_argument("--size", type=int, default=30, help="maze side for --source generate (>= 5)")
    p.add_argument("--num-train", type=int, default=1000)
    p.add_argument("--num-test", type=int, default=1000, help="test mazes (per bucket with --eval-buckets)")
    p.add_argument("--num-val", type=int, default=0,
                   help="validation mazes (per bucket with --eval-buckets), generated like test and distinct from "
                        "test and train up to the dihedral images; with --source csv held out from train.csv. Make "
                        "every choice (model, learning rate, segments) on it, never on test")
    p.add_argument("--eval-buckets", metavar="SPEC", default=None,
                   help="path-length buckets of the test and validation splits, e.g. '4-10,11-20,21-30,31+' (A, "
                        "A-B, A+ = A or more moves); every bucket gets --num-test / --num-val mazes")
    p.add_argument("--train-max-path-length", type=int, default=None,
                   help="train mazes have a shortest path of at most this many moves (shallow training: eval buckets "
                        "with longer paths test extrapolation)")
    p.add_argument("--require-open", action=argparse.BooleanOptionalAction, default=None,
                   help="fail the build unless the eval splits are open: no eval answer is the answer of a training "
                        "row and under 1%% of eval mazes are one step (a wall added or removed, S or G moved by "
                        "one) from a training maze up to symmetry (default: on for generated mazes of size >= 9)")
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


class Attempt(NamedTuple):
    """One carved maze: ``maze`` = ``(question, answer, path_length)`` or None when it has no goal in the range;
    ``longest``: the longest shortest path from its S (what the generator reports when a range stays empty)."""

    maze: tuple[np.ndarray, np.ndarray, int] | None
    longest: int


def try_maze(size: int, min_path: int, loop_fraction: float, unique: bool, rng: random.Random,
             max_path: int | None = None) -> Attempt:
    """One carved maze with a random S and a random G whose shortest path has min_path..max_path
    moves (unique if asked)."""
    grid = carve_maze(size, loop_fraction, rng)
    open_cells = np.argwhere(grid == MAZE_OPEN)
    s = tuple(int(x) for x in open_cells[rng.randrange(len(open_cells))])
    dist, ways = bfs(grid, s)
    ok = (dist >= max(1, min_path)) & ((ways == 1) if unique else True)
    if max_path is not None:
        ok &= dist <= max_path
    cand = np.argwhere(ok)
    if len(cand) == 0:
        return Attempt(None, int(dist.max()))
    g = tuple(int(x) for x in cand[rng.randrange(len(cand))])
    q = grid.copy()
    q[s], q[g] = MAZE_START, MAZE_GOAL
    a = q.copy()
    for cell in shortest_path(dist, g):
        a[cell] = MAZE_PATH
    return Attempt((q, a, int(dist[g])), int(dist.max()))


def generate_maze(size: int, min_path: int, loop_fraction: float, unique: bool, rng: random.Random,
                  max_tries: int = 200, max_path: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """One maze: ``(question, answer, path_length)`` token grids, min_path <= shortest path <= max_path."""
    for _ in range(max_tries):
        maze = try_maze(size, min_path, loop_fraction, unique, rng, max_path).maze
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


def generate_mazes(counts: list[int], ranges: list[tuple[int, int | None]], args, rng: random.Random,
                   seen: set[int], report: Reporter, label: str, names: list[str] | None = None):
    """``counts[k]`` distinct mazes with a shortest path in ``ranges[k]`` (min, max or None) for each bucket k (one
    count and range without buckets, ``names`` None), no two dihedral images of each other and none in ``seen``
    (updated in place). Attempts go round the unfilled buckets, each attempt choosing its goal in its bucket's
    range. Returns ``(questions, answers, path_lengths)`` bucket by bucket.

    Fails fast, naming the bucket and what was found, when the rate of a bucket's attempts shows its attempt
    budget cannot be enough (a range that few or no mazes reach, or too few distinct mazes)."""
    found: list[list[tuple]] = [[] for _ in counts]
    attempts, dupes, misses, window_start = ([0] * len(counts) for _ in range(4))
    budgets = [100 * c + 2000 for c in counts]
    probe, longest = RATE_WINDOW, 0

    def give_up(k: int, reason: str) -> ValueError:
        wanted = _range_text(*ranges[k])
        tried = (f"in {attempts[k]} carved mazes ({misses[k]} had no such goal, {dupes[k]} were duplicates or dihedral "
                 "images")
        if names is None:
            return ValueError(f"{label}: {reason}; found {len(found[k])} of {counts[k]} distinct {args.size}x"
                              f"{args.size} mazes with a shortest path of {wanted} moves {tried}); ask for fewer "
                              "mazes, a wider path-length range or another --size")
        return ValueError(f"{label}: path-length bucket {names[k]!r} cannot be filled ({len(found[k])} of {counts[k]} "
                          f"{args.size}x{args.size} mazes with a shortest path of {wanted} moves): {reason}; {tried}; "
                          f"longest shortest path seen: {longest} moves); ask for fewer mazes per bucket, a wider "
                          "bucket or a larger --size")

    todo = deque(k for k, c in enumerate(counts) if c > 0)
    while todo:
        k = todo[0]
        todo.rotate(-1)
        done = len(found[k])
        if attempts[k] >= budgets[k]:
            raise give_up(k, "attempt budget spent")
        if attempts[k] and attempts[k] % probe == 0:  # the rate falls as distinct mazes run out: judge the last window
            accepted, left = done - window_start[k], budgets[k] - attempts[k]
            if accepted == 0 or (counts[k] - done) * probe > accepted * left:
                raise give_up(k, f"at the rate of the last {probe} attempts ({accepted} accepted) the "
                                 f"budget of {budgets[k]} attempts cannot be enough")
            window_start[k] = done
        attempts[k] += 1
        attempt = try_maze(args.size, ranges[k][0], args.loop_fraction, not args.allow_multiple_shortest, rng,
                           ranges[k][1])
        longest = max(longest, attempt.longest)
        if attempt.maze is None:
            misses[k] += 1
            continue
        q, a, n = attempt.maze
        key = int(maze_variant_keys(q.reshape(1, -1), args.size, args.size, all_symmetries=False)[0])
        if key in seen:
            dupes[k] += 1
            continue
        seen.update(int(x) for x in maze_variant_keys(q.reshape(1, -1), args.size, args.size, all_symmetries=True))
        found[k].append((q.reshape(-1), a.reshape(-1), n))
        if len(found[k]) == counts[k]:
            todo.remove(k)
    rows = [row for bucket in found for row in bucket]
    per_bucket = "" if names is None else " (" + ", ".join(f"{name}: {c}" for name, c in zip(names, counts)) + ")"
    where = f"at {_range_text(*ranges[0])} moves" if names is None else "in the bucket tried"
    report(f"{label}: {len(rows)} mazes{per_bucket} from {sum(attempts)} carved ({sum(dupes)} duplicates/dihedral "
           f"variants rejected, {sum(misses)} without a goal {where})")
    return (np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows]),
            np.asarray([r[2] for r in rows], dtype=np.int32))


def maze_buckets(spec: str) -> list[DepthBucket]:
    """The path-length buckets of ``--eval-buckets`` (`sudoku.parse_depth_buckets`; Sudoku's 'search' refused)."""
    buckets = parse_depth_buckets(spec)
    for b in buckets:
        if b.lo < 0:
            raise ValueError(f"--eval-buckets: bucket {b.name!r} is Sudoku's (puzzles singles cannot finish); maze "
                             "buckets are path lengths: A, A-B or A+ moves")
    return buckets


def split_ranges(args) -> tuple[list[tuple[int, int | None]], list[str] | None, tuple[int, int | None]]:
    """(path-length range of each eval bucket, bucket names or None, train range) from --min/--max-path-length,
    --eval-buckets and --train-max-path-length; ValueError for a request no generated maze can satisfy."""
    lo, hi = args.min_path_length, args.max_path_length
    most = max_possible_path(args.size)
    if args.eval_buckets is None:
        eval_ranges, names = [(lo, hi)], None
    else:
        eval_ranges, names = [], []
        for b in maze_buckets(args.eval_buckets):
            if b.lo > most:
                raise ValueError(f"--eval-buckets: bucket {b.name!r} asks for longer paths than a {args.size}x"
                                 f"{args.size} maze can have (at most {most} moves); raise --size")
            top = b.hi if hi is None else hi if b.hi is None else min(b.hi, hi)
            if top is not None and max(b.lo, lo) > top:
                raise ValueError(f"--eval-buckets: bucket {b.name!r} lies outside --min-path-length/--max-path-length "
                                 f"({_range_text(lo, hi)} moves)")
            eval_ranges.append((max(b.lo, lo), top))
            names.append(b.name)
    train_hi = hi
    if args.train_max_path_length is not None:
        shortest = max(1, lo)
        if args.train_max_path_length < shortest:
            raise ValueError(f"--train-max-path-length {args.train_max_path_length} is below the shortest path a "
                             f"train maze can have ({shortest} move{'s' if shortest > 1 else ''}"
                             + (f", --min-path-length {lo}" if lo > 1 else "") + ")")
        train_hi = args.train_max_path_length if hi is None else min(hi, args.train_max_path_length)
    return eval_ranges, names, (lo, train_hi)


def generate_source(args, report: Reporter) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Generate test, validation (with --num-val) and train, each split seeded by ``"{seed}-{split}"`` and distinct
    from the splits before it up to the dihedral images: split -> (questions, answers, path_lengths)."""
    eval_ranges, names, train_range = split_ranges(args)
    seen: set[int] = set()
    splits = {}
    # Eval splits first, so every train maze is checked against the finished eval sets.
    for split, count in (("test", args.num_test), ("validation", args.num_val)):
        if count:
            splits[split] = generate_mazes([count] * len(eval_ranges), eval_ranges, args,
                                           random.Random(f"{args.seed}-{split}"), seen, report, split, names)
    splits["train"] = generate_mazes([args.num_train], [train_range], args, random.Random(f"{args.seed}-train"), seen,
                                     report, "train")
    return splits


def _histogram(lengths: np.ndarray) -> dict[str, int]:
    values, counts = np.unique(lengths, return_counts=True)
    return {str(int(v)): int(c) for v, c in zip(values, counts)}


def depth_section(lengths: dict[str, np.ndarray], buckets: str | None = None) -> str:
    """Card section with the depth (shortest-path length) distribution of every split, before augmentation, and
    the eval splits' counts per bucket of ``buckets`` (the `depth_buckets` spec)."""
    hists = {split: _histogram(n) for split, n in lengths.items()}
    keys = sorted(set().union(*hists.values()), key=int)
    lines = ["## Depth distribution", "",
             "Moves on the shortest S->G path (`path_length` column), counts of mazes before augmentation.",
             "", "| path length | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    lines += [f"| {split} | " + " | ".join(str(h.get(k, 0)) for k in keys) + " |" for split, h in hists.items()]
    if buckets:
        lines += ["", f"Eval depth buckets (`depth_buckets` in `hrm_dataset.json`): `{buckets}` (path lengths; "
                  "'A+' = A or more moves); the test and validation splits hold the same number of mazes in each "
                  "bucket. Map a `path_length` column to bucket names with "
                  "`dataset_scripts.sudoku.depth_bucket_names(path_length, meta['depth_buckets'])` to report accuracy "
                  "per bucket (`hrm-evaluate` does)."]
        for split, n in lengths.items():
            if split != "train":
                names = depth_bucket_names(n, buckets)
                lines.append(f"- {split}: " + ", ".join(f"{b.name}: {int((names == b.name).sum())}"
                                                          for b in parse_depth_buckets(buckets)))
    return "\n".join(lines)


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


def csv_source(args, report: Reporter) -> tuple[dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], int]:
    """Read train.csv / test.csv (validation: --num-val mazes held out from train.csv, seeded): (splits, side)."""
    tr_q, tr_a, tr_n, side = read_maze_csv(_csv_path(args.csv_dir, "train.csv"), "train", report)
    te_q, te_a, te_n, side_te = read_maze_csv(_csv_path(args.csv_dir, "test.csv"), "test", report)
    if side_te != side:
        raise ValueError(f"train mazes are {side}x{side} but test mazes are {side_te}x{side_te}")
    if args.min_path_length or args.max_path_length is not None:
        top = args.max_path_length if args.max_path_length is not None else np.inf
        k1 = (tr_n >= args.min_path_length) & (tr_n <= top)
        k2 = (te_n >= args.min_path_length) & (te_n <= top)
        tr_q, tr_a, tr_n, te_q, te_a, te_n = tr_q[k1], tr_a[k1], tr_n[k1], te_q[k2], te_a[k2], te_n[k2]
    splits = {"test": (te_q, te_a, te_n)}
    nrng = np.random.default_rng(args.seed)
    if args.num_val:
        if args.num_val >= len(tr_q):
            raise ValueError(f"--num-val {args.num_val} leaves no train mazes ({len(tr_q)} in train.csv)")
        order = nrng.permutation(len(tr_q))
        val, rest = np.sort(order[:args.num_val]), np.sort(order[args.num_val:])
        splits["validation"] = (tr_q[val], tr_a[val], tr_n[val])
        tr_q, tr_a, tr_n = tr_q[rest], tr_a[rest], tr_n[rest]
    if args.subsample_size is not None and args.subsample_size < len(tr_q):
        sel = np.sort(nrng.choice(len(tr_q), args.subsample_size, replace=False))
        tr_q, tr_a, tr_n = tr_q[sel], tr_a[sel], tr_n[sel]
    splits["train"] = (tr_q, tr_a, tr_n)
    return splits, side


def write_split(output_dir: str, split: str, questions: np.ndarray, answers: np.ndarray, lengths: np.ndarray,
                group: np.ndarray):
    w = SplitWriter(output_dir, split)
    cols = base_columns(questions, answers, np.zeros(len(questions), np.int32), group)
    cols["path_length"] = pa.array(lengths, type=pa.int32())
    w.write(cols)
    w.close()
    return w.num_rows, w.schema


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    set_build_command("dataset_scripts.build_maze_dataset", argv)
    report = Reporter(args.quiet)
    if args.eval_buckets is not None:
        maze_buckets(args.eval_buckets)  # a malformed spec fails before any work, for either source
    generated = args.source == "generate"
    if generated:
        if args.size < 5:
            raise ValueError("--size must be at least 5")
        check_path_range(args.size, args.min_path_length, args.max_path_length)
        require_open = args.require_open if args.require_open is not None else args.size >= OPEN_MIN_SIZE
        splits = generate_source(args, report)
        side = args.size
        source_text = (f"Generated offline by `dataset_scripts/build_maze_dataset.py` (seed {args.seed}): {side}x{side} "
                       f"mazes carved depth-first with {args.loop_fraction:.0%} of the remaining inner walls opened, "
                       f"random S and G with a BFS shortest path of {_range_text(args.min_path_length, args.max_path_length)} moves"
                       + ("" if args.allow_multiple_shortest else " and a unique shortest path")
                       + (f"; train mazes at most {args.train_max_path_length} moves"
                          if args.train_max_path_length is not None else "")
                       + (f". All splits are distinct from each other up to {SYMMETRY_TEXT}." if args.num_val or
                          args.eval_buckets or args.train_max_path_length is not None else "."))
        license = args.license or "apache-2.0"
        license_note = "Generated by the hrm project's code; released under the project's licence."
    else:
        if not args.csv_dir:
            raise ValueError("--source csv needs --csv-dir (a folder with train.csv/test.csv or a Hub repo id)")
        for name in ("eval_buckets", "train_max_path_length"):
            if getattr(args, name) is not None:
                raise ValueError(f"--{name.replace('_', '-')} selects generated mazes; with --source csv use "
                                 "--min-path-length/--max-path-length")
        splits, side = csv_source(args, report)
        require_open = bool(args.require_open)
        source_text = (f"Converted from the CSV files of `{args.csv_dir}` (maze-30x30-hard-1k format). Every answer "
                       "was re-checked to be a shortest S->G path. --min-path-length "
                       f"{args.min_path_length}; train subsample {args.subsample_size or 'all'} (seed {args.seed})"
                       + (f"; validation: {args.num_val} mazes held out from train.csv (seeded)." if args.num_val
                          else "."))
        license = args.license or "other"
        license_note = f"Inherits the licence of the source dataset `{args.csv_dir}`; check its card."
    if any(len(q) == 0 for q, _, _ in splits.values()):
        raise ValueError("no mazes left in " + " or ".join(s for s, (q, _, _) in splits.items() if not len(q)))
    eval_names = [s for s in EVAL_SPLITS if s in splits]
    # Every answer must be a shortest path (generated ones too: an independent re-check).
    for label, (qs, ans, _) in splits.items():
        for i in range(len(qs)):
            check_maze_solution(qs[i].reshape(side, side), ans[i].reshape(side, side))

    # Leakage: a maze that is an eval maze or one of its dihedral images. The generator never makes one; CSV files
    # can hold them (dropped from train, and from validation against test).
    def keys(split: str, all_symmetries: bool) -> np.ndarray:
        return maze_variant_keys(splits[split][0], side, side, all_symmetries=all_symmetries)

    dropped = {"train_puzzles": 0}
    if "validation" in splits:
        leak = find_leaks(keys("validation", False), keys("test", True))
        dropped["validation_puzzles"] = int(leak.sum())
        if leak.any():
            report(f"validation: dropped {int(leak.sum())} maze(s) that are test mazes or their dihedral images",
                   always=True)
            splits["validation"] = tuple(x[~leak] for x in splits["validation"])
    leak = find_leaks(keys("train", False), sorted_keys(np.concatenate([keys(s, True) for s in eval_names])))
    if leak.any():
        report(f"train: dropped {int(leak.sum())} maze(s) that are {' or '.join(eval_names)} mazes or their dihedral "
               f"images (first: train maze {int(np.flatnonzero(leak)[0])})", always=True)
        splits["train"] = tuple(x[~leak] for x in splits["train"])
    dropped["train_puzzles"] = int(leak.sum())
    dup_eval = {s: int(first_duplicates(keys(s, False)).sum()) for s in eval_names}

    tr_q, tr_a, tr_n = splits["train"]
    group, q, a, n = np.arange(len(tr_q)), tr_q, tr_a, tr_n
    if args.dihedral_aug:
        grids_q, grids_a = tr_q.reshape(-1, side, side), tr_a.reshape(-1, side, side)
        q = np.stack([dihedral(grids_q, k).reshape(len(tr_q), -1) for k in range(8)], axis=1).reshape(-1, side * side)
        a = np.stack([dihedral(grids_a, k).reshape(len(tr_q), -1) for k in range(8)], axis=1).reshape(-1, side * side)
        group, n = np.repeat(group, 8), np.repeat(tr_n, 8)
        eval_keys = sorted_keys(np.concatenate([keys(s, True) for s in eval_names]))
        aug_leak = find_leaks(maze_variant_keys(q, side, side, all_symmetries=False), eval_keys)
        if aug_leak.any():  # cannot happen after the base check; kept as a guard
            raise ValueError(f"{int(aug_leak.sum())} augmented train mazes equal an eval maze")

    # Openness against every training row, before anything is written (a build that is not open fails here).
    openness = maze_openness(tr_q, tr_a, {s: splits[s][:2] for s in eval_names}, side, side, train_answer_rows=a)
    for s in eval_names:
        ok, why = is_open(openness[s], step="one step (a wall added or removed, S or G moved by one)")
        if require_open and not ok:
            raise ValueError(f"{s} split is not open: {why} (--no-require-open builds it anyway)")
        report(f"{s}: openness {openness[s]}")

    os.makedirs(args.output_dir, exist_ok=True)
    num_rows, schema = {}, None
    for s in eval_names:
        eq, ea, en = splits[s]
        num_rows[s], schema = write_split(args.output_dir, s, eq, ea, en, np.arange(len(eq)))
    num_rows["train"], _ = write_split(args.output_dir, "train", q, a, n, group)
    num_rows = {s: num_rows[s] for s in ("train", *EVAL_SPLITS) if s in num_rows}
    lengths = {s: splits[s][2] for s in num_rows}

    aug_text = ("Train split: each maze plus its 7 other dihedral images (rotations / reflections), build-time, "
                "sharing `group_id`. " + ("Test split" if eval_names == ["test"] else "Eval splits")
                + ": not augmented." if args.dihedral_aug else
                "None (pass `--dihedral-aug` for the 8 dihedral images of every train maze).")
    te_n = splits["test"][2]
    if eval_names == ["test"]:
        distinct = (f"No train maze equals a test maze or one of its 8 dihedral images (dropped: "
                    f"{dropped['train_puzzles']}). Duplicated test mazes: {dup_eval['test']}. ")
    else:
        distinct = (f"No train maze equals an eval ({', '.join(eval_names)}) maze or one of its 8 dihedral images "
                    f"(dropped: {dropped['train_puzzles']}), no validation maze a test maze or one of its images "
                    f"(dropped: {dropped['validation_puzzles']}). Duplicated eval mazes: "
                    + ", ".join(f"{s} {dup_eval[s]}" for s in eval_names) + ". ")
    validation = (f"Every answer marks a 4-connected S->G chain whose length equals the BFS shortest distance. "
                  + distinct + f"Path lengths: train mean {tr_n.mean():.1f}, test mean {te_n.mean():.1f}, "
                  f"min {int(min(x.min() for x in lengths.values()))}. "
                  + ("Open build (--require-open): see Openness." if require_open else
                     "Not required to be open (--no-require-open): see Openness for what a model could recall."))
    buckets = ",".join(b.name for b in maze_buckets(args.eval_buckets)) if args.eval_buckets else None
    meta = metadata_dict(
        task="maze", vocab_size=6, seq_len=side * side, token_names=MAZE_TOKEN_NAMES,
        puzzle_identifier_names=["<blank>"], grid_height=side, grid_width=side,
        num_rows=num_rows, source=args.source,
        source_detail=args.csv_dir if args.source == "csv" else "generator",
        min_path_length=args.min_path_length, max_path_length=args.max_path_length,
        path_length_histogram={s: _histogram(x) for s, x in lengths.items()}, dihedral_aug=bool(args.dihedral_aug),
        seed=args.seed, num_train_puzzles=int(len(tr_q)), num_test_puzzles=int(len(te_n)),
        mean_path_length={s: float(x.mean()) for s, x in lengths.items()},
        leaks_dropped=dropped,
        num_validation_puzzles=int(len(splits["validation"][0])) if "validation" in splits else 0,
        depth_buckets=buckets, train_max_path_length=args.train_max_path_length,
        require_open=bool(require_open), openness_symmetries=SYMMETRY_TEXT, openness=openness,
    )
    write_metadata(args.output_dir, meta)
    write_card(args.output_dir, pretty_name=f"HRM Maze {side}x{side}", license=license,
               tags=["hrm", "maze", "path-finding", "reasoning", "puzzles"], splits=list(num_rows),
               num_rows=meta["num_rows"], schema=schema,
               description=(f"{side}x{side} mazes for the Hierarchical Reasoning Model. Tokens: PAD 0, '#' 1, ' ' 2, "
                            "'S' 3, 'G' 4, 'o' 5 (vocab 6). `inputs` is the maze, `labels` the maze with a shortest "
                            "S->G path marked 'o' (all cells scored); `path_length` counts its moves."),
               sources=source_text, augmentation=aug_text, validation=validation, meta=meta,
               license_note=license_note,
               extra_sections=depth_section(lengths, buckets) + "\n\n" + openness_section(openness, SYMMETRY_TEXT,
                                                                                           task="maze"))
    finish(args, report, meta)
    return meta


if __name__ == "__main__":
    sys.exit(run_cli(main))
