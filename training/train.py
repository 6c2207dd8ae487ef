#!/usr/bin/env python
"""Train (or fine-tune) HRM or TRM with deep supervision and ACT, on one CPU, one GPU or many processes.

    python training/train.py --config training/configs/sudoku_cpu.yaml --dataset data/sudoku6 --output_dir runs/x
    accelerate launch --num_processes 8 training/train.py --config training/configs/sudoku_extreme_1k.yaml ...
    ACCELERATE_USE_CPU=1 torchrun --nproc_per_node 2 training/train.py ...        # several CPU processes (gloo)

Arguments are three dataclasses (data, model, training) parsed by `transformers.HfArgumentParser`. Each value
comes from, last wins: the defaults below < the YAML file of `--config` (sections `dataset`, `model`,
`training`; `model.type` picks hrm or trm) < the command line (`--learning_rate 3e-4`, `--hidden_size 64`,
`--model_type trm`; `--set model.hidden_size=64` / `--set training.ema_decay=null` also works). `null` resets an
optional value. The whole configuration (model config, dataset, `--init_from`, `--resume_from_checkpoint`,
output folder) is checked before any work starts; a problem is one line on stderr and exit code 2 (1 for a
failure during training; `--debug` shows the traceback).

One optimizer step = one ACT segment on one batch, as the original: the carry (hidden states, step counts, the
example each row holds) persists across optimizer steps; rows that halted take the example at their row of the
incoming batch, the other incoming rows are not used. The data stream is a concatenation of seeded per-epoch
permutations, so position = step × global batch and a resumed run sees exactly the same batches.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import dataclasses
import difflib
import hashlib
import inspect
import json
import logging
import math
import os
import re
import sys
import time
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import yaml

if __package__ in (None, ""):  # run as `python training/train.py`: import from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.optim import build_optimizer, lr_at_step, sign_sgd_puzzle_embedding_step  # noqa: E402

logger = logging.getLogger("hrm.train")


class ConfigError(ValueError):
    """A configuration that cannot work. `main` prints it as one line and exits with code 2."""


# ---------------------------------------------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------------------------------------------
# Model config keys that define the weights' shapes: with --init_from they come from the checkpoint.
ARCHITECTURE_KEYS = ("hidden_size", "num_heads", "expansion", "H_layers", "L_layers", "puzzle_emb_ndim",
                     "puzzle_emb_len", "mlp_t", "pos_encodings", "vocab_size", "seq_len")
# PretrainedConfig fields the model classes declare for transformers' sake, not model settings.
_GENERIC_CONFIG_FIELDS = ("pad_token_id", "tie_word_embeddings")


@dataclass
class DataArguments:
    _argument_group_name: typing.ClassVar[str] = "data (YAML: `dataset:`)"

    dataset: str | None = field(default=None, metadata={
        "help": "dataset folder or Hub dataset repo id in the hrm layout (docs/CONTRACTS.md §1)"})


@dataclass
class TrainingArguments:
    _argument_group_name: typing.ClassVar[str] = "training (YAML: `training:` section)"

    output_dir: str | None = field(default=None, metadata={
        "help": "folder for checkpoint-STEP/, metrics.jsonl, train_config.yaml and the final model/"})
    seed: int = field(default=0, metadata={"help": "seed of the initial weights, the data order and ACT exploration"})
    global_batch_size: int = field(default=768, metadata={
        "help": "examples per optimizer step over all processes and accumulation slots"})
    per_device_train_batch_size: int | None = field(default=None, metadata={
        "help": "alternative to global_batch_size: global = this × processes × gradient_accumulation_steps"})
    gradient_accumulation_steps: int = field(default=1, metadata={
        "help": "micro-batches per optimizer step (each keeps its own ACT carry)"})
    max_steps: int | None = field(default=None, metadata={"help": "optimizer steps to run (or set epochs)"})
    epochs: float | None = field(default=None, metadata={
        "help": "passes over the training units (groups or rows, see sampling); used when max_steps is null"})
    sampling: Literal["groups", "rows"] = field(default="groups", metadata={
        "help": "groups: per epoch, all rows of one random puzzle (augmented version) of every group, as the "
                "original (Sudoku / maze: one row per group); rows: every row"})
    optimizer: Literal["adam_atan2", "adamw"] = field(default="adam_atan2", metadata={
        "help": "adam_atan2 (the recipe, training/optim.py) or adamw"})
    learning_rate: float = field(default=1e-4, metadata={"help": "peak learning rate of the weights"})
    weight_decay: float = field(default=0.1, metadata={"help": "decoupled weight decay of the weights"})
    beta1: float = field(default=0.9, metadata={"help": "Adam beta1"})
    beta2: float = field(default=0.95, metadata={"help": "Adam beta2"})
    lr_warmup_steps: int = field(default=2000, metadata={"help": "linear warm-up steps (both learning rates)"})
    lr_min_ratio: float = field(default=1.0, metadata={
        "help": "cosine decay after warm-up down to lr × this at the last step (1.0 = constant, the original)"})
    puzzle_emb_lr: float = field(default=1e-2, metadata={"help": "sign-SGD learning rate of the puzzle-embedding table"})
    puzzle_emb_weight_decay: float = field(default=0.1, metadata={"help": "weight decay of the used puzzle rows"})
    ema_decay: float | None = field(default=None, metadata={
        "help": "EMA of the weights (e.g. 0.999, every TRM recipe); evaluation and saved models use it; null = off"})
    mixed_precision: Literal["no", "bf16", "fp16"] = field(default="no", metadata={
        "help": "no = fp32; bf16 = the original's bf16 forward (model.forward_dtype bfloat16, fp32 master weights); "
                "fp16 = Accelerate autocast with loss scaling (GPU only). Evaluation runs at the same precision"})
    compile: bool = field(default=False, metadata={"help": "torch.compile the model's segment (model.compile_segment)"})
    eval_steps: int | None = field(default=None, metadata={"help": "evaluate every N steps (and always at the end)"})
    eval_batch_size: int = field(default=256, metadata={"help": "rows per evaluation batch (per process)"})
    eval_max_examples: int | None = field(default=None, metadata={
        "help": "evaluate on a fixed random subset of the test split of this size"})
    eval_max_steps: int | None = field(default=None, metadata={
        "help": "ACT segments at evaluation (null = the model's halt_max_steps)"})
    eval_early_exit: bool = field(default=False, metadata={
        "help": "let the Q head stop rows early at evaluation (the original runs every segment)"})
    save_steps: int | None = field(default=None, metadata={"help": "write checkpoint-STEP/ every N steps (and at the end)"})
    save_total_limit: int | None = field(default=2, metadata={"help": "keep the newest N checkpoints (0 or null: all)"})
    logging_steps: int = field(default=10, metadata={"help": "log averaged training metrics every N steps"})
    max_train_minutes: float | None = field(default=None, metadata={
        "help": "stop cleanly (checkpoint + evaluation) after this wall-clock budget"})
    resume_from_checkpoint: str | None = field(default=None, metadata={
        "help": "'latest' (newest checkpoint in output_dir, if any) or a checkpoint-STEP folder: exact resume"})
    init_from: str | None = field(default=None, metadata={
        "help": "model folder, checkpoint folder or Hub model id to fine-tune from (HRM or TRM; the puzzle table "
                "is resized to the dataset's)"})
    push_to_hub: bool = field(default=False, metadata={"help": "upload the final model folder to hub_model_id"})
    hub_model_id: str | None = field(default=None, metadata={"help": "OWNER/NAME of the Hub model repo"})
    hub_private_repo: bool = field(default=False, metadata={"help": "create the Hub repo as private"})
    report_to: Literal["tensorboard", "none"] = field(default="tensorboard", metadata={
        "help": "tensorboard (via Accelerate) or none; metrics.jsonl is always written"})
    disable_tqdm: bool = field(default=False, metadata={"help": "no progress bar"})


def model_classes() -> dict:
    """{model type: (config class, model class)} of the models this trainer trains."""
    from modeling_hrm import MODEL_CLASSES

    return MODEL_CLASSES


def _config_fields(config_class) -> dict[str, typing.Any]:
    """The fields a model config class declares (its own and its puzzle-model bases'), with their types."""
    from transformers import PretrainedConfig

    fields_: dict[str, typing.Any] = {}
    for klass in reversed(config_class.__mro__):
        if issubclass(klass, PretrainedConfig) and klass is not PretrainedConfig:
            fields_.update(inspect.get_annotations(klass, eval_str=True))
    return {n: kind for n, kind in fields_.items() if n not in _GENERIC_CONFIG_FIELDS and not n.startswith("_")}


def _docstring_help(config_class) -> dict[str, str]:
    """Help text per field from the `Args:` sections of a config class's docstrings (`a, b: text` entries)."""
    helps: dict[str, str] = {}
    for klass in reversed(config_class.__mro__):
        names: list[str] = []
        for line in (inspect.getdoc(klass) or "").partition("Args:")[2].splitlines():
            line = re.sub(r"\[`([^`]+)`\]", r"\1", line)  # docstring cross-reference markup
            entry = re.match(r"^ {4}([\w, ]+):\s*(.*)$", line)
            if entry:
                names = [n.strip() for n in entry.group(1).split(",")]
                helps.update({n: entry.group(2) for n in names})
            elif line.startswith(" " * 8) and names:
                helps.update({n: helps[n] + " " + line.strip() for n in names})
            else:
                names = []
    return helps


def _model_arguments_class():
    """`ModelArguments`: `model_type` plus every field of the model config classes, each optional (null = the
    class's default, or the dataset's for vocab_size / seq_len / num_puzzle_identifiers)."""
    classes = model_classes()
    fields_: dict[str, dict] = {}
    for type_name, (config_class, _) in classes.items():
        docs = _docstring_help(config_class)
        for name, kind in _config_fields(config_class).items():
            entry = fields_.setdefault(name, {"type": kind, "help": docs.get(name, ""), "defaults": {}})
            entry["defaults"][type_name] = getattr(config_class, name, None)
    spec = [("model_type", Literal[tuple(classes)] | None, field(default=None, metadata={
        "help": f"which model: {' | '.join(classes)} (YAML: model.type; default hrm, or the type of the "
                f"--init_from model)"}))]
    for name, entry in fields_.items():
        kind = entry["type"]
        optional = kind if type(None) in typing.get_args(kind) else kind | None
        defaults = ", ".join(f"{t} {d}" for t, d in entry["defaults"].items())
        only = "" if len(entry["defaults"]) == len(classes) else f" ({'/'.join(entry['defaults'])} only)"
        spec.append((name, optional, field(default=None, metadata={
            "help": f"{entry['help']}{only} (default: %(default)s, i.e. the config's: {defaults})".strip()})))

    def overrides(self) -> dict:
        """The config fields this run sets (everything but model_type and nulls)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "model_type" and v is not None}

    return dataclasses.make_dataclass("ModelArguments", spec, namespace={
        "_argument_group_name": "model (YAML: `model:` section; config fields of HRMConfig / TRMConfig)",
        "overrides": overrides, "__module__": __name__})


ModelArguments = _model_arguments_class()
SECTIONS = {"dataset": DataArguments, "model": ModelArguments, "training": TrainingArguments}


@dataclass
class RunArguments:
    """Everything one run is configured with; `to_dict()` is what `train_config.yaml` holds."""

    data: DataArguments
    model: typing.Any  # ModelArguments
    training: TrainingArguments
    description: str | None = None
    debug: bool = False

    def to_dict(self) -> dict:
        model = {"type": self.model.model_type or "hrm", **self.model.overrides()}
        out = {"dataset": self.data.dataset, "model": model, "training": dataclasses.asdict(self.training)}
        if self.description:
            out["description"] = self.description
        return out


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


class ArgumentParser:
    """`HfArgumentParser` over the three argument dataclasses, plus `--config FILE.yaml`, `--set`, `--debug`.

    The YAML sections become command-line options placed before the real ones, so YAML values go through the
    same type conversion and the command line wins. Parse errors raise `ConfigError` (one line) instead of
    printing the usage and exiting.
    """

    def __init__(self):
        from transformers import HfArgumentParser

        class _Parser(HfArgumentParser):
            def error(self, message):  # argparse would print the usage and exit; one line is enough
                raise ConfigError(_explain_parse_error(self, message))

        self.parser = _Parser([DataArguments, ModelArguments, TrainingArguments], description=__doc__,
                              formatter_class=_HelpFormatter, allow_abbrev=False)
        extra = self.parser.add_argument_group("configuration file and shortcuts")
        extra.add_argument("--config", metavar="FILE.yaml", help="YAML file with `dataset`, `model` and `training` "
                           "sections (e.g. training/configs/sudoku_cpu.yaml)")
        extra.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override one key: "
                           "--set model.hidden_size=64, --set training.ema_decay=null, --set dataset=PATH (repeatable)")
        extra.add_argument("--debug", action="store_true", help="show the full traceback of any error")
        extra.add_argument("--dry_run", action="store_true", help="check the run, print its step count (steps per "
                           "epoch as the original counts them, max_steps, evaluations) as JSON and exit")
        # Optional fields take `null` on the command line and in YAML (argparse would reject it).
        nullable = {f.name for cls in SECTIONS.values() for f in dataclasses.fields(cls)
                    if type(None) in typing.get_args(typing.get_type_hints(cls)[f.name])}
        for action in self.parser._actions:
            if action.dest in nullable and action.type is not None and action.choices is None:
                action.type = _nullable(action.type)
        self.option_section = {f.name: section for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)}

    def parse(self, argv: list[str] | None = None) -> RunArguments:
        argv = list(sys.argv[1:] if argv is None else argv)
        pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
        pre.add_argument("--config")
        pre.add_argument("--debug", action="store_true")
        known, rest = pre.parse_known_args(argv)
        if "-h" in rest or "--help" in rest:
            self.parser.print_help()
            raise SystemExit(0)
        description, yaml_options = None, []
        if known.config:
            description, yaml_options = self._yaml_options(known.config)
            try:
                self.parser.parse_known_args(yaml_options)
            except ConfigError as error:
                raise ConfigError(f"{known.config}: {error}") from None
        *parsed, unknown = self.parser.parse_args_into_dataclasses(
            yaml_options + self._expand_set(rest), look_for_args_file=False, return_remaining_strings=True)
        if unknown:
            raise ConfigError(_explain_parse_error(self.parser, f"unrecognized arguments: {' '.join(unknown)}"))
        data, model, training = parsed[:3]
        return RunArguments(data, model, training, description=description, debug=known.debug)

    def _option(self, section: str, key: str, value, where: str) -> list[str]:
        """`--key=value` for one config entry, after checking the key belongs to `section`."""
        name = "model_type" if (section, key) == ("model", "type") else key
        if self.option_section.get(name) != section:
            known = [f.name for f in dataclasses.fields(SECTIONS[section])]
            if section == "model":
                known = ["type"] + [k for k in known if k != "model_type"]
            hint = difflib.get_close_matches(key, known, n=1)
            if name in self.option_section:
                raise ConfigError(f"{where}: {key!r} is a {self.option_section[name]} key, not a {section} key")
            raise ConfigError(f"{where}: unknown {section} key {key!r}"
                              + (f" (did you mean {hint[0]!r}?)" if hint else ""))
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{where}: {section}.{key} must be a single value, got {value!r}")
        text = "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        return [f"--{name}={text}"]

    def _yaml_options(self, path_text: str) -> tuple[str | None, list[str]]:
        path = Path(path_text)
        if path.is_dir():
            raise ConfigError(f"--config {path_text}: a folder, not a YAML file")
        if not path.is_file():
            raise ConfigError(f"--config {path_text}: no such file")
        try:
            loaded = yaml.safe_load(path.read_text())
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(error, "problem", None) or str(error).splitlines()[0]
            raise ConfigError(f"{path_text}: not valid YAML{where}: {problem}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path_text}: not a text file") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path_text}: expected a mapping with dataset, model and training sections")
        unknown = sorted(set(loaded) - {"dataset", "model", "training", "description"})
        if unknown:
            raise ConfigError(f"{path_text}: unknown top-level keys {unknown} (expected dataset, model, training, "
                              f"description)")
        options = []
        if loaded.get("dataset") is not None:
            options += self._option("dataset", "dataset", loaded["dataset"], path_text)
        for section in ("model", "training"):
            entries = loaded.get(section) or {}
            if not isinstance(entries, dict):
                raise ConfigError(f"{path_text}: the {section} section must be a mapping of keys to values")
            for key, value in entries.items():
                options += self._option(section, str(key), value, path_text)
        return loaded.get("description"), options

    def _expand_set(self, argv: list[str]) -> list[str]:
        """Replace each `--set SECTION.KEY=VALUE` by the option it stands for."""
        out, items = [], iter(argv)
        for token in items:
            if token != "--set" and not token.startswith("--set="):
                out.append(token)
                continue
            item = token[len("--set="):] if token.startswith("--set=") else next(items, "")
            dotted, eq, value = item.partition("=")
            section, _, key = dotted.partition(".")
            if not eq or section not in SECTIONS or (section == "dataset") == bool(key):
                raise ConfigError(f"--set {item!r}: expected SECTION.KEY=VALUE with SECTION model or training "
                                  f"(e.g. model.hidden_size=64), or dataset=PATH")
            out += self._option(section, key or "dataset", value, "--set")
        # argparse takes a negative number such as `-1e-3` for an option: glue it to the option before it.
        glued: list[str] = []
        for token in out:
            if glued and glued[-1].startswith("--") and "=" not in glued[-1] and _NEGATIVE_NUMBER.match(token):
                glued[-1] = f"{glued[-1]}={token}"
            else:
                glued.append(token)
        return glued


_NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^-inf$|^-nan$")


def _nullable(convert):
    def parse(text):
        # Only YAML's `null`: "none" is a real value of some fields (pos_encodings, report_to).
        return None if str(text).strip() == "null" else convert(text)

    parse.__name__ = getattr(convert, "__name__", "value")  # argparse names the type in "invalid int value"
    return parse


def _explain_parse_error(parser, message: str) -> str:
    """argparse's message, with a 'did you mean' for a mistyped option."""
    unknown = re.match(r"unrecognized arguments: (\S+)", message)
    if unknown:
        option = unknown.group(1).split("=")[0]
        if not option.startswith("-"):
            return f"unexpected argument {option!r} (options take the form --name value; see --help)"
        options = [o for action in parser._actions for o in action.option_strings if o.startswith("--")]
        hint = difflib.get_close_matches(option, options, n=1)
        return f"unknown option {option}" + (f" (did you mean {hint[0]}?)" if hint else "") + "; see --help"
    return message


def parse_arguments(argv: list[str] | None = None) -> RunArguments:
    """Defaults < YAML file < command line, as `RunArguments`. Raises `ConfigError` naming a bad key or value."""
    return ArgumentParser().parse(argv)


# ---------------------------------------------------------------------------------------------------------------
# Validation: the whole configuration, before any work starts
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


def check_training_arguments(t: TrainingArguments) -> None:
    """Value checks of the training section alone (types are already checked by the parser)."""
    if not t.output_dir:
        raise ConfigError("no output directory: pass --output_dir")
    if t.max_steps is None and t.epochs is None:
        raise ConfigError("set training.max_steps or training.epochs")
    for key in ("max_steps", "gradient_accumulation_steps", "logging_steps", "eval_batch_size", "eval_steps",
                "save_steps", "global_batch_size", "per_device_train_batch_size", "eval_max_examples",
                "eval_max_steps"):
        value = getattr(t, key)
        if value is not None and value < 1:
            raise ConfigError(f"training.{key} must be >= 1, got {value}")
    for key in ("learning_rate", "puzzle_emb_lr", "weight_decay", "puzzle_emb_weight_decay", "lr_warmup_steps"):
        value = getattr(t, key)
        if not (math.isfinite(value) and value >= 0):
            raise ConfigError(f"training.{key} must be a finite number >= 0, got {value}")
    for key in ("beta1", "beta2"):
        if not 0.0 <= getattr(t, key) < 1.0:
            raise ConfigError(f"training.{key} must be in [0, 1), got {getattr(t, key)}")
    if t.epochs is not None and not (math.isfinite(t.epochs) and t.epochs > 0):
        raise ConfigError(f"training.epochs must be > 0, got {t.epochs}")
    if not 0.0 <= t.lr_min_ratio <= 1.0:
        raise ConfigError(f"training.lr_min_ratio must be in [0, 1], got {t.lr_min_ratio}")
    if t.ema_decay is not None and not 0.0 < t.ema_decay < 1.0:
        raise ConfigError(f"training.ema_decay must be in (0, 1), got {t.ema_decay}")
    if t.save_total_limit is not None and t.save_total_limit < 0:
        raise ConfigError(f"training.save_total_limit must be >= 0 (0 = keep all), got {t.save_total_limit}")
    if t.max_train_minutes is not None and not t.max_train_minutes > 0:
        raise ConfigError(f"training.max_train_minutes must be > 0, got {t.max_train_minutes}")
    if t.push_to_hub and not t.hub_model_id:
        raise ConfigError("--push_to_hub needs --hub_model_id OWNER/NAME")
    if t.hub_model_id is not None and not re.match(r"^([\w.-]+/)?[\w.-]+$", t.hub_model_id):
        raise ConfigError(f"--hub_model_id must look like 'owner/name' or 'name', got {t.hub_model_id!r}")
    if not 0 <= t.seed < 2 ** 32:
        raise ConfigError(f"training.seed must be in [0, 2**32), got {t.seed}")
    output = Path(t.output_dir)
    blocking = next((p for p in (output, *output.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise ConfigError(f"--output_dir {t.output_dir}: {blocking} is a file, not a folder")
    existing = next(p for p in (output, *output.parents) if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"--output_dir {t.output_dir}: {existing} is not writable")
    if t.mixed_precision == "fp16" and not torch.cuda.is_available():
        raise ConfigError("training.mixed_precision fp16 needs a CUDA GPU (its loss scaler); use bf16 or no on CPU")


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
                                  f"({_one_line(error)})") from None
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
    foreign = sorted(set(overrides) - set(_config_fields(config_class)))
    if foreign:
        raise ConfigError(f"model.{foreign[0]} is not a field of {config_class.__name__} (model.type {model_type})")


def check_arguments(args: RunArguments, num_processes: int | None = None) -> RunPlan:
    """Validate the whole run (training values, dataset, model config, init / resume checkpoints, output folder)
    before any work starts. Raises `ConfigError` / `ValueError` with one line naming the problem."""
    from training import checkpointing

    t = args.training
    check_training_arguments(t)
    meta = check_dataset(args.data.dataset)
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
    plan = RunPlan(meta, model_class, model_config, global_batch, micro_batch, num_processes, init_folder)
    if "forward_dtype" in _config_fields(type(model_config)):
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
                architecture_keys=ARCHITECTURE_KEYS)
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
        if self._epoch_length is not None:
            return epoch * self._epoch_length
        while len(self._epoch_starts) <= epoch:
            e = len(self._epoch_starts) - 1
            self._epoch_starts.append(self._epoch_starts[-1] + self._draw(e, rows=False)[0])
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


# ---------------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------------
def load_data(dataset: str):
    from dataset_scripts.common import dataset_arrays, load_hrm_dataset

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


def build_model(plan: RunPlan):
    """A fresh model of the planned config, or the `--init_from` weights with the planned behaviour keys and the
    puzzle table resized to the dataset's."""
    if plan.init_folder is None:
        return plan.model_class(plan.model_config)
    from modeling_hrm.loading import load_pretrained_model

    model = load_pretrained_model(plan.init_folder, device="cpu")
    wanted = plan.model_config.num_puzzle_identifiers
    for key, value in plan.model_config.to_dict().items():  # behaviour keys (halt_max_steps, loss ...) may change
        if key in _config_fields(type(model.config)) and key != "num_puzzle_identifiers":
            setattr(model.config, key, value)
    if model.config.puzzle_emb_ndim > 0 and model.config.num_puzzle_identifiers != wanted:
        warnings.warn(f"--init_from {plan.init_folder}: resizing the puzzle-embedding table from "
                      f"{model.config.num_puzzle_identifiers} to {wanted} identifiers (the dataset's); rows beyond the "
                      f"old table start at zero")
        model.resize_puzzle_embeddings(wanted)
    return model.train()


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
    """Sums of training metrics over the steps since the last log, kept on the device and reduced across
    processes only when read (at logging steps): no host synchronisation in between.

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
        correct = (out.logits.argmax(-1) == labels) & valid
        counts = valid.sum(-1)
        seq_correct = correct.sum(-1) == counts
        token = correct.sum(-1) / counts.clamp_min(1)
        losses = [out.loss, out.lm_loss, out.q_halt_loss]
        losses.append(out.q_continue_loss if out.q_continue_loss is not None else torch.zeros_like(out.loss))
        halted = carry.halted.to(token.dtype)
        per_row = torch.stack([halted, halted * seq_correct, halted * token,
                               halted * ((out.q_halt_logits >= 0) == seq_correct), halted * carry.steps]).sum(-1)
        self.sums[:4] += torch.stack(losses).detach().double() / accum
        self.sums[4] += 1.0 / accum
        self.sums[5:] += per_row.double()

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


def update_puzzle_table(weight: torch.Tensor, ids: list, grads: list, lr: float, weight_decay: float, *,
                        step_was_skipped: bool, accelerator=None) -> None:
    """Sign-SGD on the puzzle-embedding rows this step used (every process applies everyone's rows).

    Skipped together with the optimizer step when the fp16 loss scaler found inf/NaN gradients, and
    `sign_sgd_puzzle_embedding_step` itself leaves the table untouched on non-finite gradients, so `sign(NaN)`
    never reaches the table.
    """
    if not ids or step_was_skipped:
        return
    ids, grads = torch.cat(ids), torch.cat(grads).float()
    if accelerator is not None and accelerator.num_processes > 1:
        ids, grads = accelerator.gather(ids), accelerator.gather(grads)
    sign_sgd_puzzle_embedding_step(weight, ids, grads, lr, weight_decay)


# ---------------------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------------------
def train(args: RunArguments, plan: RunPlan | None = None) -> dict:
    """Run training as configured; returns the summary (also printed as one JSON line by the main process).

    `plan` is `check_arguments(args)` (run here when not given): nothing is loaded or written before it passed.
    """
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, gather_object, set_seed

    from training import checkpointing, hub

    t = args.training
    plan = plan or check_arguments(args)
    output_dir = Path(t.output_dir)
    accelerator = Accelerator(
        mixed_precision=plan.accelerate_precision or t.mixed_precision, project_dir=str(output_dir),
        log_with="tensorboard" if t.report_to == "tensorboard" else None,
        # Every parameter is in the loss, so no unused-parameter search. No buffer broadcast: the puzzle table (a
        # buffer, up to ~1M × 512 for ARC) gets the same sign-SGD update on every rank from gathered gradients and
        # H_init / L_init never change, so re-sending rank 0's copy at every forward would only cost bandwidth.
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=False, broadcast_buffers=False)])
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        level=logging.INFO if accelerator.is_main_process else logging.WARNING)
    logging.getLogger("accelerate").setLevel(logging.WARNING)  # its per-file "saved ..." lines drown ours
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the "Writing model shards" bar at every checkpoint
    world, rank, accum = accelerator.num_processes, accelerator.process_index, t.gradient_accumulation_steps
    global_batch, micro_batch = plan.global_batch, plan.micro_batch
    t.global_batch_size = global_batch
    config = args.to_dict()

    train_arrays, test_arrays, meta = load_data(args.data.dataset)
    num_rows = len(train_arrays["inputs"])
    if num_rows < global_batch:
        raise ValueError(f"the train split has {num_rows} rows, fewer than the global batch {global_batch}")
    stream = BatchStream(train_arrays.get("group_id"), num_rows, global_batch, t.seed, t.sampling,
                         puzzle_identifiers=train_arrays.get("puzzle_identifiers"))
    max_steps = t.max_steps or stream.steps_for_epochs(t.epochs)
    if test_arrays is not None:
        test_arrays = subsample(test_arrays, t.eval_max_examples, t.seed)

    set_seed(t.seed)  # identical initial weights on every process
    model = build_model(plan)
    hrm = model
    model.train()
    optimizer = build_optimizer(t.optimizer, hrm.parameters(), t.learning_rate, (t.beta1, t.beta2), t.weight_decay)
    ema = checkpointing.EMA(hrm, t.ema_decay) if t.ema_decay else None
    if t.compile:
        # The segment's tensor work and loss as one graph (fullgraph, static shapes); checks, puzzle-embedding
        # lookup and RNG draws stay eager, so `model` keeps its type, `solve` and the sparse embedding update.
        hrm.compile_segment()
    model, optimizer = accelerator.prepare(model, optimizer)
    device = accelerator.device

    start_step, train_seconds_before = 0, 0.0
    carries: list = [None] * accum
    if plan.resume_path is not None:
        path = plan.resume_path
        state = checkpointing.load_checkpoint(accelerator, path, ema, hrm)
        start_step, train_seconds_before = state["step"], state.get("train_seconds", 0.0)
        carries = checkpointing.load_carries(path, rank, accum, device)
        logger.info("resumed from %s at step %d", path, start_step)
    elif t.resume_from_checkpoint:
        logger.warning("--resume_from_checkpoint latest: no checkpoint in %s yet, starting from scratch", output_dir)
    # Exploration in the ACT halting uses the global RNG: give each process its own stream (after a resume the
    # restored RNG state already is that stream, so only seed when starting fresh).
    if start_step == 0:
        set_seed(t.seed + rank)

    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        if start_step:
            truncate_metrics(output_dir / "metrics.jsonl", start_step)
        with open(output_dir / "train_config.yaml", "w") as f:
            yaml.safe_dump(config, f, sort_keys=False)
    if t.report_to == "tensorboard":
        model_fields = {k: v for k, v in hrm.config.to_dict().items() if k in _config_fields(type(hrm.config))}
        accelerator.init_trackers("tensorboard", config=_flat({"training": config["training"], "model": {
            "type": hrm.config.model_type, **model_fields}}))
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
        # At the training precision: the model's forward_dtype, or Accelerate's autocast as in training.
        with ema.swapped_in(hrm) if ema is not None else contextlib.nullcontext(), accelerator.autocast():
            result = evaluate_model(model, test_arrays, batch_size=t.eval_batch_size, max_steps=t.eval_max_steps,
                                    early_exit=t.eval_early_exit, accelerator=accelerator)
        model.train()
        metrics = {f"eval/{k}": v for k, v in result.items()}
        log_metrics(metrics, step)
        if accelerator.is_main_process:
            logger.info("step %d eval: %s", step, json.dumps(result))
        return result

    def write_card(model_dir: Path, step: int) -> None:
        hub.write_model_card(model_dir, hrm.config, train_config={k: config[k] for k in ("dataset", "model", "training")},
                             dataset_meta=meta, dataset_id=args.data.dataset, eval_results=last_eval,
                             repo_id=t.hub_model_id, step=step, num_parameters=sum(p.numel() for p in hrm.parameters()),
                             base_model=t.init_from)

    def save(step: int, train_seconds: float) -> Path:
        state = {"step": step, "epoch": stream.epoch_at(step), "stream_position": step * global_batch,
                 "global_batch_size": global_batch, "gradient_accumulation_steps": accum, "num_processes": world,
                 "train_seconds": train_seconds, "eval": last_eval, "config": config}
        path = checkpointing.save_checkpoint(accelerator, output_dir, step, hrm=hrm, carries=carries,
                                             trainer_state=state, ema=ema, write_card=lambda d: write_card(d, step),
                                             save_total_limit=t.save_total_limit)
        if accelerator.is_main_process:
            logger.info("saved %s", path)
        return path

    window = MetricWindow(device)
    progress = None
    if accelerator.is_main_process and not t.disable_tqdm:
        from tqdm.auto import tqdm

        progress = tqdm(total=max_steps, initial=start_step, desc="train", dynamic_ncols=True)
    deadline = time.monotonic() + 60 * t.max_train_minutes if t.max_train_minutes else None
    step, stopped_by, last_saved = start_step, "max_steps", None
    run_start = time.monotonic()
    window_start, window_steps = time.monotonic(), 0
    # Zero-copy views of the (read-only) Arrow buffers; rows are gathered by index, never written.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        inputs, labels, pids = (torch.as_tensor(train_arrays[k]) for k in ("inputs", "labels", "puzzle_identifiers"))
    table = hrm.puzzle_embedding

    while step < max_steps:
        rows = torch.from_numpy(stream.global_batch(step).reshape(accum, world, micro_batch)[:, rank])
        lr = lr_at_step(step + 1, t.learning_rate, t.lr_warmup_steps, max_steps, t.lr_min_ratio)
        emb_lr = lr_at_step(step + 1, t.puzzle_emb_lr, t.lr_warmup_steps, max_steps, t.lr_min_ratio)
        emb_ids, emb_grads = [], []
        for slot in range(accum):
            index = rows[slot]
            x = inputs[index].to(device, torch.long)
            y = labels[index].to(device, torch.long)
            y.masked_fill_(y == 0, -100)  # dataset label 0 = PAD = not scored
            pid = pids[index].to(device, torch.long)
            sync = contextlib.nullcontext() if slot == accum - 1 else accelerator.no_sync(model)
            with sync:
                out = model(x, puzzle_identifiers=pid, labels=y, carry=carries[slot])
                accelerator.backward(out.loss / accum if accum > 1 else out.loss)
            carries[slot] = out.carry
            window.add(out, accum)
            if table is not None and table.local_weight is not None and table.local_weight.grad is not None:
                emb_ids.append(table.local_ids.detach())
                emb_grads.append(table.local_weight.grad.detach())
                table.local_weight = None

        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if emb_ids:
            update_puzzle_table(table.weight, emb_ids, emb_grads, emb_lr, t.puzzle_emb_weight_decay,
                                step_was_skipped=optimizer.step_was_skipped, accelerator=accelerator)
        if ema is not None:
            ema.update(hrm)
        step += 1
        window_steps += 1
        if progress is not None:
            progress.update(1)

        stop_now = False
        if deadline is not None:
            flag = time.monotonic() > deadline
            if world > 1:  # every process must stop at the same step
                flag = accelerator.reduce(torch.tensor([float(flag)], device=device), "sum").item() > 0
            stop_now = flag
        if step % t.logging_steps == 0 or step == max_steps or stop_now:
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
        if t.eval_steps and step % t.eval_steps == 0 and step < max_steps and not stop_now:
            last_eval = run_eval(step)
        if t.save_steps and step % t.save_steps == 0 and step < max_steps and not stop_now:
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
               "model_type": hrm.config.model_type, "num_processes": world, "global_batch_size": global_batch,
               "train_seconds": round(train_seconds, 3),
               "examples_per_second": round(steps_run * global_batch / max(time.monotonic() - run_start, 1e-9), 2),
               "eval": last_eval, "checkpoint": str(final), "model_dir": str(model_dir),
               "weights_sha256": digests, "ranks_in_sync": len(set(digests)) == 1}
    if not summary["ranks_in_sync"]:
        logger.error("processes ended with different weights: %s", digests)
    if world > 1:  # end_training() would destroy the process group, whose teardown can deadlock: see main()
        for tracker in accelerator.trackers:
            tracker.finish()
    else:
        accelerator.end_training()

    if t.push_to_hub and accelerator.is_main_process:
        try:
            summary["pushed"] = hub.push_to_hub(model_dir, t.hub_model_id, private=t.hub_private_repo,
                                                commit_message=f"{hrm.config.model_type.upper()}, step {step}")
        except RuntimeError as error:
            summary["push_error"] = str(error)
    return summary


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def main(argv=None) -> int:
    """Command-line entry point: prints the run summary as one JSON line. Exit code 2 for a configuration that
    cannot work (found before any work starts), 1 for a failure during training; one line on stderr either way
    (`--debug` for the traceback)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = parse_arguments(argv)
        plan = check_arguments(args)
        if "--dry_run" in argv:  # reads only the group / puzzle id columns of the train split
            print(json.dumps(plan_steps(args.data.dataset, args.training, plan.global_batch)), flush=True)
            return 0
    except ValueError as error:  # ConfigError, the config classes' and the model loader's one-line errors
        if debug:
            raise
        print(f"error: {_one_line(error)}", file=sys.stderr)
        return 2
    try:
        summary = train(args, plan)
    except Exception as error:  # a failure during work: one line, the traceback only with --debug
        if debug:
            raise
        print(f"error: training failed: {type(error).__name__}: {_one_line(error)} (--debug shows the traceback)",
              file=sys.stderr)
        return 1
    from accelerate import PartialState

    if PartialState().is_main_process:
        print(json.dumps(summary, default=str), flush=True)
    code = 0
    if summary.get("push_error"):
        print(f"error: {summary['push_error']}", file=sys.stderr)
        code = 1
    if summary.get("num_processes", 1) > 1:
        # Every file is written and closed: skip the interpreter's teardown, where gloo's process-group destructor
        # joins its worker thread while holding the GIL and that thread may still need the GIL to free the last
        # collective's tensors (an occasional deadlock at exit, seen with py-spy in two-process CPU runs).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
