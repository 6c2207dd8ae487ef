"""Bad-input corpus: every surface (model loader, hrm-solve, hrm-evaluate, train.py, the builders, the
converter, the Python API) answers bad input with one line that names the problem and exit code 2 (or the
documented exception type), never a traceback and never silent acceptance.

Each case is (id, call, expected exit code or exception type, regex the message must match). CLIs run
in-process through `main(argv)` with stdout/stderr captured; fixtures (a tiny saved model, a tiny dataset)
are built once per module.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
import shutil
from pathlib import Path

import pytest
import torch

import modeling_hrm
from modeling_hrm import HRMConfig, HRMForPuzzleSolving
from modeling_hrm.loading import ModelLoadError, load_pretrained_model

TINY = dict(vocab_size=6, seq_len=16, num_puzzle_identifiers=1, hidden_size=16, num_heads=2, puzzle_emb_ndim=16,
            H_layers=1, L_layers=1, H_cycles=1, L_cycles=1, halt_max_steps=2)


# ---------------------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bad_input")


@pytest.fixture(scope="module")
def model_dir(work) -> Path:
    torch.manual_seed(0)
    path = work / "model"
    HRMForPuzzleSolving(HRMConfig(**TINY)).save_pretrained(path)
    return path


def _copy(src: Path, dst: Path) -> Path:
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    return dst


# ---------------------------------------------------------------------------------------------------------
# Running a case
# ---------------------------------------------------------------------------------------------------------
def run_main(main, argv) -> tuple[int, str]:
    """Call a CLI's `main(argv)` in-process; returns (exit code, stdout + stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    return int(code or 0), out.getvalue() + err.getvalue()


def assert_cli_error(main, argv, pattern: str, code: int = 2) -> str:
    got, text = run_main(main, argv)
    assert "Traceback" not in text, text
    assert got == code, f"exit {got} (expected {code}); output:\n{text}"
    assert re.search(pattern, text, re.I), f"message does not match {pattern!r}:\n{text}"
    return text


def assert_raises(exc_type, pattern: str, fn, *args, **kwargs) -> str:
    with pytest.raises(exc_type) as info:
        fn(*args, **kwargs)
    text = str(info.value)
    assert "\n" not in text.strip(), f"message spans several lines:\n{text}"
    assert re.search(pattern, text, re.I), f"message does not match {pattern!r}: {text}"
    return text


# ---------------------------------------------------------------------------------------------------------
# Model loader (modeling_hrm.loading): used by hrm-solve, hrm-evaluate and train.py --init_from
# ---------------------------------------------------------------------------------------------------------
def _break_weights_garbage(d: Path):
    (d / "model.safetensors").write_bytes(b"this is not a tensor file" * 20)


def _break_weights_empty(d: Path):
    (d / "model.safetensors").write_bytes(b"")


def _break_weights_truncated(d: Path):
    data = (d / "model.safetensors").read_bytes()
    (d / "model.safetensors").write_bytes(data[: len(data) * 2 // 3])


def _break_weights_header_json(d: Path):
    data = (d / "model.safetensors").read_bytes()
    n = int.from_bytes(data[:8], "little")
    (d / "model.safetensors").write_bytes(data[:8] + b"{" * n + data[8 + n:])


def _break_weights_missing(d: Path):
    (d / "model.safetensors").unlink()


def _break_weights_pickle_only(d: Path):
    (d / "model.safetensors").unlink()
    torch.save({"x": torch.zeros(1)}, d / "pytorch_model.bin")


def _break_config_missing(d: Path):
    (d / "config.json").unlink()


def _edit_config(**changes):
    def edit(d: Path):
        data = json.loads((d / "config.json").read_text())
        data.update(changes)
        (d / "config.json").write_text(json.dumps(data))
    return edit


def _break_config_json(d: Path):
    (d / "config.json").write_text('{"model_type": "hrm", "hidden_size": 16,')


def _break_config_list(d: Path):
    (d / "config.json").write_text("[1, 2, 3]")


def _break_config_binary(d: Path):
    (d / "config.json").write_bytes(b"\xff\xfe\x00garbage")


def _break_missing_tensor(d: Path):
    from safetensors.torch import load_file, save_file

    tensors = load_file(d / "model.safetensors")
    tensors.pop("q_head.bias")
    save_file(tensors, d / "model.safetensors", metadata={"format": "pt"})


def _make_dataset_folder(d: Path):
    for p in list(d.iterdir()):
        p.unlink()
    (d / "hrm_dataset.json").write_text("{}")


def _make_original_checkpoint(d: Path):
    for p in list(d.iterdir()):
        p.unlink()
    (d / "all_config.yaml").write_text("arch: {}\n")
    (d / "checkpoint").write_bytes(b"x")


BROKEN_FOLDERS = [
    ("weights-garbage", _break_weights_garbage, r"not a valid safetensors file"),
    ("weights-empty", _break_weights_empty, r"not a valid safetensors file.*(empty|truncated)"),
    ("weights-truncated", _break_weights_truncated, r"truncated"),
    ("weights-header-not-json", _break_weights_header_json, r"not a valid safetensors file.*header"),
    ("weights-missing", _break_weights_missing, r"has no model\.safetensors"),
    ("weights-pickle-only", _break_weights_pickle_only, r"pickle.*pytorch_model\.bin.*run arbitrary code"),
    ("weights-lack-a-tensor", _break_missing_tensor, r"lack 1 tensor.*q_head\.bias"),
    ("config-missing", _break_config_missing, r"no config\.json"),
    ("config-not-json", _break_config_json, r"config\.json is not valid JSON"),
    ("config-not-object", _break_config_list, r"config\.json must hold a JSON object"),
    ("config-binary", _break_config_binary, r"config\.json is not a text file"),
    ("config-unknown-model-type", _edit_config(model_type="bert"), r"model_type 'bert'.*hrm"),
    ("config-no-model-type", _edit_config(model_type=None), r"has no model_type"),
    ("config-heads-do-not-divide", _edit_config(num_heads=3), r"hidden_size \(16\).*num_heads \(3\)"),
    ("config-zero-cycles", _edit_config(H_cycles=0), r"H_cycles must be an integer >= 1"),
    ("config-string-size", _edit_config(hidden_size="big"), r"hidden_size must be an integer"),
    ("config-bad-pos-encodings", _edit_config(pos_encodings="alibi"), r"pos_encodings"),
    ("config-hidden-size-contradicts-weights", _edit_config(hidden_size=32, num_heads=2),
     r"tensor '\w+' has shape \[16\].*\[32\]"),
    ("config-vocab-contradicts-weights", _edit_config(vocab_size=12), r"embed_tokens\.weight.*\[6, 16\].*\[12, 16\]"),
    ("config-layers-contradict-weights", _edit_config(H_layers=2), r"lack .*H_level\.layers\.1"),
    ("dataset-folder-as-model", _make_dataset_folder, r"is a dataset folder"),
    ("original-checkpoint-as-model", _make_original_checkpoint, r"original-code checkpoint.*convert"),
]


@pytest.mark.parametrize("name,breaker,pattern", BROKEN_FOLDERS, ids=[c[0] for c in BROKEN_FOLDERS])
def test_loader_broken_folder(work, model_dir, name, breaker, pattern):
    folder = _copy(model_dir, work / f"broken-{name}")
    breaker(folder)
    assert_raises(ModelLoadError, pattern, load_pretrained_model, folder)


def test_loader_accepts_good_folder_and_checkpoint_step(work, model_dir):
    model = load_pretrained_model(model_dir)
    assert isinstance(model, HRMForPuzzleSolving) and not model.training
    step = work / "run" / "checkpoint-7"
    _copy(model_dir, step / "model")
    from_step = load_pretrained_model(step)
    assert torch.equal(from_step.q_head.weight, model.q_head.weight)
    # The run folder holding checkpoints is not a model: say which checkpoint to pass.
    assert_raises(ModelLoadError, r"training output folder.*checkpoint-7", load_pretrained_model, work / "run")


LOADER_ARGS = [
    ("path-missing-absolute", lambda w, m: ((w / "no-such-model",), {}), r"model folder not found"),
    ("path-missing-dotted", lambda w, m: (("./no/such/model",), {}), r"model folder not found"),
    ("path-empty", lambda w, m: (("",), {}), r"no model given"),
    ("path-is-weights-file", lambda w, m: ((m / "model.safetensors",), {}), r"is a weights file"),
    ("path-is-config-file", lambda w, m: ((m / "config.json",), {}), r"is a file, not a model folder"),
    ("hub-id-offline", lambda w, m: (("nobody-here/hrm-sudoku-model",), {}),
     r"'nobody-here/hrm-sudoku-model'.*Hub.*(HF_HUB_OFFLINE|network)"),
    ("device-cuda-without-cuda", lambda w, m: ((m,), {"device": "cuda"}), r"CUDA is not available"),
    ("device-bogus", lambda w, m: ((m,), {"device": "gpu0"}), r"unknown device 'gpu0'"),
    ("device-cuda-index-bogus", lambda w, m: ((m,), {"device": "cuda:x"}), r"unknown device 'cuda:x'"),
    ("dtype-integer", lambda w, m: ((m,), {"dtype": torch.int8}), r"floating-point torch dtype"),
    ("dtype-bogus-name", lambda w, m: ((m,), {"dtype": "float7"}), r"floating-point torch dtype.*float7"),
]


@pytest.mark.parametrize("name,make,pattern", LOADER_ARGS, ids=[c[0] for c in LOADER_ARGS])
def test_loader_bad_arguments(work, model_dir, monkeypatch, name, make, pattern):
    if name == "device-cuda-without-cuda":
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    if name == "hub-id-offline":
        from huggingface_hub import constants

        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    args, kwargs = make(work, model_dir)
    assert_raises(ModelLoadError, pattern, load_pretrained_model, *args, **kwargs)


def test_loader_never_unpickles(work, model_dir):
    """A pickle next to the config is refused before anything reads it: a payload that would run code
    on unpickling leaves no trace."""
    folder = _copy(model_dir, work / "pickle-payload")
    (folder / "model.safetensors").unlink()
    marker = work / "pickle-ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    torch.save(Payload(), folder / "pytorch_model.bin")
    assert_raises(ModelLoadError, r"refused because unpickling can run arbitrary code", load_pretrained_model, folder)
    assert not marker.exists()
