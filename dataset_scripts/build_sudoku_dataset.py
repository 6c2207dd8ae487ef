"""Build an HRM Sudoku dataset in the Hub layout (parquet shards + card + hrm_dataset.json).

Sources:
  --source generate   offline generator of unique-solution puzzles (4x4, 6x6, 9x9) rated by
                      the backtracks of a reference DFS+MRV solver (--min-rating filters).
  --source csv        the `sapientinc/sudoku-extreme` CSV format (train.csv / test.csv with
                      columns source, question, answer, rating; '.' = blank) from a local
                      folder or a Hub dataset repo id (--csv-dir).

Open-world builds (docs/CONTRACTS.md §1): a validation split (--num-val) generated like test, eval depth
buckets (--eval-buckets: --num-test / --num-val puzzles per bucket), shallow training (--train-max-rounds) and
openness figures against train (dataset_scripts/openness.py; --require-open fails a build that is not open).

Examples:
  python dataset_scripts/build_sudoku_dataset.py --output-dir data/sudoku-4x4 --size 4 \\
      --num-train 200 --num-test 50 --num-aug 10
  python -m dataset_scripts.build_sudoku_dataset --output-dir data/sudoku-6x6-open --size 6 \\
      --num-train 20000 --train-max-rounds 4 --num-val 50 --num-test 200 \\
      --eval-buckets "1-2,3,4,5,6,7+,search" --num-aug 0
  python -m dataset_scripts.build_sudoku_dataset --output-dir data/sudoku-extreme-1k \\
      --source csv --csv-dir sapientinc/sudoku-extreme --subsample-size 1000 --num-aug 1000
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import deque
from typing import Callable

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dataset_scripts.common import (set_build_command, Reporter, SplitWriter, base_columns, find_leaks, finish,
                                    first_duplicates, metadata_dict, run_cli, sorted_keys, write_card, write_metadata,
                                    builder_parser, MAX_REPORTED)
from dataset_scripts.formats import (SUDOKU_SIZES, row_hashes, sudoku_batch_valid, sudoku_box_shape,
                                     sudoku_token_names, sudoku_variant_keys)
from dataset_scripts.openness import answer_figures, is_open, openness_section, sudoku_openness
from dataset_scripts.sudoku import (RoundsFilter, SudokuSolver, VariantIndex, augment_sudoku, depth_bucket_names,
                                    generate_chunk, parse_depth_buckets, rate_puzzles)

#: Attempts per window when the generator judges whether its acceptance rate can still reach the count.
RATE_WINDOW = 1000

#: Generator draws per chunk (the unit of work of a worker process; part of the seeding, so fixed per size).
CHUNK_ATTEMPTS = {4: 256, 6: 64, 9: 8}
#: Chunks of a split generated in the main process before worker processes are started.
INLINE_CHUNKS = 4
#: Worker processes start only when the rest of a split would take longer than this in one process.
POOL_MIN_SECONDS = 10.0
#: Puzzles per rating job of a worker.
RATE_CHUNK = 512

#: CSV splits larger than this get `rounds` = NOT_RATED instead of a computed depth.
MAX_DEPTH_RATED = 50_000
NOT_RATED = -2

#: Rows per augmentation chunk (bounds memory: ~chunk x seq_len x 8 bytes of temporaries).
AUG_CHUNK_ROWS = 131072

EVAL_SPLITS = ("test", "validation")


def build_parser() -> argparse.ArgumentParser:
    p = builder_parser(__doc__)
    p.add_argument("--source", choices=("generate", "csv"), default="generate")
    p.add_argument("--size", type=int, choices=SUDOKU_SIZES, default=9, help="grid size for --source generate")
    p.add_argument("--num-train", type=int, default=1000, help="generated train puzzles (before augmentation)")
    p.add_argument("--num-test", type=int, default=200, help="generated test puzzles (per bucket with --eval-buckets)")
    p.add_argument("--num-val", type=int, default=0,
                   help="validation puzzles (per bucket with --eval-buckets), generated like test and distinct from "
                        "test and train up to symmetry; with --source csv held out from train.csv. Make every "
                        "choice (model, learning rate, segments) on it, never on test")
    p.add_argument("--eval-buckets", metavar="SPEC", default=None,
                   help="depth buckets of the test and validation splits, e.g. '1-2,3,4,5,6,7+,search' (A, A-B, "
                        "A+ = A or more rounds, search = singles stall); every bucket gets --num-test / --num-val "
                        "puzzles")
    p.add_argument("--train-max-rounds", type=int, default=None,
                   help="train puzzles need at most this many propagation rounds (shallow training: eval buckets "
                        "deeper than this test extrapolation)")
    p.add_argument("--require-open", action=argparse.BooleanOptionalAction, default=None,
                   help="make the eval splits open and prove it: train puzzles whose answer is an eval answer are "
                        "left out, and the build fails if an eval answer is still a training answer or 1%% or more "
                        "of eval puzzles are within one clue of a training puzzle (default: on for 6x6 and 9x9, "
                        "off for 4x4, a closed world of 288 grids)")
    p.add_argument("--workers", type=int, default=None,
                   help="generator processes (default: min(2, CPUs)); the output does not depend on it")
    p.add_argument("--min-rating", type=int, default=0,
                   help="keep only puzzles with at least this many backtracks (generator) / CSV rating")
    p.add_argument("--min-rounds", type=int, default=None,
                   help="generator depth knob: keep puzzles that need at least this many rounds of parallel "
                        "single-propagation (puzzles singles cannot finish count as deeper than any bound)")
    p.add_argument("--max-rounds", type=int, default=None,
                   help="generator depth knob: keep puzzles that singles solve in at most this many rounds")
    p.add_argument("--extra-clues", type=int, default=None,
                   help="generator: give back 0..K random solution digits after minimising (default: 0 for 9x9, "
                        "n for 4x4/6x6, which have few essentially different minimal puzzles)")
    p.add_argument("--csv-dir", help="folder with train.csv/test.csv, or a Hub dataset repo id")
    p.add_argument("--subsample-size", type=int, default=None, help="seeded subsample of the CSV train split")
    p.add_argument("--test-subsample-size", type=int, default=None, help="seeded subsample of the CSV test split")
    p.add_argument("--num-aug", type=int, default=0,
                   help="augmented copies per train puzzle (added to the original); spec: 1000")
    p.add_argument("--license", default=None, help="licence id for the card (default: apache-2.0 for generated "
                                                    "data, 'other' = the source's licence for CSV)")
    return p


# ----------------------------------------------------------------------------- sources


class Workers:
    """Processes that generate chunks (`sudoku.generate_chunk`), started on first need and shared by the splits.

    Chunk i of a split is seeded by ``"{seed}-{split}-{i}"`` and chunks are consumed in order, so the output
    does not depend on the number of workers (``--workers 1`` generates in this process)."""

    def __init__(self, count: int, report: Reporter | None = None):
        self.count = max(1, count)
        self.executor = None
        self.report = report

    def stream(self, n: int, seed: str, extra_clues: int, rounds_filter: RoundsFilter, min_rating: int,
               chunks_left: Callable[[], float] = lambda: float("inf")):
        """Yield chunk results 0, 1, 2, ... of one split, in order, forever. Chunks are made in this process until
        ``chunks_left()`` (the caller's estimate) says the rest takes long enough to pay for starting processes."""
        attempts = CHUNK_ATTEMPTS[n]
        index, started = 0, time.perf_counter()
        while self.executor is None and (self.count == 1 or index < INLINE_CHUNKS or
                                         chunks_left() * (time.perf_counter() - started) / index < POOL_MIN_SECONDS):
            yield generate_chunk(n, f"{seed}-{index}", attempts, extra_clues, rounds_filter, min_rating)
            index += 1
        if self.executor is None:
            from concurrent.futures import ProcessPoolExecutor
            import multiprocessing

            self.executor = ProcessPoolExecutor(self.count, mp_context=multiprocessing.get_context("spawn"))
            if self.report:
                self.report(f"started {self.count} worker processes")
        pending: deque = deque()
        try:
            while True:
                while len(pending) < 2 * self.count:
                    pending.append(self.executor.submit(generate_chunk, n, f"{seed}-{index}", attempts, extra_clues,
                                                        rounds_filter, min_rating))
                    index += 1
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()

    def rate(self, puzzles: np.ndarray) -> np.ndarray:
        """``sudoku.rate_puzzles`` of the puzzles a split kept, spread over the workers."""
        parts = [puzzles[i:i + RATE_CHUNK] for i in range(0, len(puzzles), RATE_CHUNK)]
        if self.executor is None or len(parts) < 2:
            return rate_puzzles(puzzles)
        return np.concatenate(list(self.executor.map(rate_puzzles, parts)))

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)
            self.executor = None


def generate_split(n: int, label: str, counts: list[int], rounds_filter: RoundsFilter, min_rating: int,
                   extra_clues: int, seed: int, index: VariantIndex, workers: Workers, report: Reporter,
                   forbidden_answers: set[int] | None = None) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Generate one split: ``counts[k]`` puzzles in bucket k of ``rounds_filter`` (one count without buckets),
    none a relabelling / ``sudoku_position_group`` variant of a puzzle in ``index`` (updated in place), and,
    with ``forbidden_answers`` (row hashes), none whose answer is one of those grids.

    Returns the split's arrays (``puzzles``, ``solutions``, ``ratings``, ``rounds``; bucket by bucket) and the
    rejection counts. Raises ValueError, naming the bucket and the depth distribution seen, as soon as the
    acceptance rate shows that a bucket cannot be filled within the attempt budget (an impossible request
    fails fast, not forever).
    """
    buckets = rounds_filter.buckets
    names = [b.name for b in buckets] if buckets else [None]
    accepted: list[list[tuple]] = [[] for _ in counts]
    total = sum(counts)
    max_attempts = 50 * total + 2000
    attempts, window_start, done = 0, 0, 0
    window_accepted = [0] * len(counts)
    stats = {"duplicates": 0, "answer_clashes": 0, "bucket_full": 0, "filtered": 0}
    rounds_seen: dict[int, int] = {}

    def give_up(k: int, reason: str) -> ValueError:
        dist = ", ".join(f"{'stuck' if d < 0 else d}: {c}" for d, c in sorted(rounds_seen.items()))
        what = (f"depth bucket {names[k]!r} cannot be filled ({len(accepted[k])} of {counts[k]} puzzles)" if buckets
                else f"found {done} of {total} distinct {n}x{n} puzzles with {_filter_text(min_rating, rounds_filter)}")
        return ValueError(f"{label}: {what}: {reason}; {attempts} attempts ({stats['duplicates']} duplicates/variants"
                          f"{', rating < %d' % min_rating if min_rating else ''}; propagation rounds seen: {dist}); "
                          + ("ask for fewer puzzles per bucket or a wider bucket" if buckets else
                             "ask for fewer puzzles or a wider depth / rating range"))

    # Without a rating filter only the kept puzzles are rated (an eval bucket that is full skips most draws).
    def chunks_left() -> float:  # at the rate so far, of the bucket that fills slowest
        chunks = attempts / CHUNK_ATTEMPTS[n]
        return max((c - len(a)) * chunks / max(len(a), 0.5) for c, a in zip(counts, accepted))

    for chunk in workers.stream(n, f"{seed}-{label}", extra_clues, rounds_filter, min_rating or None, chunks_left):
        attempts += chunk["attempts"]
        stats["filtered"] += chunk["attempts"] - len(chunk["puzzles"])
        for depth, count in chunk["rounds_seen"].items():
            rounds_seen[depth] = rounds_seen.get(depth, 0) + count
        answer_hashes = row_hashes(chunk["solutions"]) if forbidden_answers is not None else None
        for j in range(len(chunk["puzzles"])):
            if done == total:
                break
            k = rounds_filter.bucket_of(int(chunk["rounds"][j]))
            if len(accepted[k]) >= counts[k]:
                stats["bucket_full"] += 1
                continue
            if answer_hashes is not None and int(answer_hashes[j]) in forbidden_answers:
                stats["answer_clashes"] += 1
                continue
            if not index.add(chunk["puzzles"][j], chunk["signatures"][j]):
                stats["duplicates"] += 1
                continue
            accepted[k].append((chunk["puzzles"][j], chunk["solutions"][j], chunk["ratings"][j], chunk["rounds"][j]))
            window_accepted[k] += 1
            done += 1
            if done % 1000 == 0:
                report(f"{label}: generated {done:,}/{total:,}")
        if done == total:
            break
        todo = [k for k, c in enumerate(counts) if len(accepted[k]) < c]
        if attempts >= max_attempts:
            raise give_up(todo[0], f"the attempt budget of {max_attempts} is spent")
        window = attempts - window_start
        if window >= RATE_WINDOW:  # the rate falls as distinct puzzles run out: judge the latest window
            left = max_attempts - attempts
            for k in todo:  # judged on a generous (~97.5%) upper bound of the rate, so a rare bucket is not
                hits = window_accepted[k]  # given up on because of one unlucky window
                if (counts[k] - len(accepted[k])) * window > (hits + 2 * hits ** 0.5 + 3) * left:
                    raise give_up(k, f"at the rate of the last {window} attempts ({window_accepted[k]} accepted"
                                     f"{' in the bucket' if buckets else ''}) the budget of {max_attempts} attempts "
                                     "cannot be enough")
            window_start, window_accepted = attempts, [0] * len(counts)
    rows = [row for bucket in accepted for row in bucket]
    arrays = {"puzzles": np.stack([r[0] for r in rows]), "solutions": np.stack([r[1] for r in rows]),
              "ratings": np.asarray([r[2] for r in rows], dtype=np.int32),
              "rounds": np.asarray([r[3] for r in rows], dtype=np.int32)}
    if not min_rating:
        arrays["ratings"] = workers.rate(arrays["puzzles"])
    report(f"{label}: {total:,} puzzles from {attempts:,} attempts ({stats['duplicates']} rejected as duplicates/"
           f"variants, {stats['answer_clashes']} for an eval answer, {stats['filtered']:,} outside "
           f"{_filter_text(min_rating, rounds_filter)}, {stats['bucket_full']:,} for a full bucket)")
    return arrays, stats


def _filter_text(min_rating: int, rounds_filter: RoundsFilter) -> str:
    lo, hi = rounds_filter.lo, rounds_filter.hi
    rounds = ("any propagation rounds" if lo is None and hi is None else
              f"propagation rounds {lo if lo is not None else 1}..{hi if hi is not None else 'stuck'}")
    if rounds_filter.buckets:
        rounds += " in buckets " + ",".join(b.name for b in rounds_filter.buckets)
    return f"rating >= {min_rating} and {rounds}"


def check_depth_range(n: int, min_rounds: int | None, max_rounds: int | None) -> tuple[int | None, int | None]:
    """The (min, max) propagation-rounds filter, or ValueError when no puzzle can satisfy it."""
    most = n * n - 1  # one round fills at least one cell, and a unique puzzle has at least one clue
    for name, value in (("--min-rounds", min_rounds), ("--max-rounds", max_rounds)):
        if value is not None and not 1 <= value <= most:
            raise ValueError(f"{name} {value} is outside what a {n}x{n} puzzle can need (1..{most} rounds)")
    if min_rounds is not None and max_rounds is not None and min_rounds > max_rounds:
        raise ValueError(f"--min-rounds {min_rounds} is above --max-rounds {max_rounds}")
    return min_rounds, max_rounds


def split_filters(n: int, args: argparse.Namespace) -> tuple[RoundsFilter, RoundsFilter]:
    """(eval filter, train filter) from --min/--max-rounds, --eval-buckets and --train-max-rounds; ValueError
    for a combination no puzzle can satisfy."""
    lo, hi = check_depth_range(n, args.min_rounds, args.max_rounds)
    most = n * n - 1
    buckets = None
    if args.eval_buckets is not None:
        buckets = tuple(parse_depth_buckets(args.eval_buckets))
        for b in buckets:
            if b.lo > most:
                raise ValueError(f"--eval-buckets: bucket {b.name!r} asks for more rounds than a {n}x{n} puzzle "
                                 f"can need (at most {most})")
            if b.lo >= 0 and ((hi is not None and b.lo > hi) or (lo is not None and b.hi is not None and b.hi < lo)):
                raise ValueError(f"--eval-buckets: bucket {b.name!r} lies outside --min-rounds/--max-rounds "
                                 f"({lo or 1}..{hi or 'stuck'})")
            if b.lo < 0 and hi is not None:
                raise ValueError(f"--eval-buckets: bucket {b.name!r} (puzzles singles cannot finish) is excluded by "
                                 f"--max-rounds {hi}")
    train_hi = hi
    if args.train_max_rounds is not None:
        if not 1 <= args.train_max_rounds <= most:
            raise ValueError(f"--train-max-rounds {args.train_max_rounds} is outside what a {n}x{n} puzzle can "
                             f"need (1..{most} rounds)")
        if lo is not None and args.train_max_rounds < lo:
            raise ValueError(f"--train-max-rounds {args.train_max_rounds} is below --min-rounds {lo}")
        train_hi = args.train_max_rounds if hi is None else min(hi, args.train_max_rounds)
    return RoundsFilter(lo, hi, buckets), RoundsFilter(lo, train_hi)


def depth_section(rounds: dict[str, np.ndarray], buckets: str | None) -> str:
    """Card section with the depth distribution of every split (puzzles, before augmentation)."""
    hists = {split: depth_histogram(r) for split, r in rounds.items()}
    keys = sorted(set().union(*hists.values()), key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else k))
    lines = ["## Depth distribution", "",
             "Rounds of parallel single-propagation each puzzle needs (`rounds` column; 'stuck' = -1: naked and "
             "hidden singles stall, search is needed; 'not computed': CSV splits over "
             f"{MAX_DEPTH_RATED:,} puzzles). Counts of puzzles, before augmentation.", "",
             "| rounds | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    lines += [f"| {split} | " + " | ".join(str(h.get(k, 0)) for k in keys) + " |" for split, h in hists.items()]
    if buckets:
        lines += ["", f"Eval depth buckets (`depth_buckets` in `hrm_dataset.json`): `{buckets}`; the test and "
                  "validation splits hold the same number of puzzles in each bucket ('search' = rounds -1, 'A+' = A "
                  "or more rounds without search). Map a `rounds` column to bucket names with "
                  "`dataset_scripts.sudoku.depth_bucket_names(rounds, meta['depth_buckets'])` to report accuracy "
                  "per bucket."]
        for split, r in rounds.items():
            if split != "train":
                names, counts = np.unique(depth_bucket_names(r, buckets).astype(str), return_counts=True)
                lines.append(f"- {split}: " + ", ".join(f"{a or 'none'}: {c}" for a, c in zip(names, counts)))
    return "\n".join(lines)


def depth_histogram(rounds: np.ndarray) -> dict[str, int]:
    """Counts of propagation rounds (the depth knob), 'stuck' for puzzles singles cannot finish."""
    values, counts = np.unique(rounds, return_counts=True)
    names = {-1: "stuck", NOT_RATED: "not computed"}
    return {names.get(int(v), str(int(v))): int(c) for v, c in zip(values, counts)}


def _csv_path(csv_dir: str, name: str) -> str:
    if os.path.isdir(csv_dir):
        path = os.path.join(csv_dir, name)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path} not found (expected train.csv and test.csv in --csv-dir)")
        return path
    if os.path.isfile(csv_dir):
        raise ValueError(f"--csv-dir must be a folder or a Hub repo id, got the file {csv_dir}")
    from huggingface_hub import hf_hub_download

    try:
        return hf_hub_download(repo_id=csv_dir, filename=name, repo_type="dataset")
    except Exception as exc:
        raise ValueError(f"cannot download {name} from Hub dataset {csv_dir!r}: {type(exc).__name__}: "
                         f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}") from None


def _char_lut() -> np.ndarray:
    lut = np.full(256, 255, dtype=np.uint8)
    lut[ord(".")] = 0
    for d in range(10):
        lut[ord(str(d))] = d
    return lut


def _fixed_width_bytes(arr: pa.Array, width: int) -> np.ndarray:
    """String array whose values all have ``width`` bytes -> (N, width) uint8."""
    arr = arr.cast(pa.large_binary())
    if len(arr) == 0:
        return np.zeros((0, width), dtype=np.uint8)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset:arr.offset + len(arr) + 1]
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)
    return data[offsets[0]:offsets[-1]].reshape(len(arr), width)


def read_sudoku_csv(path: str, label: str, report: Reporter) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Read and validate a sudoku-extreme style CSV.

    Returns ``(puzzles, solutions, ratings, sources)`` for the valid rows; every invalid row
    (wrong field count, wrong length, unknown character, digit > size, invalid or
    clue-contradicting answer, non-integer rating) is reported with its line number and skipped.
    """
    import pyarrow.csv as pacsv

    bad_lines: list[str] = []

    def on_invalid(row) -> str:
        bad_lines.append(f"line {row.number}: {row.actual_columns} fields, expected {row.expected_columns}")
        return "skip"

    # Single-threaded parsing: the invalid-row handler then knows line numbers.
    try:
        table = pacsv.read_csv(path, read_options=pacsv.ReadOptions(use_threads=False),
                               parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
                               convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in
                                                                                  ("source", "question", "answer",
                                                                                   "rating")}))
    except pa.ArrowInvalid as err:  # not a CSV at all (binary, empty): name the file
        raise ValueError(f"{path}: not a readable CSV file ({str(err).strip().splitlines()[0]})") from None
    missing = {"question", "answer"} - set(table.column_names)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}; have {table.column_names}")
    num = table.num_rows
    # Line numbers of parsed rows (header = line 1), accounting for rows the parser skipped.
    skipped = sorted(int(b.split()[1].rstrip(":")) for b in bad_lines if b.split()[1].rstrip(":").isdigit())
    lines = np.arange(num) + 2
    for s in skipped:
        lines[lines >= s] += 1
    q = table.column("question").combine_chunks().fill_null("")
    a = table.column("answer").combine_chunks().fill_null("")
    qlen = pc.binary_length(q).to_numpy(zero_copy_only=False)
    alen = pc.binary_length(a).to_numpy(zero_copy_only=False)
    valid_lengths = {n * n: n for n in SUDOKU_SIZES}
    counts = np.bincount(qlen[np.isin(qlen, list(valid_lengths))], minlength=82)
    if counts.sum() == 0:
        raise ValueError(f"{path}: no row has a question of 16, 36 or 81 cells")
    cells = int(counts.argmax())
    n = valid_lengths[cells]
    problems: dict[int, str] = {}
    for i in np.flatnonzero(qlen != cells):
        problems[i] = f"question has {qlen[i]} characters, expected {cells}"
    for i in np.flatnonzero((alen != cells) & (qlen == cells)):
        problems[i] = f"answer has {alen[i]} characters, expected {cells}"
    ok = (qlen == cells) & (alen == cells)
    idx = np.flatnonzero(ok)
    lut = _char_lut()
    qd = lut[_fixed_width_bytes(q.filter(pa.array(ok)), cells)]
    ad = lut[_fixed_width_bytes(a.filter(pa.array(ok)), cells)]
    bad_q = (qd > n).any(axis=1)
    bad_a = (ad > n).any(axis=1) | (ad == 0).any(axis=1)
    for j in np.flatnonzero(bad_q):
        col = int(np.argmax(qd[j] > n))
        problems[idx[j]] = f"question has unknown symbol / digit > {n} at position {col}"
    for j in np.flatnonzero(bad_a & ~bad_q):
        problems[idx[j]] = f"answer has a blank, unknown symbol or digit > {n}"
    good = ~bad_q & ~bad_a
    valid = np.zeros(len(idx), dtype=bool)
    valid[good] = sudoku_batch_valid(qd[good], ad[good])
    for j in np.flatnonzero(good & ~valid):
        problems[idx[j]] = "answer is not a valid complete grid agreeing with the clues"
    ratings = np.zeros(len(idx), dtype=np.int32)
    sources = [""] * len(idx)
    if "rating" in table.column_names:
        rcol = table.column("rating").combine_chunks().filter(pa.array(ok)).to_pylist()
        for j, r in enumerate(rcol):
            try:
                ratings[j] = int(float(r)) if r not in (None, "") else 0
            except ValueError:
                problems[idx[j]] = f"rating {r!r} is not a number"
                valid[j] = False
    if "source" in table.column_names:
        sources = table.column("source").combine_chunks().filter(pa.array(ok)).fill_null("").to_pylist()
    for j in np.flatnonzero(valid):
        if idx[j] in problems:
            valid[j] = False
    all_bad = bad_lines + [f"line {lines[i]}: {msg}" for i, msg in sorted(problems.items())]
    for line in all_bad[:MAX_REPORTED]:
        report(f"{label}: skipped {line}", always=True)
    if all_bad:
        report(f"{label}: skipped {len(all_bad)} malformed row(s) of {num + len(bad_lines)} in {path}", always=True)
    keep = np.flatnonzero(valid)
    return (qd[keep], ad[keep], ratings[keep], [sources[j] for j in keep])


def subsample(count: int, size: int | None, rng: np.random.Generator) -> np.ndarray:
    if size is None or size >= count:
        return np.arange(count)
    return np.sort(rng.choice(count, size=size, replace=False))


# ----------------------------------------------------------------------------- writing


def write_eval(output_dir: str, split: str, data: dict[str, np.ndarray]) -> tuple[int, object]:
    """An eval split (test, validation): originals only, ``group_id`` = row."""
    w = SplitWriter(output_dir, split)
    num = len(data["puzzles"])
    cols = base_columns(data["puzzles"] + 1, data["solutions"] + 1, np.zeros(num, np.int32), np.arange(num))
    cols["rating"] = pa.array(data["ratings"], type=pa.int32())
    cols["rounds"] = pa.array(data["rounds"], type=pa.int32())
    w.write(cols)
    w.close()
    return w.num_rows, w.schema


def write_train(output_dir: str, data: dict[str, np.ndarray], num_aug: int, eval_keys: np.ndarray,
                eval_answers: np.ndarray | None, rng: np.random.Generator, report: Reporter
                ) -> tuple[int, object, dict[str, int], np.ndarray]:
    """Originals plus ``num_aug`` augmentations each, validated and leak-checked per chunk: a row that is an eval
    puzzle up to symmetry (``eval_keys``), or with ``eval_answers`` (row hashes) whose answer is an eval answer,
    is dropped. Returns ``(rows, schema, dropped counts, answers of every written row)``."""
    puzzles, solutions, ratings, rounds = data["puzzles"], data["solutions"], data["ratings"], data["rounds"]
    w = SplitWriter(output_dir, "train")
    per = 1 + num_aug
    chunk_puzzles = max(1, AUG_CHUNK_ROWS // per)
    dropped = {"augmented_rows": 0, "augmented_answer_clashes": 0}
    answers = []
    for start in range(0, len(puzzles), chunk_puzzles):
        base = np.arange(start, min(start + chunk_puzzles, len(puzzles)))
        src = np.repeat(base, per)
        p = puzzles[src].copy()
        s = solutions[src].copy()
        aug_rows = np.flatnonzero(np.tile(np.arange(per) > 0, len(base)))
        if num_aug:
            p[aug_rows], s[aug_rows] = augment_sudoku(puzzles, solutions, src[aug_rows], rng)
        bad = ~sudoku_batch_valid(p, s)
        if bad.any():  # an augmentation that breaks validity is a bug, not a data problem
            raise ValueError(f"augmentation produced {int(bad.sum())} invalid grid(s), first from puzzle {src[bad][0]}")
        leak = find_leaks(sudoku_variant_keys(p, all_symmetries=False), eval_keys)
        clash = find_leaks(row_hashes(s), eval_answers) & ~leak if eval_answers is not None else np.zeros_like(leak)
        dropped["augmented_rows"] += int(leak.sum())
        dropped["augmented_answer_clashes"] += int(clash.sum())
        keep = ~(leak | clash)
        p, s, src = p[keep], s[keep], src[keep]
        cols = base_columns(p + 1, s + 1, np.zeros(len(p), np.int32), src)
        cols["rating"] = pa.array(ratings[src], type=pa.int32())
        cols["rounds"] = pa.array(rounds[src], type=pa.int32())  # digit relabelling and symmetries keep the depth
        w.write(cols)
        answers.append(s)
        report(f"train: wrote {w.num_rows:,} rows ({base[-1] + 1}/{len(puzzles)} puzzles)")
    w.close()
    return w.num_rows, w.schema, dropped, np.concatenate(answers)


def _take(data: dict[str, np.ndarray], keep: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[keep] for k, v in data.items()}


def generate_source(args: argparse.Namespace, n: int, require_open: bool, report: Reporter
                    ) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, int], int]:
    """Generate test, validation (with --num-val) and train: (splits, rejection counts, extra clues)."""
    extra = args.extra_clues if args.extra_clues is not None else (0 if n == 9 else n)
    eval_filter, train_filter = split_filters(n, args)
    per_bucket = len(eval_filter.buckets) if eval_filter.buckets else 1
    workers = Workers(args.workers if args.workers is not None else min(2, os.cpu_count() or 1), report)
    index = VariantIndex()  # shared: every split is distinct from the others up to symmetry
    splits: dict[str, dict[str, np.ndarray]] = {}
    try:
        # Eval splits first, so every train puzzle is checked against the finished eval sets.
        for split, count in (("test", args.num_test), ("validation", args.num_val)):
            if count:
                splits[split], _ = generate_split(n, split, [count] * per_bucket, eval_filter, args.min_rating, extra,
                                                  args.seed, index, workers, report)
        forbidden = ({int(h) for s in splits for h in row_hashes(splits[s]["solutions"])} if require_open
                     else None)
        splits["train"], stats = generate_split(n, "train", [args.num_train], train_filter, args.min_rating, extra,
                                                args.seed, index, workers, report, forbidden_answers=forbidden)
    finally:
        workers.close()
    return {s: splits[s] for s in ("train", *EVAL_SPLITS) if s in splits}, stats, extra


def csv_source(args: argparse.Namespace, nrng: np.random.Generator, report: Reporter
               ) -> tuple[dict[str, dict[str, np.ndarray]], int]:
    """Read train.csv / test.csv (validation: --num-val puzzles held out from train.csv, seeded)."""
    tr_p, tr_s, tr_r, _ = read_sudoku_csv(_csv_path(args.csv_dir, "train.csv"), "train", report)
    te_p, te_s, te_r, _ = read_sudoku_csv(_csv_path(args.csv_dir, "test.csv"), "test", report)
    n = int(round(np.sqrt(tr_p.shape[1])))
    if te_p.shape[1] != tr_p.shape[1]:
        raise ValueError(f"train has {n}x{n} puzzles but test has {te_p.shape[1]} cells")
    if args.min_rating:
        k_tr, k_te = tr_r >= args.min_rating, te_r >= args.min_rating
        tr_p, tr_s, tr_r = tr_p[k_tr], tr_s[k_tr], tr_r[k_tr]
        te_p, te_s, te_r = te_p[k_te], te_s[k_te], te_r[k_te]
    splits = {}
    if args.num_val:
        if args.num_val >= len(tr_p):
            raise ValueError(f"--num-val {args.num_val} leaves no train puzzles ({len(tr_p)} in train.csv)")
        order = nrng.permutation(len(tr_p))
        val, rest = np.sort(order[:args.num_val]), np.sort(order[args.num_val:])
        splits["validation"] = {"puzzles": tr_p[val], "solutions": tr_s[val], "ratings": tr_r[val]}
        tr_p, tr_s, tr_r = tr_p[rest], tr_s[rest], tr_r[rest]
    sel = subsample(len(tr_p), args.subsample_size, nrng)
    splits["train"] = {"puzzles": tr_p[sel], "solutions": tr_s[sel], "ratings": tr_r[sel]}
    sel = subsample(len(te_p), args.test_subsample_size, nrng)
    splits["test"] = {"puzzles": te_p[sel], "solutions": te_s[sel], "ratings": te_r[sel]}
    # The depth costs ~0.2 ms per 9x9 puzzle in pure Python: computed for subsamples, not for millions of rows.
    solver = SudokuSolver(n)
    for data in splits.values():
        ps = data["puzzles"]
        data["rounds"] = (np.asarray([solver.propagation_rounds(p) for p in ps], dtype=np.int32)
                          if len(ps) <= MAX_DEPTH_RATED else np.full(len(ps), NOT_RATED, dtype=np.int32))
    return {s: splits[s] for s in ("train", *EVAL_SPLITS) if s in splits}, n


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    set_build_command("dataset_scripts.build_sudoku_dataset", argv)
    report = Reporter(args.quiet)
    nrng = np.random.default_rng(args.seed)
    if args.num_aug < 0:
        raise ValueError("--num-aug must be >= 0")
    if args.eval_buckets is not None:
        parse_depth_buckets(args.eval_buckets)  # a malformed spec fails before any work, for either source
    generated = args.source == "generate"
    dropped = {"train_puzzles": 0, "validation_puzzles": 0, "train_answer_clashes": 0}
    if generated:
        n = args.size
        require_open = args.require_open if args.require_open is not None else n > 4
        splits, stats, extra = generate_source(args, n, require_open, report)
        dropped["train_answer_clashes"] = stats["answer_clashes"]
        source_text = (f"Generated offline by `dataset_scripts/sudoku.py` (seed {args.seed}): a random full {n}x{n} "
                       "grid, then clues removed in random order while the solution stays unique (minimal "
                       f"puzzles), then 0..{extra} random solution digits given back. Rating = dead ends met by the "
                       "reference DFS solver (bitmasks, minimum remaining values, digits ascending) before its first "
                       f"solution; --min-rating {args.min_rating}. Depth (`rounds`) = rounds of parallel naked + "
                       "hidden singles until solved (-1: singles stall, search needed); kept: "
                       f"{_filter_text(args.min_rating, split_filters(n, args)[0])} for the eval splits"
                       + (f", at most {args.train_max_rounds} rounds for train" if args.train_max_rounds else "")
                       + ". All splits are distinct from each other up to digit relabelling and "
                       + ("the full validity-preserving symmetry group." if n < 9 else "the 8 dihedral images."))
        license = args.license or "apache-2.0"
        license_note = "Generated by the hrm project's code; released under the project's licence."
    else:
        if not args.csv_dir:
            raise ValueError("--source csv needs --csv-dir (a folder with train.csv/test.csv or a Hub repo id)")
        for name in ("min_rounds", "max_rounds", "train_max_rounds", "eval_buckets"):
            if getattr(args, name) is not None:
                raise ValueError(f"--{name.replace('_', '-')} selects generated puzzles; with --source csv use "
                                 "--min-rating")
        splits, n = csv_source(args, nrng, report)
        require_open = bool(args.require_open) if args.require_open is not None else n > 4
        source_text = (f"Converted from the CSV files of `{args.csv_dir}` (sudoku-extreme format: source, question, "
                       f"answer, rating). Train subsample: {args.subsample_size or 'all'} (seed {args.seed}); "
                       f"test subsample: {args.test_subsample_size or 'all'}; --min-rating {args.min_rating}"
                       + (f"; validation: {args.num_val} puzzles held out from train.csv (seeded)." if args.num_val
                          else "."))
        license = args.license or "other"
        license_note = f"Inherits the licence of the source dataset `{args.csv_dir}`; check its card."
    report(f"{n}x{n}: " + ", ".join(f"{len(d['puzzles']):,} {s} puzzles" for s, d in splits.items()))
    if any(len(d["puzzles"]) == 0 for d in splits.values()):
        raise ValueError("no valid puzzles left in " + " or ".join(s for s, d in splits.items() if not len(d["puzzles"])))
    eval_names = [s for s in EVAL_SPLITS if s in splits]

    # Leakage: a puzzle that is an eval puzzle up to digit relabelling / symmetry. The generator never makes
    # one; CSV files can hold them (dropped from train, and from validation against test).
    eval_keys = {s: sudoku_variant_keys(splits[s]["puzzles"], all_symmetries=True) for s in eval_names}
    if "validation" in splits:
        leak = find_leaks(sudoku_variant_keys(splits["validation"]["puzzles"], all_symmetries=False), eval_keys["test"])
        if leak.any():
            report(f"validation: dropped {int(leak.sum())} puzzle(s) that are test puzzles up to symmetry", always=True)
            splits["validation"] = _take(splits["validation"], ~leak)
            eval_keys["validation"] = sudoku_variant_keys(splits["validation"]["puzzles"], all_symmetries=True)
            dropped["validation_puzzles"] = int(leak.sum())
    all_eval_keys = sorted_keys(np.concatenate([eval_keys[s] for s in eval_names]))
    leak = find_leaks(sudoku_variant_keys(splits["train"]["puzzles"], all_symmetries=False), all_eval_keys)
    if leak.any():
        report(f"train: dropped {int(leak.sum())} puzzle(s) that are test puzzles up to relabelling/symmetry "
               f"(first: train puzzle {int(np.flatnonzero(leak)[0])})", always=True)
        splits["train"] = _take(splits["train"], ~leak)
        dropped["train_puzzles"] = int(leak.sum())
    eval_answers = sorted_keys(np.concatenate([row_hashes(splits[s]["solutions"]) for s in eval_names]))
    if require_open and not generated:  # the generator already left these out
        clash = find_leaks(row_hashes(splits["train"]["solutions"]), eval_answers)
        if clash.any():
            report(f"train: dropped {int(clash.sum())} puzzle(s) whose answer is an eval answer", always=True)
            splits["train"] = _take(splits["train"], ~clash)
            dropped["train_answer_clashes"] = int(clash.sum())
    dup_eval = {s: int(first_duplicates(sudoku_variant_keys(splits[s]["puzzles"], all_symmetries=False)).sum())
                for s in eval_names}

    # Openness against the training puzzles, before anything is written (a build that is not open fails here).
    train = splits["train"]
    openness = sudoku_openness(train["puzzles"], train["solutions"],
                               {s: (splits[s]["puzzles"], splits[s]["solutions"]) for s in eval_names},
                               eval_puzzle_keys=eval_keys)
    for s in eval_names:
        ok, why = is_open(openness[s])
        if require_open and not ok:
            raise ValueError(f"{s} split is not open: {why} (--no-require-open builds it anyway)")
        report(f"{s}: openness {openness[s]}")

    os.makedirs(args.output_dir, exist_ok=True)
    num_rows, schema = {}, None
    for s in eval_names:
        num_rows[s], schema = write_eval(args.output_dir, s, splits[s])
    num_rows["train"], _, aug_dropped, answer_rows = write_train(
        args.output_dir, train, args.num_aug, all_eval_keys, eval_answers if require_open else None, nrng, report)
    dropped.update(aug_dropped)
    if aug_dropped["augmented_rows"]:
        report(f"train: dropped {aug_dropped['augmented_rows']} augmented row(s) equal to an eval puzzle variant",
               always=True)
    if args.num_aug:  # the verbatim figures count every training row, augmented copies included
        for s in eval_names:
            openness[s].update(answer_figures(splits[s]["puzzles"], splits[s]["solutions"], answer_rows))
            openness[s]["train_rows"] = int(len(answer_rows))
    num_rows = {s: num_rows[s] for s in ("train", *EVAL_SPLITS) if s in num_rows}

    br, bc = sudoku_box_shape(n)
    transpose = br == bc
    aug_text = (f"Train split: each puzzle plus {args.num_aug} augmented copies (build-time, {1 + args.num_aug} rows "
                "per puzzle, sharing `group_id`), as in HRM_SPEC §5: digit permutation, band permutation and row "
                "permutation within bands, stack permutation and column permutation within stacks"
                + (", transpose with p = 0.5." if transpose else
                   f"; no transpose, because {br}x{bc} boxes would become {bc}x{br}.")
                + " Eval splits: not augmented. Build-time augmentation keeps the trainer task-agnostic; the "
                "rows are tiny (2 x seq_len bytes) and compress well.") if args.num_aug else \
        "None (`--num-aug 0`): every row is an original puzzle."
    symmetry_text = ("digit relabelling and " + ("the full validity-preserving group (band, row-in-band, stack, "
                     "column-in-stack permutations" + (", transpose)" if transpose else ")") if n < 9 else
                     "the 8 dihedral images (the full 9x9 group has 3.4M elements)"))
    validation = (f"Every answer is a complete valid {n}x{n} grid agreeing with its clues (checked on every row, "
                  "augmented ones included)"
                  + ("; every generated puzzle has exactly one solution (re-checked by the solver)" if generated else "")
                  + f". No train row is an eval ({', '.join(eval_names)}) puzzle up to {symmetry_text} (train puzzles "
                  f"dropped: {dropped['train_puzzles']}, augmented rows dropped: {dropped['augmented_rows']}"
                  + (f", validation puzzles dropped as test variants: {dropped['validation_puzzles']}"
                     if "validation" in splits and not generated else "") + "). "
                  + (f"Open build (--require-open): train puzzles whose answer is an eval answer were left out "
                     f"({dropped['train_answer_clashes']} puzzles, {dropped['augmented_answer_clashes']} augmented "
                     "rows); see Openness. " if require_open else
                     "Not required to be open (--no-require-open): see Openness for what a model could recall. ")
                  + "Eval puzzles duplicated within their split (same variant key): "
                  + ", ".join(f"{s} {dup_eval[s]}" for s in eval_names) + ".")
    buckets = ",".join(b.name for b in parse_depth_buckets(args.eval_buckets)) if args.eval_buckets else None
    rounds = {s: splits[s]["rounds"] for s in num_rows}
    meta = metadata_dict(
        task="sudoku", vocab_size=n + 2, seq_len=n * n, token_names=sudoku_token_names(n),
        puzzle_identifier_names=["<blank>"], grid_height=n, grid_width=n, num_rows=num_rows,
        sudoku_size=n, box_shape=[br, bc], source=args.source,
        source_detail=args.csv_dir if args.source == "csv" else "generator",
        num_aug=args.num_aug, num_train_puzzles=int(len(train["puzzles"])),
        num_test_puzzles=int(len(splits["test"]["puzzles"])),
        num_validation_puzzles=int(len(splits["validation"]["puzzles"])) if "validation" in splits else 0,
        min_rating=args.min_rating, seed=args.seed,
        extra_clues=(extra if generated else None),
        mean_rating={s: float(splits[s]["ratings"].mean()) for s in num_rows},
        min_rounds=args.min_rounds, max_rounds=args.max_rounds, train_max_rounds=args.train_max_rounds,
        depth_buckets=buckets,
        rounds_histogram={s: depth_histogram(r) for s, r in rounds.items()},
        leaks_dropped=dropped, require_open=require_open, openness_symmetries=symmetry_text, openness=openness,
    )
    write_metadata(args.output_dir, meta)
    write_card(args.output_dir, pretty_name=f"HRM Sudoku {n}x{n}", license=license,
               tags=["hrm", "sudoku", "reasoning", "puzzles"], splits=list(num_rows),
               num_rows=meta["num_rows"], schema=schema,
               description=(f"{n}x{n} Sudoku puzzles for the Hierarchical Reasoning Model. Tokens: PAD 0, blank 1, "
                            f"digit d -> d + 1 (vocab {n + 2}); `inputs` is the puzzle, `labels` the solution (all "
                            f"cells scored), `rating` the difficulty (solver backtracks), `rounds` the depth (rounds of "
                            f"parallel single-propagation, -1 = needs search), one shared puzzle id 0. "
                            f"Boxes are {br} rows x {bc} columns."),
               sources=source_text, augmentation=aug_text, validation=validation, meta=meta,
               license_note=license_note,
               extra_sections=depth_section(rounds, buckets) + "\n\n" + openness_section(openness, symmetry_text))
    finish(args, report, meta)
    return meta


if __name__ == "__main__":
    sys.exit(run_cli(main))
