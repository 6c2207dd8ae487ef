"""Load a saved puzzle model (HRM or TRM) from a folder or a Hub repo, with one-line errors.

    from modeling_hrm.loading import load_pretrained_model, ModelLoadError
    model = load_pretrained_model("runs/sudoku/checkpoint-2000", device="cuda")

Every way a model folder can be wrong (missing, a dataset folder, no or broken `config.json`, a config key given
twice or unknown to the config class, garbage or truncated `model.safetensors`, weights whose shapes or set of
tensors contradict the config, pickle-only weights, a device this machine lacks, an invalid Hub id, a Hub id while
offline) raises `ModelLoadError` (a `ValueError`) whose single line names the problem. Checks run before
`from_pretrained`, so the library is only handed folders it can load. `hrm-solve`, `hrm-evaluate` and
`train.py --init_from` all load through here; `check_folder_agrees` is also run by the config classes whenever a
config is read from a local folder (`AutoModel.from_pretrained`, `pipeline(..., model=folder)`).
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import torch

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
_HEADER_LIMIT = 100 * 1024 * 1024  # safetensors' own cap on the JSON header
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                "U16": 2, "U32": 4, "U64": 8, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}


class ModelLoadError(ValueError):
    """A model folder, repo id, device or dtype that cannot be loaded; the message is one line."""


# ---------------------------------------------------------------------------------------------------------
# Device and dtype
# ---------------------------------------------------------------------------------------------------------
def resolve_device(device) -> torch.device:
    """`torch.device(device)` after checking this machine has it (a one-line error otherwise)."""
    if device is None:
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ModelLoadError(f"unknown device {device!r}; use cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ModelLoadError(f"device {device!r} asked for, but CUDA is not available on this machine "
                                 f"(use --device cpu)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ModelLoadError(f"device {device!r} does not exist: this machine has "
                                 f"{torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise ModelLoadError(f"device {device!r} asked for, but MPS is not available on this machine")
    elif dev.type != "cpu":
        backend = getattr(torch, dev.type, None)
        if backend is None or not hasattr(backend, "is_available") or not backend.is_available():
            raise ModelLoadError(f"device {device!r} is not available on this machine; use cpu or cuda")
    return dev


def resolve_dtype(dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype) and dtype.is_floating_point:
        return dtype
    if isinstance(dtype, str):
        value = getattr(torch, dtype.removeprefix("torch."), None)
        if isinstance(value, torch.dtype) and value.is_floating_point:
            return value
    raise ModelLoadError(f"dtype must be a floating-point torch dtype such as float32 or bfloat16, got {dtype!r}")


# ---------------------------------------------------------------------------------------------------------
# Folder checks
# ---------------------------------------------------------------------------------------------------------
def _model_classes() -> dict:
    import modeling_hrm

    classes = getattr(modeling_hrm, "MODEL_CLASSES", None)
    if classes is None:  # before TRM: HRM alone
        classes = {"hrm": (modeling_hrm.HRMConfig, modeling_hrm.HRMForPuzzleSolving)}
    return classes


def read_safetensors_header(file: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """`{tensor name: (dtype, shape)}` from a safetensors file's header, checking that the file holds every
    byte the header promises. Raises `ModelLoadError` for garbage, truncated or non-safetensors files."""
    size = file.stat().st_size
    what = f"{file} is not a valid safetensors file"
    if size < 8:
        raise ModelLoadError(f"{what}: only {size} bytes (empty or truncated)")
    with open(file, "rb") as fh:
        (header_len,) = struct.unpack("<Q", fh.read(8))
        if header_len > min(size - 8, _HEADER_LIMIT):
            raise ModelLoadError(f"{what}: its header claims {header_len} bytes but the file has {size} "
                                 f"(garbage or truncated)")
        raw = fh.read(header_len)
    try:
        header = json.loads(raw.decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
        tensors, end = {}, 0
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            dtype, shape, (begin, stop) = entry["dtype"], tuple(int(s) for s in entry["shape"]), entry["data_offsets"]
            if dtype in _DTYPE_BYTES and stop - begin != math.prod(shape) * _DTYPE_BYTES[dtype]:
                raise ValueError(f"tensor {name!r} has {stop - begin} bytes for shape {list(shape)} {dtype}")
            tensors[name] = (dtype, shape)
            end = max(end, stop)
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
        raise ModelLoadError(f"{what}: unreadable header ({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None
    if 8 + header_len + end > size:
        raise ModelLoadError(f"{file} is truncated: its tensors need {8 + header_len + end} bytes, the file has {size}")
    return tensors


def _weight_files(folder: Path) -> list[Path]:
    index = folder / WEIGHTS_INDEX_NAME
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
            names = sorted(set(weight_map.values()))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ModelLoadError(f"{index} is not a valid safetensors index (no weight_map)") from None
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            raise ModelLoadError(f"{folder} lacks the weight shard {missing[0]} named in {WEIGHTS_INDEX_NAME}")
        return [folder / n for n in names]
    if (folder / WEIGHTS_NAME).is_file():
        return [folder / WEIGHTS_NAME]
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES and p.is_file())
    if pickles:
        raise ModelLoadError(
            f"{folder} holds only pickle weights ({pickles[0]}); they are refused because unpickling can run "
            f"arbitrary code: convert them once in a trusted environment with safetensors.torch.save_file("
            f"torch.load(file, weights_only=True), '{WEIGHTS_NAME}')")
    raise ModelLoadError(f"{folder} has no {WEIGHTS_NAME}; is it a save_pretrained folder?")


def resolve_model_folder(folder: Path) -> Path:
    """The folder that holds config.json: `folder` itself, or the `model/` subfolder of a training
    checkpoint (`checkpoint-STEP/`). Anything else gets an error saying what the folder is instead."""
    if (folder / CONFIG_NAME).is_file():
        return folder
    if (folder / "model" / CONFIG_NAME).is_file():
        return folder / "model"
    if (folder / "hrm_dataset.json").is_file():
        raise ModelLoadError(f"{folder} is a dataset folder (it holds hrm_dataset.json), not a model folder")
    if (folder / "all_config.yaml").is_file() or (folder / "checkpoint").is_file():
        raise ModelLoadError(f"{folder} holds an original-code checkpoint; convert it first with "
                             f"python -m modeling_hrm.convert_original_checkpoint")
    steps = sorted((p for p in folder.glob("checkpoint-*") if (p / "model" / CONFIG_NAME).is_file()),
                   key=lambda p: int(p.name.split("-")[-1]) if p.name.split("-")[-1].isdigit() else -1)
    if steps:
        raise ModelLoadError(f"{folder} is a training output folder; pass one of its checkpoints, "
                             f"e.g. {steps[-1]}")
    _weight_files(folder)  # pickle-only folders get the pickle sentence
    raise ModelLoadError(f"{folder} has no {CONFIG_NAME}; is it a save_pretrained model folder?")


# config.json keys that are not fields of the config class but are written by `save_pretrained` (transformers'
# own bookkeeping, the remote-code maps, the tasks an adapted model learned).
_SAVED_CONFIG_KEYS = {"architectures", "auto_map", "custom_pipelines", "transformers_version", "dtype", "torch_dtype",
                      "_name_or_path", "adapted_tasks"}
# Keys a model type knows but has no use for: the original TRM's config carries H_layers (TRM is one network).
_IGNORED_CONFIG_KEYS = {"trm": {"H_layers"}}


def read_config_dict(file: Path) -> dict:
    """`config.json` as a dict, checked: a UTF-8 JSON object, no key given twice, a `model_type` this library
    loads, and every key known (a field of that config class or one `save_pretrained` writes), so that a misspelt
    key is refused instead of silently leaving the field at its default."""
    import difflib

    from dataset_scripts.validation import DuplicateKeyError, loads_json

    try:
        data = loads_json(file.read_text(), str(file))
    except UnicodeDecodeError:
        raise ModelLoadError(f"{file} is not a text file") from None
    except json.JSONDecodeError as err:
        raise ModelLoadError(f"{file} is not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})") from None
    except DuplicateKeyError as err:
        raise ModelLoadError(str(err)) from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"{file} must hold a JSON object, got {type(data).__name__}")
    classes = _model_classes()
    model_type = data.get("model_type")
    if model_type not in classes:
        known = ", ".join(sorted(classes))
        what = "has no model_type" if model_type is None else f"has model_type {model_type!r}"
        raise ModelLoadError(f"{file} {what}; this library loads puzzle models of type {known}")
    config_cls = classes[model_type][0]
    fields = set(config_cls().to_dict())
    unknown = sorted(set(data) - fields - _SAVED_CONFIG_KEYS - _IGNORED_CONFIG_KEYS.get(model_type, set()))
    if unknown:
        hint = difflib.get_close_matches(unknown[0], sorted(fields), n=1)
        raise ModelLoadError(f"{file}: unknown key {unknown[0]!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                             + f"; {config_cls.__name__} has no such field, so it would be silently ignored")
    return data


def load_config(folder: Path):
    """Read and validate `config.json` (`read_config_dict`); returns a config of the class its `model_type` names."""
    file = folder / CONFIG_NAME
    config_cls = _model_classes()[read_config_dict(file)["model_type"]][0]
    try:
        return config_cls.from_pretrained(str(folder))
    except ModelLoadError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelLoadError(f"{file}: {text}") from None


def check_folder_agrees(folder, config) -> None:
    """A model folder's config.json and weights are one unit: the config file is checked (`read_config_dict`) and
    the weights beside it, where there are any, must hold every tensor the config implies, of the shape it implies
    (`check_weights_match_config`: headers only, no tensor data read). `ModelLoadError` (one line) otherwise.
    Called when a config is read from a local folder (configuration_hrm), so `AutoModel.from_pretrained` and
    `pipeline(..., model=folder)` refuse a mismatched folder before transformers tries to load it."""
    folder = Path(folder)
    if not (folder / CONFIG_NAME).is_file():
        return
    read_config_dict(folder / CONFIG_NAME)
    if (folder / WEIGHTS_NAME).is_file() or (folder / WEIGHTS_INDEX_NAME).is_file():
        check_weights_match_config(folder, _model_classes()[config.model_type][1], config)


def _expected_shapes(model_cls, config) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        skeleton = model_cls(config)
    return {name: tuple(t.shape) for name, t in skeleton.state_dict().items()}


def check_weights_match_config(folder: Path, model_cls, config) -> None:
    """Compare the tensor shapes in the safetensors headers with those the config implies."""
    found: dict[str, tuple[str, tuple[int, ...]]] = {}
    for file in _weight_files(folder):
        found.update(read_safetensors_header(file))
    try:
        expected = _expected_shapes(model_cls, config)
    except (ValueError, RuntimeError, TypeError) as err:
        raise ModelLoadError(f"{folder / CONFIG_NAME} describes a model that cannot be built: "
                             f"{str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__}") from None
    for name, shape in expected.items():
        if name in found and found[name][1] != shape:
            raise ModelLoadError(
                f"{folder}: the weights do not match config.json: tensor {name!r} has shape {list(found[name][1])} "
                f"in the weights but {list(shape)} by the config (were the weights saved with another config?)")
    for names, what in ((sorted(set(expected) - set(found)), "lack"), (sorted(set(found) - set(expected)),
                                                                        "have unexpected")):
        if names:
            raise ModelLoadError(f"the weights in {folder} do not match config.json: they {what} {len(names)} "
                                 f"tensor(s), first {names[0]!r}")


# ---------------------------------------------------------------------------------------------------------
# Hub
# ---------------------------------------------------------------------------------------------------------
def looks_like_repo_id(text: str) -> bool:
    """A valid `owner/name` Hub repo id (huggingface_hub's rule, dataset_scripts.validation.is_repo_id)."""
    from dataset_scripts.validation import is_repo_id

    return is_repo_id(text)


def download_model(repo_id: str, revision: str | None = None) -> Path:
    """Download the config, safetensors weights and card of a Hub model repo (never pickles)."""
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import (GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError,
                                        RepositoryNotFoundError, RevisionNotFoundError)

    prefix = f"{repo_id!r} is not a local folder, and as a Hub repo id it"
    try:
        path = snapshot_download(repo_id, revision=revision,
                                 allow_patterns=["*.json", "*.safetensors", "*.md", "all_config.yaml"])
    except GatedRepoError:
        raise ModelLoadError(f"{prefix} is gated: accept its terms on huggingface.co and log in (hf auth login)") from None
    except RepositoryNotFoundError:
        raise ModelLoadError(f"{prefix} was not found on the Hugging Face Hub (private? log in with hf auth login)") from None
    except RevisionNotFoundError:
        raise ModelLoadError(f"{prefix} has no revision {revision!r}") from None
    except LocalEntryNotFoundError:
        why = ("HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE
               else "the network or huggingface.co cannot be reached")
        raise ModelLoadError(f"{prefix} cannot be downloaded: {why}, and it is not in the local cache") from None
    except (HfHubHTTPError, OSError) as err:
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelLoadError(f"{prefix} could not be downloaded from the Hugging Face Hub: {text}") from None
    return Path(path)


# ---------------------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------------------
def locate_model(path_or_repo_id) -> Path:
    """A local folder holding config.json (a checkpoint's `model/` subfolder where given a checkpoint),
    downloading a Hub repo id where the text is not a local path."""
    text = str(path_or_repo_id).strip()
    if not text:
        raise ModelLoadError("no model given: pass a model folder or a Hub repo id")
    path = Path(text).expanduser()
    if path.is_dir():
        return resolve_model_folder(path)
    if path.exists():
        if path.suffix in PICKLE_SUFFIXES or path.suffix == ".safetensors":
            raise ModelLoadError(f"{text} is a weights file; pass the folder that holds it with its {CONFIG_NAME}")
        raise ModelLoadError(f"{text} is a file, not a model folder (expected a folder with {CONFIG_NAME} "
                             f"and {WEIGHTS_NAME})")
    if text.startswith((".", "/", "~")) or "\\" in text or text.count("/") != 1:
        raise ModelLoadError(f"model folder not found: {text}")
    if not looks_like_repo_id(text):  # checked before any call to the Hub
        from dataset_scripts.validation import REPO_ID_RULE

        raise ModelLoadError(f"model folder not found: {text}, and it is not a valid Hub repo id either "
                             f"({REPO_ID_RULE})")
    return resolve_model_folder(download_model(text))


def load_pretrained_model(path_or_repo_id, device=None, dtype=torch.float32):
    """Load an HRM or TRM puzzle model saved with `save_pretrained` (a folder, a training checkpoint folder
    or a Hub repo id), move it to `device` and put it in eval mode. Raises `ModelLoadError` (one line)."""
    dev = resolve_device(device)
    dtype = resolve_dtype(dtype)
    folder = locate_model(path_or_repo_id)
    config = load_config(folder)
    model_cls = _model_classes()[config.model_type][1]
    check_weights_match_config(folder, model_cls, config)

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # missing / unexpected keys are errors here, raised below
    try:
        model, info = model_cls.from_pretrained(str(folder), config=config, dtype=dtype, use_safetensors=True,
                                                 output_loading_info=True)
    except (OSError, ValueError, RuntimeError, TypeError, KeyError) as err:
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelLoadError(f"cannot load the weights in {folder}: {text}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    for key, what in (("missing_keys", "lack"), ("unexpected_keys", "have unexpected"),
                      ("mismatched_keys", "have mis-shaped")):
        names = sorted(info.get(key) or [])
        if names:
            first = names[0] if isinstance(names[0], str) else names[0][0]
            raise ModelLoadError(f"the weights in {folder} do not match config.json: they {what} "
                                 f"{len(names)} tensor(s), first {first!r}")
    try:
        model.to(dev)
    except (RuntimeError, AssertionError) as err:
        raise ModelLoadError(f"cannot move the model to {dev}: {str(err).strip().splitlines()[0]}") from None
    return model.eval()


__all__ = ["ModelLoadError", "load_pretrained_model", "locate_model", "resolve_model_folder", "load_config",
           "check_weights_match_config", "read_safetensors_header", "looks_like_repo_id", "download_model",
           "resolve_device", "resolve_dtype"]
