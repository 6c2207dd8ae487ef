"""The trainer's command line stays what users know: `python training/train.py --help` lists the options of the
snapshot, every shipped config parses to the `RunArguments` it parsed to when the snapshot was taken, and the
training modules import one way (arguments <- data <- loop <- train.py).

The snapshot (`test_training_cli.json`) was taken with the single-file train.py before it was split (issue 24).
When an option or a config changes on purpose, take a new one and commit it with the change:

    python tests/test_training_cli.py --update
"""

import ast
import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT_FILE = Path(__file__).with_suffix(".json")
CONFIG_DIR = REPO / "training" / "configs"
UPDATE = "if the change is intended: python tests/test_training_cli.py --update"
SECTIONS = ("data", "model", "training")


def help_options(help_text: str) -> list[str]:
    """Every option string of an argparse `--help` text, read from the option column only (not the help prose)."""
    options = set()
    for line in help_text.splitlines():
        if line.startswith("  -"):  # an option line; wrapped help prose is indented further
            invocation = re.split(r"\s{2,}", line.strip(), maxsplit=1)[0]  # "-h, --help", "--seed SEED"
            options |= {part.split()[0] for part in invocation.split(", ")}
    return sorted(options)


def take_snapshot(parse_arguments, help_text: str) -> dict:
    """The options of `help_text`, the parsed defaults, and per shipped config the description and the values
    that differ from the defaults."""
    defaults = parse_arguments([])
    default_values = {s: dataclasses.asdict(getattr(defaults, s)) for s in SECTIONS}
    configs = {}
    for path in sorted(CONFIG_DIR.glob("*.yaml")):
        run = parse_arguments(["--config", str(path)])
        configs[path.name] = {"description": run.description, **{
            s: {k: v for k, v in dataclasses.asdict(getattr(run, s)).items() if v != default_values[s][k]}
            for s in SECTIONS}}
    return {"help_options": help_options(help_text), "defaults": default_values, "configs": configs}


SNAPSHOT = json.loads(SNAPSHOT_FILE.read_text()) if SNAPSHOT_FILE.is_file() else {"configs": {}}  # --update writes it


def expected_run_arguments(frozen: dict):
    """The `RunArguments` a snapshot entry stands for: the snapshot's defaults with the entry's values on top."""
    from training.train import DataArguments, ModelArguments, RunArguments, TrainingArguments

    classes = {"data": DataArguments, "model": ModelArguments, "training": TrainingArguments}
    sections = [classes[s](**{**SNAPSHOT["defaults"][s], **frozen.get(s, {})}) for s in SECTIONS]
    return RunArguments(*sections, description=frozen.get("description"))


def test_help_lists_the_options_of_the_snapshot():
    result = subprocess.run([sys.executable, str(REPO / "training" / "train.py"), "--help"], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    listed = help_options(result.stdout)
    assert "--learning_rate" in listed and "--config" in listed and "--hidden_size" in listed  # the reader works
    missing = sorted(set(SNAPSHOT["help_options"]) - set(listed))
    added = sorted(set(listed) - set(SNAPSHOT["help_options"]))
    assert not missing and not added, f"--help lost {missing} and gained {added}; {UPDATE}"


def test_defaults_are_those_of_the_snapshot():
    from training.train import parse_arguments

    assert parse_arguments([]) == expected_run_arguments({}), UPDATE


@pytest.mark.parametrize("name", sorted(set(SNAPSHOT["configs"]) | {p.name for p in CONFIG_DIR.glob("*.yaml")}))
def test_config_parses_as_in_the_snapshot(name):
    from training.train import parse_arguments

    path = CONFIG_DIR / name
    if name not in SNAPSHOT["configs"]:
        pytest.skip(f"{name} was added after the snapshot; {UPDATE}")
    assert path.is_file(), f"{name} is in the snapshot but not in training/configs/; {UPDATE}"
    assert parse_arguments(["--config", str(path)]) == expected_run_arguments(SNAPSHOT["configs"][name]), UPDATE


def test_the_snapshot_reader_sees_a_changed_value():
    frozen = SNAPSHOT["configs"]["sudoku_cpu.yaml"]
    changed = {**frozen, "training": {**frozen["training"], "seed": frozen["training"].get("seed", 0) + 1}}
    assert expected_run_arguments(changed) != expected_run_arguments(frozen)


def test_help_reader_takes_options_not_prose():
    text = ("options:\n  -h, --help            show this help\n  --seed SEED           seed (--not_an_option)\n"
            "  --model_type {hrm,trm}\n                        which model, see --init_from\n"
            "  --compile [COMPILE], --no-compile [COMPILE]\n")
    assert help_options(text) == ["--compile", "--help", "--model_type", "--no-compile", "--seed", "-h"]


# Each module may import only the ones to its left: arguments <- data <- loop <- train.
TRAINING_MODULES = ("arguments", "data", "loop", "train")


@pytest.mark.parametrize("module", TRAINING_MODULES)
def test_training_modules_import_one_way(module):
    later = {f"training.{m}" for m in TRAINING_MODULES[TRAINING_MODULES.index(module) + 1:]}
    path = REPO / "training" / f"{module}.py"
    imported = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):  # at any depth: inside functions too
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module == "training":
            imported |= {f"training.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    assert not imported & later, f"training/{module}.py imports {sorted(imported & later)}"


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        raise SystemExit(__doc__)
    sys.path.insert(0, str(REPO))
    from training.train import parse_arguments

    help_text = subprocess.run([sys.executable, str(REPO / "training" / "train.py"), "--help"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout
    SNAPSHOT_FILE.write_text(json.dumps(take_snapshot(parse_arguments, help_text), indent=1, sort_keys=True) + "\n")
    print(f"wrote {SNAPSHOT_FILE.relative_to(REPO)}")
