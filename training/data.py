"""What a run trains on, checked before any work starts: the dataset, the model config, the batch layout, the
checkpoint to resume from (`check_arguments` -> `RunPlan`), then the data itself (`load_data`) and the order it
is seen in (`BatchStream`, a seeded, resumable stream of global batches; `plan_steps` for `--dry_run`).
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import logging
import typing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from training.arguments import (ARCHITECTURE_KEYS, ConfigError, RunArguments, check_training_arguments, config_fields,
                                model_classes, one_line)

logger = logging.getLogger("hrm.train")


# ---------------------------------------------------------------------------------------------------------------
# The run plan: the whole configuration, checked before any work starts
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class RunPlan:
    """What validation resolved: dataset metadata, the model config, batch layout, where to resume from."""

    meta: dict
    model_class: type
    model_config: typing.Any
    global_batch: int
    micro_batch: int
    num_processes: int
    init_folder: Path | None = None
    resume_path: Path | None = None
    resume_state: dict | None = None
    accelerate_precision: str | None = None  # Accelerate's mixed_precision, when it differs from the training one
    dataset_fingerprint: str | None = None  # recorded in every checkpoint; a resume must find the same


def dataset_fingerprint(dataset: str, meta: dict) -> str:
    """What a checkpoint records of the data it was trained on, so that a resume on other data is refused: SHA-256
    of the metadata (without its build command, which names the output folder) and, for a local folder, of every
    parquet shard's bytes (the same build in another folder has the same fingerprint; another seed does not). For a
    Hub dataset, of the metadata and the repo id."""
    import hashlib

    digest = hashlib.sha256(json.dumps({k: v for k, v in meta.items() if k != "build_command"}, sort_keys=True,
                                       default=str).encode())
    path = Path(dataset)
    if path.is_dir():
        for shard in sorted((path / "data").glob("*.parquet")):
            with open(shard, "rb") as f:
                digest.update(shard.name.encode() + hashlib.file_digest(f, "sha256").digest())
    else:
        digest.update(f"hub:{dataset}".encode())
    return digest.hexdigest()



def check_dataset(dataset: str | None) -> dict:
    """The dataset's metadata, after checking the path is an hrm dataset (not a model folder, not missing)."""
    from dataset_scripts.common import load_hrm_metadata
    from training.hub import looks_like_repo_id

    if not dataset:
        raise ConfigError("no dataset: pass --dataset PATH_OR_REPO_ID or set `dataset:` in the YAML")
    path = Path(dataset)
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"--dataset {dataset}: a file, not a dataset folder")
        if not (path / "hrm_dataset.json").is_file():
            if (path / "config.json").is_file() or (path / "model" / "config.json").is_file() or any(
                    path.glob("checkpoint-*/model/config.json")):
                raise ConfigError(f"--dataset {dataset}: a model folder, not a dataset (fine-tune from a model with "
                                  f"--init_from)")
            raise ConfigError(f"--dataset {dataset}: no hrm_dataset.json; build a dataset with "
                              f"dataset_scripts/build_*_dataset.py")
        shards = sorted((path / "data").glob("*.parquet"))
        if not any(p.name.startswith("train-") for p in shards):
            raise ConfigError(f"--dataset {dataset}: no train split (data/train-*.parquet)")
        import pyarrow.parquet as pq

        for shard in shards:  # the footer only: a truncated or foreign file is found before training starts
            try:
                pq.read_metadata(shard)
            except Exception as error:
                raise ConfigError(f"--dataset {dataset}: {shard.relative_to(path)} is not a readable parquet file "
                                  f"({one_line(error)})") from None
    elif not looks_like_repo_id(dataset):
        raise ConfigError(f"--dataset {dataset}: no such folder, and not a Hub dataset repo id (owner/name)")
    try:
        meta = load_hrm_metadata(dataset)
    except json.JSONDecodeError as error:
        raise ConfigError(f"--dataset {dataset}: hrm_dataset.json is not valid JSON ({error.msg}, line "
                          f"{error.lineno})") from None
    except Exception as error:  # Hub: offline, no such repo, gated ...
        text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"--dataset {dataset}: cannot read its hrm_dataset.json: {text}") from None
    if not isinstance(meta, dict):
        raise ConfigError(f"--dataset {dataset}: hrm_dataset.json must hold a JSON object")
    return meta


def resolve_model_config(model_args, meta: dict, init_from: str | None):
    """(model class, config, init folder) from `model:` + dataset metadata, or from the `--init_from` model.

    Config errors come from the config classes' own `ValueError`s.
    """
    classes = model_classes()
    overrides = model_args.overrides()
    wanted = meta.get("num_puzzle_identifiers")
    if "num_puzzle_identifiers" in overrides and wanted is not None and overrides["num_puzzle_identifiers"] < wanted:
        raise ConfigError(f"model.num_puzzle_identifiers={overrides['num_puzzle_identifiers']} is fewer than the "
                          f"dataset's {wanted} puzzle identifiers")
    if init_from is None:
        model_type = model_args.model_type or "hrm"
        config_class, model_class = classes[model_type]
        _check_fields(config_class, model_type, overrides)
        try:
            return model_class, config_class.from_dataset_metadata(meta, **overrides), None
        except (ValueError, TypeError) as error:
            raise ConfigError(str(error).strip().splitlines()[0]) from None

    from modeling_hrm.loading import check_weights_match_config, load_config, locate_model

    folder = locate_model(init_from)  # ModelLoadError (one line) for missing folders, pickles, bad config ...
    cfg = load_config(folder)
    config_class, model_class = classes[cfg.model_type]
    check_weights_match_config(folder, model_class, cfg)
    if model_args.model_type and model_args.model_type != cfg.model_type:
        raise ConfigError(f"--init_from {init_from}: a {cfg.model_type} model, but model.type is "
                          f"{model_args.model_type}")
    _check_fields(config_class, cfg.model_type, overrides)
    for key in ("vocab_size", "seq_len"):
        if getattr(cfg, key) != meta.get(key):
            raise ConfigError(f"--init_from {init_from}: model {key}={getattr(cfg, key)} but the dataset has "
                              f"{meta.get(key)}")
    clashes = {k: (v, getattr(cfg, k)) for k, v in overrides.items() if k in ARCHITECTURE_KEYS and getattr(cfg, k) != v}
    if clashes:
        raise ConfigError(f"--init_from {init_from}: the model section sets {clashes} (config, checkpoint); "
                          f"architecture keys must match the checkpoint: drop them from the model section")
    values = cfg.to_dict()
    values.update({k: v for k, v in overrides.items() if k != "num_puzzle_identifiers"})  # behaviour keys may change
    values["num_puzzle_identifiers"] = meta["num_puzzle_identifiers"]  # the table is resized to the dataset's
    try:
        return model_class, config_class.from_dict(values), folder
    except (ValueError, TypeError) as error:
        raise ConfigError(str(error).strip().splitlines()[0]) from None


def _check_fields(config_class, model_type: str, overrides: dict) -> None:
    foreign = sorted(set(overrides) - set(config_fields(config_class)))
    if foreign:
        raise ConfigError(f"model.{foreign[0]} is not a field of {config_class.__name__} (model.type {model_type})")


def check_arguments(args: RunArguments, num_processes: int | None = None) -> RunPlan:
    """Validate the whole run (training values, dataset, model config, init / resume checkpoints, output folder)
    before any work starts. Raises `ConfigError` / `ValueError` with one line naming the problem."""
    from training import checkpointing

    t = args.training
    check_training_arguments(t)
    meta = check_dataset(args.data.dataset)
    if args.data.dataset_release and meta.get("release") != args.data.dataset_release:
        raise ConfigError(f"the recipe asks for data release {args.data.dataset_release} but --dataset "
                          f"{args.data.dataset} was built from {meta.get('release') or 'no named release'}; rebuild it "
                          f"with --release {args.data.dataset_release} (or set dataset_release: null)")
    splits = meta.get("num_rows") or {}
    if t.eval_split != "test" and splits and t.eval_split not in splits:
        raise ConfigError(f"training.eval_split {t.eval_split!r}: --dataset {args.data.dataset} has the splits "
                          f"{', '.join(sorted(splits))}")
    if num_processes is None:
        from accelerate import PartialState
        from accelerate.utils import parse_flag_from_env

        # As the Accelerator will: ACCELERATE_USE_CPU selects the CPU (gloo) process group under torchrun.
        num_processes = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU")).num_processes
    global_batch, micro_batch = batch_layout(vars(t), num_processes)
    train_rows = (meta.get("num_rows") or {}).get("train")
    if isinstance(train_rows, int) and train_rows < global_batch:
        raise ConfigError(f"the global batch {global_batch} is larger than the train split ({train_rows} rows of "
                          f"{args.data.dataset}); lower training.global_batch_size")
    model_class, model_config, init_folder = resolve_model_config(args.model, meta, t.init_from)
    plan = RunPlan(meta, model_class, model_config, global_batch, micro_batch, num_processes, init_folder,
                   dataset_fingerprint=dataset_fingerprint(args.data.dataset, meta))
    if t.depth_curriculum:
        from training.curriculum import check_depth_curriculum, parse_depth_curriculum

        try:
            check_depth_curriculum(parse_depth_curriculum(t.depth_curriculum), model_config, t.max_steps)
        except ValueError as error:
            raise ConfigError(str(error)) from None
    if "forward_dtype" in config_fields(type(model_config)):
        if "forward_dtype" not in args.model.overrides():
            # mixed_precision bf16 is the original's bf16: the whole forward (embeddings, carry, residual stream)
            # in bf16 with fp32 master weights, done by the model itself (no Accelerate autocast on top). An
            # explicit model.forward_dtype float32 with mixed_precision bf16 keeps Accelerate's autocast instead.
            model_config.forward_dtype = "bfloat16" if t.mixed_precision == "bf16" else "float32"
        if model_config.forward_dtype == "bfloat16":
            plan.accelerate_precision = "no"
    if t.resume_from_checkpoint:
        path = checkpointing.resolve_resume_path(t.resume_from_checkpoint, t.output_dir)
        if path is not None:
            plan.resume_path = path
            plan.resume_state = checkpointing.check_resume(
                path, num_processes=num_processes, global_batch_size=global_batch,
                gradient_accumulation_steps=t.gradient_accumulation_steps, model_config=model_config,
                architecture_keys=tuple(config_fields(type(model_config))), dataset=args.data.dataset,
                dataset_fingerprint=plan.dataset_fingerprint, training=dataclasses.asdict(t))
            if t.max_steps is not None and plan.resume_state["step"] > t.max_steps:
                raise ConfigError(f"--resume_from_checkpoint {path}: already at step {plan.resume_state['step']}, "
                                  f"past max_steps {t.max_steps}")
    return plan


def batch_layout(t: dict, num_processes: int) -> tuple[int, int]:
    """(global batch, per-process micro-batch) from the config; `ValueError` if they do not divide."""
    accum = t["gradient_accumulation_steps"]
    if t["per_device_train_batch_size"] is not None:
        micro = t["per_device_train_batch_size"]
        return micro * num_processes * accum, micro
    global_batch = t["global_batch_size"]
    if global_batch % (num_processes * accum):
        raise ValueError(f"training.global_batch_size {global_batch} is not divisible by processes ({num_processes}) "
                         f"× gradient_accumulation_steps ({accum})")
    return global_batch, global_batch // (num_processes * accum)



# ---------------------------------------------------------------------------------------------------------------
# The data: loaded once, then seen as a seeded, resumable stream of global batches
# ---------------------------------------------------------------------------------------------------------------
def load_data(dataset: str, eval_split: str = "test"):
    """(train arrays, arrays of the split evaluated during training or None, metadata)."""
    from dataset_scripts.common import dataset_arrays, load_hrm_dataset

    train_ds, meta = load_hrm_dataset(dataset, "train")
    train = dataset_arrays(train_ds)
    try:
        eval_ds, _ = load_hrm_dataset(dataset, eval_split)
        evaluated = dataset_arrays(eval_ds)
    except (ValueError, KeyError, FileNotFoundError) as error:
        logger.warning("no %s split in %s (%s): evaluation disabled", eval_split, dataset, error)
        evaluated = None
    return train, evaluated, meta


def subsample(arrays: dict, max_examples: int | None, seed: int) -> dict:
    """A fixed random subset of `max_examples` rows (in dataset order), or all rows."""
    n = len(arrays["inputs"])
    if max_examples is None or max_examples >= n:
        return arrays
    rows = np.sort(np.random.default_rng(seed).permutation(n)[:max_examples])
    return {k: v[rows] for k, v in arrays.items()}



class BatchStream:
    """The training data as an endless stream: epoch e is drawn from a generator seeded by (seed, e); global batch
    k is stream positions [k·B, (k+1)·B), so a batch never depends on the world size and resuming at step k needs
    nothing but k.

    `sampling="groups"` is the original's sampler: an epoch visits every group (an original puzzle; an ARC task) once
    in random order, picks one random *puzzle* of it and takes all the puzzle's rows, in random order. A puzzle is
    the rows of one group that share a non-blank puzzle id (an ARC task version: its demo pairs); a row with the
    blank id 0 is a puzzle of its own (one Sudoku / maze augmentation), so there the epoch is one row per group.
    `"rows"` visits every row once. With groups, an epoch's length is the sum of the chosen puzzles' sizes.

    As the original counts steps, `rows_per_epoch` is groups × the mean number of rows per puzzle, and
    `steps_for_epochs(e)` = int(e · rows_per_epoch / B). When puzzles have several rows (ARC versions), batches are
    packed as the originals pack them: whole puzzles, then the first rows (a random subset) of the one that does
    not fit, whose other rows are dropped; the next batch starts at the next puzzle, so no batch is ever partial
    (the originals drop the last partial batch of every evaluation interval: at most one batch in ~50,000 here
    not dropped). With one-row puzzles (Sudoku, maze) and with `"rows"`, global batch k is stream positions
    [k·B, (k+1)·B) of the concatenated epochs.
    """

    def __init__(self, group_id: np.ndarray | None, num_rows: int, global_batch_size: int, seed: int,
                 sampling: str = "groups", puzzle_identifiers: np.ndarray | None = None):
        self.global_batch_size = global_batch_size
        self.seed = seed
        self.num_rows = num_rows
        self.groups = None
        self.cut = False  # pack puzzles as the originals (see above): only when some puzzle has several rows
        self._epoch_length = num_rows  # None: epochs differ in length
        if sampling == "groups" and group_id is not None:
            group_id = np.asarray(group_id)
            ids = np.zeros(num_rows, np.int64) if puzzle_identifiers is None else np.asarray(puzzle_identifiers)
            # Puzzle key: the puzzle id, or a key of its own for each blank-id row.
            key = np.where(ids != 0, ids.astype(np.int64), -1 - np.arange(num_rows, dtype=np.int64))
            order = np.lexsort((key, group_id))  # rows by group, then puzzle
            g_sorted, k_sorted = group_id[order], key[order]
            new_puzzle = np.ones(num_rows, bool)
            new_puzzle[1:] = (g_sorted[1:] != g_sorted[:-1]) | (k_sorted[1:] != k_sorted[:-1])
            puzzle_start = np.flatnonzero(new_puzzle)
            puzzle_size = np.diff(np.append(puzzle_start, num_rows))
            puzzle_group = g_sorted[puzzle_start]
            new_group = np.ones(len(puzzle_start), bool)
            new_group[1:] = puzzle_group[1:] != puzzle_group[:-1]
            group_first = np.flatnonzero(new_group)  # first puzzle of each group
            group_puzzles = np.diff(np.append(group_first, len(puzzle_start)))
            if len(group_first) < num_rows:  # otherwise every row is its own group: same as "rows"
                self.groups = (order, puzzle_start, puzzle_size, torch.as_tensor(group_first),
                               torch.as_tensor(group_puzzles))
                self.num_puzzles = len(puzzle_start)
                self.cut = bool(puzzle_size.max() > 1)
                self._epoch_length = None
                # When all puzzles of each group have one size (ARC versions, Sudoku augmentations) every epoch
                # has the same length, and a resume needs no replay of the earlier epochs' draws.
                first_size = np.repeat(puzzle_size[group_first], group_puzzles)
                if (puzzle_size == first_size).all():
                    self._epoch_length = int(puzzle_size[group_first].sum())
        self.units = num_rows if self.groups is None else len(self.groups[3])
        if self.groups is None:
            self.num_puzzles = num_rows
        # The original's estimate of rows per epoch: total_groups × mean_puzzle_examples.
        self.mean_puzzle_examples = num_rows / self.num_puzzles
        self.rows_per_epoch = self.units * self.mean_puzzle_examples
        self._epoch_starts = [0]  # stream position where each epoch begins (extended lazily)
        self._cache: dict[int, np.ndarray] = {}
        self._ends_cache: dict[int, np.ndarray] = {}
        self._cursor = (0, 0, 0)  # with cut packing: (step, epoch, puzzle) where a batch begins

    def steps_for_epochs(self, epochs: float) -> int:
        """Optimizer steps for `epochs` passes, counted as the original: int(epochs × groups × mean rows per
        puzzle / global batch), at least 1."""
        return max(1, int(epochs * self.rows_per_epoch / self.global_batch_size))

    def _draw(self, epoch: int, rows: bool):
        """Epoch `epoch`: the sizes of its puzzles in order (None with "rows"), and (with `rows`) its row indices."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        perm = torch.randperm(self.units, generator=generator)
        if self.groups is None:
            return None, (perm.numpy() if rows else None)
        order, puzzle_start, puzzle_size, group_first, group_puzzles = self.groups
        pick = (torch.rand(self.units, generator=generator, dtype=torch.float64) * group_puzzles[perm]).long()
        puzzles = (group_first[perm] + pick.clamp_max(group_puzzles[perm] - 1)).numpy()
        sizes = puzzle_size[puzzles]
        total = int(sizes.sum())
        if not rows:
            return sizes, None
        # Rows of the chosen puzzles, puzzle after puzzle, each puzzle's rows in random order (as the original's
        # choice without replacement).
        owner = np.repeat(np.arange(len(puzzles)), sizes)
        within = np.arange(total) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        shuffle = torch.rand(total, generator=generator, dtype=torch.float64).numpy()
        sorted_pos = np.lexsort((shuffle, owner))
        positions = np.repeat(puzzle_start[puzzles], sizes) + within
        return sizes, order[positions[sorted_pos]]

    def epoch_rows(self, epoch: int) -> np.ndarray:
        if epoch not in self._cache:
            rows = self._draw(epoch, rows=True)[1]
            self._cache = {epoch - 1: self._cache[epoch - 1], epoch: rows} if epoch - 1 in self._cache else {
                epoch: rows}
        return self._cache[epoch]

    def epoch_start(self, epoch: int) -> int:
        """Stream position of the first row of `epoch`."""
        if self._epoch_length is not None:
            return epoch * self._epoch_length
        while len(self._epoch_starts) <= epoch:
            e = len(self._epoch_starts) - 1
            self._epoch_starts.append(self._epoch_starts[-1] + int(self._draw(e, rows=False)[0].sum()))
        return self._epoch_starts[epoch]

    def _epoch_of(self, position: int) -> int:
        if self._epoch_length is not None:
            return position // self._epoch_length
        while self.epoch_start(len(self._epoch_starts) - 1) <= position:
            self.epoch_start(len(self._epoch_starts))
        return bisect.bisect_right(self._epoch_starts, position) - 1

    def epoch_at(self, step: int) -> float:
        """Epochs of data consumed after `step` optimizer steps (by the original's count, rows / rows_per_epoch)."""
        return step * self.global_batch_size / self.rows_per_epoch

    def _epoch_ends(self, epoch: int) -> np.ndarray:
        """Row offset in `epoch_rows(epoch)` where each of the epoch's puzzles ends."""
        if epoch not in self._ends_cache:
            ends = np.cumsum(self._draw(epoch, rows=False)[0])
            self._ends_cache = {epoch - 1: self._ends_cache[epoch - 1], epoch: ends} \
                if epoch - 1 in self._ends_cache else {epoch: ends}
        return self._ends_cache[epoch]

    def _batch_start(self, step: int) -> tuple[int, int]:
        """(epoch, puzzle) where batch `step` begins under cut packing, walking the batches from the last one asked
        for (a resume walks from step 0 once: no draw but the puzzle sizes)."""
        at, epoch, puzzle = self._cursor if self._cursor[0] <= step else (0, 0, 0)
        while at < step:
            needed = self.global_batch_size
            while True:
                ends = self._epoch_ends(epoch)
                base = int(ends[puzzle - 1]) if puzzle else 0
                last = int(np.searchsorted(ends, base + needed))  # the puzzle that fills the batch (cut or whole)
                if last < len(ends):
                    epoch, puzzle = (epoch, last + 1) if last + 1 < len(ends) else (epoch + 1, 0)
                    break
                needed -= int(ends[-1]) - base
                epoch, puzzle = epoch + 1, 0
            at += 1
        self._cursor = (at, epoch, puzzle)
        return epoch, puzzle

    def global_batch(self, step: int) -> np.ndarray:
        """Row indices of the global batch consumed by optimizer step `step` (0-based)."""
        if self.cut:
            epoch, puzzle = self._batch_start(step)
            rows, needed = [], self.global_batch_size
            while needed:
                offset = int(self._epoch_ends(epoch)[puzzle - 1]) if puzzle else 0
                take = self.epoch_rows(epoch)[offset:offset + needed]  # the last puzzle's first rows if it is cut
                rows.append(take)
                needed -= len(take)
                epoch, puzzle = epoch + 1, 0
            return np.concatenate(rows)
        position, rows = step * self.global_batch_size, []
        needed = self.global_batch_size
        while needed:
            epoch = self._epoch_of(position)
            offset = position - self.epoch_start(epoch)
            take = self.epoch_rows(epoch)[offset:offset + needed]
            rows.append(take)
            position += len(take)
            needed -= len(take)
        return np.concatenate(rows)


def plan_steps(dataset: str, t, global_batch: int) -> dict:
    """The step count of a run, reading only the train split's group / puzzle id columns: what `--dry_run` prints.

    `t` holds the training values (`epochs`, `max_steps`, `sampling`, `seed`, `eval_steps`)."""
    get = t.get if isinstance(t, dict) else lambda key: getattr(t, key)
    columns = ("group_id", "puzzle_identifiers")
    if Path(dataset).is_dir():  # a local build: read the two columns straight from the parquet shards
        import pyarrow.parquet as pq

        from dataset_scripts.common import check_local_split, load_hrm_metadata

        files = check_local_split(dataset, "train", load_hrm_metadata(dataset))
        table = pq.read_table([str(f) for f in files], columns=[c for c in columns
                                                               if c in pq.read_schema(files[0]).names])
        arrays = {c: table.column(c).to_numpy() for c in table.column_names}
        num_rows = table.num_rows
    else:
        import datasets

        from dataset_scripts.common import load_hrm_dataset

        datasets.disable_progress_bars()
        train_ds, _ = load_hrm_dataset(dataset, "train")
        table = train_ds.select_columns([c for c in columns if c in train_ds.column_names]).with_format("numpy")
        arrays = {c: np.asarray(table[c]) for c in table.column_names}
        num_rows = len(train_ds)
    stream = BatchStream(arrays.get("group_id"), num_rows, global_batch, get("seed"), get("sampling"),
                         puzzle_identifiers=arrays.get("puzzle_identifiers"))
    max_steps = get("max_steps") or stream.steps_for_epochs(get("epochs"))
    return {"dataset": dataset, "train_rows": num_rows, "groups": stream.units, "puzzles": stream.num_puzzles,
            "mean_puzzle_examples": stream.mean_puzzle_examples, "global_batch_size": global_batch,
            "steps_per_epoch": stream.rows_per_epoch / global_batch, "epochs": get("epochs"),
            "max_steps": max_steps, "eval_steps": get("eval_steps"),
            "evaluations": max_steps // get("eval_steps") if get("eval_steps") else 0}
