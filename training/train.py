#!/usr/bin/env python
"""Train (or fine-tune) HRM with deep supervision and ACT, on one CPU, one GPU or many processes.

    python training/train.py --config training/configs/sudoku_cpu.yaml --dataset data/sudoku6 --output_dir runs/x
    accelerate launch --num_processes 8 training/train.py --config training/configs/sudoku_extreme_1k.yaml ...
    ACCELERATE_USE_CPU=1 torchrun --nproc_per_node 2 training/train.py ...        # several CPU processes (gloo)

Configuration = built-in defaults < YAML file (`dataset`, `model: {HRMConfig overrides}`, `training: {...}`) <
command line (`--learning_rate 3e-4`, any training key; `--set model.hidden_size=64` for any key).

One optimizer step = one ACT segment on one batch, as the original: the carry (hidden states, step counts, the
example each row holds) persists across optimizer steps; rows that halted take the example at their row of the
incoming batch, the other incoming rows are not used. The data stream is a concatenation of seeded per-epoch
permutations, so position = step × global batch and a resumed run sees exactly the same batches.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import hashlib
import json
import logging
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import yaml

if __package__ in (None, ""):  # run as `python training/train.py`: import from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.optim import build_optimizer, lr_at_step, sign_sgd_puzzle_embedding_step  # noqa: E402

logger = logging.getLogger("hrm.train")

# ---------------------------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------------------------
# Every training key, its default and type. All of them are `--key value` options too.
TRAINING_DEFAULTS: dict[str, tuple[type, object]] = {
    "output_dir": (str, None),
    "seed": (int, 0),
    "global_batch_size": (int, 768),
    "per_device_train_batch_size": (int, None),   # alternative to global_batch_size (× processes × accumulation)
    "gradient_accumulation_steps": (int, 1),
    "max_steps": (int, None),                      # or derived from `epochs`
    "epochs": (float, None),                       # passes over the training units (groups or rows)
    "sampling": (str, "groups"),                   # groups: one random row per group per epoch (original); rows
    "optimizer": (str, "adam_atan2"),              # adam_atan2 | adamw
    "learning_rate": (float, 1e-4),
    "weight_decay": (float, 0.1),
    "beta1": (float, 0.9),
    "beta2": (float, 0.95),
    "lr_warmup_steps": (int, 2000),
    "lr_min_ratio": (float, 1.0),
    "puzzle_emb_lr": (float, 1e-2),
    "puzzle_emb_weight_decay": (float, 0.1),
    "ema_decay": (float, None),
    "mixed_precision": (str, "no"),                # no | bf16 | fp16
    "compile": (bool, False),
    "eval_steps": (int, None),
    "eval_batch_size": (int, 256),
    "eval_max_examples": (int, None),              # evaluate on a fixed random subset of the test split
    "eval_max_steps": (int, None),                 # ACT segments at evaluation (default halt_max_steps)
    "eval_early_exit": (bool, False),
    "save_steps": (int, None),
    "save_total_limit": (int, 2),
    "logging_steps": (int, 10),
    "max_train_minutes": (float, None),            # stop cleanly (checkpoint + eval) after this wall-clock budget
    "resume_from_checkpoint": (str, None),         # latest | PATH
    "init_from": (str, None),                      # model folder, checkpoint folder or Hub id to fine-tune from
    "push_to_hub": (bool, False),
    "hub_model_id": (str, None),
    "hub_private_repo": (bool, False),
    "report_to": (str, "tensorboard"),             # tensorboard | none
    "disable_tqdm": (bool, False),
}
# Model keys that define the weights' shapes: with --init_from they come from the checkpoint.
ARCHITECTURE_KEYS = ("hidden_size", "num_heads", "expansion", "H_layers", "L_layers", "puzzle_emb_ndim",
                     "pos_encodings", "vocab_size", "seq_len")


def _coerce(key: str, value, kind: type):
    """Convert a YAML / command-line value to the key's type; `ValueError` naming the key otherwise."""
    if value is None or (isinstance(value, str) and value.lower() in ("null", "none", "~")):
        return None
    try:
        if kind is bool:
            if isinstance(value, str):
                if value.lower() in ("true", "1", "yes"):
                    return True
                if value.lower() in ("false", "0", "no"):
                    return False
                raise ValueError
            return bool(value)
        if kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(float(value)) if isinstance(value, str) else int(value)
        return kind(value)
    except (TypeError, ValueError):
        raise ValueError(f"training.{key} must be of type {kind.__name__}, got {value!r}") from None


def _parse_scalar(text: str):
    """A command-line value: YAML syntax (null, true, lists), with numbers like 1e-4 read as floats."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return float(value)
    return value


def build_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML file with `dataset`, `model` and `training` sections")
    parser.add_argument("--dataset", help="dataset folder or Hub dataset repo id (hrm layout)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override any key, e.g. --set model.hidden_size=64 (repeatable)")
    for key, (kind, default) in TRAINING_DEFAULTS.items():
        if kind is bool:
            parser.add_argument(f"--{key}", nargs="?", const="true", default=argparse.SUPPRESS,
                                help=f"(default {default})")
        else:
            parser.add_argument(f"--{key}", default=argparse.SUPPRESS, help=f"(default {default})")
    return parser


def load_config(argv=None) -> dict:
    """Merge defaults, the YAML file and command-line overrides into {'dataset', 'model', 'training'}."""
    from modeling_hrm import HRMConfig
    import dataclasses

    args = build_arg_parser().parse_args(argv)
    config = {"dataset": None, "model": {}, "training": {k: d for k, (_, d) in TRAINING_DEFAULTS.items()}}
    if args.config:
        path = Path(args.config)
        if not path.is_file():
            raise ValueError(f"--config {args.config}: no such file")
        with open(path) as f:
            loaded = yaml.safe_load(f) or {}
        unknown = set(loaded) - {"dataset", "model", "training", "description"}
        if unknown:
            raise ValueError(f"{path}: unknown top-level keys {sorted(unknown)} (expected dataset, model, training)")
        config["dataset"] = loaded.get("dataset")
        config["model"].update(loaded.get("model") or {})
        config["training"].update(_check_training_keys(loaded.get("training") or {}, str(path)))
        if loaded.get("description"):
            config["description"] = loaded["description"]
    if args.dataset:
        config["dataset"] = args.dataset
    for key in TRAINING_DEFAULTS:
        if hasattr(args, key):
            config["training"][key] = getattr(args, key)
    for item in args.set:
        if "=" not in item:
            raise ValueError(f"--set {item!r}: expected SECTION.KEY=VALUE, e.g. model.hidden_size=64")
        dotted, text = item.split("=", 1)
        section, _, key = dotted.partition(".")
        if section == "dataset" and not key:
            config["dataset"] = text
        elif section == "model" and key:
            config["model"][key] = _parse_scalar(text)
        elif section == "training" and key:
            config["training"].update(_check_training_keys({key: _parse_scalar(text)}, "--set"))
        else:
            raise ValueError(f"--set {item!r}: the key must be dataset, model.NAME or training.NAME")

    config["training"] = {k: _coerce(k, v, TRAINING_DEFAULTS[k][0]) for k, v in config["training"].items()}
    model_fields = {f.name for f in dataclasses.fields(HRMConfig)}
    unknown = sorted(set(config["model"]) - model_fields)
    if unknown:
        raise ValueError(f"unknown model keys {unknown}; HRMConfig fields are e.g. hidden_size, H_cycles, "
                         f"halt_max_steps")
    validate_training_config(config)
    return config


def _check_training_keys(section: dict, where: str) -> dict:
    unknown = sorted(set(section) - set(TRAINING_DEFAULTS))
    if unknown:
        raise ValueError(f"{where}: unknown training keys {unknown}")
    return section


def validate_training_config(config: dict) -> None:
    t = config["training"]
    if not config.get("dataset"):
        raise ValueError("no dataset: pass --dataset PATH_OR_REPO_ID or set `dataset:` in the YAML")
    if not t["output_dir"]:
        raise ValueError("no output directory: pass --output_dir")
    if t["max_steps"] is None and t["epochs"] is None:
        raise ValueError("set training.max_steps or training.epochs")
    for key in ("max_steps", "gradient_accumulation_steps", "logging_steps", "eval_batch_size"):
        if t[key] is not None and t[key] < 1:
            raise ValueError(f"training.{key} must be >= 1, got {t[key]}")
    for key in ("eval_steps", "save_steps", "global_batch_size", "per_device_train_batch_size", "eval_max_examples"):
        if t[key] is not None and t[key] < 1:
            raise ValueError(f"training.{key} must be >= 1 or null, got {t[key]}")
    if t["epochs"] is not None and t["epochs"] <= 0:
        raise ValueError(f"training.epochs must be > 0, got {t['epochs']}")
    if t["lr_warmup_steps"] < 0:
        raise ValueError(f"training.lr_warmup_steps must be >= 0, got {t['lr_warmup_steps']}")
    if not 0.0 <= t["lr_min_ratio"] <= 1.0:
        raise ValueError(f"training.lr_min_ratio must be in [0, 1], got {t['lr_min_ratio']}")
    if t["sampling"] not in ("groups", "rows"):
        raise ValueError(f"training.sampling must be 'groups' or 'rows', got {t['sampling']!r}")
    if t["optimizer"] not in ("adam_atan2", "adamw"):
        raise ValueError(f"training.optimizer must be 'adam_atan2' or 'adamw', got {t['optimizer']!r}")
    if t["mixed_precision"] not in ("no", "bf16", "fp16"):
        raise ValueError(f"training.mixed_precision must be no, bf16 or fp16, got {t['mixed_precision']!r}")
    t["report_to"] = t["report_to"] or "none"
    if t["report_to"] not in ("tensorboard", "none"):
        raise ValueError(f"training.report_to must be 'tensorboard' or 'none', got {t['report_to']!r}")
    if t["ema_decay"] is not None and not 0.0 < t["ema_decay"] < 1.0:
        raise ValueError(f"training.ema_decay must be in (0, 1), got {t['ema_decay']}")
    if t["push_to_hub"] and not t["hub_model_id"]:
        raise ValueError("--push_to_hub needs --hub_model_id OWNER/NAME")
    if t["max_train_minutes"] is not None and t["max_train_minutes"] <= 0:
        raise ValueError(f"training.max_train_minutes must be > 0, got {t['max_train_minutes']}")


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
# Data: a seeded, resumable stream of global batches
# ---------------------------------------------------------------------------------------------------------------
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
    `steps_for_epochs(e)` = int(e · rows_per_epoch / B). Unlike the original, a puzzle that does not fit the end
    of a batch continues in the next one (the original drops its remaining rows), and epochs follow each other
    without dropping a last partial batch.
    """

    def __init__(self, group_id: np.ndarray | None, num_rows: int, global_batch_size: int, seed: int,
                 sampling: str = "groups", puzzle_identifiers: np.ndarray | None = None):
        self.global_batch_size = global_batch_size
        self.seed = seed
        self.num_rows = num_rows
        self.groups = None
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
        self.units = num_rows if self.groups is None else len(self.groups[3])
        if self.groups is None:
            self.num_puzzles = num_rows
        # The original's estimate of rows per epoch: total_groups × mean_puzzle_examples.
        self.mean_puzzle_examples = num_rows / self.num_puzzles
        self.rows_per_epoch = self.units * self.mean_puzzle_examples
        self._epoch_starts = [0]  # stream position where each epoch begins (extended lazily)
        self._cache: dict[int, np.ndarray] = {}

    def steps_for_epochs(self, epochs: float) -> int:
        """Optimizer steps for `epochs` passes, counted as the original: int(epochs × groups × mean rows per
        puzzle / global batch), at least 1."""
        return max(1, int(epochs * self.rows_per_epoch / self.global_batch_size))

    def _draw(self, epoch: int, rows: bool):
        """Epoch `epoch`: its length, and (with `rows`) its row indices."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        perm = torch.randperm(self.units, generator=generator)
        if self.groups is None:
            return self.num_rows, (perm.numpy() if rows else None)
        order, puzzle_start, puzzle_size, group_first, group_puzzles = self.groups
        pick = (torch.rand(self.units, generator=generator, dtype=torch.float64) * group_puzzles[perm]).long()
        puzzles = (group_first[perm] + pick.clamp_max(group_puzzles[perm] - 1)).numpy()
        sizes = puzzle_size[puzzles]
        total = int(sizes.sum())
        if not rows:
            return total, None
        # Rows of the chosen puzzles, puzzle after puzzle, each puzzle's rows in random order (as the original's
        # choice without replacement).
        owner = np.repeat(np.arange(len(puzzles)), sizes)
        within = np.arange(total) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        shuffle = torch.rand(total, generator=generator, dtype=torch.float64).numpy()
        sorted_pos = np.lexsort((shuffle, owner))
        positions = np.repeat(puzzle_start[puzzles], sizes) + within
        return total, order[positions[sorted_pos]]

    def epoch_rows(self, epoch: int) -> np.ndarray:
        if epoch not in self._cache:
            rows = self._draw(epoch, rows=True)[1]
            self._cache = {epoch - 1: self._cache[epoch - 1], epoch: rows} if epoch - 1 in self._cache else {
                epoch: rows}
        return self._cache[epoch]

    def epoch_start(self, epoch: int) -> int:
        """Stream position of the first row of `epoch`."""
        if self.groups is None:
            return epoch * self.num_rows
        while len(self._epoch_starts) <= epoch:
            e = len(self._epoch_starts) - 1
            self._epoch_starts.append(self._epoch_starts[-1] + self._draw(e, rows=False)[0])
        return self._epoch_starts[epoch]

    def _epoch_of(self, position: int) -> int:
        if self.groups is None:
            return position // self.num_rows
        while self.epoch_start(len(self._epoch_starts) - 1) <= position:
            self.epoch_start(len(self._epoch_starts))
        return bisect.bisect_right(self._epoch_starts, position) - 1

    def epoch_at(self, step: int) -> float:
        """Epochs of data consumed after `step` optimizer steps (by the original's count, rows / rows_per_epoch)."""
        return step * self.global_batch_size / self.rows_per_epoch

    def global_batch(self, step: int) -> np.ndarray:
        """Row indices of the global batch consumed by optimizer step `step` (0-based)."""
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
    """The step count of a run without loading the token columns: what `--dry_run` prints.

    `t` holds the training values (`epochs`, `max_steps`, `sampling`, `seed`, `eval_steps`)."""
    import datasets

    from dataset_scripts.common import load_hrm_dataset

    datasets.disable_progress_bars()
    get = t.get if isinstance(t, dict) else lambda key: getattr(t, key)
    train_ds, meta = load_hrm_dataset(dataset, "train")
    cols = [c for c in ("group_id", "puzzle_identifiers") if c in train_ds.column_names]
    table = train_ds.select_columns(cols).with_format("numpy")
    arrays = {c: np.asarray(table[c]) for c in cols}
    stream = BatchStream(arrays.get("group_id"), len(train_ds), global_batch, get("seed"), get("sampling"),
                         puzzle_identifiers=arrays.get("puzzle_identifiers"))
    max_steps = get("max_steps") or stream.steps_for_epochs(get("epochs"))
    return {"dataset": dataset, "train_rows": len(train_ds), "groups": stream.units, "puzzles": stream.num_puzzles,
            "mean_puzzle_examples": stream.mean_puzzle_examples, "global_batch_size": global_batch,
            "steps_per_epoch": stream.rows_per_epoch / global_batch, "epochs": get("epochs"),
            "max_steps": max_steps, "eval_steps": get("eval_steps"),
            "evaluations": max_steps // get("eval_steps") if get("eval_steps") else 0}


# ---------------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------------
def load_data(dataset: str):
    from dataset_scripts.common import dataset_arrays, load_hrm_dataset
    from training.hub import looks_like_repo_id

    if not Path(dataset).exists() and not looks_like_repo_id(dataset):
        raise ValueError(f"--dataset {dataset}: no such folder, and not a Hub dataset repo id (owner/name)")
    train_ds, meta = load_hrm_dataset(dataset, "train")
    train = dataset_arrays(train_ds)
    try:
        test_ds, _ = load_hrm_dataset(dataset, "test")
        test = dataset_arrays(test_ds)
    except (ValueError, KeyError, FileNotFoundError) as error:
        logger.warning("no test split in %s (%s): evaluation disabled", dataset, error)
        test = None
    return train, test, meta


def subsample(arrays: dict, max_examples: int | None, seed: int) -> dict:
    """A fixed random subset of `max_examples` rows (in dataset order), or all rows."""
    n = len(arrays["inputs"])
    if max_examples is None or max_examples >= n:
        return arrays
    rows = np.sort(np.random.default_rng(seed).permutation(n)[:max_examples])
    return {k: v[rows] for k, v in arrays.items()}


def build_model(config: dict, meta: dict):
    """A fresh model from dataset metadata + `model` overrides, or `--init_from` weights (puzzle table resized)."""
    from modeling_hrm import HRMConfig, HRMForPuzzleSolving

    overrides = dict(config["model"])
    source = config["training"]["init_from"]
    if source is None:
        return HRMForPuzzleSolving(HRMConfig.from_dataset_metadata(meta, **overrides))

    path = Path(source)
    if (path / "model" / "config.json").is_file():  # a checkpoint-STEP folder
        path = path / "model"
    source = str(path) if path.exists() else source
    model = HRMForPuzzleSolving.from_pretrained(source, dtype=torch.float32)
    cfg = model.config
    for key in ("vocab_size", "seq_len"):
        if getattr(cfg, key) != meta[key]:
            raise ValueError(f"--init_from {source}: model {key}={getattr(cfg, key)} but the dataset has {meta[key]}")
    clashes = {k: (v, getattr(cfg, k)) for k, v in overrides.items() if k in ARCHITECTURE_KEYS and getattr(cfg, k) != v}
    if clashes:
        raise ValueError(f"--init_from {source}: the config's model section sets {clashes} (config, checkpoint); "
                         f"architecture keys must match the checkpoint — drop them from the model section")
    for key, value in overrides.items():  # behaviour keys (halt_max_steps, exploration, loss) may change
        if key not in ARCHITECTURE_KEYS and key != "num_puzzle_identifiers":
            setattr(cfg, key, value)
    cfg.validate()
    wanted = meta["num_puzzle_identifiers"]
    if cfg.puzzle_emb_ndim > 0 and cfg.num_puzzle_identifiers != wanted:
        warnings.warn(f"--init_from {source}: resizing the puzzle-embedding table from {cfg.num_puzzle_identifiers} "
                      f"to {wanted} identifiers (the dataset's); rows beyond the old table start at zero")
        model.resize_puzzle_embeddings(wanted)
    return model


def truncate_metrics(path: Path, step: int) -> None:
    """Drop records after `step` (written by a run that died after its last checkpoint) before a resume appends."""
    if not path.is_file():
        return
    with open(path) as f:
        kept = [line for line in f if line.strip() and json.loads(line).get("step", 0) <= step]
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(kept))
    tmp.replace(path)


def weights_digest(model: torch.nn.Module) -> str:
    """SHA-256 of every parameter and buffer (bytes): equal digests = bitwise-equal models."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _flat(config: dict, prefix: str = "") -> dict:
    """Flatten the config for TensorBoard hparams (values: int, float, str, bool)."""
    out = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat(value, name + "/"))
        elif isinstance(value, (int, float, str, bool)):
            out[name] = value
        else:
            out[name] = str(value)
    return out


class MetricWindow:
    """Sums of training metrics over the steps since the last log, reduced across processes when read.

    As the original, accuracies are counted on the rows that halted at this step (finished examples), using the
    labels of the example each row holds (`carry.labels`).
    """

    KEYS = ("loss", "lm_loss", "q_halt_loss", "q_continue_loss", "segments", "halted", "exact", "token", "q_halt_acc",
            "steps")

    def __init__(self, device):
        self.sums = torch.zeros(len(self.KEYS), dtype=torch.float64, device=device)

    @torch.no_grad()
    def add(self, out, accum: int) -> None:
        carry = out.carry
        labels = carry.labels
        valid = labels != -100
        counts = valid.sum(-1)
        correct = valid & (out.logits.argmax(-1) == labels)
        seq_correct = correct.sum(-1) == counts
        halted = carry.halted
        token = correct.sum(-1) / counts.clamp_min(1)
        values = [out.loss / accum, out.lm_loss / accum, out.q_halt_loss / accum,
                  (out.q_continue_loss if out.q_continue_loss is not None else torch.zeros(())) / accum,
                  torch.ones(()) / accum, halted.sum(), (halted & seq_correct).sum(), (token * halted).sum(),
                  (halted & ((out.q_halt_logits >= 0) == seq_correct)).sum(), (carry.steps * halted).sum()]
        self.sums += torch.stack([v.detach().double().to(self.sums.device).reshape(()) for v in values])

    def read(self, accelerator) -> dict:
        sums = accelerator.reduce(self.sums, reduction="sum") if accelerator.num_processes > 1 else self.sums
        s = dict(zip(self.KEYS, sums.tolist()))
        self.sums.zero_()
        segments = max(s["segments"], 1e-9)  # optimizer steps × processes
        halted = max(s["halted"], 1.0)
        return {"train/loss": s["loss"] / segments, "train/lm_loss": s["lm_loss"] / segments,
                "train/q_halt_loss": s["q_halt_loss"] / segments, "train/q_continue_loss": s["q_continue_loss"] / segments,
                "train/exact_accuracy": s["exact"] / halted, "train/token_accuracy": s["token"] / halted,
                "train/q_halt_accuracy": s["q_halt_acc"] / halted, "train/mean_steps": s["steps"] / halted,
                "train/halted_rows": s["halted"]}


# ---------------------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------------------
def train(config: dict) -> dict:
    """Run training as configured; returns the summary (also printed as one JSON line by the main process)."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, gather_object, set_seed

    from training import checkpointing, hub

    t = config["training"]
    output_dir = Path(t["output_dir"])
    accelerator = Accelerator(
        mixed_precision=t["mixed_precision"], project_dir=str(output_dir),
        log_with="tensorboard" if t["report_to"] == "tensorboard" else None,
        # Every parameter is in the loss, so no unused-parameter search. No buffer broadcast: the puzzle table (a
        # buffer, up to ~1M × 512 for ARC) gets the same sign-SGD update on every rank from gathered gradients and
        # H_init / L_init never change, so re-sending rank 0's copy at every forward would only cost bandwidth.
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=False, broadcast_buffers=False)])
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        level=logging.INFO if accelerator.is_main_process else logging.WARNING)
    logging.getLogger("accelerate").setLevel(logging.WARNING)  # its per-file "saved ..." lines drown ours
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the "Writing model shards" bar at every checkpoint
    world, rank, accum = accelerator.num_processes, accelerator.process_index, t["gradient_accumulation_steps"]
    global_batch, micro_batch = batch_layout(t, world)
    t["global_batch_size"] = global_batch

    train_arrays, test_arrays, meta = load_data(config["dataset"])
    num_rows = len(train_arrays["inputs"])
    if num_rows < global_batch:
        raise ValueError(f"the train split has {num_rows} rows, fewer than the global batch {global_batch}")
    stream = BatchStream(train_arrays.get("group_id"), num_rows, global_batch, t["seed"], t["sampling"],
                         puzzle_identifiers=train_arrays.get("puzzle_identifiers"))
    max_steps = t["max_steps"] or stream.steps_for_epochs(t["epochs"])
    if test_arrays is not None:
        test_arrays = subsample(test_arrays, t["eval_max_examples"], t["seed"])

    set_seed(t["seed"])  # identical initial weights on every process
    model = build_model(config, meta)
    hrm = model
    model.train()
    config["model_config"] = {k: getattr(model.config, k) for k in
                              ("vocab_size", "seq_len", "num_puzzle_identifiers", "puzzle_emb_ndim", "hidden_size",
                               "num_heads", "expansion", "H_cycles", "L_cycles", "H_layers", "L_layers",
                               "halt_max_steps", "halt_exploration_prob", "loss_type", "pos_encodings")}
    optimizer = build_optimizer(t["optimizer"], hrm.parameters(), t["learning_rate"], (t["beta1"], t["beta2"]),
                                t["weight_decay"])
    ema = checkpointing.EMA(hrm, t["ema_decay"]) if t["ema_decay"] else None
    if t["compile"]:
        model = torch.compile(model)
    model, optimizer = accelerator.prepare(model, optimizer)
    device = accelerator.device

    start_step, train_seconds_before = 0, 0.0
    carries: list = [None] * accum
    if t["resume_from_checkpoint"]:
        path = checkpointing.resolve_resume_path(t["resume_from_checkpoint"], output_dir)
        if path is None:
            logger.warning("--resume_from_checkpoint latest: no checkpoint in %s yet, starting from scratch", output_dir)
        else:
            state = checkpointing.load_checkpoint(accelerator, path, ema, hrm)
            if state["global_batch_size"] != global_batch or state["gradient_accumulation_steps"] != accum:
                raise ValueError(f"checkpoint {path} used global batch {state['global_batch_size']} × accumulation "
                                 f"{state['gradient_accumulation_steps']}; this run has {global_batch} × {accum}")
            start_step, train_seconds_before = state["step"], state.get("train_seconds", 0.0)
            carries = checkpointing.load_carries(path, rank, accum, device)
            logger.info("resumed from %s at step %d", path, start_step)
    # Exploration in the ACT halting uses the global RNG: give each process its own stream (after a resume the
    # restored RNG state already is that stream, so only seed when starting fresh).
    if start_step == 0:
        set_seed(t["seed"] + rank)

    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        if start_step:
            truncate_metrics(output_dir / "metrics.jsonl", start_step)
        with open(output_dir / "train_config.yaml", "w") as f:
            yaml.safe_dump(config, f, sort_keys=False)
    if t["report_to"] == "tensorboard":
        accelerator.init_trackers("tensorboard", config=_flat({"training": t, "model": config["model_config"]}))
        if accelerator.is_main_process and not accelerator.trackers:
            logger.warning("TensorBoard tracker unavailable (is tensorboard installed?); metrics go to metrics.jsonl only")

    last_eval: dict = {}

    def log_metrics(metrics: dict, step: int) -> None:
        accelerator.log(metrics, step=step)
        if accelerator.is_main_process:
            with open(output_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps({"step": step, **metrics}) + "\n")

    def run_eval(step: int) -> dict:
        from training.evaluation import evaluate_model

        if test_arrays is None:
            return {}
        model.eval()
        with ema.swapped_in(hrm) if ema is not None else contextlib.nullcontext():
            result = evaluate_model(model, test_arrays, batch_size=t["eval_batch_size"], max_steps=t["eval_max_steps"],
                                    early_exit=t["eval_early_exit"], accelerator=accelerator)
        model.train()
        metrics = {f"eval/{k}": v for k, v in result.items()}
        log_metrics(metrics, step)
        if accelerator.is_main_process:
            logger.info("step %d eval: %s", step, json.dumps(result))
        return result

    def write_card(model_dir: Path, step: int) -> None:
        hub.write_model_card(model_dir, hrm.config, train_config={k: config[k] for k in ("dataset", "model", "training")},
                             dataset_meta=meta, dataset_id=config["dataset"], eval_results=last_eval,
                             repo_id=t["hub_model_id"], step=step, num_parameters=sum(p.numel() for p in hrm.parameters()),
                             base_model=t["init_from"])

    def save(step: int, train_seconds: float) -> Path:
        state = {"step": step, "epoch": stream.epoch_at(step), "stream_position": step * global_batch,
                 "global_batch_size": global_batch, "gradient_accumulation_steps": accum, "num_processes": world,
                 "train_seconds": train_seconds, "eval": last_eval, "config": config}
        path = checkpointing.save_checkpoint(accelerator, output_dir, step, hrm=hrm, carries=carries,
                                             trainer_state=state, ema=ema, write_card=lambda d: write_card(d, step),
                                             save_total_limit=t["save_total_limit"])
        if accelerator.is_main_process:
            logger.info("saved %s", path)
        return path

    window = MetricWindow(device)
    progress = None
    if accelerator.is_main_process and not t["disable_tqdm"]:
        from tqdm.auto import tqdm

        progress = tqdm(total=max_steps, initial=start_step, desc="train", dynamic_ncols=True)
    deadline = time.monotonic() + 60 * t["max_train_minutes"] if t["max_train_minutes"] else None
    step, stopped_by, last_saved = start_step, "max_steps", None
    run_start = time.monotonic()
    window_start, window_steps = time.monotonic(), 0
    # Zero-copy views of the (read-only) Arrow buffers; rows are gathered by index, never written.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        inputs, labels, pids = (torch.as_tensor(train_arrays[k]) for k in ("inputs", "labels", "puzzle_identifiers"))

    while step < max_steps:
        rows = stream.global_batch(step).reshape(accum, world, micro_batch)[:, rank]
        lr = lr_at_step(step + 1, t["learning_rate"], t["lr_warmup_steps"], max_steps, t["lr_min_ratio"])
        emb_lr = lr_at_step(step + 1, t["puzzle_emb_lr"], t["lr_warmup_steps"], max_steps, t["lr_min_ratio"])
        emb_ids, emb_grads = [], []
        for slot in range(accum):
            index = torch.as_tensor(rows[slot])
            x = inputs[index].to(device, torch.long)
            y = labels[index].to(device, torch.long)
            y = torch.where(y == 0, -100, y)  # dataset label 0 = PAD = not scored
            pid = pids[index].to(device, torch.long)
            sync = contextlib.nullcontext() if slot == accum - 1 else accelerator.no_sync(model)
            with sync:
                out = model(x, puzzle_identifiers=pid, labels=y, carry=carries[slot])
                accelerator.backward(out.loss / accum)
            carries[slot] = out.carry
            window.add(out, accum)
            table = hrm.puzzle_embedding
            if table is not None and table.local_weight is not None and table.local_weight.grad is not None:
                emb_ids.append(table.local_ids.detach())
                emb_grads.append(table.local_weight.grad.detach())
                table.local_weight = None

        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if emb_ids:
            ids, grads = torch.cat(emb_ids), torch.cat(emb_grads).float()
            if world > 1:  # every process applies the same update from everyone's rows
                ids, grads = accelerator.gather(ids), accelerator.gather(grads)
            sign_sgd_puzzle_embedding_step(hrm.puzzle_embedding.weight, ids, grads, emb_lr,
                                           t["puzzle_emb_weight_decay"])
        if ema is not None:
            ema.update(hrm)
        step += 1
        window_steps += 1
        if progress is not None:
            progress.update(1)

        stop_now = False
        if deadline is not None:
            flag = torch.tensor([float(time.monotonic() > deadline)], device=device)
            stop_now = bool((accelerator.reduce(flag, "sum") if world > 1 else flag).item() > 0)
        if step % t["logging_steps"] == 0 or step == max_steps or stop_now:
            metrics = window.read(accelerator)
            elapsed = time.monotonic() - window_start
            metrics.update({"train/lr": lr, "train/epoch": stream.epoch_at(step),
                            "train/steps_per_second": window_steps / max(elapsed, 1e-9),
                            "train/examples_per_second": window_steps * global_batch / max(elapsed, 1e-9)})
            log_metrics(metrics, step)
            if progress is not None:
                progress.set_postfix(loss=f"{metrics['train/loss']:.3f}", acc=f"{metrics['train/exact_accuracy']:.3f}",
                                     steps=f"{metrics['train/mean_steps']:.1f}",
                                     it_s=f"{metrics['train/steps_per_second']:.2f}")
            window_start, window_steps = time.monotonic(), 0
        if t["eval_steps"] and step % t["eval_steps"] == 0 and step < max_steps and not stop_now:
            last_eval = run_eval(step)
        if t["save_steps"] and step % t["save_steps"] == 0 and step < max_steps and not stop_now:
            last_saved = save(step, train_seconds_before + time.monotonic() - run_start)
        if stop_now:
            stopped_by = "max_train_minutes"
            break

    if progress is not None:
        progress.close()
    train_seconds = train_seconds_before + time.monotonic() - run_start
    steps_run = step - start_step
    if step > start_step or not last_eval:
        last_eval = run_eval(step)
    final = save(step, train_seconds)
    model_dir = output_dir / "model"
    if accelerator.is_main_process:
        checkpointing.copy_model_folder(final / "model", model_dir)

    digests = gather_object([weights_digest(hrm)])
    summary = {"step": step, "max_steps": max_steps, "epoch": stream.epoch_at(step), "stopped_by": stopped_by,
               "num_processes": world, "global_batch_size": global_batch,
               "train_seconds": round(train_seconds, 3),
               "examples_per_second": round(steps_run * global_batch / max(time.monotonic() - run_start, 1e-9), 2),
               "eval": last_eval, "checkpoint": str(final), "model_dir": str(model_dir),
               "weights_sha256": digests, "ranks_in_sync": len(set(digests)) == 1}
    if not summary["ranks_in_sync"]:
        logger.error("processes ended with different weights: %s", digests)
    accelerator.end_training()

    if t["push_to_hub"] and accelerator.is_main_process:
        try:
            summary["pushed"] = hub.push_to_hub(model_dir, t["hub_model_id"], private=t["hub_private_repo"],
                                                commit_message=f"HRM, step {step}")
        except RuntimeError as error:
            summary["push_error"] = str(error)
    return summary


def main(argv=None) -> int:
    """Command-line entry point: prints the run summary as one JSON line; exit code 2 on a configuration error."""
    from accelerate import PartialState

    try:
        config = load_config(argv)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    summary = train(config)
    if PartialState().is_main_process:
        print(json.dumps(summary, default=str), flush=True)
    if summary.get("push_error"):
        print(f"error: {summary['push_error']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
