"""One command per published result: build the exact dataset, train with the paper's recipe, evaluate with the
paper's protocol (the engine of `scripts/reproduce.sh`).

    bash scripts/reproduce.sh TASK MODEL [--dry-run] [options]
    TASK:  sudoku-extreme | maze-hard | arc-agi-1 | arc-agi-2
    MODEL: hrm | trm-att | trm-mlp

`--dry-run` prints the plan (the recipe, the dataset and its build command, steps, epochs, evaluation points and
the expected H200 GPU-hours from the step times measured in benchmarks/results/gpu/) without building anything.
Without it the three commands run in turn; a dataset folder already built by the same command is reused, and
training resumes from the newest checkpoint of its output folder.

Each paper's published number comes from its original code, whose data and scoring this plan follows:
the Hub CSVs for Sudoku-Extreme (1000 puzzles x 1000 augmentations) and Maze-30x30-Hard-1k (no augmentation, as
both builders), the 2024-corrected ARC-AGI-1 files, HRM's and TRM's own ARC-AGI-2 evaluation sets, ConceptARC in
the ARC training sets the originals use it in, and `hrm-evaluate --protocol hrm|trm` (docs/REPRODUCE.md).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TASKS = ("sudoku-extreme", "maze-hard", "arc-agi-1", "arc-agi-2")
MODELS = ("hrm", "trm-att", "trm-mlp")
GPU_FIGURES = ROOT / "benchmarks" / "results" / "gpu" / "gpu_figures.jsonl"
#: Where a build reads its puzzles when --source is not given (ARC: ConceptARC has no default location).
HUB_SOURCES = {"sudoku-extreme": "sapientinc/sudoku-extreme", "maze-hard": "sapientinc/maze-30x30-hard-1k"}
SOURCE_PLACEHOLDER = {"arc": "PATH/TO/arc-agi_concept_challenges.json"}


@dataclass(frozen=True)
class DataPlan:
    """A dataset as an original code builds it, and the sizes a step count and an evaluation follow from."""

    folder: str
    script: str
    args: tuple[str, ...]  # "{source}" stands for the CSV folder / Hub id or the ConceptARC file
    groups: int  # training groups: puzzles (Sudoku, maze) or tasks (ARC)
    train_rows: int
    train_puzzles: int  # sampled units: rows (Sudoku, maze: one per augmentation) or ARC versions
    test_rows: int  # rows evaluated once per evaluation
    counted: str  # where the sizes come from
    vocab_size: int = 12
    seq_len: int = 900

    def command(self, source: str | None) -> list[str]:
        args = [a.replace("{source}", source) if source else a for a in self.args]
        return ["python", f"dataset_scripts/{self.script}", "--output-dir", self.folder, *args]


@dataclass(frozen=True)
class Result:
    """One published number and how to reproduce it."""

    paper: str
    published: float  # percent
    metric: str  # key of hrm-evaluate's results.json
    recipe: str  # file in training/configs/
    data: DataPlan
    protocol: str
    eval_interval: int  # epochs between evaluations in the original's command (its `eval_interval`)
    note: str = ""
    source_required: bool = field(default=False)


_SUDOKU = DataPlan("data/sudoku-extreme-1k-aug-1000", "build_sudoku_dataset.py",
                   ("--source", "csv", "--csv-dir", "{source}", "--subsample-size", "1000", "--num-aug", "1000"),
                   groups=1000, train_rows=1_001_000, train_puzzles=1_001_000, test_rows=422_786,
                   counted="the Hub set: 1000 subsampled puzzles, 422,786 test puzzles", vocab_size=11, seq_len=81)
_MAZE = DataPlan("data/maze-30x30-hard-1k", "build_maze_dataset.py", ("--source", "csv", "--csv-dir", "{source}"),
                 groups=1000, train_rows=1000, train_puzzles=1000, test_rows=1000,
                 counted="the Hub set: 1000 train and 1000 test mazes", vocab_size=6)
# ARC sizes: `build_arc_dataset.py ... --seed 0 --count-only` (the same draws as the build, nothing written).
_ARC1 = DataPlan("data/arc-agi-1-aug-1000", "build_arc_dataset.py",
                 ("--release", "arc-agi-1-2024", "--extra-tasks", "{source}", "--num-aug", "1000",
                  "--allow-demo-variants"),
                 groups=960, train_rows=3_632_289, train_puzzles=876_697, test_rows=385_815,
                 counted="build_arc_dataset.py --count-only, seed 0: 960 tasks, 876,697 versions, 3,632,289 "
                         "train rows")
_ARC2_HRM = DataPlan("data/arc-agi-2-aug-1000", "build_arc_dataset.py",
                     ("--release", "arc-agi-2-hrm", "--num-aug", "1000", "--allow-demo-variants"),
                     groups=1120, train_rows=4_342_655, train_puzzles=1_046_122, test_rows=165_386,
                     counted="build_arc_dataset.py --count-only, seed 0: 1120 tasks, 1,046,122 versions, 4,342,655 "
                             "train rows")
_ARC2_TRM = DataPlan("data/arc-agi-2-concept-aug-1000", "build_arc_dataset.py",
                     ("--release", "arc-agi-2-trm", "--extra-tasks", "{source}", "--num-aug", "1000",
                      "--allow-demo-variants"),
                     groups=1280, train_rows=5_164_143, train_puzzles=1_192_014, test_rows=170_393,
                     counted="build_arc_dataset.py --count-only, seed 0: 1280 tasks, 1,192,014 versions, 5,164,143 "
                             "train rows")

HRM_PAPER, TRM_PAPER = "HRM (Wang et al. 2025, arXiv 2506.21734)", "TRM (Jolicoeur-Martineau 2025, arXiv 2510.04871)"
RESULTS = {
    ("sudoku-extreme", "hrm"): Result(HRM_PAPER, 55.0, "exact_accuracy", "sudoku_extreme_1k.yaml", _SUDOKU, "hrm",
                                      2000),
    ("sudoku-extreme", "trm-att"): Result(TRM_PAPER, 74.7, "exact_accuracy", "trm_sudoku_extreme_1k_att.yaml",
                                          _SUDOKU, "trm", 5000, note="TRM README: ~75% +- 2"),
    ("sudoku-extreme", "trm-mlp"): Result(TRM_PAPER, 87.4, "exact_accuracy", "trm_sudoku_extreme_1k_mlp.yaml",
                                          _SUDOKU, "trm", 5000),
    ("maze-hard", "hrm"): Result(HRM_PAPER, 74.5, "exact_accuracy", "maze_30x30_hard_1k.yaml", _MAZE, "hrm", 2000),
    ("maze-hard", "trm-att"): Result(TRM_PAPER, 85.3, "exact_accuracy", "trm_maze_30x30_hard_1k.yaml", _MAZE, "trm",
                                     5000),
    ("arc-agi-1", "hrm"): Result(HRM_PAPER, 40.3, "pass@2", "arc_agi_1.yaml", _ARC1, "hrm", 10000,
                                 source_required=True),
    ("arc-agi-1", "trm-att"): Result(TRM_PAPER, 44.6, "pass@2", "trm_arc_agi_1.yaml", _ARC1, "trm", 10000,
                                     source_required=True),
    ("arc-agi-2", "hrm"): Result(HRM_PAPER, 5.0, "pass@2", "arc_agi_2.yaml", _ARC2_HRM, "hrm", 10000),
    ("arc-agi-2", "trm-att"): Result(TRM_PAPER, 7.8, "pass@2", "trm_arc_agi_2.yaml", _ARC2_TRM, "trm", 10000,
                                     source_required=True),
}


def lookup(task: str, model: str) -> Result:
    """The published result of `model` on `task`; `ValueError` (one line) for a pair without one."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; expected one of {', '.join(MODELS)}")
    if (task, model) not in RESULTS:
        raise ValueError(f"no published {model} result on {task} to reproduce (the TRM paper's MLP variant is "
                         f"reported on Sudoku-Extreme only, TRM_SPEC.md §5); use trm-att")
    return RESULTS[(task, model)]


def load_recipe(result: Result) -> dict:
    from dataset_scripts.validation import load_yaml  # a key given twice is refused, as train.py refuses it

    return load_yaml((ROOT / "training" / "configs" / result.recipe).read_text())


def model_config(recipe: dict, data: DataPlan, **overrides):
    """The recipe's model config at the dataset's shapes (for FLOP counts), with `overrides`."""
    from modeling_hrm import MODEL_CLASSES

    fields = dict(recipe["model"])
    config_class = MODEL_CLASSES[fields.pop("type", "hrm")][0]
    fields.update(vocab_size=data.vocab_size, seq_len=data.seq_len, num_puzzle_identifiers=1)
    fields.update(overrides)
    return config_class(**fields)


def measured_rates(path: Path = GPU_FIGURES) -> dict:
    """{kind: (training figure, solve figure or None)} of the eager bf16 H200 measurements, kind = hrm|trm|trm-mlp."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rates: dict[str, dict] = {}
    for row in rows:
        if row.get("dtype") != "bf16" or row.get("compile"):
            continue
        kind = {"hrm": "hrm", "trm": "trm", "trm-mlp_t": "trm-mlp"}.get(row["model"])
        if kind is None:
            continue
        slot = rates.setdefault(kind, {})
        slot["solve" if row.get("benchmark") == "solve" else "train"] = row
    return rates


def _reference_config(row: dict, recipe: dict):
    """The configuration a benchmark row measured: the recipe's model at the benchmark's width, depth and cycles,
    on Sudoku shapes (the row's seq_len also counts the puzzle-embedding positions)."""
    layers = {"L_layers": row["layers"]} | ({"H_layers": row["layers"]} if row["model"] == "hrm" else {})
    return model_config(recipe, _SUDOKU, hidden_size=row["hidden_size"], H_cycles=row["cycles"][0],
                        L_cycles=row["cycles"][1], mlp_t=row["model"] == "trm-mlp_t", **layers)


def gpu_hours(recipe: dict, data: DataPlan, steps: int, evaluations: int, global_batch: int) -> dict:
    """Expected H200 hours of `steps` training steps and `evaluations` passes over the test split: the measured
    eager bf16 step and solve times (benchmarks/results/gpu/) scaled by the FLOP ratio of this recipe's model and
    sequence to the measured one (1.0 for the Sudoku recipes, which are the measured shapes)."""
    from modeling_hrm.flops import segment_flops, training_step_flops

    config = model_config(recipe, data)
    kind = "hrm" if config.model_type == "hrm" else "trm-mlp" if config.mlp_t else "trm"
    rates = measured_rates()
    if kind not in rates or "train" not in rates[kind]:
        return {"note": f"no measured bf16 step time for {kind} in {GPU_FIGURES.relative_to(ROOT)}"}
    train_row = rates[kind]["train"]
    reference = _reference_config(train_row, recipe)
    scale = training_step_flops(config, global_batch) / training_step_flops(reference, train_row["batch_size"])
    step_s = train_row["step_time_s"] * scale
    solve_row = rates[kind].get("solve") or rates.get("trm", {}).get("solve")  # TRM-MLP: TRM's, scaled by FLOPs
    eval_s = 0.0
    if solve_row is not None:
        solve_ref = _reference_config(solve_row, recipe)
        per_row = (segment_flops(config) / segment_flops(solve_ref)) / solve_row["puzzles_per_s"]
        eval_s = evaluations * data.test_rows * per_row * config.halt_max_steps / solve_row["segments"]
    return {"step_seconds": round(step_s, 4), "train_hours": round(steps * step_s / 3600, 1),
            "eval_hours": round(eval_s / 3600, 1), "total_hours": round((steps * step_s + eval_s) / 3600, 1),
            "flop_scale_vs_measured": round(scale, 3), "measured": f"{train_row['device']}, {train_row['model']} bf16 "
            f"eager, {train_row['step_time_s'] * 1000:.1f} ms/step at batch {train_row['batch_size']}"}


def plan(task: str, model: str, source: str | None = None, runs_dir: str = "runs") -> dict:
    """Everything `--dry-run` prints: no file is read but the recipe and the measured step times."""
    result = lookup(task, model)
    recipe = load_recipe(result)
    training = recipe["training"]
    batch = int(training["global_batch_size"])
    epochs = float(training["epochs"])
    # The originals' optimizer steps: the run is epochs / eval_interval passes ("iterations") over eval_interval
    # epochs of data, each cut into full global batches (the last partial one dropped), an evaluation after each.
    rows_per_epoch = result.data.groups * result.data.train_rows / result.data.train_puzzles
    evaluations = round(epochs / result.eval_interval)
    eval_steps = int(result.eval_interval * rows_per_epoch / batch)
    steps = evaluations * eval_steps
    points = [eval_steps * (i + 1) for i in range(evaluations)]
    source_text = source or HUB_SOURCES.get(task) or SOURCE_PLACEHOLDER["arc"]
    run_dir = f"{runs_dir}/{task}-{model}"
    aggregated = result.protocol == "trm" and task.startswith("arc")  # hrm-evaluate scores every checkpoint again
    evaluate_target = run_dir if aggregated else f"{run_dir}/model"
    passes = len(points) + (len(points) if aggregated else 1)  # evaluations in training + the final scoring
    return {
        "task": task, "model": model, "paper": result.paper, "published": result.published, "metric": result.metric,
        "note": result.note, "recipe": f"training/configs/{result.recipe}", "protocol": result.protocol,
        "dataset": result.data.folder, "build": result.data.command(source_text),
        "dataset_release": recipe.get("dataset_release"), "sizes": result.data.counted,
        "epochs": epochs, "global_batch_size": batch, "steps_per_epoch": round(rows_per_epoch / batch, 4),
        "steps": steps, "eval_steps": eval_steps, "evaluation_points": points,
        "save_total_limit": training.get("save_total_limit"),
        "train": ["python", "training/train.py", "--config", f"training/configs/{result.recipe}", "--dataset",
                  result.data.folder, "--output_dir", run_dir, "--resume_from_checkpoint", "latest"],
        "evaluate": ["hrm-evaluate", "--model", evaluate_target, "--dataset", result.data.folder, "--split", "test",
                     "--protocol", result.protocol, "--scaling-steps", "none", "--output-dir", f"{run_dir}/eval"],
        "gpu_hours_h200": gpu_hours(recipe, result.data, steps, passes, batch),
    }


def format_plan(p: dict) -> str:
    hours = p["gpu_hours_h200"]
    lines = [f"{p['task']} x {p['model']}: {p['paper']} reports {p['published']}% ({p['metric']}"
             + (f"; {p['note']}" if p["note"] else "") + ")",
             f"recipe      {p['recipe']} (protocol {p['protocol']}"
             + (f", data release {p['dataset_release']}" if p["dataset_release"] else "") + ")",
             f"dataset     {p['dataset']}  ({p['sizes']})",
             f"build       {shlex.join(p['build'])}",
             f"train       {shlex.join(p['train'])}",
             f"            {p['epochs']:g} epochs x {p['steps_per_epoch']} steps per epoch = {p['steps']:,} steps "
             f"at global batch {p['global_batch_size']}",
             f"            {len(p['evaluation_points'])} evaluations, every {p['eval_steps']:,} steps: "
             + ", ".join(f"{s:,}" for s in p["evaluation_points"]),
             f"evaluate    {shlex.join(p['evaluate'])}"]
    if "total_hours" in hours:
        lines.append(f"GPU-hours   ~{hours['total_hours']:g} H200-hours ({hours['train_hours']:g} training at "
                     f"{hours['step_seconds'] * 1000:.0f} ms/step + {hours['eval_hours']:g} evaluating), from "
                     f"{hours['measured']}" + (f" x {hours['flop_scale_vs_measured']} (FLOP ratio to this recipe)"
                                               if hours["flop_scale_vs_measured"] != 1.0 else ""))
    else:
        lines.append(f"GPU-hours   unknown: {hours['note']}")
    return "\n".join(lines)


def _build_matches(folder: Path, command: list[str]) -> bool:
    """An existing dataset folder was built by this command (its hrm_dataset.json's build_command)."""
    meta = json.loads((folder / "hrm_dataset.json").read_text())
    recorded = shlex.split(meta.get("build_command", ""))
    return recorded[-len(command) + 2:] == command[2:]  # the arguments; the interpreter's spelling may differ


def _step(name: str, command: list[str], code: int) -> None:
    if code != 0:
        raise subprocess.CalledProcessError(code, command)
    print(f"reproduce: {name} done", flush=True)


def run(p: dict, *, source: str | None, build_args: list[str], train_args: list[str], eval_args: list[str],
        launcher: list[str] | None) -> dict:
    """Build (or reuse), train, evaluate; returns the evaluation results (the published number is printed beside).

    The steps run in this process (one interpreter start instead of three), training too unless `launcher`
    (e.g. `accelerate launch --num_processes 8`) starts it."""
    import importlib

    from dataset_scripts.common import run_cli
    from training.hrm_evaluate import main as evaluate_main
    from training.train import main as train_main

    if lookup(p["task"], p["model"]).source_required and not source:
        raise ValueError(f"{p['task']} with {p['model']} trains on ConceptARC too: pass --source "
                         f"PATH/TO/arc-agi_concept_challenges.json (or the ConceptARC repository's corpus/ folder)")
    build = p["build"] + build_args
    folder = ROOT / p["dataset"]  # an absolute --data-dir stays as it is
    if (folder / "hrm_dataset.json").is_file():
        if not _build_matches(folder, build):
            raise ValueError(f"{p['dataset']} holds a dataset built by another command; remove it or pass another "
                             f"--data-dir")
        print(f"reusing {p['dataset']} (built by the same command)", flush=True)
    else:
        builder = importlib.import_module("dataset_scripts." + Path(build[1]).stem)
        _step("build", build, run_cli(builder.main, build[2:]))
    train = p["train"] + train_args
    if launcher:
        _step("training", train, subprocess.run(launcher + train[1:], cwd=ROOT).returncode)
    else:
        _step("training", train, train_main(train[2:]))
    evaluate = p["evaluate"] + eval_args
    _step("evaluation", evaluate, evaluate_main(evaluate[1:]))
    results = json.loads((ROOT / p["evaluate"][p["evaluate"].index("--output-dir") + 1] / "results.json").read_text())
    got = 100 * float(results[p["metric"]])
    print(f"{p['task']} x {p['model']}: {p['metric']} {got:.2f}% (protocol {p['protocol']}); published "
          f"{p['published']}%", flush=True)
    return results


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reproduce.sh", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("task", metavar="TASK", help=" | ".join(TASKS))
    parser.add_argument("model", metavar="MODEL", help=" | ".join(MODELS))
    parser.add_argument("--dry-run", action="store_true", help="print the plan; build, train and evaluate nothing")
    parser.add_argument("--json", action="store_true", help="with --dry-run: the plan as JSON")
    parser.add_argument("--source", default=None,
                        help="Sudoku / maze: a local folder with the Hub CSVs (default: the Hub id); ARC: the "
                             "ConceptARC challenges JSON or corpus/ folder")
    parser.add_argument("--data-dir", default=None, help="build the dataset here instead of the recipe's data/ folder")
    parser.add_argument("--runs-dir", default="runs", help="training output goes to RUNS_DIR/TASK-MODEL (default runs)")
    parser.add_argument("--launcher", default=None,
                        help="how to start training/train.py, e.g. 'accelerate launch --num_processes 8' "
                             "(default: this Python, one process)")
    parser.add_argument("--build-args", default="", help="extra builder options (quoted), e.g. '--num-aug 2'; one "
                        "option alone as --build-args=--quiet (the same for --train-args and --eval-args)")
    parser.add_argument("--train-args", default="", help="extra training options (quoted), e.g. '--max_steps 10'")
    parser.add_argument("--eval-args", default="", help="extra hrm-evaluate options (quoted)")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        p = plan(args.task, args.model, args.source, args.runs_dir)
        if args.data_dir:
            folder = str(Path(args.data_dir) / Path(p["dataset"]).name)
            p["build"][p["build"].index("--output-dir") + 1] = folder
            p["train"][p["train"].index("--dataset") + 1] = folder
            p["evaluate"][p["evaluate"].index("--dataset") + 1] = folder
            p["dataset"] = folder
        if args.dry_run:
            print(json.dumps(p, indent=2) if args.json else format_plan(p))
            return 0
        run(p, source=args.source, build_args=shlex.split(args.build_args), train_args=shlex.split(args.train_args),
            eval_args=shlex.split(args.eval_args), launcher=shlex.split(args.launcher) if args.launcher else None)
    except ValueError as error:
        if args.debug:
            raise
        print(f"reproduce: error: {str(error).strip().splitlines()[0]}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as error:
        if args.debug:
            raise
        print(f"reproduce: error: {shlex.join(map(str, error.cmd[:4]))} ... failed (exit code {error.returncode})",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
