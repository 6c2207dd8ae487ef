"""Build an HRM Sudoku dataset in the Hub layout (parquet shards + card + hrm_dataset.json).

Sources:
  --source generate   offline generator of unique-solution puzzles (4x4, 6x6, 9x9) rated by
                      the backtracks of a reference DFS+MRV solver (--min-rating filters).
  --source csv        the `sapientinc/sudoku-extreme` CSV format (train.csv / test.csv with
                      columns source, question, answer, rating; '.' = blank) from a local
                      folder or a Hub dataset repo id (--csv-dir).

Examples:
  python dataset_scripts/build_sudoku_dataset.py --output-dir data/sudoku-4x4 --size 4 \\
      --num-train 200 --num-test 50 --num-aug 10
  python -m dataset_scripts.build_sudoku_dataset --output-dir data/sudoku-extreme-1k \\
      --source csv --csv-dir sapientinc/sudoku-extreme --subsample-size 1000 --num-aug 1000
"""

from __future__ import annotations

import argparse
import os
import random
import sys

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dataset_scripts.common import (set_build_command, Reporter, SplitWriter, base_columns, find_leaks, finish,
                                    first_duplicates, metadata_dict, run_cli, write_card, write_metadata, builder_parser, MAX_REPORTED)
from dataset_scripts.formats import (SUDOKU_SIZES, sudoku_batch_valid, sudoku_box_shape, sudoku_token_names,
                                     sudoku_variant_keys)
from dataset_scripts.sudoku import SudokuSolver, augment_sudoku, generate_puzzle

#: Attempts per window when the generator judges whether its acceptance rate can still reach the count.
RATE_WINDOW = 1000

#: CSV splits larger than this get `rounds` = NOT_RATED instead of a computed depth.
MAX_DEPTH_RATED = 50_000
NOT_RATED = -2

#: Rows per augmentation chunk (bounds memory: ~chunk x seq_len x 8 bytes of temporaries).
AUG_CHUNK_ROWS = 131072


def build_parser() -> argparse.ArgumentParser:
    p = builder_parser(__doc__)
    p.add_argument("--source", choices=("generate", "csv"), default="generate")
    p.add_argument("--size", type=int, choices=SUDOKU_SIZES, default=9, help="grid size for --source generate")
    p.add_argument("--num-train", type=int, default=1000, help="generated train puzzles (before augmentation)")
    p.add_argument("--num-test", type=int, default=200, help="generated test puzzles")
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


def generate_puzzles(n: int, count: int, min_rating: int, rng: random.Random, seen: set[int], report: Reporter,
                     label: str, extra_clues: int = 0, depth: tuple[int | None, int | None] = (None, None)
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``count`` unique-solution puzzles with rating >= min_rating and propagation rounds within
    ``depth`` = (min, max) (None = no bound; -1 = stuck, deeper than any max), none a relabelling /
    dihedral variant of a puzzle in ``seen`` (a set of variant keys, updated in place).

    Returns ``(puzzles, solutions, ratings, rounds)``. Raises ValueError, with the depth and rating
    distribution of what was generated, as soon as the acceptance rate shows that ``count`` puzzles
    cannot be found within the attempt budget (so an impossible request fails fast, not forever).
    """
    solver = SudokuSolver(n)
    min_rounds, max_rounds = depth
    puzzles, solutions, ratings, depths = [], [], [], []
    attempts, dupes, rejected = 0, 0, 0
    seen_depths: dict[int, int] = {}
    max_attempts = 50 * count + 2000
    probe = RATE_WINDOW
    window_start = 0  # accepted puzzles when the current window began

    def give_up(reason: str) -> ValueError:
        dist = ", ".join(f"{'stuck' if d < 0 else d}: {c}" for d, c in sorted(seen_depths.items()))
        return ValueError(f"{label}: {reason}; found {len(puzzles)} of {count} distinct {n}x{n} puzzles with "
                          f"{_filter_text(min_rating, depth)} in {attempts} attempts ({dupes} duplicates/variants, "
                          f"{rejected} outside the filter; propagation rounds seen: {dist}); "
                          "ask for fewer puzzles or a wider depth / rating range")

    while len(puzzles) < count:
        if attempts >= max_attempts:
            raise give_up("attempt budget spent")
        if attempts and attempts % probe == 0:  # the rate falls as distinct puzzles run out: judge the latest window
            fresh = len(puzzles) - window_start
            if fresh == 0 or (count - len(puzzles)) * probe > fresh * (max_attempts - attempts):
                raise give_up(f"at the rate of the last {probe} attempts ({fresh} accepted) the budget of "
                              f"{max_attempts} attempts cannot be enough")
            window_start = len(puzzles)
        attempts += 1
        p, s, r = generate_puzzle(n, rng, solver, extra_clues)
        d = solver.propagation_rounds(p)
        seen_depths[d] = seen_depths.get(d, 0) + 1
        deep_enough = min_rounds is None or d < 0 or d >= min_rounds
        shallow_enough = max_rounds is None or 0 <= d <= max_rounds
        if r < min_rating or not (deep_enough and shallow_enough):
            rejected += 1
            continue
        key = int(sudoku_variant_keys(p[None], all_symmetries=False)[0])
        if key in seen:
            dupes += 1
            continue
        seen.update(int(k) for k in sudoku_variant_keys(p[None], all_symmetries=True))
        puzzles.append(p)
        solutions.append(s)
        ratings.append(r)
        depths.append(d)
        if len(puzzles) % 1000 == 0:
            report(f"{label}: generated {len(puzzles)}/{count}")
    report(f"{label}: {count} puzzles from {attempts} attempts ({dupes} rejected as duplicates/variants, "
           f"{rejected} outside {_filter_text(min_rating, depth)})")
    return (np.stack(puzzles), np.stack(solutions), np.asarray(ratings, dtype=np.int32),
            np.asarray(depths, dtype=np.int32))


def _filter_text(min_rating: int, depth: tuple[int | None, int | None]) -> str:
    lo, hi = depth
    rounds = ("any propagation rounds" if lo is None and hi is None else
              f"propagation rounds {lo if lo is not None else 1}..{hi if hi is not None else 'stuck'}")
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


def depth_section(train_rounds: np.ndarray, test_rounds: np.ndarray) -> str:
    """Card section with the depth distribution of both splits (puzzles, before augmentation)."""
    keys = sorted(set(depth_histogram(train_rounds)) | set(depth_histogram(test_rounds)),
                  key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else k))
    tr, te = depth_histogram(train_rounds), depth_histogram(test_rounds)
    lines = ["## Depth distribution", "",
             "Rounds of parallel single-propagation each puzzle needs (`rounds` column; 'stuck' = -1: naked and "
             "hidden singles stall, search is needed; 'not computed': CSV splits over "
             f"{MAX_DEPTH_RATED:,} puzzles). Counts of puzzles, before augmentation.", "",
             "| rounds | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys),
             "| train | " + " | ".join(str(tr.get(k, 0)) for k in keys) + " |",
             "| test | " + " | ".join(str(te.get(k, 0)) for k in keys) + " |"]
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


def write_test(output_dir: str, puzzles: np.ndarray, solutions: np.ndarray, ratings: np.ndarray,
               rounds: np.ndarray) -> tuple[int, object]:
    w = SplitWriter(output_dir, "test")
    cols = base_columns(puzzles + 1, solutions + 1, np.zeros(len(puzzles), np.int32), np.arange(len(puzzles)))
    cols["rating"] = pa.array(ratings, type=pa.int32())
    cols["rounds"] = pa.array(rounds, type=pa.int32())
    w.write(cols)
    w.close()
    return w.num_rows, w.schema


def write_train(output_dir: str, puzzles: np.ndarray, solutions: np.ndarray, ratings: np.ndarray, rounds: np.ndarray,
                num_aug: int, test_keys: np.ndarray, rng: np.random.Generator, report: Reporter) -> tuple[int, object, int]:
    """Originals plus ``num_aug`` augmentations each, validated and leak-checked per chunk."""
    w = SplitWriter(output_dir, "train")
    per = 1 + num_aug
    chunk_puzzles = max(1, AUG_CHUNK_ROWS // per)
    dropped = 0
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
        leak = find_leaks(sudoku_variant_keys(p, all_symmetries=False), test_keys)
        if leak.any():
            dropped += int(leak.sum())
            keep = ~leak
            p, s, src = p[keep], s[keep], src[keep]
        cols = base_columns(p + 1, s + 1, np.zeros(len(p), np.int32), src)
        cols["rating"] = pa.array(ratings[src], type=pa.int32())
        cols["rounds"] = pa.array(rounds[src], type=pa.int32())  # digit relabelling and symmetries keep the depth
        w.write(cols)
        report(f"train: wrote {w.num_rows:,} rows ({base[-1] + 1}/{len(puzzles)} puzzles)")
    w.close()
    return w.num_rows, w.schema, dropped


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    set_build_command("dataset_scripts.build_sudoku_dataset", argv)
    report = Reporter(args.quiet)
    nrng = np.random.default_rng(args.seed)
    if args.num_aug < 0:
        raise ValueError("--num-aug must be >= 0")
    if args.source == "generate":
        n = args.size
        if args.num_train <= 0 or args.num_test <= 0:
            raise ValueError("--num-train and --num-test must be positive")
        extra = args.extra_clues if args.extra_clues is not None else (0 if n == 9 else n)
        depth = check_depth_range(n, args.min_rounds, args.max_rounds)
        seen: set[int] = set()
        # Test first, so every train puzzle is checked against the finished test set.
        te_p, te_s, te_r, te_d = generate_puzzles(n, args.num_test, args.min_rating, random.Random(f"{args.seed}-test"),
                                                  seen, report, "test", extra, depth)
        tr_p, tr_s, tr_r, tr_d = generate_puzzles(n, args.num_train, args.min_rating,
                                                  random.Random(f"{args.seed}-train"), seen, report, "train", extra,
                                                  depth)
        solver = SudokuSolver(n)
        for label, ps in (("test", te_p), ("train", tr_p)):
            for i, p in enumerate(ps):  # independent re-check of uniqueness
                if solver.count_solutions(p, limit=2) != 1:
                    raise ValueError(f"{label} puzzle {i} does not have a unique solution")
        source_text = (f"Generated offline by `dataset_scripts/sudoku.py` (seed {args.seed}): a random full {n}x{n} "
                       "grid, then clues removed in random order while the solution stays unique (minimal "
                       f"puzzles), then 0..{extra} random solution digits given back. Rating = dead ends met by the reference DFS solver (bitmasks, minimum "
                       f"remaining values, digits ascending) before its first solution; --min-rating {args.min_rating}. "
                       "Depth (`rounds`) = rounds of parallel naked + hidden singles until solved (-1: singles "
                       f"stall, search needed); kept: {_filter_text(args.min_rating, depth)}. "
                       "Train and test puzzles are distinct up to digit relabelling and "
                       + ("the full validity-preserving symmetry group." if n < 9 else "the 8 dihedral images."))
        license = args.license or "apache-2.0"
        license_note = "Generated by the hrm project's code; released under the project's licence."
    else:
        if not args.csv_dir:
            raise ValueError("--source csv needs --csv-dir (a folder with train.csv/test.csv or a Hub repo id)")
        if args.min_rounds is not None or args.max_rounds is not None:
            raise ValueError("--min-rounds/--max-rounds select generated puzzles; with --source csv use --min-rating")
        tr_p, tr_s, tr_r, _ = read_sudoku_csv(_csv_path(args.csv_dir, "train.csv"), "train", report)
        te_p, te_s, te_r, _ = read_sudoku_csv(_csv_path(args.csv_dir, "test.csv"), "test", report)
        n = int(round(np.sqrt(tr_p.shape[1])))
        if te_p.shape[1] != tr_p.shape[1]:
            raise ValueError(f"train has {n}x{n} puzzles but test has {te_p.shape[1]} cells")
        if args.min_rating:
            k_tr, k_te = tr_r >= args.min_rating, te_r >= args.min_rating
            tr_p, tr_s, tr_r = tr_p[k_tr], tr_s[k_tr], tr_r[k_tr]
            te_p, te_s, te_r = te_p[k_te], te_s[k_te], te_r[k_te]
        sel = subsample(len(tr_p), args.subsample_size, nrng)
        tr_p, tr_s, tr_r = tr_p[sel], tr_s[sel], tr_r[sel]
        sel = subsample(len(te_p), args.test_subsample_size, nrng)
        te_p, te_s, te_r = te_p[sel], te_s[sel], te_r[sel]
        source_text = (f"Converted from the CSV files of `{args.csv_dir}` (sudoku-extreme format: source, question, "
                       f"answer, rating). Train subsample: {args.subsample_size or 'all'} (seed {args.seed}); "
                       f"test subsample: {args.test_subsample_size or 'all'}; --min-rating {args.min_rating}.")
        license = args.license or "other"
        license_note = f"Inherits the licence of the source dataset `{args.csv_dir}`; check its card."
        # The depth costs ~5 ms per 9x9 puzzle in pure Python: computed for subsamples, not for millions of rows.
        solver = SudokuSolver(n)
        tr_d, te_d = ((np.asarray([solver.propagation_rounds(p) for p in ps], dtype=np.int32)
                       if len(ps) <= MAX_DEPTH_RATED else np.full(len(ps), NOT_RATED, dtype=np.int32))
                      for ps in (tr_p, te_p))
    report(f"{n}x{n}: {len(tr_p)} train puzzles, {len(te_p)} test puzzles")
    if len(tr_p) == 0 or len(te_p) == 0:
        raise ValueError("no valid puzzles left in train or test")

    # Leakage: a train puzzle that is a test puzzle up to digit relabelling / dihedral image.
    test_keys = sudoku_variant_keys(te_p, all_symmetries=True)
    leak = find_leaks(sudoku_variant_keys(tr_p, all_symmetries=False), test_keys)
    if leak.any():
        report(f"train: dropped {int(leak.sum())} puzzle(s) that are test puzzles up to relabelling/symmetry "
               f"(first: train puzzle {int(np.flatnonzero(leak)[0])})", always=True)
        tr_p, tr_s, tr_r, tr_d = tr_p[~leak], tr_s[~leak], tr_r[~leak], tr_d[~leak]
    dup_test = int(first_duplicates(sudoku_variant_keys(te_p, all_symmetries=False)).sum())

    os.makedirs(args.output_dir, exist_ok=True)
    n_test, schema = write_test(args.output_dir, te_p, te_s, te_r, te_d)
    n_train, _, dropped = write_train(args.output_dir, tr_p, tr_s, tr_r, tr_d, args.num_aug, test_keys, nrng, report)
    if dropped:
        report(f"train: dropped {dropped} augmented row(s) equal to a test puzzle variant", always=True)

    br, bc = sudoku_box_shape(n)
    transpose = br == bc
    aug_text = (f"Train split: each puzzle plus {args.num_aug} augmented copies (build-time, {1 + args.num_aug} rows "
                "per puzzle, sharing `group_id`), as in HRM_SPEC §5: digit permutation, band permutation and row "
                "permutation within bands, stack permutation and column permutation within stacks"
                + (", transpose with p = 0.5." if transpose else
                   f"; no transpose, because {br}x{bc} boxes would become {bc}x{br}.")
                + " Test split: not augmented. Build-time augmentation keeps the trainer task-agnostic; the "
                "rows are tiny (2 x seq_len bytes) and compress well.") if args.num_aug else \
        "None (`--num-aug 0`): every row is an original puzzle."
    validation = (f"Every answer is a complete valid {n}x{n} grid agreeing with its clues (checked on every row, "
                  "augmented ones included)"
                  + ("; every generated puzzle has exactly one solution (re-checked by the solver)" if
                     args.source == "generate" else "")
                  + f". No train row is a test puzzle up to digit relabelling or a box-preserving dihedral image "
                  f"(train puzzles dropped: {int(leak.sum())}, augmented rows dropped: {dropped}). "
                  f"Test puzzles duplicated within test (same variant key): {dup_test}.")
    meta = metadata_dict(
        task="sudoku", vocab_size=n + 2, seq_len=n * n, token_names=sudoku_token_names(n),
        puzzle_identifier_names=["<blank>"], grid_height=n, grid_width=n,
        num_rows={"train": n_train, "test": n_test},
        sudoku_size=n, box_shape=[br, bc], source=args.source,
        source_detail=args.csv_dir if args.source == "csv" else "generator",
        num_aug=args.num_aug, num_train_puzzles=int(len(tr_p)), num_test_puzzles=int(len(te_p)),
        min_rating=args.min_rating, seed=args.seed,
        extra_clues=(extra if args.source == "generate" else None),
        mean_rating={"train": float(tr_r.mean()), "test": float(te_r.mean())},
        min_rounds=args.min_rounds, max_rounds=args.max_rounds,
        rounds_histogram={"train": depth_histogram(tr_d), "test": depth_histogram(te_d)},
        leaks_dropped={"train_puzzles": int(leak.sum()), "augmented_rows": dropped},
    )
    write_metadata(args.output_dir, meta)
    write_card(args.output_dir, pretty_name=f"HRM Sudoku {n}x{n}", license=license,
               tags=["hrm", "sudoku", "reasoning", "puzzles"], splits=["train", "test"],
               num_rows=meta["num_rows"], schema=schema,
               description=(f"{n}x{n} Sudoku puzzles for the Hierarchical Reasoning Model. Tokens: PAD 0, blank 1, "
                            f"digit d -> d + 1 (vocab {n + 2}); `inputs` is the puzzle, `labels` the solution (all "
                            f"cells scored), `rating` the difficulty (solver backtracks), `rounds` the depth (rounds of "
                            f"parallel single-propagation, -1 = needs search), one shared puzzle id 0. "
                            f"Boxes are {br} rows x {bc} columns."),
               sources=source_text, augmentation=aug_text, validation=validation, meta=meta,
               license_note=license_note, extra_sections=depth_section(tr_d, te_d))
    finish(args, report, meta)
    return meta


if __name__ == "__main__":
    sys.exit(run_cli(main))
