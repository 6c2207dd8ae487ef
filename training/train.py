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

# Where things are: training/arguments.py (the option dataclasses, YAML and --set), training/data.py (the checks
# before any work, dataset loading, the batch sampler), training/loop.py (the training step and loop).

import json
import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python training/train.py`: import from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Re-exported: `from training.train import ...` is the public API of the trainer (tests, benchmarks).
from training.arguments import (ARCHITECTURE_KEYS, SECTIONS, ArgumentParser, ConfigError, DataArguments,  # noqa: E402
                                ModelArguments, RunArguments, TrainingArguments, check_training_arguments,
                                model_classes, one_line, parse_arguments)
from training.data import (BatchStream, RunPlan, batch_layout, check_arguments, check_dataset, load_data,  # noqa: E402
                           plan_steps, resolve_model_config, subsample)
from training.loop import (MetricWindow, build_model, train, truncate_metrics, update_puzzle_table,  # noqa: E402
                           weights_digest)

__all__ = ["ARCHITECTURE_KEYS", "SECTIONS", "ArgumentParser", "BatchStream", "ConfigError", "DataArguments",
           "MetricWindow", "ModelArguments", "RunArguments", "RunPlan", "TrainingArguments", "batch_layout",
           "build_model", "check_arguments", "check_dataset", "check_training_arguments", "load_data", "main",
           "model_classes", "parse_arguments", "plan_steps", "resolve_model_config", "subsample", "train",
           "truncate_metrics", "update_puzzle_table", "weights_digest"]


def main(argv=None) -> int:
    """Command-line entry point: prints the run summary as one JSON line. Exit code 2 for a configuration that
    cannot work (found before any work starts), 1 for a failure during training; one line on stderr either way
    (`--debug` for the traceback)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = parse_arguments(argv, description=__doc__)
        plan = check_arguments(args)
        if "--dry_run" in argv:  # reads only the group / puzzle id columns of the train split
            print(json.dumps(plan_steps(args.data.dataset, args.training, plan.global_batch)), flush=True)
            return 0
    except ValueError as error:  # ConfigError, the config classes' and the model loader's one-line errors
        if debug:
            raise
        print(f"error: {one_line(error)}", file=sys.stderr)
        return 2
    try:
        summary = train(args, plan)
    except Exception as error:  # a failure during work: one line, the traceback only with --debug
        if debug:
            raise
        print(f"error: training failed: {type(error).__name__}: {one_line(error)} (--debug shows the traceback)",
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
