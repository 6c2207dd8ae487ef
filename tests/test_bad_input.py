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
    # Beside safetensors weights the pickle is ignored, never opened.
    shutil.copy(model_dir / "model.safetensors", folder / "model.safetensors")
    assert isinstance(load_pretrained_model(folder), HRMForPuzzleSolving)
    assert not marker.exists()


def test_loader_reads_trm_folders_and_names_trm_config_problems(work):
    from modeling_hrm import TRMConfig, TRMForPuzzleSolving

    folder = work / "trm"
    TRMForPuzzleSolving(TRMConfig(**dict(TINY, puzzle_emb_len=1))).save_pretrained(folder)
    model = load_pretrained_model(folder)
    assert isinstance(model, TRMForPuzzleSolving) and model.config.model_type == "trm"
    for change, pattern in (({"mlp_t": True, "pos_encodings": "rope"}, r"mlp_t replaces attention"),
                            ({"puzzle_emb_len": 1, "puzzle_emb_ndim": 64}, r"puzzle_emb_len=1 .*cannot hold"),
                            ({"mlp_t": "yes"}, r"mlp_t must be true or false")):
        broken = _copy(folder, work / f"trm-{sorted(change)[-1]}")
        _edit_config(**change)(broken)
        assert_raises(ModelLoadError, pattern, load_pretrained_model, broken)


# ---------------------------------------------------------------------------------------------------------
# Dataset fixtures, shared by hrm-evaluate and the builders' cases
# ---------------------------------------------------------------------------------------------------------
def build_sudoku(argv):
    from dataset_scripts.build_sudoku_dataset import main
    from dataset_scripts.common import run_cli

    return run_cli(main, argv)


def build_maze(argv):
    from dataset_scripts.build_maze_dataset import main
    from dataset_scripts.common import run_cli

    return run_cli(main, argv)


def build_arc(argv):
    from dataset_scripts.build_arc_dataset import main
    from dataset_scripts.common import run_cli

    return run_cli(main, argv)


@pytest.fixture(scope="module")
def dataset_dir(work) -> Path:
    path = work / "sudoku4"
    code, text = run_main(build_sudoku, ["--output-dir", path, "--size", "4", "--num-train", "8", "--num-test", "4",
                                         "--quiet"])
    assert code == 0, text
    return path


def _parquet(folder: Path, split: str = "test") -> Path:
    return next((folder / "data").glob(f"{split}-*.parquet"))


def _dataset_garbage_shard(d: Path):
    _parquet(d).write_bytes(b"PAR1 this is not parquet at all")


def _dataset_corrupt_pages(d: Path):
    data = bytearray(_parquet(d).read_bytes())
    data[4:200] = b"\xab" * 196  # the footer still reads, the pages do not
    _parquet(d).write_bytes(bytes(data))


def _dataset_truncated_shard(d: Path):
    data = _parquet(d).read_bytes()
    _parquet(d).write_bytes(data[: len(data) // 2])


def _dataset_no_labels_column(d: Path):
    import pyarrow.parquet as pq

    table = pq.read_table(_parquet(d))
    pq.write_table(table.drop(["labels"]), _parquet(d))


def _dataset_metadata_not_json(d: Path):
    (d / "hrm_dataset.json").write_text("{'task': 'sudoku'")


def _dataset_metadata_seq_len_lies(d: Path):
    meta = json.loads((d / "hrm_dataset.json").read_text())
    meta["seq_len"] = 36
    (d / "hrm_dataset.json").write_text(json.dumps(meta))


def _dataset_no_shards(d: Path):
    shutil.rmtree(d / "data")


def _dataset_no_metadata(d: Path):
    (d / "hrm_dataset.json").unlink()


BROKEN_DATASETS = [
    ("shard-garbage", _dataset_garbage_shard, r"test-00000-of-00001\.parquet is not a readable parquet file"),
    ("shard-corrupt-pages", _dataset_corrupt_pages, r"(cannot read split 'test'|not a readable parquet)"),
    ("shard-truncated", _dataset_truncated_shard, r"not a readable parquet file"),
    ("shard-lacks-labels", _dataset_no_labels_column, r"has no 'labels' column"),
    ("metadata-not-json", _dataset_metadata_not_json, r"hrm_dataset\.json is not valid JSON"),
    ("metadata-seq-len-contradicts-shards", _dataset_metadata_seq_len_lies, r"16 tokens but .*seq_len=36"),
    ("no-parquet-files", _dataset_no_shards, r"has no split 'test' \(no parquet files"),
    ("no-metadata", _dataset_no_metadata, r"has no hrm_dataset\.json"),
]


# ---------------------------------------------------------------------------------------------------------
# hrm-evaluate
# ---------------------------------------------------------------------------------------------------------
def evaluate(argv):
    from training.hrm_evaluate import main

    return main(argv)


@pytest.mark.parametrize("name,breaker,pattern", BROKEN_DATASETS, ids=[c[0] for c in BROKEN_DATASETS])
def test_evaluate_broken_dataset(work, model_dir, dataset_dir, name, breaker, pattern):
    folder = _copy(dataset_dir, work / f"broken-ds-{name}")
    breaker(folder)
    assert_cli_error(evaluate, ["--model", model_dir, "--dataset", folder, "--output-dir", work / "eval-out"], pattern)


@pytest.fixture(scope="module")
def other_models(work) -> dict[str, Path]:
    """Models that do not fit the 4x4 Sudoku dataset: another grid size, another vocabulary."""
    paths = {}
    for name, change in (("seq36", dict(seq_len=36)), ("vocab7", dict(vocab_size=7))):
        paths[name] = work / f"model-{name}"
        HRMForPuzzleSolving(HRMConfig(**dict(TINY, **change))).save_pretrained(paths[name])
    return paths


EVALUATE_CASES = [
    ("limit-zero", ["--limit", "0"], r"--limit must be >= 1, got 0"),
    ("limit-negative", ["--limit", "-3"], r"--limit must be >= 1, got -3"),
    ("limit-not-a-number", ["--limit", "ten"], r"--limit: invalid int value: 'ten'"),
    ("batch-size-zero", ["--batch-size", "0"], r"--batch-size must be >= 1, got 0"),
    ("batch-size-negative", ["--batch-size", "-8"], r"--batch-size must be >= 1, got -8"),
    ("max-steps-zero", ["--max-steps", "0"], r"--max-steps must be >= 1"),
    ("num-examples-negative", ["--num-examples", "-1"], r"--num-examples must be >= 0"),
    ("scaling-steps-not-numbers", ["--scaling-steps", "1,two"], r"--scaling-steps must be comma-separated integers"),
    ("scaling-steps-zero", ["--scaling-steps", "0,4"], r"--scaling-steps must hold positive integers"),
    ("pass-k-zero", ["--pass-k", "0"], r"--pass-k must hold positive integers"),
    ("unknown-split", ["--split", "validation"], r"has no split 'validation'; it has test, train"),
    ("device-bogus", ["--device", "gpu"], r"unknown device 'gpu'"),
    ("unknown-option", ["--epochs", "3"], r"unrecognized arguments: --epochs"),
    ("num-candidates-zero", ["--num-candidates", "0,2"], r"--num-candidates must hold positive integers"),
    ("candidate-noise-nan", ["--candidate-noise", "nan"], r"--candidate-noise must be a finite number"),
]


@pytest.mark.parametrize("name,extra,pattern", EVALUATE_CASES, ids=[c[0] for c in EVALUATE_CASES])
def test_evaluate_bad_options(work, model_dir, dataset_dir, name, extra, pattern):
    assert_cli_error(evaluate, ["--model", model_dir, "--dataset", dataset_dir, "--output-dir", work / "eval-out",
                                *extra], pattern)


def test_evaluate_bad_paths_and_mismatches(work, model_dir, dataset_dir, other_models, monkeypatch):
    out = ["--output-dir", work / "eval-out"]
    (work / "a-file").write_text("x")
    cases = [
        (["--model", model_dir, "--dataset", work / "no-such-data"], r"dataset folder not found: .*no-such-data"),
        (["--model", model_dir, "--dataset", model_dir], r"is a model folder, not a dataset folder"),
        (["--model", model_dir, "--dataset", work / "a-file"], r"a-file is a file, not a dataset folder"),
        (["--model", work / "no-such-model", "--dataset", dataset_dir], r"model folder not found"),
        (["--model", dataset_dir, "--dataset", dataset_dir], r"is a dataset folder.*not a model folder"),
        (["--model", other_models["seq36"], "--dataset", dataset_dir], r"dataset has seq_len=16 but the model has seq_len=36"),
        (["--model", other_models["vocab7"], "--dataset", dataset_dir], r"dataset has vocab_size=6 but the model has vocab_size=7"),
        (["--model", model_dir, "--dataset", dataset_dir, "--output-dir", work / "a-file"], r"--output-dir .* is a file"),
        (["--model", model_dir], r"the following arguments are required: --dataset"),
    ]
    for argv, pattern in cases:
        assert_cli_error(evaluate, argv + (out if "--output-dir" not in argv else []), pattern)
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert_cli_error(evaluate, ["--model", model_dir, "--dataset", "nobody-here/sudoku-data", *out],
                     r"'nobody-here/sudoku-data' is not a local folder.*HF_HUB_OFFLINE")
    assert_cli_error(evaluate, ["--model", "nobody-here/hrm-model", "--dataset", dataset_dir, *out],
                     r"'nobody-here/hrm-model' is not a local folder.*HF_HUB_OFFLINE")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert_cli_error(evaluate, ["--model", model_dir, "--dataset", dataset_dir, "--device", "cuda", *out],
                     r"CUDA is not available")


def test_evaluate_runs_on_good_input(work, model_dir, dataset_dir):
    """The bad-input checks do not refuse what is fine: the same fixtures evaluate with exit 0."""
    code, text = run_main(evaluate, ["--model", model_dir, "--dataset", dataset_dir, "--limit", "2",
                                     "--batch-size", "1", "--num-examples", "0", "--output-dir", work / "eval-ok"])
    assert code == 0, text
    assert json.loads((work / "eval-ok" / "results.json").read_text())["num_rows"] == 2


# ---------------------------------------------------------------------------------------------------------
# Dataset builders
# ---------------------------------------------------------------------------------------------------------
SMALL_SUDOKU = ["--size", "4", "--num-train", "2", "--num-test", "1", "--quiet"]
SMALL_MAZE = ["--size", "5", "--num-train", "2", "--num-test", "1", "--quiet"]


def _builder_cases(work: Path, model_dir: Path) -> list:
    file = work / "a-file"
    file.write_text("x")
    out = work / "build-out"
    return [
        # sudoku
        ("sudoku-output-is-file", build_sudoku, ["--output-dir", file, *SMALL_SUDOKU], r"--output-dir .*a-file is a file"),
        ("sudoku-output-under-file", build_sudoku, ["--output-dir", file / "sub", *SMALL_SUDOKU],
         r"a-file is a file, not a folder"),
        ("sudoku-output-is-model-folder", build_sudoku, ["--output-dir", model_dir, *SMALL_SUDOKU],
         r"is a model folder \(it holds config\.json\)"),
        ("sudoku-num-train-zero", build_sudoku, ["--output-dir", out, *SMALL_SUDOKU, "--num-train", "0"],
         r"--num-train must be >= 1, got 0"),
        ("sudoku-num-train-negative", build_sudoku, ["--output-dir", out, *SMALL_SUDOKU, "--num-train", "-5"],
         r"--num-train must be >= 1, got -5"),
        ("sudoku-num-test-zero", build_sudoku, ["--output-dir", out, *SMALL_SUDOKU, "--num-test", "0"],
         r"--num-test must be >= 1"),
        ("sudoku-num-aug-negative", build_sudoku, ["--output-dir", out, *SMALL_SUDOKU, "--num-aug", "-1"],
         r"--num-aug must be >= 0"),
        ("sudoku-min-rating-negative", build_sudoku, ["--output-dir", out, *SMALL_SUDOKU, "--min-rating", "-1"],
         r"--min-rating must be >= 0"),
        ("sudoku-extra-clues-negative", build_sudoku, ["--output-dir", out, *SMALL_SUDOKU, "--extra-clues", "-2"],
         r"--extra-clues must be >= 0"),
        ("sudoku-size-unsupported", build_sudoku, ["--output-dir", out, *SMALL_SUDOKU, "--size", "5"],
         r"--size: invalid choice: 5"),
        ("sudoku-rating-impossible", build_sudoku, ["--output-dir", out, *SMALL_SUDOKU, "--min-rating", "100000"],
         r"rating >= 100000"),
        ("sudoku-csv-without-dir", build_sudoku, ["--output-dir", out, "--source", "csv", "--quiet"],
         r"--source csv needs --csv-dir"),
        ("sudoku-csv-dir-missing", build_sudoku, ["--output-dir", out, "--source", "csv", "--csv-dir",
                                                  work / "no-csv"], r"--csv-dir .*no-csv.*(no such folder|not found)"),
        ("sudoku-push-malformed-id", build_sudoku, ["--output-dir", out, *SMALL_SUDOKU, "--push-to-hub", "me/bad id!"],
         r"--push-to-hub 'me/bad id!' is not a valid Hub repo id"),
        ("sudoku-push-no-owner", build_sudoku, ["--output-dir", out, *SMALL_SUDOKU, "--push-to-hub", "dataset"],
         r"needs an owner"),
        ("sudoku-push-double-dash", build_sudoku, ["--output-dir", out, *SMALL_SUDOKU, "--push-to-hub", "me/a--b"],
         r"not a valid Hub repo id"),
        ("sudoku-num-train-not-int", build_sudoku, ["--output-dir", out, *SMALL_SUDOKU, "--num-train", "1e3"],
         r"--num-train: invalid int value"),
        # maze
        ("maze-output-is-file", build_maze, ["--output-dir", file, *SMALL_MAZE], r"--output-dir .*a-file is a file"),
        ("maze-output-under-file", build_maze, ["--output-dir", file / "deeper" / "x", *SMALL_MAZE],
         r"a-file is a file, not a folder"),
        ("maze-size-too-small", build_maze, ["--output-dir", out, *SMALL_MAZE, "--size", "3"], r"--size must be at least 5"),
        ("maze-num-train-negative", build_maze, ["--output-dir", out, *SMALL_MAZE, "--num-train", "-1"],
         r"--num-train must be >= 1, got -1"),
        ("maze-num-test-zero", build_maze, ["--output-dir", out, *SMALL_MAZE, "--num-test", "0"], r"--num-test must be >= 1"),
        ("maze-loop-fraction", build_maze, ["--output-dir", out, *SMALL_MAZE, "--loop-fraction", "1.5"],
         r"--loop-fraction must be in \[0, 1\]"),
        ("maze-path-longer-than-grid", build_maze, ["--output-dir", out, *SMALL_MAZE, "--min-path-length", "100"],
         r"--min-path-length 100 is more than a 5x5 maze can have"),
        ("maze-min-path-negative", build_maze, ["--output-dir", out, *SMALL_MAZE, "--min-path-length", "-1"],
         r"--min-path-length must be >= 0"),
        ("maze-push-malformed-id", build_maze, ["--output-dir", out, *SMALL_MAZE, "--push-to-hub", "a/b/c"],
         r"not a valid Hub repo id"),
        ("maze-csv-without-dir", build_maze, ["--output-dir", out, "--source", "csv", "--quiet"],
         r"--source csv needs --csv-dir"),
        # ARC
        ("arc-output-is-file", build_arc, ["--output-dir", file, "--quiet"], r"--output-dir .*a-file is a file"),
        ("arc-num-aug-negative", build_arc, ["--output-dir", out, "--num-aug", "-2"], r"--num-aug must be >= 0"),
        ("arc-max-tasks-zero", build_arc, ["--output-dir", out, "--max-tasks", "0"], r"--max-tasks must be >= 1"),
        ("arc-dir-missing", build_arc, ["--output-dir", out, "--arc-dir", work / "no-arc"], r"no-arc.*(not a folder|no such)"),
        ("arc-push-malformed-id", build_arc, ["--output-dir", out, "--push-to-hub", "me/x..y"], r"not a valid Hub repo id"),
        ("arc-unknown-split-mode", build_arc, ["--output-dir", out, "--split-mode", "random"],
         r"--split-mode: invalid choice"),
    ]


def test_builders_bad_input(work, model_dir, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_dummy")  # the malformed-id cases must fail on the id, not on the token
    cases = _builder_cases(work, model_dir)
    assert len(cases) >= 30
    for name, build, argv, pattern in cases:
        before = sorted(p.name for p in model_dir.iterdir())
        try:
            assert_cli_error(build, argv, pattern)
        except AssertionError as err:
            raise AssertionError(f"case {name}: {err}") from None
        assert sorted(p.name for p in model_dir.iterdir()) == before, f"{name} wrote into the model folder"
    assert not (work / "build-out" / "hrm_dataset.json").exists()


@pytest.fixture(scope="module")
def source_files(work) -> dict[str, Path]:
    """Source folders a builder converts (CSV, ARC task JSON) that are not what they claim."""
    p = {"work": work}
    for name, text in (("csv-wrong-sizes", "source,question,answer,rating\nx,12,34,0\n"),
                       ("csv-binary", "\x00\x01garbage"), ("csv-no-columns", "a,b\n1,2\n")):
        p[name] = work / name
        p[name].mkdir(exist_ok=True)
        for split in ("train.csv", "test.csv"):
            (p[name] / split).write_text(text)
    p["csv-only-train"] = work / "csv-only-train"
    p["csv-only-train"].mkdir(exist_ok=True)
    (p["csv-only-train"] / "train.csv").write_text("source,question,answer,rating\nx,12..34..21..43..,1234341221434321,0\n")
    p["arc-bad-json"] = work / "arc-bad-json"
    for split, text in (("training", "{bad json"), ("evaluation", "[1, 2, 3]")):
        (p["arc-bad-json"] / split).mkdir(parents=True, exist_ok=True)
        (p["arc-bad-json"] / split / "task.json").write_text(text)
    p["arc-empty"] = work / "arc-empty"
    p["arc-empty"].mkdir(exist_ok=True)
    return p


SOURCE_CASES = [
    ("sudoku-csv-wrong-sizes", build_sudoku, lambda p: ["--source", "csv", "--csv-dir", p["csv-wrong-sizes"]],
     r"train\.csv: no row has a question of 16, 36 or 81 cells"),
    ("sudoku-csv-not-csv", build_sudoku, lambda p: ["--source", "csv", "--csv-dir", p["csv-binary"]],
     r"csv-binary/train\.csv: not a readable CSV file"),
    ("sudoku-csv-no-columns", build_sudoku, lambda p: ["--source", "csv", "--csv-dir", p["csv-no-columns"]],
     r"missing column\(s\) \['answer', 'question'\]"),
    ("sudoku-csv-no-test-file", build_sudoku, lambda p: ["--source", "csv", "--csv-dir", p["csv-only-train"]],
     r"test\.csv not found"),
    ("maze-csv-no-valid-rows", build_maze, lambda p: ["--source", "csv", "--csv-dir", p["csv-wrong-sizes"]],
     r"no valid maze rows"),
    ("maze-csv-not-csv", build_maze, lambda p: ["--source", "csv", "--csv-dir", p["csv-binary"]],
     r"header must contain question and answer"),
    ("arc-only-bad-tasks", build_arc, lambda p: ["--arc-dir", p["arc-bad-json"], "--num-aug", "1"], r"empty"),
    ("arc-empty-folder", build_arc, lambda p: ["--arc-dir", p["arc-empty"], "--num-aug", "1"], r"(no .*tasks|empty)"),
    ("arc-extra-tasks-missing", build_arc, lambda p: ["--arc-dir", p["arc-empty"], "--extra-tasks",
                                                      p["work"] / "no-tasks.json"], r"no-tasks\.json: no such file"),
]


@pytest.mark.parametrize("name,build,make_argv,pattern", SOURCE_CASES,
                         ids=[getattr(c, "values", c)[0] for c in SOURCE_CASES])
def test_builders_bad_sources(source_files, name, build, make_argv, pattern):
    out = source_files["work"] / "source-out"
    assert_cli_error(build, ["--output-dir", out, "--quiet", *make_argv(source_files)], pattern)
    assert not (out / "hrm_dataset.json").exists()


def test_builder_push_without_token_fails_before_building(work, monkeypatch):
    import huggingface_hub

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    assert_cli_error(build_sudoku, ["--output-dir", work / "never-built", *SMALL_SUDOKU, "--push-to-hub", "me/x"],
                     r"cannot push to me/x: no Hugging Face token")
    assert not (work / "never-built").exists()


# ---------------------------------------------------------------------------------------------------------
# Python API: configs and the model's forward / solve
# ---------------------------------------------------------------------------------------------------------
NAN, INF = float("nan"), float("inf")
CONFIG_CASES = [
    ("q-loss-weight-nan", dict(q_loss_weight=NAN), r"q_loss_weight must be a finite number"),
    ("q-loss-weight-negative", dict(q_loss_weight=-1.0), r"q_loss_weight must be >= 0"),
    ("rope-theta-inf", dict(rope_theta=INF), r"rope_theta must be a finite number"),
    ("rms-norm-eps-nan", dict(rms_norm_eps=NAN), r"rms_norm_eps must be a finite number"),
    ("expansion-nan", dict(expansion=NAN), r"expansion must be a finite number"),
    ("exploration-nan", dict(halt_exploration_prob=NAN), r"halt_exploration_prob must be a finite number"),
    ("exploration-above-one", dict(halt_exploration_prob=1.5), r"halt_exploration_prob must be in \[0, 1\]"),
    ("initializer-scale-inf", dict(initializer_scale=-INF), r"initializer_scale must be a finite number"),
    ("heads-do-not-divide", dict(hidden_size=16, num_heads=3), r"hidden_size \(16\).*num_heads \(3\)"),
    ("h-cycles-zero", dict(H_cycles=0), r"H_cycles must be an integer >= 1"),
    ("hidden-size-float", dict(hidden_size=16.0), r"hidden_size must be an integer >= 1"),
    ("seq-len-bool", dict(seq_len=True), r"seq_len must be an integer >= 1"),
    ("vocab-negative", dict(vocab_size=-1), r"vocab_size must be an integer >= 1"),
    ("pos-encodings-unknown", dict(pos_encodings="alibi"), r"pos_encodings must be one of"),
    ("loss-type-unknown", dict(loss_type="mse"), r"loss_type must be 'stablemax' or 'softmax'"),
    ("puzzle-emb-negative", dict(puzzle_emb_ndim=-4), r"puzzle_emb_ndim must be an integer >= 0"),
]


@pytest.mark.parametrize("name,change,pattern", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_config_rejects(name, change, pattern):
    assert_raises(ValueError, pattern, HRMConfig, **dict(TINY, **change))


TRM_CONFIG_CASES = [
    ("mlp-t-with-rope", dict(mlp_t=True, pos_encodings="rope"), r"mlp_t replaces attention"),
    ("puzzle-emb-len-too-small", dict(puzzle_emb_len=1, puzzle_emb_ndim=64), r"puzzle_emb_len=1 .*cannot hold"),
    ("puzzle-emb-len-negative", dict(puzzle_emb_len=-1), r"puzzle_emb_len must be an integer >= 0"),
    ("no-act-continue-string", dict(no_ACT_continue="yes"), r"no_ACT_continue must be true or false"),
    ("q-loss-weight-nan", dict(q_loss_weight=NAN), r"q_loss_weight must be a finite number"),
]


@pytest.mark.parametrize("name,change,pattern", TRM_CONFIG_CASES, ids=[c[0] for c in TRM_CONFIG_CASES])
def test_trm_config_rejects(name, change, pattern):
    from modeling_hrm import TRMConfig

    assert_raises(ValueError, pattern, TRMConfig, **dict(TINY, **change))


def test_config_from_dataset_metadata_rejects():
    meta = {"vocab_size": 6, "seq_len": 16, "num_puzzle_identifiers": 1}
    assert_raises(ValueError, r"lacks seq_len", HRMConfig.from_dataset_metadata, {"vocab_size": 6,
                                                                                   "num_puzzle_identifiers": 1})
    assert_raises(ValueError, r"seq_len=9 contradicts the dataset \(16\)", HRMConfig.from_dataset_metadata, meta,
                  seq_len=9)


@pytest.fixture(scope="module", params=["hrm", "trm"])
def api_model(request):
    torch.manual_seed(0)
    config_class, model_class = modeling_hrm.MODEL_CLASSES[request.param]
    extra = {"puzzle_emb_len": 1} if request.param == "trm" else {}
    return model_class(config_class(**dict(TINY, num_puzzle_identifiers=3, **extra))).eval()


_X = torch.ones(2, 16, dtype=torch.long)
MODEL_CASES = [
    ("forward-float-puzzle-ids", "forward", dict(input_ids=_X, puzzle_identifiers=torch.tensor([0.5, 1.0])),
     r"puzzle_identifiers must hold integer ids"),
    ("solve-float-puzzle-ids", "solve", dict(input_ids=_X, puzzle_identifiers=torch.tensor([1.7, 0.0])),
     r"puzzle_identifiers must hold integer ids"),
    ("forward-zero-rows-with-labels", "forward", dict(input_ids=torch.ones(0, 16, dtype=torch.long),
                                                     labels=torch.ones(0, 16, dtype=torch.long)), r"no rows"),
    ("forward-float-inputs", "forward", dict(input_ids=_X.float()), r"input_ids must hold integer token ids"),
    ("forward-bool-inputs", "forward", dict(input_ids=_X.bool()), r"input_ids must hold integer token ids"),
    ("forward-1d-inputs", "forward", dict(input_ids=_X[0]), r"input_ids must be a 2-D tensor"),
    ("forward-list-inputs", "forward", dict(input_ids=[[1] * 16]), r"input_ids must be a 2-D tensor"),
    ("forward-wrong-seq-len", "forward", dict(input_ids=torch.ones(2, 81, dtype=torch.long)),
     r"sequence length 81.*seq_len=16"),
    ("forward-token-out-of-vocab", "forward", dict(input_ids=_X * 9), r"must lie in \[0, vocab_size=6\)"),
    ("forward-negative-token", "forward", dict(input_ids=-_X), r"must lie in \[0, vocab_size=6\)"),
    ("forward-puzzle-id-out-of-range", "forward", dict(input_ids=_X, puzzle_identifiers=torch.tensor([0, 3])),
     r"puzzle_identifiers must lie in \[0, num_puzzle_identifiers=3\)"),
    ("forward-puzzle-id-negative", "forward", dict(input_ids=_X, puzzle_identifiers=torch.tensor([-1, 0])),
     r"puzzle_identifiers must lie in"),
    ("forward-puzzle-ids-wrong-shape", "forward", dict(input_ids=_X, puzzle_identifiers=torch.zeros(3, dtype=torch.long)),
     r"puzzle_identifiers must .*shape \(2,\)"),
    ("forward-labels-wrong-shape", "forward", dict(input_ids=_X, labels=torch.ones(2, 15, dtype=torch.long)),
     r"labels must have the shape of input_ids"),
    ("forward-labels-out-of-vocab", "forward", dict(input_ids=_X, labels=_X * 7), r"labels must be token ids in \[0, 6\)"),
    ("forward-float-labels", "forward", dict(input_ids=_X, labels=_X.float()), r"labels must hold integer token ids"),
    ("solve-max-steps-zero", "solve", dict(input_ids=_X, max_steps=0), r"max_steps must be >= 1"),
    ("solve-wrong-seq-len", "solve", dict(input_ids=torch.ones(1, 36, dtype=torch.long)), r"sequence length 36"),
    ("resize-puzzle-table-zero", "resize_puzzle_embeddings", dict(num_puzzle_identifiers=0),
     r"num_puzzle_identifiers must be >= 1"),
    ("solve-max-steps-float", "solve", dict(input_ids=_X, max_steps=2.5), r"max_steps must be an integer"),
    ("solve-max-steps-string", "solve", dict(input_ids=_X, max_steps="3"), r"max_steps must be an integer"),
    ("resize-puzzle-table-float", "resize_puzzle_embeddings", dict(num_puzzle_identifiers=2.5),
     r"num_puzzle_identifiers must be an integer"),
]


@pytest.mark.parametrize("name,method,kwargs,pattern", MODEL_CASES, ids=[getattr(c, "values", c)[0] for c in MODEL_CASES])
def test_model_rejects(api_model, name, method, kwargs, pattern):
    fn = api_model if method == "forward" else getattr(api_model, method)
    assert_raises(ValueError, pattern, fn, **kwargs)


# ---------------------------------------------------------------------------------------------------------
# hrm-solve
# ---------------------------------------------------------------------------------------------------------
def solve_cli(argv):
    from modeling_hrm.solve import main

    return main(argv)


GOOD_SUDOKU = "1200340000000000"


@pytest.fixture(scope="module")
def solve_inputs(work, model_dir, dataset_dir) -> dict[str, Path]:
    files = {"maze-bad.txt": "#####\n#S1 #\n#####\n", "maze-ragged.txt": "#####\n#S #\n# G #\n#####\n",
             "maze-5.txt": "#####\n#S  #\n# # #\n#  G#\n#####\n",
             "arc-ragged.json": '{"train": [], "test": [{"input": [[1, 2], [3]]}]}',
             "arc-not-json.json": "{train: }", "arc-colour.json": '{"train": [], "test": [{"input": [[1, 12]]}]}'}
    paths = {"work": work, "model": model_dir, "dataset": dataset_dir}
    for name, text in files.items():
        paths[name] = work / name
        paths[name].write_text(text)
    paths["binary"] = work / "binary.bin"
    paths["binary"].write_bytes(bytes(range(256)) * 2)
    paths["arc-model"] = work / "arc-model"
    HRMForPuzzleSolving(HRMConfig(**dict(TINY, vocab_size=12, seq_len=900, num_puzzle_identifiers=3))).save_pretrained(
        paths["arc-model"])
    paths["arc-task.json"] = work / "arc-task.json"
    paths["arc-task.json"].write_text('{"train": [{"input": [[1]], "output": [[2]]}], "test": [{"input": [[1]]}]}')
    for name, breaker in (("pickle-only", _break_weights_pickle_only), ("garbage", _break_weights_garbage),
                          ("mismatch", _edit_config(hidden_size=32, num_heads=2))):
        paths[name] = _copy(model_dir, work / f"solve-{name}")
        breaker(paths[name])
    return paths


def _m(p):
    return ["--model", p["model"]]


SOLVE_CASES = [
    # the puzzle
    ("sudoku-too-short", lambda p: [*_m(p), "--sudoku", "1234"], r"Sudoku has 4 cells; expected 16, 36 or 81"),
    ("sudoku-clash", lambda p: [*_m(p), "--sudoku", "11" + "0" * 14], r"digit 1 twice in row 1"),
    ("sudoku-unsolvable", lambda p: [*_m(p), "--sudoku", "12....3...4....."], r"no valid solution exists"),
    ("sudoku-bad-symbol", lambda p: [*_m(p), "--sudoku", "12x" + "0" * 13], r"'x'"),
    ("sudoku-other-size-than-model", lambda p: [*_m(p), "--sudoku", "1" + "0" * 35],
     r"6×6 Sudoku needs a model with seq_len=36"),
    ("maze-file-missing", lambda p: [*_m(p), "--maze", p["work"] / "no-maze.txt"], r"maze file not found"),
    ("maze-unknown-character", lambda p: [*_m(p), "--maze", p["maze-bad.txt"]], r"unknown maze character '1'"),
    ("maze-ragged", lambda p: [*_m(p), "--maze", p["maze-ragged.txt"]], r"(ragged|row|width|length)"),
    ("maze-other-size-than-model", lambda p: [*_m(p), "--maze", p["maze-5.txt"]],
     r"5×5 maze needs a model with seq_len=25"),
    ("arc-file-missing", lambda p: [*_m(p), "--arc", p["work"] / "no-task.json"], r"ARC task file not found"),
    ("arc-file-binary", lambda p: [*_m(p), "--arc", p["binary"]], r"binary\.bin is not a UTF-8 text file"),
    ("maze-file-binary", lambda p: [*_m(p), "--maze", p["binary"]], r"binary\.bin is not a UTF-8 text file"),
    ("sudoku-file-binary", lambda p: [*_m(p), "--sudoku", p["binary"]], r"binary\.bin is not a UTF-8 text file"),
    ("maze-file-is-folder", lambda p: [*_m(p), "--maze", p["work"]], r"maze file expected, but .* is a folder"),
    ("arc-ragged-grid", lambda p: [*_m(p), "--arc", p["arc-ragged.json"]], r"ragged"),
    ("arc-not-json", lambda p: [*_m(p), "--arc", p["arc-not-json.json"]], r"JSON"),
    ("arc-colour-out-of-range", lambda p: [*_m(p), "--arc", p["arc-colour.json"]], r"colou?r.*12"),
    ("no-puzzle-given", lambda p: [*_m(p)], r"one of the arguments --sudoku --maze --arc .*is required"),
    # options
    ("max-steps-zero", lambda p: [*_m(p), "--sudoku", GOOD_SUDOKU, "--max-steps", "0"], r"--max-steps must be >= 1"),
    ("max-steps-negative", lambda p: [*_m(p), "--sudoku", GOOD_SUDOKU, "--max-steps", "-4"], r"--max-steps must be >= 1"),
    ("trace-into-missing-folder", lambda p: [*_m(p), "--sudoku", GOOD_SUDOKU, "--trace", p["work"] / "no-dir" / "t.gif"],
     r"--trace: folder .*no-dir.* does not exist"),
    ("trace-wrong-suffix", lambda p: [*_m(p), "--sudoku", GOOD_SUDOKU, "--trace", p["work"] / "t.txt"],
     r"--trace must end in \.gif or \.png"),
    ("device-bogus", lambda p: [*_m(p), "--sudoku", GOOD_SUDOKU, "--device", "gpu"], r"unknown device 'gpu'"),
    ("arc-puzzle-id-out-of-range", lambda p: ["--model", p["arc-model"], "--arc", p["arc-task.json"], "--puzzle-id", "7",
                                              "--no-augment"], r"puzzle id 7 is outside the model's 3 puzzle identifiers"),
    ("arc-puzzle-id-negative", lambda p: ["--model", p["arc-model"], "--arc", p["arc-task.json"], "--puzzle-id", "-1",
                                          "--no-augment"], r"puzzle id -1 is outside"),
    ("arc-task-for-sudoku-model", lambda p: [*_m(p), "--arc", p["arc-task.json"]], r"seq_len=900"),
    # the model
    ("model-missing", lambda p: ["--model", p["work"] / "no-model", "--sudoku", GOOD_SUDOKU], r"model folder not found"),
    ("model-is-dataset", lambda p: ["--model", p["dataset"], "--sudoku", GOOD_SUDOKU], r"is a dataset folder"),
    ("model-pickle-only", lambda p: ["--model", p["pickle-only"], "--sudoku", GOOD_SUDOKU],
     r"refused because unpickling can run"),
    ("model-garbage-weights", lambda p: ["--model", p["garbage"], "--sudoku", GOOD_SUDOKU],
     r"not a valid safetensors file"),
    ("model-config-contradicts-weights", lambda p: ["--model", p["mismatch"], "--sudoku", GOOD_SUDOKU],
     r"do not match config\.json"),
]


@pytest.mark.parametrize("name,make_argv,pattern", SOLVE_CASES, ids=[c[0] for c in SOLVE_CASES])
def test_solve_bad_input(solve_inputs, name, make_argv, pattern):
    assert_cli_error(solve_cli, make_argv(solve_inputs), pattern)
    assert not (solve_inputs["work"] / "no-dir").exists()


def test_solve_device_cuda_without_cuda(solve_inputs, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert_cli_error(solve_cli, [*_m(solve_inputs), "--sudoku", GOOD_SUDOKU, "--device", "cuda"], r"CUDA is not available")


# ---------------------------------------------------------------------------------------------------------
# Converter of original checkpoints (python -m modeling_hrm.convert_original_checkpoint)
# ---------------------------------------------------------------------------------------------------------
def convert_cli(argv):
    from modeling_hrm.convert_original_checkpoint import main

    return main(argv)


ORIGINAL_ARCH = dict(name="hrm.hrm_act_v1@HierarchicalReasoningModel_ACTV1", hidden_size=16, num_heads=2, expansion=4,
                     H_cycles=1, L_cycles=1, H_layers=1, L_layers=1, puzzle_emb_ndim=16, pos_encodings="rope",
                     halt_max_steps=2, halt_exploration_prob=0.1, rope_theta=10000.0, rms_norm_eps=1e-5)
_TO_ORIGINAL = {"embed_tokens.weight": "embed_tokens.embedding_weight", "puzzle_embedding.weight": "puzzle_emb.weights"}


def write_original_run(folder: Path, model_dir: Path, arch: dict = ORIGINAL_ARCH) -> Path:
    """An original-code run folder (`checkpoint` state dict + `all_config.yaml`) made from the tiny model."""
    import yaml
    from safetensors.torch import load_file

    folder.mkdir(parents=True, exist_ok=True)
    tensors = load_file(model_dir / "model.safetensors")
    torch.save({"_orig_mod.model.inner." + _TO_ORIGINAL.get(k, k): v for k, v in tensors.items()}, folder / "checkpoint")
    (folder / "all_config.yaml").write_text(yaml.safe_dump({"arch": arch, "data_path": "data/puzzles"}))
    return folder


class _CodePayload:
    """Unpickling this runs code (touches a file): the converter must refuse it without running it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture(scope="module")
def converter_inputs(work, model_dir) -> dict[str, Path]:
    p = {"work": work, "model": model_dir, "run": write_original_run(work / "orig", model_dir)}
    code, text = run_main(convert_cli, [p["run"], "--seq-len", "16", "--output", work / "converted-ok"])
    assert code == 0, text  # the fixture itself converts, and to the same weights
    assert torch.equal(load_pretrained_model(work / "converted-ok").q_head.weight,
                       load_pretrained_model(model_dir).q_head.weight)
    (work / "empty-ckpt").write_bytes(b"")
    (work / "text-ckpt").write_text("not a checkpoint")
    torch.save({"model": {"w": torch.zeros(1)}, "step": 3}, work / "nested-ckpt")
    torch.save({"w": _CodePayload(work / "converter-pickle-ran")}, work / "code-ckpt")
    (work / "bad.yaml").write_text("arch: [unclosed")
    (work / "noarch.yaml").write_text("lr: 0.0001\nglobal_batch_size: 768\n")
    (work / "an-output-file").write_text("keep me")
    (work / "kept-output").mkdir(exist_ok=True)
    (work / "kept-output" / "earlier.txt").write_text("earlier work")
    for name, change in (("unknown-variant", dict(name="recursive_reasoning.trm_singlez@TinyRecursiveReasoningModel_ACTV1")),
                         ("heads", dict(num_heads=3)), ("wide", dict(hidden_size=32))):
        p[name] = write_original_run(work / f"orig-{name}", model_dir, dict(ORIGINAL_ARCH, **change))
    # TRM runs: weights of a TRM with a 64-wide puzzle embedding over 4 positions of width 16
    from modeling_hrm import TRMConfig, TRMForPuzzleSolving

    trm_dir = work / "trm-for-converter"
    TRMForPuzzleSolving(TRMConfig(**dict(TINY, puzzle_emb_ndim=64, puzzle_emb_len=4))).save_pretrained(trm_dir)
    trm_arch = dict(ORIGINAL_ARCH, name="recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1", puzzle_emb_ndim=64,
                    puzzle_emb_len=4)
    for name, change in (("trm-mlp-t-rope", dict(mlp_t=True, pos_encodings="rope")),
                         ("trm-puzzle-emb-len", dict(puzzle_emb_len=1))):
        p[name] = write_original_run(work / f"orig-{name}", trm_dir, dict(trm_arch, **change))
    return p


def _out(p):
    return ["--seq-len", "16", "--output", p["work"] / "converted"]


CONVERTER_CASES = [
    ("checkpoint-empty", lambda p: ["--checkpoint", p["work"] / "empty-ckpt", "--config", p["run"] / "all_config.yaml",
                                    *_out(p)], r"is empty"),
    ("checkpoint-not-torch", lambda p: ["--checkpoint", p["work"] / "text-ckpt", "--config",
                                        p["run"] / "all_config.yaml", *_out(p)], r"is not a torch checkpoint"),
    ("checkpoint-nested", lambda p: ["--checkpoint", p["work"] / "nested-ckpt", "--config",
                                     p["run"] / "all_config.yaml", *_out(p)], r"not a raw state dict"),
    ("checkpoint-holds-code", lambda p: ["--checkpoint", p["work"] / "code-ckpt", "--config",
                                         p["run"] / "all_config.yaml", *_out(p)],
     r"pickled objects other than tensors"),
    ("checkpoint-missing", lambda p: ["--checkpoint", p["work"] / "no-ckpt", "--config", p["run"] / "all_config.yaml",
                                      *_out(p)], r"(does not exist|no such file)"),
    ("config-malformed-yaml", lambda p: ["--checkpoint", p["run"] / "checkpoint", "--config", p["work"] / "bad.yaml",
                                         *_out(p)], r"not valid YAML"),
    ("config-without-arch", lambda p: ["--checkpoint", p["run"] / "checkpoint", "--config", p["work"] / "noarch.yaml",
                                       *_out(p)], r"no `arch`"),
    ("config-missing", lambda p: ["--checkpoint", p["run"] / "checkpoint", "--config", p["work"] / "no.yaml",
                                  *_out(p)], r"does not exist"),
    ("source-missing", lambda p: [p["work"] / "no-such-run", *_out(p)], r"no such file or folder"),
    ("source-folder-without-checkpoint", lambda p: [p["model"], *_out(p)], r"has no 'checkpoint' file"),
    ("source-and-checkpoint", lambda p: [p["run"], "--checkpoint", p["run"] / "checkpoint", *_out(p)], r"not both"),
    ("nothing-to-convert", lambda p: [*_out(p)], r"nothing to convert"),
    ("unknown-variant", lambda p: [p["unknown-variant"], *_out(p)], r"not a variant this converter knows"),
    ("heads-do-not-divide", lambda p: [p["heads"], *_out(p)], r"num_heads"),
    ("shapes-contradict-config", lambda p: [p["wide"], *_out(p)], r"does not match"),
    ("trm-mlp-t-with-rope", lambda p: [p["trm-mlp-t-rope"], *_out(p)], r"mlp_t replaces attention"),
    ("trm-puzzle-emb-len-too-small", lambda p: [p["trm-puzzle-emb-len"], *_out(p)], r"cannot hold a puzzle embedding"),
    ("seq-len-zero", lambda p: [p["run"], "--seq-len", "0", "--output", p["work"] / "converted"], r"--seq-len must be >= 1"),
    ("output-is-a-file", lambda p: [p["run"], "--seq-len", "16", "--output", p["work"] / "an-output-file"],
     r"is an existing file"),
    ("output-not-empty", lambda p: [p["run"], "--seq-len", "16", "--output", p["work"] / "kept-output"], r"--overwrite"),
    ("output-parent-missing", lambda p: [p["run"], "--seq-len", "16", "--output", p["work"] / "no-parent" / "out"],
     r"parent folder .* does not exist"),
    ("push-to-hub-malformed-id", lambda p: [p["run"], *_out(p), "--push-to-hub", "bad id!"], r"(push-to-hub|repo id)"),
]


@pytest.mark.parametrize("name,make_argv,pattern", CONVERTER_CASES,
                         ids=[getattr(c, "values", c)[0] for c in CONVERTER_CASES])
def test_converter_bad_input(converter_inputs, name, make_argv, pattern):
    p = converter_inputs
    assert_cli_error(convert_cli, make_argv(p), pattern)
    assert not (p["work"] / "converter-pickle-ran").exists()
    assert (p["work"] / "an-output-file").read_text() == "keep me"
    assert (p["work"] / "kept-output" / "earlier.txt").exists()
    assert not (p["work"] / "converted").exists()


def test_converter_hub_id_offline(work, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    text = assert_cli_error(convert_cli, ["nobody-here/HRM-checkpoint-x", "--output", work / "hub-out"],
                            r"nobody-here/HRM-checkpoint-x")
    assert re.search(r"(offline|network|HF_HUB_OFFLINE)", text)


# ---------------------------------------------------------------------------------------------------------
# The real entry points, as a user runs them: one line and exit 2; --debug shows the traceback
# ---------------------------------------------------------------------------------------------------------
def test_entry_points_in_a_subprocess(work, model_dir):
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    file = work / "a-file"
    file.write_text("x")
    runs = [  # (argv, --debug?, pattern)
        ([sys.executable, "-m", "training.hrm_evaluate", "--model", model_dir, "--dataset", work / "nothing-here"],
         False, r"^hrm-evaluate: error: dataset folder not found"),
        ([sys.executable, "dataset_scripts/build_maze_dataset.py", "--output-dir", file, "--debug"],
         True, r"ValueError: --output-dir .* is a file"),
    ]
    for argv, debug, pattern in runs:
        r = subprocess.run([str(a) for a in argv], cwd=repo, env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == (1 if debug else 2), r.stderr
        assert ("Traceback" in r.stderr) == debug, r.stderr
        assert re.search(pattern, r.stderr, re.M), r.stderr
        if not debug:
            assert len(r.stderr.strip().splitlines()) == 1, r.stderr


# ---------------------------------------------------------------------------------------------------------
# training/train.py
# ---------------------------------------------------------------------------------------------------------
def train_cli(argv):
    from training.train import main

    return main(argv)


TRAIN_MODEL = "\n".join(f"  {k}: {v}" for k, v in dict(hidden_size=16, num_heads=2, puzzle_emb_ndim=16, H_layers=1,
                                                        L_layers=1, H_cycles=1, L_cycles=1, halt_max_steps=2).items())
TRAIN_SECTION = """training:
  global_batch_size: 4
  max_steps: 2
  save_steps: 1
  lr_warmup_steps: 1
  eval_steps: 2
  report_to: none
  disable_tqdm: true
"""


def _tree_digest(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def train_inputs(work, model_dir, dataset_dir, other_models) -> dict[str, Path]:
    p = {"work": work, "model": model_dir, "dataset": dataset_dir, **other_models}
    p["yaml"] = work / "train.yaml"
    p["yaml"].write_text(f"dataset: {dataset_dir}\nmodel:\n{TRAIN_MODEL}\n{TRAIN_SECTION}")
    p["trm-yaml"] = work / "train-trm.yaml"
    p["trm-yaml"].write_text(f"dataset: {dataset_dir}\nmodel:\n  type: trm\n  hidden_size: 16\n  num_heads: 2\n"
                             f"  puzzle_emb_ndim: 16\n  puzzle_emb_len: 1\n  L_layers: 1\n{TRAIN_SECTION}")
    p["bad-yaml"] = work / "train-bad.yaml"
    p["bad-yaml"].write_text("model: [hidden_size: 16\ntraining:\n")
    p["typed-yaml"] = work / "train-typed.yaml"
    p["typed-yaml"].write_text(f"dataset: {dataset_dir}\ntraining:\n  learning_rate: fast\n")
    (work / "binary.bin").write_bytes(bytes(range(256)) * 2)
    p["list-yaml"] = work / "train-list.yaml"
    p["list-yaml"].write_text("- dataset\n- model\n")
    p["run"] = work / "train-run"
    code, text = run_main(train_cli, ["--config", p["yaml"], "--output_dir", p["run"]])
    assert code == 0, text
    assert (p["run"] / "checkpoint-1" / "trainer_state.json").is_file()
    # Damaged copies of the run, one per resume case.
    for name, damage in (("state-corrupt", lambda c: (c / "trainer_state.json").write_text("{broken")),
                         ("rng-tampered", lambda c: next((c / "state").glob("random_states_*")).write_bytes(b"x")),
                         ("optimizer-missing", lambda c: next((c / "state").glob("optimizer*")).unlink()),
                         ("carry-truncated", lambda c: (c / "carry-rank0.safetensors").write_bytes(b"\x10" * 12))):
        p[f"run-{name}"] = _copy(p["run"], work / f"train-run-{name}")
        damage(p[f"run-{name}"] / "checkpoint-1")
    p["pickle-model"] = _copy(model_dir, work / "train-pickle-model")
    _break_weights_pickle_only(p["pickle-model"])
    p["missing-tensor-model"] = _copy(model_dir, work / "train-missing-tensor")
    _break_missing_tensor(p["missing-tensor-model"])
    p["broken-dataset"] = _copy(dataset_dir, work / "train-broken-dataset")
    _dataset_garbage_shard(p["broken-dataset"])
    _parquet(p["broken-dataset"], "train").write_bytes(b"not parquet")
    (work / "a-file").write_text("x")
    return p


def _base(p, out="train-out"):
    return ["--config", p["yaml"], "--output_dir", p["work"] / out]


TRAIN_CASES = [
    # the configuration file and options
    ("yaml-syntax-error", lambda p: ["--config", p["bad-yaml"], "--output_dir", p["work"] / "train-out"],
     r"not valid YAML at line"),
    ("yaml-not-a-mapping", lambda p: ["--config", p["list-yaml"], "--output_dir", p["work"] / "train-out"],
     r"expected a mapping"),
    ("config-file-missing", lambda p: ["--config", p["work"] / "no.yaml", "--output_dir", p["work"] / "train-out"],
     r"no\.yaml: no such file"),
    ("config-file-binary", lambda p: ["--config", p["work"] / "binary.bin", "--output_dir", p["work"] / "train-out"],
     r"not a text file"),
    ("config-is-a-folder", lambda p: ["--config", p["work"], "--output_dir", p["work"] / "train-out"],
     r"a folder, not a YAML file"),
    ("yaml-value-wrong-type", lambda p: ["--config", p["typed-yaml"], "--output_dir", p["work"] / "train-out"],
     r"--learning_rate.*invalid float value: 'fast'"),
    ("unknown-option", lambda p: [*_base(p), "--hiden_size", "32"], r"unknown option --hiden_size \(did you mean --hidden_size"),
    ("set-unknown-key", lambda p: [*_base(p), "--set", "model.foo=1"], r"unknown model key 'foo'"),
    ("set-malformed", lambda p: [*_base(p), "--set", "garbage"], r"expected SECTION\.KEY=VALUE"),
    ("model-type-unknown", lambda p: [*_base(p), "--model_type", "gpt"], r"invalid choice: 'gpt'"),
    ("learning-rate-negative", lambda p: [*_base(p), "--learning_rate", "-1"], r"learning_rate must be a finite number >= 0"),
    ("learning-rate-nan", lambda p: [*_base(p), "--learning_rate", "nan"], r"learning_rate must be a finite number"),
    ("max-steps-zero", lambda p: [*_base(p), "--max_steps", "0"], r"max_steps must be >= 1"),
    ("eval-steps-zero", lambda p: [*_base(p), "--eval_steps", "0"], r"eval_steps must be >= 1"),
    ("accumulation-zero", lambda p: [*_base(p), "--gradient_accumulation_steps", "0"],
     r"gradient_accumulation_steps must be >= 1"),
    ("ema-decay-above-one", lambda p: [*_base(p), "--ema_decay", "1.5"], r"ema_decay must be in \(0, 1\)"),
    ("mixed-precision-unknown", lambda p: [*_base(p), "--mixed_precision", "fp8"], r"invalid choice: 'fp8'"),
    ("batch-larger-than-dataset", lambda p: [*_base(p), "--global_batch_size", "100"],
     r"global batch 100 is larger than the train split \(8 rows"),
    ("push-without-repo-id", lambda p: [*_base(p), "--push_to_hub", "true"], r"--push_to_hub needs --hub_model_id"),
    ("push-malformed-repo-id", lambda p: [*_base(p), "--push_to_hub", "true", "--hub_model_id", "bad id"],
     r"hub_model_id"),
    # the model configuration
    ("heads-do-not-divide", lambda p: [*_base(p), "--num_heads", "3"], r"hidden_size \(16\) must be divisible"),
    ("h-cycles-zero", lambda p: [*_base(p), "--H_cycles", "0"], r"H_cycles must be an integer >= 1"),
    ("q-loss-weight-nan", lambda p: [*_base(p), "--q_loss_weight", "nan"], r"q_loss_weight must be a finite number"),
    ("seq-len-contradicts-dataset", lambda p: [*_base(p), "--seq_len", "81"], r"seq_len=81 contradicts the dataset \(16\)"),
    ("trm-mlp-t-with-rope", lambda p: ["--config", p["trm-yaml"], "--output_dir", p["work"] / "train-out", "--mlp_t",
                                       "true", "--pos_encodings", "rope"], r"mlp_t replaces attention"),
    ("trm-field-on-hrm", lambda p: [*_base(p), "--set", "model.mlp_t=true"], r"mlp_t"),
    # the dataset
    ("dataset-missing", lambda p: [*_base(p), "--dataset", p["work"] / "no-data"], r"no-data: no such folder"),
    ("dataset-is-model-folder", lambda p: [*_base(p), "--dataset", p["model"]], r"a model folder, not a dataset"),
    ("dataset-corrupt-shard", lambda p: [*_base(p), "--dataset", p["broken-dataset"]], r"not a readable parquet file"),
    ("dataset-hub-id-offline", lambda p: [*_base(p), "--dataset", "nobody-here/data"], r"nobody-here/data"),
    # --init_from
    ("init-from-missing", lambda p: [*_base(p), "--init_from", p["work"] / "no-model"], r"model folder not found"),
    ("init-from-pickle", lambda p: [*_base(p), "--init_from", p["pickle-model"]], r"refused because unpickling can run"),
    ("init-from-other-seq-len", lambda p: [*_base(p), "--init_from", p["seq36"]], r"seq_len=36 but the dataset has 16"),
    ("init-from-missing-tensor", lambda p: [*_base(p), "--init_from", p["missing-tensor-model"]], r"lack 1 tensor"),
    ("init-from-dataset", lambda p: [*_base(p), "--init_from", p["dataset"]], r"is a dataset folder"),
    # the output folder and resuming
    ("output-dir-is-file", lambda p: _base(p, "a-file"), r"a-file is a file, not a folder"),
    ("resume-missing", lambda p: [*_base(p), "--resume_from_checkpoint", p["work"] / "no-ckpt"], r"no-ckpt: no such folder"),
    ("resume-trainer-state-corrupt", lambda p: [*_base(p, "train-run-state-corrupt"), "--resume_from_checkpoint",
                                                p["run-state-corrupt"] / "checkpoint-1", "--max_steps", "3"],
     r"trainer_state\.json is corrupt"),
    ("resume-rng-state-tampered", lambda p: [*_base(p, "train-run-rng-tampered"), "--resume_from_checkpoint",
                                             p["run-rng-tampered"] / "checkpoint-1", "--max_steps", "3"],
     r"random_states_0\.pkl was modified or corrupted.*exact resume is impossible"),
    ("resume-optimizer-missing", lambda p: [*_base(p, "train-run-optimizer-missing"), "--resume_from_checkpoint",
                                            p["run-optimizer-missing"] / "checkpoint-1", "--max_steps", "3"],
     r"optimizer.* is missing"),
    ("resume-carry-truncated", lambda p: [*_base(p, "train-run-carry-truncated"), "--resume_from_checkpoint",
                                          p["run-carry-truncated"] / "checkpoint-1", "--max_steps", "3"],
     r"carry-rank0\.safetensors was modified or corrupted"),
    ("resume-with-another-model", lambda p: [*_base(p, "train-run-other"), "--resume_from_checkpoint",
                                             p["run"] / "checkpoint-1", "--hidden_size", "32"],
     r"model differs from the checkpoint's.*hidden_size"),
]


@pytest.mark.parametrize("name,make_argv,pattern", TRAIN_CASES, ids=[getattr(c, "values", c)[0] for c in TRAIN_CASES])
def test_train_bad_input(train_inputs, monkeypatch, name, make_argv, pattern):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    shutil.rmtree(train_inputs["work"] / "train-out", ignore_errors=True)
    runs = sorted(k for k in train_inputs if k.startswith("run"))
    before = {k: _tree_digest(train_inputs[k]) for k in runs}
    assert_cli_error(train_cli, make_argv(train_inputs), pattern)
    # Nothing already written is lost or changed by a refused run.
    assert {k: _tree_digest(train_inputs[k]) for k in runs} == before
    assert not (train_inputs["work"] / "train-out").exists()


# ---------------------------------------------------------------------------------------------------------
# hrm-analyze
# ---------------------------------------------------------------------------------------------------------
def analyze_cli(argv):
    from training.hrm_analyze import main

    return main(argv)


@pytest.fixture(scope="module")
def analyze_inputs(work, model_dir, dataset_dir, other_models) -> dict[str, Path]:
    """A maze dataset (another task than the 4x4 Sudoku model's) and a model folder of another library."""
    maze = work / "analyze-maze5"
    code, text = run_main(build_maze, ["--output-dir", maze, *SMALL_MAZE])
    assert code == 0, text
    bert = _copy(model_dir, work / "analyze-bert-model")
    _edit_config(model_type="bert")(bert)
    (work / "analyze-a-file").write_text("x")
    return {"work": work, "model": model_dir, "dataset": dataset_dir, "maze": maze, "bert": bert,
            "seq36": other_models["seq36"], "file": work / "analyze-a-file"}


def _a(p, *extra):
    return ["--model", p["model"], "--dataset", p["dataset"], "--output-dir", p["work"] / "analyze-out", *extra]


ANALYZE_CASES = [
    ("dataset-of-another-task", lambda p: [*_a(p), "--dataset", p["maze"]],
     r"the model does not fit the maze dataset: the dataset has seq_len=25 but the model has seq_len=16"),
    ("limit-zero", lambda p: _a(p, "--limit", "0"), r"--limit must be an integer >= 1, got 0"),
    ("limit-negative", lambda p: _a(p, "--limit", "-2"), r"--limit must be an integer >= 1, got -2"),
    ("model-not-hrm-or-trm", lambda p: [*_a(p), "--model", p["bert"]],
     r"model_type 'bert'; this library loads puzzle models of type hrm, trm"),
    ("model-is-a-dataset", lambda p: [*_a(p), "--model", p["dataset"]], r"is a dataset folder.*not a model folder"),
    ("model-missing", lambda p: [*_a(p), "--model", p["work"] / "no-model"], r"model folder not found"),
    ("dataset-missing", lambda p: [*_a(p), "--dataset", p["work"] / "no-data"], r"dataset folder not found"),
    ("compare-does-not-fit", lambda p: _a(p, "--compare", p["seq36"]),
     r"the --compare model does not fit the sudoku dataset: .*seq_len=36"),
    ("compare-not-hrm-or-trm", lambda p: _a(p, "--compare", p["bert"]), r"model_type 'bert'"),
    ("max-steps-zero", lambda p: _a(p, "--max-steps", "0"), r"--max-steps must be an integer >= 1, got 0"),
    ("bins-zero", lambda p: _a(p, "--bins", "0"), r"--bins must be an integer >= 1, got 0"),
    ("num-trajectories-negative", lambda p: _a(p, "--num-trajectories", "-1"), r"--num-trajectories must be an integer >= 0"),
    ("batch-size-zero", lambda p: _a(p, "--batch-size", "0"), r"--batch-size must be an integer >= 1"),
    ("pooling-unknown", lambda p: _a(p, "--pooling", "max"), r"--pooling: invalid choice: 'max'"),
    ("output-dir-is-file", lambda p: [*_a(p), "--output-dir", p["file"]], r"--output-dir .*analyze-a-file is a file"),
    ("unknown-split", lambda p: _a(p, "--split", "validation"), r"has no split 'validation'"),
]


@pytest.mark.parametrize("name,make_argv,pattern", ANALYZE_CASES, ids=[c[0] for c in ANALYZE_CASES])
def test_analyze_bad_input(analyze_inputs, name, make_argv, pattern):
    shutil.rmtree(analyze_inputs["work"] / "analyze-out", ignore_errors=True)
    assert_cli_error(analyze_cli, make_argv(analyze_inputs), pattern)
    assert not (analyze_inputs["work"] / "analyze-out").exists()  # nothing written for refused input


def test_analyze_api_bad_input(analyze_inputs):
    from training.analysis import analyze

    p = analyze_inputs
    assert_raises(ValueError, r"the model does not fit the maze dataset: .*seq_len=25", analyze, p["model"], p["maze"])
    assert_raises(ValueError, r"limit must be an integer >= 1, got 0", analyze, p["model"], p["dataset"], limit=0)
    assert_raises(ModelLoadError, r"model_type 'bert'", analyze, p["bert"], p["dataset"])


# ---------------------------------------------------------------------------------------------------------
# Adaptation to an unseen ARC task (adapt_to_task, pipeline adapt_steps, hrm-solve --adapt-steps)
# ---------------------------------------------------------------------------------------------------------
ARC_GOOD_TASK = {"train": [{"input": [[1, 0]], "output": [[0, 1]]}], "test": [{"input": [[2, 0]]}]}
ARC_NO_DEMOS = {"train": [], "test": [{"input": [[2, 0]]}]}
ARC_TOO_BIG = {"train": [{"input": [[1] * 31] * 31, "output": [[2] * 31] * 31}], "test": [{"input": [[1]]}]}


@pytest.fixture(scope="module")
def adapt_inputs(work, model_dir) -> dict:
    paths = {"model": model_dir, "arc-model": work / "adapt-arc-model"}
    HRMForPuzzleSolving(HRMConfig(**dict(TINY, vocab_size=12, seq_len=900, num_puzzle_identifiers=3))).save_pretrained(
        paths["arc-model"])
    for name, task in (("good", ARC_GOOD_TASK), ("no-demos", ARC_NO_DEMOS), ("too-big", ARC_TOO_BIG)):
        paths[name] = work / f"adapt-{name}.json"
        paths[name].write_text(json.dumps(task))
    return paths


ADAPT_API_CASES = [
    ("task-without-demonstrations", "arc-model", ARC_NO_DEMOS, {}, r"cannot adapt to an ARC task without demonstrations"),
    ("steps-zero", "arc-model", ARC_GOOD_TASK, dict(steps=0), r"adapt steps must be an integer >= 1, got 0"),
    ("steps-negative", "arc-model", ARC_GOOD_TASK, dict(steps=-5), r"adapt steps must be an integer >= 1, got -5"),
    ("steps-float", "arc-model", ARC_GOOD_TASK, dict(steps=2.5), r"adapt steps must be an integer >= 1, got 2\.5"),
    ("grid-larger-than-seq-len", "arc-model", ARC_TOO_BIG, {}, r"grid 31x31 larger than 30x30"),
    ("model-seq-len-too-small", "model", ARC_GOOD_TASK, {}, r"an ARC grid needs a model with seq_len=900.*seq_len=16"),
    ("lr-zero", "arc-model", ARC_GOOD_TASK, dict(lr=0), r"lr must be a number > 0, got 0"),
    ("num-aug-negative", "arc-model", ARC_GOOD_TASK, dict(num_aug=-1), r"num_aug must be an integer >= 0, got -1"),
]


@pytest.mark.parametrize("name,model,task,kwargs,pattern", ADAPT_API_CASES, ids=[c[0] for c in ADAPT_API_CASES])
def test_adapt_to_task_rejects(adapt_inputs, name, model, task, kwargs, pattern):
    loaded = load_pretrained_model(adapt_inputs[model])
    before = {k: v.clone() for k, v in loaded.state_dict().items()}
    assert_raises(ValueError, pattern, loaded.adapt_to_task, task, **kwargs)
    after = loaded.state_dict()  # refused before any work: the model is untouched
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert not getattr(loaded.config, "adapted_tasks", None)


def test_pipeline_adapt_steps_rejects(adapt_inputs):
    from transformers import pipeline

    solver = pipeline("puzzle-solving", model=load_pretrained_model(adapt_inputs["arc-model"]))
    assert_raises(ValueError, r"adapt_steps must be a positive integer, got 0", solver, ARC_GOOD_TASK, adapt_steps=0)
    assert_raises(ValueError, r"without demonstrations", solver, ARC_NO_DEMOS, adapt_steps=1)
    assert_raises(ValueError, r"adapt_steps needs an ARC task with demonstration pairs, not a bare grid", solver,
                  [[1, 2], [3, 4]], adapt_steps=1)
    assert_raises(ValueError, r"cannot be combined with arc_versions or puzzle_id", solver, ARC_GOOD_TASK,
                  adapt_steps=1, puzzle_id=1, augment=False)


ADAPT_SOLVE_CASES = [
    ("adapt-steps-zero", lambda p: ["--model", p["arc-model"], "--arc-task", p["good"], "--adapt-steps", "0"],
     r"--adapt-steps must be >= 1, got 0"),
    ("adapt-steps-negative", lambda p: ["--model", p["arc-model"], "--arc-task", p["good"], "--adapt-steps", "-2"],
     r"--adapt-steps must be >= 1, got -2"),
    ("adapt-task-without-demonstrations", lambda p: ["--model", p["arc-model"], "--arc-task", p["no-demos"],
                                                     "--adapt-steps", "1"], r"without demonstrations"),
    ("adapt-grid-larger-than-seq-len", lambda p: ["--model", p["arc-model"], "--arc-task", p["too-big"],
                                                  "--adapt-steps", "1"], r"grid 31x31 larger than 30x30"),
    ("adapt-model-seq-len-too-small", lambda p: ["--model", p["model"], "--arc-task", p["good"], "--adapt-steps", "1"],
     r"seq_len=900"),
    ("adapt-steps-for-a-sudoku", lambda p: ["--model", p["model"], "--sudoku", GOOD_SUDOKU, "--adapt-steps", "3"],
     r"--adapt-steps applies to ARC tasks"),
    ("adapt-steps-with-dataset", lambda p: ["--model", p["arc-model"], "--arc-task", p["good"], "--adapt-steps", "1",
                                            "--dataset", p["model"]], r"cannot be combined with --dataset"),
    ("save-adapted-without-adapt-steps", lambda p: ["--model", p["arc-model"], "--arc-task", p["good"],
                                                    "--save-adapted", p["arc-model"].parent / "adapted-out"],
     r"--save-adapted needs --adapt-steps"),
    ("save-adapted-into-a-file", lambda p: ["--model", p["arc-model"], "--arc-task", p["good"], "--adapt-steps", "1",
                                            "--save-adapted", p["good"]], r"exists and is not an empty folder"),
]


@pytest.mark.parametrize("name,make_argv,pattern", ADAPT_SOLVE_CASES, ids=[c[0] for c in ADAPT_SOLVE_CASES])
def test_solve_adapt_bad_input(adapt_inputs, name, make_argv, pattern):
    assert_cli_error(solve_cli, make_argv(adapt_inputs), pattern)
    assert not (adapt_inputs["arc-model"].parent / "adapted-out").exists()


# ---------------------------------------------------------------------------------------------------------
# Open-world Sudoku options (validation split, depth buckets, shallow training, workers)
# ---------------------------------------------------------------------------------------------------------
OPEN_SUDOKU_CASES = [
    ("bucket-cannot-be-filled", ["--eval-buckets", "1-2,7+"], r"test: depth bucket '7\+' cannot be filled \(0 of 1 "
                                                              r"puzzles\).*propagation rounds seen: .*wider bucket"),
    ("bucket-spec-malformed", ["--eval-buckets", "1-2,x"], r"depth bucket 'x' in '1-2,x' is not A, A-B, A\+ or 'search'"),
    ("bucket-spec-descending", ["--eval-buckets", "4-2"], r"depth bucket '4-2'.*ascending"),
    ("bucket-spec-overlap", ["--eval-buckets", "1-3,3"], r"depth buckets '1-3' and '3' in '1-3,3' overlap"),
    ("bucket-deeper-than-the-grid", ["--eval-buckets", "16+"], r"bucket '16\+' asks for more rounds than a 4x4 puzzle"),
    ("bucket-outside-max-rounds", ["--max-rounds", "3", "--eval-buckets", "1-2,5"],
     r"bucket '5' lies outside --min-rounds/--max-rounds"),
    ("train-max-rounds-zero", ["--train-max-rounds", "0"], r"--train-max-rounds 0 is outside what a 4x4 puzzle can "
                                                           r"need \(1\.\.15 rounds\)"),
    ("train-max-rounds-too-deep", ["--train-max-rounds", "99"], r"--train-max-rounds 99 is outside"),
    ("train-max-rounds-below-min-rounds", ["--min-rounds", "3", "--train-max-rounds", "2"],
     r"--train-max-rounds 2 is below --min-rounds 3"),
    ("num-val-negative", ["--num-val", "-1"], r"--num-val must be >= 0, got -1"),
    ("workers-zero", ["--workers", "0"], r"--workers must be >= 1, got 0"),
    ("buckets-with-csv", ["--source", "csv", "--csv-dir", ".", "--eval-buckets", "1-2"],
     r"--eval-buckets selects generated puzzles"),
]


@pytest.mark.parametrize("name,extra,pattern", OPEN_SUDOKU_CASES, ids=[c[0] for c in OPEN_SUDOKU_CASES])
def test_sudoku_open_world_bad_input(work, name, extra, pattern):
    out = work / f"open-{name}"
    assert_cli_error(build_sudoku, ["--output-dir", out, *SMALL_SUDOKU, *extra], pattern)
    assert not (out / "hrm_dataset.json").exists()


# ---------------------------------------------------------------------------------------------------------
# Test-time search (modeling_hrm/search.py): the API, the pipeline's search=, hrm-evaluate / hrm-solve --search
# ---------------------------------------------------------------------------------------------------------
def _search_model(vocab_size, seq_len):
    torch.manual_seed(0)
    return HRMForPuzzleSolving(HRMConfig(**dict(TINY, vocab_size=vocab_size, seq_len=seq_len))).eval()


SEARCH_CASES = [  # (id, model (vocab, seq_len), search keywords, message)
    ("breadth-zero", (6, 16), dict(breadth=0), r"breadth must be an integer >= 1, got 0"),
    ("depth-zero", (6, 16), dict(depth=0), r"depth must be an integer >= 1, got 0"),
    ("unknown-kind", (6, 16), dict(breadth=2, kind="beam"), r"unknown breadth kind 'beam'"),
    ("noise-and-restart", (6, 16), dict(breadth=2, kind="noise+restart"), r"'noise' and 'restart' exclude each other"),
    ("unknown-selector", (6, 16), dict(selector="energy"), r"unknown selector 'energy'"),
    ("temperature-zero", (6, 16), dict(breadth=2, kind="sample", temperature=0), r"temperature must be a finite number > 0"),
    ("noise-negative", (6, 16), dict(breadth=2, noise=-1.0), r"noise must be a finite number >= 0"),
    ("valid-on-arc", (12, 900), dict(task="arc", selector="valid"), r"selector 'valid' needs a task with a validity "
                                                                    r"check .*ARC has none"),
    ("valid-without-task", (6, 16), dict(selector="valid"), r"selector 'valid' needs the task"),
    ("symmetry-without-task", (6, 16), dict(breadth=2, kind="symmetry"), r"'symmetry' needs the task"),
    ("transpose-of-6x6-sudoku", (8, 36), dict(task="sudoku", breadth=2, kind="symmetry", symmetries="transpose"),
     r"'transpose' is not a symmetry of this puzzle: a 6x6 Sudoku has 2x3 boxes"),
    ("maze-symmetry-on-sudoku", (6, 16), dict(task="sudoku", breadth=2, kind="symmetry", symmetries="dihedral"),
     r"unknown sudoku symmetry 'dihedral'"),
    ("more-copies-than-the-maze-has", (6, 16), dict(task="maze", breadth=9, kind="symmetry"),
     r"give 8 distinct copies .* breadth is 9"),
    ("task-the-model-is-not", (6, 16), dict(task="arc"), r"is not an ARC model"),
    ("grid-too-big-for-memory", (6, 16), dict(breadth=10**9, kind="restart"), r"needs about .* GiB .* lower the breadth"),
    ("one-trajectory-too-big", (6, 16), dict(memory_budget=1000), r"needs about .* GiB"),
]


@pytest.mark.parametrize("name,shape,kwargs,pattern", SEARCH_CASES, ids=[c[0] for c in SEARCH_CASES])
def test_search_rejects(name, shape, kwargs, pattern):
    from modeling_hrm.search import search

    model = _search_model(*shape)
    assert_raises(ValueError, pattern, search, model, torch.full((2, shape[1]), 2), **kwargs)


def test_pipeline_search_rejects():
    from transformers import pipeline

    solver = pipeline("puzzle-solving", model=_search_model(6, 16), device="cpu")
    assert_raises(ValueError, r"breadth must be an integer >= 1, got 0", solver, GOOD_SUDOKU, search="breadth=0")
    assert_raises(ValueError, r"unknown key 'width'", solver, GOOD_SUDOKU, search={"width": 3})
    assert_raises(ValueError, r"search= replaces num_candidates", solver, GOOD_SUDOKU, search="breadth=2",
                  num_candidates=2)


SEARCH_EVALUATE_CASES = [
    ("breadth-zero", ["breadth=1,0"], r"breadth must be an integer >= 1, got 0"),
    ("not-key-value", ["depth"], r"expected key=value"),
    ("unknown-key", ["width=3"], r"unknown key 'width'"),
    ("depth-not-a-number", ["depth=four"], r"depth takes integers, got 'four'"),
    ("symmetry-the-puzzle-lacks", ["breadth=2", "kind=symmetry", "symmetries=colors"], r"unknown sudoku symmetry 'colors'"),
    ("seed-twice", ["seed=1,2"], r"seed takes one value"),
]


@pytest.mark.parametrize("name,grid,pattern", SEARCH_EVALUATE_CASES, ids=[c[0] for c in SEARCH_EVALUATE_CASES])
def test_evaluate_search_bad_input(work, model_dir, dataset_dir, name, grid, pattern):
    out = work / f"search-{name}"
    assert_cli_error(evaluate, ["--model", model_dir, "--dataset", dataset_dir, "--output-dir", out, "--search", *grid],
                     pattern)
    assert not out.exists()


def test_evaluate_search_runs_on_good_input(work, model_dir, dataset_dir):
    out = work / "search-ok"
    code, text = run_main(evaluate, ["--model", model_dir, "--dataset", dataset_dir, "--output-dir", out, "--limit", "3",
                                     "--search", "depth=trained,3", "breadth=1,2", "kind=symmetry",
                                     "selector=q,vote,residual,valid"])
    assert code == 0, text
    assert "| selector |" in text and "valid (verifier)" in text
    result = json.loads((out / "search.json").read_text())
    assert len(result["rows"]) == 2 * 2 * 4 and (out / "search_accuracy_vs_flops.png").is_file()


def test_solve_search_bad_input(solve_inputs):
    p = solve_inputs
    assert_cli_error(solve_cli, [*_m(p), "--sudoku", GOOD_SUDOKU, "--search", "breadth=0"],
                     r"breadth must be an integer >= 1, got 0")
    assert_cli_error(solve_cli, ["--model", p["arc-model"], "--arc", p["arc-task.json"], "--search", "selector=valid"],
                     r"selector 'valid' needs a task with a validity check")
    assert_cli_error(solve_cli, [*_m(p), "--sudoku", GOOD_SUDOKU, "--search", "depth=4", "--max-steps", "8"],
                     r"give the segment budget once")
    assert_cli_error(solve_cli, [*_m(p), "--sudoku", GOOD_SUDOKU, "--search", "depth=4,8"], r"depth has several values")
    code, text = run_main(solve_cli, [*_m(p), "--sudoku", GOOD_SUDOKU, "--search", "breadth=3", "kind=symmetry",
                                      "selector=vote", "--json"])
    assert code == 0, text
    assert json.loads(text.strip().splitlines()[-1])["candidate"] in (0, 1, 2)


# ---------------------------------------------------------------------------------------------------------
# Reproducing the papers: data releases, scoring protocols, scripts/reproduce.sh
# ---------------------------------------------------------------------------------------------------------
def reproduce_cli(argv):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from reproduce import main

    return main(argv)


def test_releases_and_protocols_bad_input(work, model_dir, dataset_dir):
    out = work / "arc-unknown-release"
    assert_cli_error(build_arc, ["--output-dir", out, "--release", "arc-agi-3", "--quiet"],
                     r"--release arc-agi-3: unknown ARC release; known releases: arc-agi-1-2024, arc-agi-1-2019")
    assert not out.exists()
    # Each paper's number is its model under its rule: TRM's rule for an HRM model is refused, before any work.
    ev = work / "eval-protocol"
    assert_cli_error(evaluate, ["--model", model_dir, "--dataset", dataset_dir, "--output-dir", ev, "--protocol", "trm"],
                     r"--protocol trm is the TRM paper's scoring rule, but the model is HRM \(score it with --protocol hrm\)")
    assert_cli_error(evaluate, ["--model", model_dir, "--dataset", dataset_dir, "--output-dir", ev, "--protocol",
                                "arc-prize"], r"--protocol arc-prize: unknown; expected one of hrm, trm")
    assert not ev.exists()


def test_recipe_refuses_a_dataset_of_another_release(work, dataset_dir):
    """A paper recipe names its ARC release (dataset_release); a dataset built from another release, or from task
    files of no named release, is refused at train time with one line, and nothing is written."""
    arc = work / "arc-2024"
    code, text = run_main(build_arc, ["--output-dir", arc, "--release", "arc-agi-1-2024", "--max-tasks", "2",
                                      "--num-aug", "0", "--quiet"])
    assert code == 0, text
    recipe = Path(__file__).resolve().parents[1] / "training" / "configs" / "trm_arc_agi_2.yaml"
    run = work / "run-release"
    assert_cli_error(train_cli, ["--config", recipe, "--dataset", arc, "--output_dir", run, "--dry_run"],
                     r"the recipe asks for data release arc-agi-2-trm but --dataset .*arc-2024 was built from "
                     r"arc-agi-1-2024; rebuild it with --release arc-agi-2-trm")
    assert_cli_error(train_cli, ["--config", recipe, "--dataset", dataset_dir, "--output_dir", run],
                     r"was built from no named release")
    assert not run.exists()


REPRODUCE_CASES = [
    ("unknown-task", ["sudoku-hard", "hrm", "--dry-run"], r"unknown task 'sudoku-hard'; expected one of sudoku-extreme"),
    ("unknown-model", ["sudoku-extreme", "gpt", "--dry-run"], r"unknown model 'gpt'; expected one of hrm, trm-att, trm-mlp"),
    ("no-published-result", ["maze-hard", "trm-mlp", "--dry-run"], r"no published trm-mlp result on maze-hard"),
    ("arc-without-conceptarc", ["arc-agi-1", "hrm"], r"trains on ConceptARC too: pass --source"),
]


@pytest.mark.parametrize("name,argv,pattern", REPRODUCE_CASES, ids=[c[0] for c in REPRODUCE_CASES])
def test_reproduce_bad_input(work, dataset_dir, name, argv, pattern):
    assert_cli_error(reproduce_cli, [*argv, "--runs-dir", work / "reproduce-runs", "--data-dir", work / "reproduce-data"],
                     pattern)
    assert not (work / "reproduce-runs").exists() and not (work / "reproduce-data").exists()


DEPTH_CURRICULUM_CASES = [
    ("malformed-stage", ["--depth_curriculum", "2-2:0.5"], r"'2-2:0\.5' is not a stage HxL:UNTIL"),
    ("fraction-out-of-range", ["--depth_curriculum", "1x1:1.5"], r"a fraction of max_steps must lie in \(0, 1\)"),
    ("zero-cycles", ["--depth_curriculum", "0x1:0.5"], r"cycles must be >= 1"),
    ("deeper-than-the-model", ["--depth_curriculum", "3x1:0.5", "--H_cycles", "2", "--L_cycles", "2"],
     r"stage 3x1 is deeper than the model's 2x2 cycles"),
    ("stages-out-of-order", ["--depth_curriculum", "1x1:0.5,1x2:0.25", "--H_cycles", "2", "--L_cycles", "2",
                             "--max_steps", "10"], r"stages must end at increasing steps >= 1, got \[5, 2\]"),
    ("never-reaches-the-model-depth", ["--depth_curriculum", "1x1:2"],
     r"the last stage ends at step 2, not before max_steps 2"),
    # time-to-accuracy runs
    ("target-accuracy-above-one", ["--target_exact_accuracy", "95", "--eval_steps", "1"],
     r"target_exact_accuracy must be in \(0, 1\], got 95"),
    ("target-accuracy-without-evaluations", ["--target_exact_accuracy", "0.9", "--set", "training.eval_steps=null"],
     r"target_exact_accuracy needs training\.eval_steps"),
]


@pytest.mark.parametrize("name,extra,pattern", DEPTH_CURRICULUM_CASES, ids=[c[0] for c in DEPTH_CURRICULUM_CASES])
def test_train_bad_depth_curriculum_and_target(train_inputs, name, extra, pattern):
    shutil.rmtree(train_inputs["work"] / "train-out", ignore_errors=True)
    assert_cli_error(train_cli, [*_base(train_inputs), *extra], pattern)
    assert not (train_inputs["work"] / "train-out").exists()


# ---------------------------------------------------------------------------------------------------------
# ARC in a smaller canvas (build_arc_dataset.py --canvas N; a model of seq_len N * N)
# ---------------------------------------------------------------------------------------------------------
ARC_5X5_TEST = {"train": [{"input": [[1, 0]], "output": [[0, 1]]}], "test": [{"input": [[1] * 5] * 5}]}


@pytest.fixture(scope="module")
def canvas_inputs(work) -> dict:
    paths = {"work": work, "tasks": work / "canvas-tasks", "model": work / "canvas-5-model"}
    (paths["tasks"] / "evaluation").mkdir(parents=True, exist_ok=True)
    (paths["tasks"] / "evaluation" / "big.json").write_text(json.dumps(
        {"train": [{"input": [[1] * 4] * 4, "output": [[2] * 4] * 4}], "test": [{"input": [[3] * 9] * 2,
                                                                              "output": [[1]]}]}))
    HRMForPuzzleSolving(HRMConfig(**dict(TINY, vocab_size=12, seq_len=25, num_puzzle_identifiers=3))).save_pretrained(
        paths["model"])
    paths["task-5x5"] = work / "canvas-task-5x5.json"
    paths["task-5x5"].write_text(json.dumps(ARC_5X5_TEST))
    return paths


CANVAS_BUILD_CASES = [
    ("canvas-smaller-than-a-grid", ["--canvas", "8"],
     r"--canvas 8 is too small: task big has a 2x9 grid, which needs a canvas of at least 10"),
    ("canvas-without-room-for-the-border", ["--canvas", "9"], r"--canvas 9 is too small: .* at least 10"),
    ("canvas-too-large", ["--canvas", "31"], r"--canvas must be 2\.\.30, got 31"),
    ("canvas-zero", ["--canvas", "0"], r"--canvas must be 2\.\.30, got 0"),
]


@pytest.mark.parametrize("name,extra,pattern", CANVAS_BUILD_CASES, ids=[c[0] for c in CANVAS_BUILD_CASES])
def test_build_arc_bad_canvas(canvas_inputs, name, extra, pattern):
    out = canvas_inputs["work"] / "canvas-out"
    assert_cli_error(build_arc, ["--output-dir", out, "--arc-dir", canvas_inputs["tasks"], "--num-aug", "0",
                                 "--quiet", *extra], pattern)
    assert not (out / "hrm_dataset.json").exists()


def test_small_canvas_model_refuses_a_grid_that_does_not_fit(canvas_inputs):
    from transformers import pipeline

    from modeling_hrm.solve import solve_arc_task

    pattern = r"an ARC grid of 5x5 needs a canvas of at least 6x6 \(seq_len 36\), but this model's canvas is 5x5"
    model = load_pretrained_model(canvas_inputs["model"])
    assert_raises(ValueError, pattern, pipeline("puzzle-solving", model=model), ARC_5X5_TEST)
    assert_raises(ValueError, pattern, pipeline("puzzle-solving", model=model), [[1] * 5] * 5)  # a bare grid
    assert_raises(ValueError, pattern, solve_arc_task, model, ARC_5X5_TEST)
    assert_raises(ValueError, pattern, model.adapt_to_task, ARC_5X5_TEST)
    assert not getattr(model.config, "adapted_tasks", None)
    assert_cli_error(solve_cli, ["--model", canvas_inputs["model"], "--arc", canvas_inputs["task-5x5"]], pattern)
    assert_cli_error(solve_cli, ["--model", canvas_inputs["model"], "--arc-task", canvas_inputs["task-5x5"],
                                 "--adapt-steps", "1"], pattern)


# ---------------------------------------------------------------------------------------------------------
# Open-world maze options (validation split, path-length buckets, shallow training, --require-open)
# ---------------------------------------------------------------------------------------------------------
OPEN_MAZE_CASES = [
    ("bucket-cannot-be-filled", ["--eval-buckets", "1-2,7+"],  # 5x5 mazes have shortest paths of at most 6 moves
     r"test: path-length bucket '7\+' cannot be filled \(0 of 1 5x5 mazes.*longest shortest path seen: 6 moves\); "
     r"ask for fewer mazes per bucket, a wider bucket"),
    ("bucket-spec-malformed", ["--eval-buckets", "1-2,x"], r"depth bucket 'x' in '1-2,x' is not A, A-B, A\+"),
    ("bucket-spec-overlap", ["--eval-buckets", "1-3,3"], r"depth buckets '1-3' and '3' in '1-3,3' overlap"),
    ("bucket-search-is-sudoku-only", ["--eval-buckets", "1-2,search"],
     r"bucket 'search' is Sudoku's .*maze buckets are path lengths"),
    ("bucket-longer-than-the-grid", ["--eval-buckets", "1-2,9+"],
     r"bucket '9\+' asks for longer paths than a 5x5 maze can have \(at most 8 moves\)"),
    ("bucket-outside-max-path-length", ["--max-path-length", "3", "--eval-buckets", "1-2,5"],
     r"bucket '5' lies outside --min-path-length/--max-path-length \(1\.\.3 moves\)"),
    ("train-max-path-length-zero", ["--train-max-path-length", "0"],
     r"--train-max-path-length 0 is below the shortest path a train maze can have \(1 move\)"),
    ("train-max-path-length-below-min-path", ["--min-path-length", "3", "--train-max-path-length", "2"],
     r"--train-max-path-length 2 is below the shortest path a train maze can have \(3 moves, --min-path-length 3\)"),
    ("num-val-negative", ["--num-val", "-1"], r"--num-val must be >= 0, got -1"),
    ("buckets-with-csv", ["--source", "csv", "--csv-dir", ".", "--eval-buckets", "1-2"],
     r"--eval-buckets selects generated mazes"),
    ("not-open", ["--require-open"],  # 5x5 mazes are a closed world
     r"test split is not open: 1 of 1 eval puzzles \(100\.0%\) are within one step .* \(--no-require-open builds"),
]


@pytest.mark.parametrize("name,extra,pattern", OPEN_MAZE_CASES, ids=[c[0] for c in OPEN_MAZE_CASES])
def test_maze_open_world_bad_input(work, name, extra, pattern):
    out = work / f"open-maze-{name}"
    assert_cli_error(build_maze, ["--output-dir", out, *SMALL_MAZE, *extra], pattern)
    assert not (out / "hrm_dataset.json").exists()
