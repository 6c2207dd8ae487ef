"""`hrm-analyze`: what an HRM / TRM checkpoint does across its segments (training/analysis.py).

    hrm-analyze --model PATH_OR_REPO --dataset PATH_OR_REPO [--split test] [--limit 1000]
                [--compare PATH_OR_REPO|untrained] [--max-steps N] [--pooling mean|tokens] --output-dir OUT

Writes OUT/analysis.json, OUT/per_puzzle.npz and four pictures: participation_ratio.png (PR of z_H and z_L per
segment and vs the number of puzzles), convergence.png (state and answer change per segment, puzzles right
from each segment on, by depth), calibration.png (reliability diagram of sigmoid(q_halt), ACT steps vs depth)
and trajectories.png (2-D PCA of z_H across segments); prints a short summary.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python training/hrm_analyze.py`: import from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.analysis import POOLINGS, check_options  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hrm-analyze",
                                description="Participation ratio, convergence, halting calibration and state "
                                            "trajectories of an HRM/TRM checkpoint on a dataset split.")
    p.add_argument("--model", required=True, help="checkpoint folder or Hub repo id")
    p.add_argument("--dataset", required=True, help="built dataset folder or Hub dataset repo id")
    p.add_argument("--split", default="test")
    p.add_argument("--limit", type=int, default=1000,
                   help="analyse N rows of the split drawn at random with --seed, so that every depth is in "
                        "(ARC: the first N tasks); default 1000")
    p.add_argument("--compare", default=None,
                   help="a second model shown side by side: a folder, a Hub repo id, or 'untrained' (a freshly "
                        "initialised model of the same config)")
    p.add_argument("--max-steps", type=int, default=None, help="segments to run (default: the model's halt_max_steps)")
    p.add_argument("--pooling", default="mean", choices=POOLINGS,
                   help="PR samples: 'mean' = one grid-averaged state per puzzle and segment (default), 'tokens' = "
                        "every grid position")
    p.add_argument("--num-trajectories", type=int, default=6, help="puzzles drawn in trajectories.png (default 6)")
    p.add_argument("--bins", type=int, default=10, help="bins of the reliability diagram (default 10)")
    p.add_argument("--seed", type=int, default=0, help="the rows drawn by --limit, the order of the puzzles for the PR "
                                                       "scaling curve, and the weights of --compare untrained (default 0)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--output-dir", default=None, help="where analysis.json and the plots go (default: ./analysis-<split>)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    return p


def _one_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def main(argv: list[str] | None = None) -> int:
    """Entry point of `hrm-analyze`: 0 on success, 2 for a bad option / model / dataset, 1 on a failure while
    analysing."""
    args = build_parser().parse_args(argv)
    output_dir = Path(args.output_dir or f"analysis-{args.split}")
    try:
        flags = {"limit": "--limit", "max_steps": "--max-steps", "batch_size": "--batch-size",
                 "num_trajectories": "--num-trajectories", "bins": "--bins"}
        try:
            check_options(args.limit, args.max_steps, args.batch_size, args.pooling, args.num_trajectories, args.bins)
        except ValueError as err:  # name the flag, not the Python argument
            text = str(err)
            for name, flag in flags.items():
                if text.startswith(name + " "):
                    text = flag + text[len(name):]
            raise ValueError(text) from None
        if output_dir.exists() and not output_dir.is_dir():
            raise ValueError(f"--output-dir {output_dir} is a file, not a folder")
        if any(p.exists() and not p.is_dir() for p in output_dir.parents):
            raise ValueError(f"--output-dir {output_dir}: a parent of it is a file")
        import torch

        from modeling_hrm.loading import resolve_device
        from training.analysis import load_inputs

        device = resolve_device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        inputs = load_inputs(args.model, args.dataset, args.split, args.compare, device=device, seed=args.seed)
    except (ValueError, TypeError, OSError, KeyError) as err:
        if args.debug:
            raise
        print(f"hrm-analyze: error: {_one_line(err)}", file=sys.stderr)
        return 2
    try:
        from training.analysis import run_analysis, summary_text

        report = run_analysis(inputs, limit=args.limit, max_steps=args.max_steps, batch_size=args.batch_size,
                              pooling=args.pooling, num_trajectories=args.num_trajectories, bins=args.bins,
                              seed=args.seed, output_dir=output_dir)
    except (ValueError, OSError, RuntimeError) as err:  # e.g. out of memory, disk full: a failure during work
        if args.debug:
            raise
        print(f"hrm-analyze: error while analysing: {_one_line(err)}", file=sys.stderr)
        return 1
    print(summary_text(report))
    print(f"analysis.json, per_puzzle.npz and {len(report['files']) - 1} pictures written to {output_dir}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
