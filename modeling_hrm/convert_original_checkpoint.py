"""Convert a checkpoint of the original HRM code (github.com/sapientinc/HRM) or the original TRM code
(github.com/SamsungSAILMontreal/TinyRecursiveModels) into a `save_pretrained` folder.

Both codes save `all_config.yaml` and a raw torch state dict `checkpoint` whose keys start with
`_orig_mod.model.inner.`; `arch.name` in the YAML says which model it is. The source may be the checkpoint
file, a folder holding both files, or a Hub repo id of a published checkpoint
(`sapientinc/HRM-checkpoint-sudoku-extreme`, `-maze-30x30-hard`, `-ARC-2`):

    python -m modeling_hrm.convert_original_checkpoint sapientinc/HRM-checkpoint-sudoku-extreme --output hrm-sudoku
    python -m modeling_hrm.convert_original_checkpoint path/to/run/ --output trm-sudoku    # checkpoint + all_config.yaml
    python -m modeling_hrm.convert_original_checkpoint --checkpoint step_1000 --config all_config.yaml --output out

The YAML holds no sequence length: it is read from the weights where they show it (learned positions,
TRM-MLP's sequence mixer), else from the task named in `data_path`, else from the vocabulary (11 Sudoku 9×9,
6 maze 30×30, 12 ARC); `--seq-len` overrides. Conversion is strict: every tensor must map to a parameter or
buffer of the new model with the same shape, and none may be left over. Exit code 2: the input is not what it
claims; 1: a failure while writing.
"""

import argparse
import math
import os
import re
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

import torch
import yaml

from .configuration_hrm import HRMConfig, RecursiveReasoningConfig
from .configuration_trm import TRMConfig
from .loading import looks_like_repo_id
from .modeling_hrm import HRMForPuzzleSolving
from .modeling_trm import TRMForPuzzleSolving

ORIGINAL_PREFIXES = ("_orig_mod.model.inner.", "model.inner.")
CHECKPOINT_NAME, CONFIG_NAME = "checkpoint", "all_config.yaml"

# arch.name of all_config.yaml → our model type. The TRM code base also ships HRM (same layout as the original).
ARCH_NAMES = {
    "hrm.hrm_act_v1@HierarchicalReasoningModel_ACTV1": "hrm",
    "recursive_reasoning.hrm@HierarchicalReasoningModel_ACTV1": "hrm",
    "recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1": "trm",
}
MODEL_CLASSES = {"hrm": (HRMConfig, HRMForPuzzleSolving), "trm": (TRMConfig, TRMForPuzzleSolving)}

# original name → our name; per-layer names are identical in both layouts
_RENAMES = {
    "H_init": "H_init",
    "L_init": "L_init",
    "embed_tokens.embedding_weight": "embed_tokens.weight",
    "embed_pos.embedding_weight": "embed_pos.weight",
    "puzzle_emb.weights": "puzzle_embedding.weight",
    "lm_head.weight": "lm_head.weight",
    "q_head.weight": "q_head.weight",
    "q_head.bias": "q_head.bias",
}
_LAYER_KEY = re.compile(r"^[HL]_level\.layers\.\d+\."
                        r"(self_attn\.(qkv_proj|o_proj)|mlp\.(gate_up_proj|down_proj)|mlp_t\.(gate_up_proj|down_proj))"
                        r"\.weight$")

# arch fields of all_config.yaml that map one-to-one onto the configs
_ARCH_FIELDS = {
    "hrm": ("H_cycles", "L_cycles", "H_layers", "L_layers", "hidden_size", "num_heads", "expansion",
            "puzzle_emb_ndim", "pos_encodings", "halt_max_steps", "halt_exploration_prob", "rope_theta",
            "rms_norm_eps", "no_ACT_continue"),
    "trm": ("H_cycles", "L_cycles", "L_layers", "hidden_size", "num_heads", "expansion", "puzzle_emb_ndim",
            "pos_encodings", "halt_max_steps", "halt_exploration_prob", "rope_theta", "rms_norm_eps", "mlp_t",
            "puzzle_emb_len", "no_ACT_continue"),
}
# arch keys the converter reads but that set nothing of the converted config: the variant's name, the loss head
# (its loss_type is read), the original's forward dtype (a training setting), TRM's unused H_layers (one network).
_ARCH_OTHER_KEYS = {"hrm": ("name", "loss", "forward_dtype"), "trm": ("name", "loss", "forward_dtype", "H_layers")}
# arch keys without which the architecture is not determined (the originals have no defaults for them).
_ARCH_REQUIRED = ("hidden_size", "num_heads", "expansion", "L_layers", "H_cycles", "L_cycles", "pos_encodings",
                  "halt_max_steps")
_LOSS_TYPES = {"stablemax_cross_entropy": "stablemax", "softmax_cross_entropy": "softmax"}
# Grid tokens per task, from the dataset path of the run or, failing that, the vocabulary size.
_TASK_SEQ_LEN = (("sudoku", 81), ("maze", 900), ("arc", 900))
_VOCAB_SEQ_LEN = {11: 81, 6: 900, 12: 900}


class ConversionError(ValueError):
    """The source is not an original checkpoint we can convert; the message names the problem."""


# --------------------------------------------------------------------------------------------------
# Reading the source
# --------------------------------------------------------------------------------------------------
def strip_prefix(state_dict: dict) -> dict:
    """Remove the `_orig_mod.model.inner.` prefix (torch.compile + ACT wrapper + loss head) from every key."""
    stripped = {}
    for key, tensor in state_dict.items():
        for prefix in ORIGINAL_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
                break
        stripped[key] = tensor
    return stripped


def load_original_checkpoint(path: str | Path) -> dict:
    """Load the raw torch state dict safely (`weights_only=True`: no pickled code runs) and strip the prefixes."""
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"checkpoint {path} does not exist or is not a file")
    if path.stat().st_size == 0:
        raise ConversionError(f"checkpoint {path} is empty")
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a bad file; all mean "not a plain tensor dict"
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if zipfile.is_zipfile(path) and ("Unsupported global" in str(error) or "Unsupported operand" in str(error)):
            raise ConversionError(f"checkpoint {path} holds pickled objects other than tensors; it was loaded with "
                                  f"weights_only=True, which refuses them because unpickling can run code") from None
        raise ConversionError(f"checkpoint {path} is not a torch checkpoint ({first[:160]})") from None
    if not isinstance(state_dict, dict) or not state_dict or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state_dict.items()):
        raise ConversionError(f"checkpoint {path} is not a raw state dict of named tensors")
    return strip_prefix(state_dict)


def read_all_config(path: str | Path) -> dict:
    """The run's all_config.yaml as a dict (its `arch` section holds the model)."""
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"config {path} does not exist or is not a file")
    from dataset_scripts.validation import load_yaml, yaml_error_line

    try:
        all_config = load_yaml(path.read_text())  # a key given twice is refused, not silently the last one
    except yaml.YAMLError as error:
        raise ConversionError(yaml_error_line(error, f"config {path}")) from None
    except UnicodeDecodeError:
        raise ConversionError(f"config {path} is not valid YAML (not a text file)") from None
    if not isinstance(all_config, dict) or not isinstance(all_config.get("arch", all_config), dict) or (
            "arch" not in all_config and "hidden_size" not in all_config):
        raise ConversionError(f"config {path} is not an all_config.yaml of the original code (no `arch` mapping)")
    return all_config


def download_from_hub(repo_id: str, revision: str | None = None) -> tuple[Path, Path]:
    """`checkpoint` and `all_config.yaml` of a published checkpoint repo, via the local Hub cache."""
    from huggingface_hub import constants, hf_hub_download

    files = []
    for name in (CHECKPOINT_NAME, CONFIG_NAME):
        try:
            files.append(Path(hf_hub_download(repo_id, name, revision=revision)))
        except Exception as error:  # offline, unreachable, missing repo or file: one line that says which
            kind = type(error).__name__
            if "RepositoryNotFound" in kind:
                why = "the repo does not exist on the Hub (or is private: log in with `hf auth login`)"
            elif "EntryNotFound" in kind and "Local" not in kind:
                why = f"the repo has no file {name!r} (is it an original HRM/TRM checkpoint repo?)"
            elif constants.HF_HUB_OFFLINE:
                why = "HF_HUB_OFFLINE is set and the file is not in the local cache"
            else:
                why = (f"the network or {constants.ENDPOINT} cannot be reached, and the file is not in the local "
                       f"cache ({kind})")
            raise ConversionError(f"cannot download {name!r} of Hub repo {repo_id!r}: {why}") from None
    return files[0], files[1]


def locate_source(source: str | None, checkpoint: str | None, config: str | None,
                  revision: str | None = None) -> tuple[Path, Path]:
    """(checkpoint file, all_config.yaml) from a file, a folder of the Hub layout, or a Hub repo id."""
    if source is None and checkpoint is None:
        raise ConversionError("nothing to convert: give a checkpoint file, a folder, or a Hub repo id")
    if source is not None and checkpoint is not None:
        raise ConversionError("give the source either as the positional argument or with --checkpoint, not both")
    text = source if source is not None else checkpoint
    path = Path(text).expanduser()
    if path.is_dir():
        ckpt = path / CHECKPOINT_NAME
        if not ckpt.is_file():
            raise ConversionError(f"folder {path} has no {CHECKPOINT_NAME!r} file (the original codes save the "
                                  f"weights as `checkpoint` or `step_N`: pass that file)")
        return ckpt, Path(config) if config else path / CONFIG_NAME
    if path.exists():
        return path, Path(config) if config else path.parent / CONFIG_NAME
    if looks_like_repo_id(text) and not text.startswith((".", "/", "~")):
        ckpt, cfg = download_from_hub(text, revision)
        return ckpt, Path(config) if config else cfg
    raise ConversionError(f"{text}: no such file or folder, and not a Hub repo id (owner/name)")


# --------------------------------------------------------------------------------------------------
# Mapping
# --------------------------------------------------------------------------------------------------
def model_type_of(arch: dict) -> str:
    name = arch.get("name")
    if name is None:
        # A bare arch section without a name: HRM's fields only.
        return "trm" if any(k in arch for k in ("mlp_t", "puzzle_emb_len")) else "hrm"
    if name not in ARCH_NAMES:
        raise ConversionError(f"arch.name {name!r} is not a variant this converter knows; known: "
                              f"{', '.join(sorted(ARCH_NAMES))}")
    return ARCH_NAMES[name]


def rename_key(original_key: str) -> str | None:
    """Our parameter name for an original (prefix-free) key, or None if the key is unknown."""
    if original_key in _RENAMES:
        return _RENAMES[original_key]
    if _LAYER_KEY.match(original_key):
        return original_key
    return None


def infer_seq_len(all_config: dict, arch: dict, state_dict: dict, model_type: str) -> int:
    """Grid tokens per puzzle: from the weights where they show it, else from the task, else from the vocabulary."""
    hidden = int(arch.get("hidden_size", 512))
    ndim = int(state_dict["puzzle_emb.weights"].shape[1]) if "puzzle_emb.weights" in state_dict else 0
    if model_type == "trm":
        plen = 0 if ndim == 0 else int(arch.get("puzzle_emb_len", 16)) or math.ceil(ndim / hidden)
    else:
        plen = math.ceil(ndim / hidden)
    if "embed_pos.embedding_weight" in state_dict:
        return int(state_dict["embed_pos.embedding_weight"].shape[0]) - plen
    mixer = next((v for k, v in state_dict.items() if k.endswith("mlp_t.down_proj.weight")), None)
    if mixer is not None:
        return int(mixer.shape[0]) - plen
    data_path = str(all_config.get("data_path") or all_config.get("data_paths") or "").lower()
    vocab = int(state_dict["embed_tokens.embedding_weight"].shape[0])
    for task, seq_len in _TASK_SEQ_LEN:
        if task in data_path:
            # The task's vocabulary must agree, or the guess would be silently wrong (RoPE shows no length).
            if task == "sudoku" and vocab - 2 in (4, 6, 9):
                return (vocab - 2) ** 2
            if (task, vocab) in (("maze", 6), ("arc", 12)):
                return seq_len
            raise ConversionError(f"data_path {data_path!r} names a {task} task but the vocabulary has {vocab} "
                                  f"tokens; cannot tell the sequence length: pass --seq-len")
    if vocab in _VOCAB_SEQ_LEN:
        return _VOCAB_SEQ_LEN[vocab]
    raise ConversionError("cannot tell the sequence length (no learned positions, no task in data_path, vocabulary "
                          f"{vocab} unknown): pass --seq-len")


def check_arch(arch: dict, model_type: str) -> None:
    """Every key of the `arch` section known (a field the converter maps, or one it knowingly leaves out), the keys
    that fix the architecture present, and a known loss: otherwise the converted model would silently differ from
    the one the checkpoint was trained as (a misspelt key left at our default)."""
    import difflib

    known = set(_ARCH_FIELDS[model_type]) | set(_ARCH_OTHER_KEYS[model_type])
    unknown = sorted(str(k) for k in arch if k not in known)
    if unknown:
        hint = difflib.get_close_matches(unknown[0], sorted(known), n=1)
        raise ConversionError(f"arch.{unknown[0]} is not a field of the original {model_type.upper()} this converter "
                              f"maps" + (f" (did you mean {hint[0]!r}?)" if hint else "") + f"; known: "
                              f"{', '.join(sorted(known))}")
    required = [k for k in _ARCH_REQUIRED + (("H_layers",) if model_type == "hrm" else ()) if k not in arch]
    if required:
        raise ConversionError(f"the arch section has no {required[0]}, which fixes the architecture (the original "
                              f"code has no default for it)")
    loss_type = (arch.get("loss") or {}).get("loss_type", "stablemax_cross_entropy") if isinstance(
        arch.get("loss") or {}, dict) else None
    if loss_type not in _LOSS_TYPES:
        raise ConversionError(f"arch.loss.loss_type {loss_type!r} is not one the models implement; expected "
                              f"{' or '.join(_LOSS_TYPES)}")


def config_from_original(arch: dict, state_dict: dict, seq_len: int, model_type: str = "hrm"
                         ) -> RecursiveReasoningConfig:
    """The config from the `arch` section of all_config.yaml; vocab and puzzle-table sizes come from the tensors,
    which must agree with what the arch section says (a converter never changes the architecture it converts)."""
    if "embed_tokens.embedding_weight" not in state_dict:
        raise ConversionError(f"checkpoint has no embed_tokens.embedding_weight; is it an {model_type.upper()} "
                              f"checkpoint?")
    check_arch(arch, model_type)
    config_class = MODEL_CLASSES[model_type][0]
    fields = {k: arch[k] for k in _ARCH_FIELDS[model_type] if k in arch}
    fields["vocab_size"] = int(state_dict["embed_tokens.embedding_weight"].shape[0])
    ndim = arch.get("puzzle_emb_ndim", 0)
    if "puzzle_emb.weights" in state_dict:
        table = tuple(state_dict["puzzle_emb.weights"].shape)
        if len(table) != 2 or table[1] != ndim:
            raise ConversionError(f"the checkpoint's puzzle_emb.weights has shape {list(table)} but "
                                  f"arch.puzzle_emb_ndim is {ndim!r}: the weights and the config disagree")
        fields["num_puzzle_identifiers"] = table[0]
    elif ndim:
        raise ConversionError(f"the checkpoint lacks puzzle_emb.weights, which arch.puzzle_emb_ndim={ndim!r} implies "
                              f"(a model without its puzzle table would be another architecture)")
    fields["puzzle_emb_ndim"] = ndim
    fields["loss_type"] = _LOSS_TYPES[(arch.get("loss") or {}).get("loss_type", "stablemax_cross_entropy")]
    fields["seq_len"] = seq_len
    if isinstance(fields.get("expansion"), int):
        fields["expansion"] = float(fields["expansion"])
    try:
        return config_class(**fields)
    except (TypeError, ValueError) as error:
        raise ConversionError(f"all_config.yaml arch section cannot make a {config_class.__name__}: {error}") from None


def convert_state_dict(original: dict, model) -> dict:
    """Map an original (prefix-free) state dict onto `model`'s names, checking coverage and shapes."""
    expected = model.state_dict()
    converted, unexpected, mismatched, mismatched_names = {}, [], [], set()
    for key, tensor in original.items():
        new_key = rename_key(key)
        if new_key is None or new_key not in expected:
            unexpected.append(key)
            continue
        if tuple(tensor.shape) != tuple(expected[new_key].shape):
            mismatched.append(f"{key}: checkpoint {tuple(tensor.shape)} vs model {tuple(expected[new_key].shape)}")
            mismatched_names.add(new_key)
            continue
        converted[new_key] = tensor.to(expected[new_key].dtype)
    missing = sorted(set(expected) - set(converted) - mismatched_names)
    problems = []
    if missing:
        problems.append("missing keys: " + ", ".join(missing))
    if unexpected:
        problems.append("unexpected keys: " + ", ".join(sorted(unexpected)))
    if mismatched:
        problems.append("shape mismatches: " + "; ".join(mismatched))
    if problems:
        name = model.config.model_type.upper()
        raise ConversionError(f"checkpoint does not match the {name} layout: " + " | ".join(problems))
    return converted


def convert(checkpoint: str | Path, config_path: str | Path, seq_len: int | None = None):
    """Build an `HRMForPuzzleSolving` or `TRMForPuzzleSolving` holding the weights of an original checkpoint."""
    all_config = read_all_config(config_path)
    arch = all_config.get("arch", all_config)
    model_type = model_type_of(arch)
    original = load_original_checkpoint(checkpoint)
    inferred = infer_seq_len(all_config, arch, original, model_type) if seq_len is None else seq_len
    config = config_from_original(arch, original, inferred, model_type)
    model = MODEL_CLASSES[model_type][1](config)
    model.load_state_dict(convert_state_dict(original, model), strict=True)
    return model.eval()


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------
def check_output(output: str, overwrite: bool) -> Path:
    path = Path(output).expanduser()
    if path.exists() and not path.is_dir():
        raise ConversionError(f"--output {path} is an existing file; give a folder path")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise ConversionError(f"--output {path} exists and is not empty; pass --overwrite to replace it")
    if not path.parent.exists():
        raise ConversionError(f"--output {path}: parent folder {path.parent} does not exist")
    return path


def save_atomically(model, output: Path) -> None:
    """Write into a temporary sibling, then swap it in: a failure never leaves a half-written or lost folder."""
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        model.save_pretrained(staging)
        if output.exists():
            previous = output.with_name(f".{output.name}.old")
            shutil.rmtree(previous, ignore_errors=True)
            os.replace(output, previous)
            os.replace(staging, output)
            shutil.rmtree(previous, ignore_errors=True)
        else:
            os.replace(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m modeling_hrm.convert_original_checkpoint",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("source", nargs="?", help="checkpoint file, folder with checkpoint + all_config.yaml, or "
                                                  "Hub repo id of a published checkpoint")
    parser.add_argument("--checkpoint", help="raw torch state dict of the original code (instead of SOURCE)")
    parser.add_argument("--config", help="all_config.yaml of the run (default: next to the checkpoint)")
    parser.add_argument("--seq-len", type=int, help="grid tokens (default: inferred; 81 Sudoku, 900 maze / ARC)")
    parser.add_argument("--revision", help="Hub revision (branch, tag or commit) of a repo-id source")
    parser.add_argument("--output", required=True, help="folder to write with save_pretrained")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --output folder")
    parser.add_argument("--push-to-hub", metavar="REPO_ID", help="also push the converted model to this Hub repo")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.seq_len is not None and args.seq_len < 1:
            raise ConversionError(f"--seq-len must be >= 1, got {args.seq_len}")
        if args.push_to_hub is not None and not looks_like_repo_id(args.push_to_hub):
            raise ConversionError(f"--push-to-hub {args.push_to_hub!r} is not a Hub repo id (owner/name)")
        output = check_output(args.output, args.overwrite)
        checkpoint, config_path = locate_source(args.source, args.checkpoint, args.config, args.revision)
        model = convert(checkpoint, config_path, args.seq_len)
    except ConversionError as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        save_atomically(model, output)
        if args.push_to_hub:
            model.push_to_hub(args.push_to_hub)
    except Exception as error:  # disk full, permissions, network during push: a failure during work
        if args.debug:
            raise
        print(f"error: conversion succeeded but writing failed: {str(error).strip().splitlines()[0]}",
              file=sys.stderr)
        return 1
    cfg = model.config
    params = sum(p.numel() for p in model.parameters())
    variant = " (mlp_t)" if getattr(cfg, "mlp_t", False) else ""
    print(f"converted {checkpoint} → {output}: {cfg.model_type.upper()}{variant}, {params:,} parameters, "
          f"seq_len {cfg.seq_len}, {cfg.num_puzzle_identifiers} puzzle identifiers, vocab {cfg.vocab_size}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
