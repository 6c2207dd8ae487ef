"""The arguments of a training run: three dataclasses (data, model, training) parsed by `HfArgumentParser`.

Each value comes from, last wins: the dataclass defaults < the YAML file of `--config` (sections `dataset`,
`model`, `training`; `model.type` picks hrm or trm) < the command line (`--learning_rate 3e-4`, `--hidden_size 64`,
`--set model.hidden_size=64`, `--set training.ema_decay=null`). `null` resets an optional value. The YAML is
turned into command-line options placed before the real ones, so both go through `HfArgumentParser`'s type
conversion; all this module adds is that translation, `null`, `--set`, and one-line errors (`ConfigError`).

`ModelArguments` is built from the model config classes (every field of `HRMConfig` / `TRMConfig`, optional), so
a new config field is an option without an edit here.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import inspect
import math
import os
import re
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
import yaml
from transformers import HfArgumentParser


class ConfigError(ValueError):
    """A configuration that cannot work. `main` prints it as one line and exits with code 2."""


def one_line(error: BaseException) -> str:
    """The first line of an error's message (its type name if empty): what the command-line tools print."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


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
    dataset_release: str | None = field(default=None, metadata={
        "help": "the data release the recipe was written for (YAML: top-level `dataset_release:`, e.g. "
                "arc-agi-1-2024); a dataset whose hrm_dataset.json records another release is refused; null = any"})


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
    depth_curriculum: str | None = field(default=None, metadata={
        "help": "grow the recursion depth during training, shallow first: stages HxL:UNTIL, e.g. '1x2:0.25,2x4:0.5' "
                "(1x2 cycles for the first quarter of max_steps, 2x4 until half, then the model's own depth; UNTIL a "
                "fraction of max_steps or a step); evaluation and the saved model use the model's depth "
                "(training/curriculum.py); null = off"})
    eval_steps: int | None = field(default=None, metadata={"help": "evaluate every N steps (and always at the end)"})
    eval_batch_size: int = field(default=256, metadata={"help": "rows per evaluation batch (per process)"})
    eval_split: str = field(default="test", metadata={
        "help": "split evaluated during training (e.g. validation, so that choices made from the logged curves "
                "never see the test split)"})
    eval_max_examples: int | None = field(default=None, metadata={
        "help": "evaluate on a fixed random subset of the evaluated split of this size"})
    eval_max_steps: int | None = field(default=None, metadata={
        "help": "ACT segments at evaluation (null = the model's halt_max_steps)"})
    target_exact_accuracy: float | None = field(default=None, metadata={
        "help": "stop (final checkpoint and summary) at the first evaluation whose exact accuracy on eval_split "
                "reaches this, e.g. 0.95: time-to-accuracy runs (benchmarks/time_to_accuracy.py); null = off"})
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


def config_fields(config_class) -> dict[str, typing.Any]:
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
        for name, kind in config_fields(config_class).items():
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
        if self.data.dataset_release:
            out["dataset_release"] = self.data.dataset_release
        if self.description:
            out["description"] = self.description
        return out


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


class ArgumentParser(HfArgumentParser):
    """`HfArgumentParser` over the three argument dataclasses, plus `--config FILE.yaml`, `--set`, `--debug`.

    The YAML sections become command-line options placed before the real ones, so YAML values go through the
    same type conversion and the command line wins. Parse errors raise `ConfigError` (one line) instead of
    printing the usage and exiting.
    """

    def __init__(self, description: str | None = None):
        super().__init__([DataArguments, ModelArguments, TrainingArguments], description=description or __doc__,
                         formatter_class=_HelpFormatter, allow_abbrev=False)
        extra = self.add_argument_group("configuration file and shortcuts")
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
        for action in self._actions:
            if action.dest in nullable and action.type is not None and action.choices is None:
                action.type = _nullable(action.type)
        self.option_section = {f.name: section for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)}
        self.option_type = {name: _value_type(kind) for cls in SECTIONS.values()
                            for name, kind in typing.get_type_hints(cls).items() if not name.startswith("_")}

    def error(self, message):  # argparse would print the usage and exit; one line is enough
        raise ConfigError(_explain_parse_error(self, message))

    def parse(self, argv: list[str] | None = None) -> RunArguments:
        argv = list(sys.argv[1:] if argv is None else argv)
        pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
        pre.add_argument("--config")
        pre.add_argument("--debug", action="store_true")
        known, rest = pre.parse_known_args(argv)
        if "-h" in rest or "--help" in rest:
            self.print_help()
            raise SystemExit(0)
        description, yaml_options = None, []
        if known.config:
            description, yaml_options = self._yaml_options(known.config)
            try:
                self.parse_known_args(yaml_options)
            except ConfigError as error:
                raise ConfigError(f"{known.config}: {error}") from None
        *parsed, unknown = self.parse_args_into_dataclasses(
            yaml_options + self._expand_set(rest), look_for_args_file=False, return_remaining_strings=True)
        if unknown:
            raise ConfigError(_explain_parse_error(self, f"unrecognized arguments: {' '.join(unknown)}"))
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
        if where != "--set":  # a YAML value has a type of its own: it must be the option's
            _check_yaml_type(f"{where}: {section}.{key}", value, self.option_type.get(name))
        text = "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        return [f"--{name}={text}"]

    def _yaml_options(self, path_text: str) -> tuple[str | None, list[str]]:
        path = Path(path_text)
        if path.is_dir():
            raise ConfigError(f"--config {path_text}: a folder, not a YAML file")
        if not path.is_file():
            raise ConfigError(f"--config {path_text}: no such file")
        from dataset_scripts.validation import load_yaml, yaml_error_line

        try:
            loaded = load_yaml(path.read_text())  # a key given twice is refused, not silently the last one
        except yaml.YAMLError as error:
            raise ConfigError(yaml_error_line(error, path_text)) from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path_text}: not a text file") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path_text}: expected a mapping with dataset, model and training sections")
        unknown = sorted(set(loaded) - {"dataset", "dataset_release", "model", "training", "description"})
        if unknown:
            raise ConfigError(f"{path_text}: unknown top-level keys {unknown} (expected dataset, dataset_release, "
                              f"model, training, description)")
        options = []
        for key in ("dataset", "dataset_release"):
            if loaded.get(key) is not None:
                options += self._option("dataset", key, loaded[key], path_text)
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


def _value_type(kind):
    """bool, int, float or str: the type a YAML value of an option with this annotation must have (None: any)."""
    args = [a for a in typing.get_args(kind) if a is not type(None)] if typing.get_origin(kind) in (
        typing.Union, types.UnionType) else [kind]
    if len(args) != 1:
        return None
    kind = args[0]
    if typing.get_origin(kind) is Literal:
        return str
    return kind if kind in (bool, int, float, str) else None


_TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a finite number", str: "text"}


def _check_yaml_type(where: str, value, kind) -> None:
    """A YAML value of an option's type: a boolean for a boolean (a quoted "false" is not read as one), an integer
    for a count, a finite number for a float (PyYAML reads `1e-4` without a dot as text: numeric text is accepted),
    text for text (an unquoted no / yes / on / off is a YAML boolean). `ConfigError` naming both otherwise."""
    from dataset_scripts.validation import describe

    if value is None or kind is None:
        return
    if kind is bool:
        fits = isinstance(value, bool)
    elif kind is str:
        fits = isinstance(value, str)
    elif isinstance(value, bool):
        fits = False
    elif isinstance(value, str):
        try:
            fits = math.isfinite(float(value)) and (kind is float or float(value) == int(float(value)))
        except ValueError:
            fits = None  # not a number: argparse names the value ("invalid float value")
    else:
        fits = isinstance(value, int) or (kind is float and isinstance(value, float) and math.isfinite(value))
    if fits is False:
        hint = " (YAML reads an unquoted yes / no / on / off as a boolean: quote it)" if kind is str and \
            isinstance(value, bool) else " (write it without quotes)" if kind is bool and isinstance(value, str) else ""
        raise ConfigError(f"{where} must be {_TYPE_WORDS[kind]}, got {describe(value)}{hint}")


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


def parse_arguments(argv: list[str] | None = None, description: str | None = None) -> RunArguments:
    """Defaults < YAML file < command line, as `RunArguments`. Raises `ConfigError` naming a bad key or value.
    `description` heads `--help` (the entry point passes its docstring)."""
    return ArgumentParser(description).parse(argv)

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
    if t.max_train_minutes is not None and not (math.isfinite(t.max_train_minutes) and t.max_train_minutes > 0):
        raise ConfigError(f"training.max_train_minutes must be a finite number > 0, got {t.max_train_minutes}")
    if t.push_to_hub and not t.hub_model_id:
        raise ConfigError("--push_to_hub needs --hub_model_id OWNER/NAME")
    if t.target_exact_accuracy is not None:
        if not 0.0 < t.target_exact_accuracy <= 1.0:
            raise ConfigError(f"training.target_exact_accuracy must be in (0, 1], got {t.target_exact_accuracy}")
        if not t.eval_steps:
            raise ConfigError("training.target_exact_accuracy needs training.eval_steps (the evaluations that "
                              "check it)")
    if t.depth_curriculum is not None:
        from training.curriculum import parse_depth_curriculum

        try:
            parse_depth_curriculum(t.depth_curriculum)
        except ValueError as error:
            raise ConfigError(str(error)) from None
    if t.hub_model_id is not None:  # checked before training, not when the push fails at its end
        from dataset_scripts.validation import REPO_ID_RULE, is_repo_id

        if not is_repo_id(t.hub_model_id, owner=False):
            raise ConfigError(f"--hub_model_id must look like 'owner/name' or 'name', got {t.hub_model_id!r} "
                              f"({REPO_ID_RULE})")
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
