"""Arguments and validation of training/train.py, in-process (no training): the dataclass arguments parsed by
HfArgumentParser (YAML + command line), `--help`, every shipped config, the round trip of train_config.yaml, and
the one-line errors (exit code 2) for configurations that cannot work, found before any work starts."""

import dataclasses
import json
import subprocess
from pathlib import Path

import pytest
import torch
import yaml

from training.train import (ConfigError, RunArguments, check_arguments, main, model_classes, parse_arguments,
                            resolve_model_config)
from training_fixtures import PYTHON, REPO, TINY_MODEL, TINY_TRM, TRAIN, subprocess_env, write_tiny_sudoku

CONFIGS = sorted((REPO / "training" / "configs").glob("*.yaml"))
BASE = ["--dataset", "d", "--output_dir", "o", "--max_steps", "5"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_tiny_sudoku(tmp_path_factory.mktemp("data") / "sudoku4")


def tiny(dataset, out, *extra, model=None, base=TINY_MODEL):
    args = ["--dataset", str(dataset), "--output_dir", str(out), "--max_steps", "3", "--global_batch_size", "16"]
    for key, value in {**base, **(model or {})}.items():
        args += ["--model_type" if key == "type" else f"--{key}", str(value)]
    return args + list(extra)


# ---------------------------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------------------------
def test_help_lists_every_option_with_default_and_help(capsys):
    from training.train import SECTIONS

    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # undo argparse's line wrapping
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            assert f"--{f.name} " in text, f.name
            assert f.metadata.get("help"), f"{section}.{f.name} has no help text"
    for option in ("--output_dir", "--max_steps", "--resume_from_checkpoint", "--push_to_hub", "--hub_model_id",
                   "--init_from", "--config", "--set", "--model_type {hrm,trm}", "--hidden_size", "--mlp_t"):
        assert option in text, option
    assert "peak learning rate of the weights (default: 0.0001)" in text
    assert "(default: None, i.e. the config's: hrm 512, trm 512)" in text  # model fields show the class defaults


def test_yaml_then_command_line_layering(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("dataset: from_yaml\nmodel:\n  type: trm\n  hidden_size: 64\n  mlp_t: true\n"
                        "training:\n  learning_rate: 1.0e-3\n  ema_decay: 0.999\n  max_steps: 9\n  compile: false\n")
    args = parse_arguments(["--config", str(cfg_file), "--output_dir", "o", "--learning_rate", "3e-4",
                            "--set", "model.H_cycles=3", "--set", "training.ema_decay=null", "--compile",
                            "--L_cycles", "4"])
    assert args.data.dataset == "from_yaml"
    assert args.model.model_type == "trm"
    assert args.model.overrides() == {"hidden_size": 64, "mlp_t": True, "H_cycles": 3, "L_cycles": 4}
    t = args.training
    assert t.learning_rate == pytest.approx(3e-4) and t.max_steps == 9 and isinstance(t.max_steps, int)
    assert t.ema_decay is None and t.compile is True and t.optimizer == "adam_atan2"
    # YAML 1.1 reads `1e-4` (no dot) as a string: it still becomes a float through the option's type.
    cfg_file.write_text("training:\n  learning_rate: 1e-4\n")
    assert parse_arguments(["--config", str(cfg_file)]).training.learning_rate == pytest.approx(1e-4)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_shipped_config_loads(path):
    args = parse_arguments(["--config", str(path), "--output_dir", "o", "--dataset", "d"])
    assert args.training.max_steps or args.training.epochs, path
    assert args.description, f"{path.name} has no description"
    # The model section builds a valid config of its class (shapes of a 9×9 Sudoku set; no weights made).
    meta = {"vocab_size": 11, "seq_len": 81, "num_puzzle_identifiers": 1}
    model_class, config, _ = resolve_model_config(args.model, meta, None)
    assert config.model_type == (args.model.model_type or "hrm")
    assert model_class is model_classes()[config.model_type][1]
    if path.stem.startswith("trm_"):
        assert config.model_type == "trm" and args.training.ema_decay, f"{path.name}: TRM recipes train with EMA"


def test_shipped_configs_include_the_recipes():
    names = {p.stem for p in CONFIGS}
    assert {"sudoku_cpu", "sudoku_extreme_1k", "maze_30x30_hard_1k", "baseline_transformer", "trm_sudoku_cpu",
            "trm_sudoku_extreme_1k_mlp", "trm_sudoku_extreme_1k_att", "trm_maze_30x30_hard_1k"} <= names


def test_train_config_round_trips(tmp_path):
    first = parse_arguments(["--config", str(REPO / "training/configs/trm_sudoku_cpu.yaml"), "--output_dir", "o",
                             "--dataset", "d", "--hidden_size", "32", "--ema_decay", "0.9", "--eval_early_exit"])
    saved = tmp_path / "train_config.yaml"
    saved.write_text(yaml.safe_dump(first.to_dict(), sort_keys=False))
    again = parse_arguments(["--config", str(saved)])
    assert again.to_dict() == first.to_dict()
    assert (again.data, again.model, again.training) == (first.data, first.model, first.training)


@pytest.mark.parametrize("argv, match", [
    (BASE + ["--max_steps", "abc"], r"argument --max_steps.*invalid int value: 'abc'"),
    (BASE + ["--learning_rate", "fast"], r"--learning_rate.*invalid float value"),
    (BASE + ["--optimizer", "sgd"], r"--optimizer.*invalid choice: 'sgd'"),
    (BASE + ["--lerning_rate", "3"], r"unknown option --lerning_rate \(did you mean --learning_rate\?\)"),
    (BASE + ["--set", "model.hiden_size=3"], r"unknown model key 'hiden_size' \(did you mean 'hidden_size'\?\)"),
    (BASE + ["--set", "training.lerning_rate=3"], r"unknown training key 'lerning_rate'"),
    (BASE + ["--set", "training.hidden_size=3"], r"'hidden_size' is a model key, not a training key"),
    (BASE + ["--set", "hidden_size=3"], r"expected SECTION.KEY=VALUE"),
    (BASE + ["--model_type", "gpt"], r"--model_type.*invalid choice: 'gpt'"),
    (BASE + ["--compile", "maybe"], r"--compile"),
    (BASE + ["stray"], r"unexpected argument 'stray'"),
    (BASE + ["--config", str(REPO / "training")], r"a folder, not a YAML file"),
    (BASE + ["--config", str(REPO / "training" / "nothing.yaml")], r"nothing.yaml: no such file"),
])
def test_bad_arguments_name_the_problem(argv, match):
    with pytest.raises(ConfigError, match=match):
        parse_arguments(argv)


@pytest.mark.parametrize("text, match", [
    ("training:\n  max_steps: [3\n", r"not valid YAML at line \d+"),
    ("training:\n  max_steps: abc\n", r"\.yaml: argument --max_steps.*'abc'"),
    ("training:\n  max_steps: [3, 4]\n", r"training.max_steps must be a single value"),
    ("training:\n  lerning_rate: 0.1\n", r"unknown training key 'lerning_rate' \(did you mean 'learning_rate'\?\)"),
    ("model:\n  hidden: 3\n", r"unknown model key 'hidden'"),
    ("model:\n  type: gpt\n", r"invalid choice: 'gpt'"),
    ("optimizer: adamw\n", r"unknown top-level keys \['optimizer'\]"),
    ("- a\n- b\n", r"expected a mapping"),
    ("training: 3\n", r"the training section must be a mapping"),
])
def test_bad_yaml_names_file_and_key(tmp_path, text, match):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match) as info:
        parse_arguments(["--config", str(path)])
    assert str(path) in str(info.value) and "\n" not in str(info.value)


# ---------------------------------------------------------------------------------------------------------------
# Validation before any work (check_arguments): one line, exit code 2
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_folders(tmp_path_factory, dataset):
    """A saved tiny HRM for the dataset, one with another seq_len, and a pickle-only folder."""
    from modeling_hrm import HRMConfig, HRMForPuzzleSolving

    root = tmp_path_factory.mktemp("models")
    meta = json.loads((dataset / "hrm_dataset.json").read_text())
    good = HRMForPuzzleSolving(HRMConfig.from_dataset_metadata(meta, **TINY_MODEL))
    good.save_pretrained(root / "good")
    other = HRMForPuzzleSolving(HRMConfig.from_dataset_metadata({**meta, "seq_len": 36}, **TINY_MODEL))
    other.save_pretrained(root / "seq36")
    good.save_pretrained(root / "pickle")
    (root / "pickle" / "model.safetensors").unlink()
    torch.save(good.state_dict(), root / "pickle" / "pytorch_model.bin")
    return root


def _corrupt_copy(dataset, tmp_path):
    import shutil

    copy = tmp_path / "corrupt"
    if not copy.exists():
        shutil.copytree(dataset, copy)
        shard = copy / "data" / "test-00000-of-00001.parquet"
        shard.write_bytes(shard.read_bytes()[:100])  # truncated
    return copy


def _case(name, dataset, folders, tmp_path):
    out = tmp_path / "out"
    cases = {
        "negative learning rate": (tiny(dataset, out, "--learning_rate", "-1e-3"), r"learning_rate must be .*>= 0"),
        "batch larger than dataset": (tiny(dataset, out, "--global_batch_size", "4096"),
                                      r"global batch 4096 is larger than the train split \(256 rows"),
        "dataset missing": (tiny(tmp_path / "nowhere", out), r"--dataset .*nowhere: no such folder"),
        "dataset is a model folder": (tiny(folders / "good", out), r"a model folder, not a dataset"),
        "init_from missing": (tiny(dataset, out, "--init_from", str(tmp_path / "gone")), r"not found.*gone"),
        "init_from pickle only": (tiny(dataset, out, "--init_from", str(folders / "pickle")), r"pickle"),
        "init_from other seq_len": (tiny(dataset, out, "--init_from", str(folders / "seq36")),
                                    r"seq_len=36 but the dataset has 16"),
        "num_heads not dividing": (tiny(dataset, out, model={"num_heads": 3}), r"hidden_size \(32\).*num_heads \(3\)"),
        "H_cycles zero": (tiny(dataset, out, model={"H_cycles": 0}), r"HRMConfig.H_cycles must be an integer >= 1"),
        "seq_len contradicts dataset": (tiny(dataset, out, model={"seq_len": 81}), r"seq_len=81 contradicts the dataset"),
        "TRM field on HRM": (tiny(dataset, out, model={"mlp_t": True}), r"model.mlp_t is not a field of HRMConfig"),
        "mlp_t with rope": (tiny(dataset, out, model={"mlp_t": True}, base=TINY_TRM), r"mlp_t.*RoPE"),
        "H_layers on TRM": (tiny(dataset, out, model={"H_layers": 2}, base=TINY_TRM),
                            r"model.H_layers is not a field of TRMConfig"),
        "output_dir is a file": (tiny(dataset, tmp_path / "file.txt"), r"file.txt is a file, not a folder"),
        "resume missing": (tiny(dataset, out, "--resume_from_checkpoint", str(tmp_path / "ck")), r"no such folder"),
        "no steps": (["--dataset", str(dataset), "--output_dir", str(out)], r"max_steps or training.epochs"),
        "fp16 on CPU": (tiny(dataset, out, "--mixed_precision", "fp16"), r"fp16 needs a CUDA GPU"),
        "push without id": (tiny(dataset, out, "--push_to_hub"), r"hub_model_id"),
        "malformed hub id": (tiny(dataset, out, "--push_to_hub", "--hub_model_id", "a b/c"),
                             r"--hub_model_id must look like 'owner/name'"),
        "negative seed": (tiny(dataset, out, "--seed", "-3"), r"training.seed must be in \[0, 2\*\*32\), got -3"),
        "corrupt parquet shard": (tiny(_corrupt_copy(dataset, tmp_path), out),
                                  r"data/test-00000-of-00001.parquet is not a readable parquet file"),
    }
    return cases[name]


CASES = ["negative learning rate", "batch larger than dataset", "dataset missing", "dataset is a model folder",
         "init_from missing", "init_from pickle only", "init_from other seq_len", "num_heads not dividing",
         "H_cycles zero", "seq_len contradicts dataset", "TRM field on HRM", "mlp_t with rope", "H_layers on TRM", "output_dir is a file",
         "resume missing", "no steps", "fp16 on CPU", "push without id", "malformed hub id", "negative seed",
         "corrupt parquet shard"]


@pytest.mark.parametrize("name", CASES)
def test_configuration_that_cannot_work_is_one_line_exit_2(name, dataset, model_folders, tmp_path, capsys):
    if name == "fp16 on CPU" and torch.cuda.is_available():
        pytest.skip("fp16 is allowed on a GPU")
    (tmp_path / "file.txt").write_text("not a folder")
    argv, match = _case(name, dataset, model_folders, tmp_path)
    with pytest.raises(ValueError, match=match):
        check_arguments(parse_arguments(argv), num_processes=1)
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()  # nothing was written


def test_valid_configuration_resolves_without_work(dataset, model_folders, tmp_path):
    plan = check_arguments(parse_arguments(tiny(dataset, tmp_path / "out", base=TINY_TRM)), num_processes=1)
    assert plan.model_config.model_type == "trm" and plan.model_config.seq_len == 16
    assert plan.global_batch == 16 and plan.init_folder is None
    # --init_from: the saved model's type and shapes; behaviour keys may change, the puzzle table follows the data.
    args = parse_arguments(["--dataset", str(dataset), "--output_dir", str(tmp_path / "ft"), "--max_steps", "1",
                            "--global_batch_size", "16", "--init_from", str(model_folders / "good"),
                            "--halt_max_steps", "5"])
    plan = check_arguments(args, num_processes=1)
    assert plan.init_folder == model_folders / "good" and plan.model_config.halt_max_steps == 5
    assert plan.model_config.hidden_size == 32
    args.model.hidden_size = 64
    with pytest.raises(ConfigError, match="architecture keys must match"):
        check_arguments(args, num_processes=1)
    args.model.hidden_size, args.model.model_type = None, "trm"
    with pytest.raises(ConfigError, match="a hrm model, but model.type is trm"):
        check_arguments(args, num_processes=1)
    assert not (tmp_path / "out").exists() and not (tmp_path / "ft").exists()


def test_mixed_precision_bf16_is_the_models_bf16_forward(dataset, tmp_path):
    """bf16 = the original's bf16 (model.forward_dtype bfloat16, no Accelerate autocast on top); an explicit
    forward_dtype float32 keeps Accelerate's autocast; fp32 runs say float32 even for a bf16 checkpoint."""
    plan = check_arguments(parse_arguments(tiny(dataset, tmp_path, "--mixed_precision", "bf16")), num_processes=1)
    assert plan.model_config.forward_dtype == "bfloat16" and plan.accelerate_precision == "no"
    plan = check_arguments(parse_arguments(tiny(dataset, tmp_path, "--mixed_precision", "bf16", "--forward_dtype",
                                                "float32")), num_processes=1)
    assert plan.model_config.forward_dtype == "float32" and plan.accelerate_precision is None
    plan = check_arguments(parse_arguments(tiny(dataset, tmp_path)), num_processes=1)
    assert plan.model_config.forward_dtype == "float32" and plan.accelerate_precision is None


def test_cli_exit_code_2_without_traceback_and_debug_shows_it(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("training:\n  max_steps: [3\n")
    proc = subprocess.run([PYTHON, TRAIN, "--config", str(bad)], capture_output=True, text=True, cwd=REPO,
                          env=subprocess_env(), timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "not valid YAML" in proc.stderr
    with pytest.raises(ConfigError, match="not valid YAML"):  # --debug: the exception propagates (traceback)
        main(["--config", str(bad), "--debug"])


def test_run_arguments_dict_has_the_yaml_layout():
    args = parse_arguments(BASE + ["--hidden_size", "64"])
    assert isinstance(args, RunArguments)
    d = args.to_dict()
    assert list(d) == ["dataset", "model", "training"]
    assert d["model"] == {"type": "hrm", "hidden_size": 64} and d["training"]["max_steps"] == 5
