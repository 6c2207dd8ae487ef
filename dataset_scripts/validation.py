"""Validation rules shared by every boundary of the project: one rule per kind of input, applied wherever that kind
of input is accepted, so that a new bad value is caught without being listed. Each rule raises one line that names
the value and what is accepted.

- Typed options (`check_bool`, `check_int`, `check_number`, `check_sequence`): a boolean is `True` or `False` (the
  string "false" is not read as true), an integer is an integer (never a bool, a float or a string), a number is
  finite and in range, a sequence is a list or tuple (never a string, whose characters would pass for items).
  Wrong types raise `OptionTypeError`, which is a `TypeError` and a `ValueError` at once, so every handler of bad
  input (`except ValueError`) catches it.
- Configuration files (`load_yaml`, `loads_json`): a key given twice in one mapping is refused instead of the last
  one silently winning.
- Hub repo ids (`is_repo_id`, `check_repo_id`): huggingface_hub's own rule (`validate_repo_id`) plus an owner,
  checked before any call to the Hub.
- Resources (`available_memory`, `check_memory`): a request whose memory estimate exceeds what is free is refused
  before anything is allocated (or, where the caller can, split into batches that fit).

Layering: dataset_scripts <- modeling_hrm <- training. This module is copied next to every saved model with the
puzzle-solving pipeline (remote code), so it needs only the standard library and numpy at import time.
"""

from __future__ import annotations

import json
import math
import numbers
import os

import numpy as np


class OptionTypeError(TypeError, ValueError):
    """A value of the wrong type (a string for a boolean, a float for a count...). A `TypeError`, and a `ValueError`
    so that every one-line handler of bad input catches it."""


def describe(value) -> str:
    """How a message names a value: "the string 'false'", "float 2.5", "None", "a dict"."""
    if value is None:
        return "None"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, (bytes, bytearray)):
        return f"bytes {bytes(value[:24])!r}" + ("..." if len(value) > 24 else "")
    if isinstance(value, (bool, np.bool_)):
        return f"the boolean {bool(value)}"
    if isinstance(value, numbers.Number):
        return f"{type(value).__name__} {value!r}"
    return f"a {type(value).__name__}"


# ---------------------------------------------------------------------------------------------------------
# Typed options
# ---------------------------------------------------------------------------------------------------------
def check_bool(value, name: str) -> bool:
    """`value` as a bool; `OptionTypeError` for anything but True / False (numpy's bool included)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise OptionTypeError(f"{name} must be True or False, got {describe(value)}")


def _check_range(value, name: str, minimum, maximum, above) -> None:
    if above is not None and not value > above:
        raise ValueError(f"{name} must be > {above}, got {value}")
    if minimum is not None and maximum is not None and not minimum <= value <= maximum:
        raise ValueError(f"{name} must be in [{minimum}, {maximum}], got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")


def check_int(value, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """`value` as an int, in [minimum, maximum] where given; never a bool, a float (2.0 included) or a string."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise OptionTypeError(f"{name} must be an integer, got {describe(value)}")
    value = int(value)
    _check_range(value, name, minimum, maximum, None)
    return value


def check_number(value, name: str, minimum: float | None = None, maximum: float | None = None,
                 above: float | None = None) -> float:
    """`value` as a finite float, >= minimum, <= maximum, > above where given; never a bool or a string."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise OptionTypeError(f"{name} must be a number, got {describe(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    _check_range(value, name, minimum, maximum, above)
    return value


def check_sequence(value, name: str, item=None) -> list:
    """`value` as a list: a list, tuple or 1-D array, never a string, bytes, dict or set. `item(value, name)`, where
    given, checks (and converts) each element."""
    if isinstance(value, np.ndarray) and value.ndim == 1:
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        raise OptionTypeError(f"{name} must be a list or tuple, got {describe(value)}")
    return [item(v, f"{name}[{i}]") if item else v for i, v in enumerate(value)]


# ---------------------------------------------------------------------------------------------------------
# Configuration files: no key given twice
# ---------------------------------------------------------------------------------------------------------
def _unique_key_loader():
    """A `yaml.SafeLoader` whose mappings refuse a key given twice (PyYAML keeps the last one silently). Keys merged
    in with `<<: *anchor` may be overridden: that is what a merge is for."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            if isinstance(node, yaml.MappingNode):
                seen: dict = {}
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        continue
                    key = self.construct_object(key_node, deep=True)
                    try:
                        first = seen.get(key)
                    except TypeError:  # an unhashable key: SafeLoader reports it
                        continue
                    if first is not None:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"key {key!r} is given twice in one mapping (first at line {first}); "
                            f"remove one (YAML would silently keep the last)", key_node.start_mark)
                    seen[key] = key_node.start_mark.line + 1
            return super().construct_mapping(node, deep)

    return UniqueKeyLoader


def load_yaml(text: str):
    """`yaml.safe_load(text)`, refusing a mapping that repeats a key (a `yaml.YAMLError` whose `problem` names the
    key and whose `problem_mark` points at the second one), so that callers report it as any other YAML error."""
    import yaml

    return yaml.load(text, Loader=_unique_key_loader())


def yaml_error_line(error, source: str) -> str:
    """One line for a `yaml.YAMLError`: "SOURCE: not valid YAML at line L, column C: problem"."""
    mark = getattr(error, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(error, "problem", None) or (str(error).strip().splitlines() or [type(error).__name__])[0]
    return f"{source}: not valid YAML{where}: {problem}"


class DuplicateKeyError(ValueError):
    """A JSON object that gives one key twice."""


def loads_json(text: str | bytes, source: str = "JSON"):
    """`json.loads(text)`, refusing an object that repeats a key (`DuplicateKeyError`, one line naming the key);
    syntax errors stay `json.JSONDecodeError`."""
    def unique(pairs):
        out = {}
        for key, value in pairs:
            if key in out:
                raise DuplicateKeyError(f"{source}: key {key!r} is given twice in one object (JSON would silently "
                                        f"keep the last); remove one")
            out[key] = value
        return out

    return json.loads(text, object_pairs_hook=unique)


# ---------------------------------------------------------------------------------------------------------
# Hub repo ids
# ---------------------------------------------------------------------------------------------------------
REPO_ID_RULE = "owner/name, each of letters, digits, '-', '_' and '.', at most 96 characters, no '--' or '..'"


def is_repo_id(text, owner: bool = True) -> bool:
    """True for an `owner/name` Hub repo id that huggingface_hub accepts (checked locally, no call); `owner=False`
    also accepts a bare `name` (a repo to create in the caller's namespace)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    slashes = text.count("/") if isinstance(text, str) else -1
    if slashes not in ((1,) if owner else (0, 1)):
        return False
    try:
        validate_repo_id(text)
    except HFValidationError:
        return False
    return True


def check_repo_id(text, what: str) -> str:
    """`text` if it is a valid `owner/name` Hub repo id, else a one-line `ValueError` naming `what` and the rule."""
    if not isinstance(text, str):
        raise OptionTypeError(f"{what} must be a Hub repo id (text), got {describe(text)}")
    if not is_repo_id(text):
        raise ValueError(f"{what} {text!r} is not a valid Hub repo id ({REPO_ID_RULE})")
    return text


# ---------------------------------------------------------------------------------------------------------
# Resources
# ---------------------------------------------------------------------------------------------------------
def available_memory(device=None) -> int:
    """Bytes free for new tensors on `device` (a torch device or its name): CUDA's free memory, else the host's
    available memory."""
    kind = getattr(device, "type", None) or str(device or "cpu").split(":")[0]
    if kind == "cuda":
        import torch

        return int(torch.cuda.mem_get_info(device)[0])
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def gib(num_bytes: float) -> str:
    return f"{num_bytes / 2**30:.1f} GiB" if num_bytes >= 2**27 else f"{num_bytes / 2**20:.0f} MiB"


def check_memory(needed: int, what: str, remedy: str, device=None, available: int | None = None) -> None:
    """A one-line `ValueError` when `needed` bytes (an estimate) exceed the memory free on `device`: "WHAT needs
    about X but about Y is free; REMEDY"."""
    free = available_memory(device) if available is None else int(available)
    if needed > free:
        raise ValueError(f"{what} needs about {gib(needed)} but about {gib(free)} is free; {remedy}")


__all__ = ["OptionTypeError", "DuplicateKeyError", "describe", "check_bool", "check_int", "check_number",
           "check_sequence", "load_yaml", "yaml_error_line", "loads_json", "is_repo_id", "check_repo_id",
           "REPO_ID_RULE", "available_memory", "check_memory", "gib"]
