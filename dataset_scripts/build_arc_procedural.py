"""Write the procedural ARC-like family (`dataset_scripts/arc_procedural.py`) as ARC task JSON files.

Output folder:
  training/ID.json     training tasks: the six primitives and the training compositions
  evaluation/ID.json   held-out tasks: new compositions and new parameters
  split.json           the split listing: each task's split, program (steps with parameters), why it is held out

Then build it into the ARC layout with the ARC builder, in the family's 11x11 canvas (`--canvas 11`: every grid is
at most 10x10; without it the 30x30 layout, 7x the positions), held out (the evaluation tasks are never trained on;
their test rows use the blank id 0) or with the evaluation tasks' demonstrations in train (the originals' setting):
  python dataset_scripts/build_arc_procedural.py --output-dir data/arc-procedural-tasks --num-train 272 --num-heldout 42
  python dataset_scripts/build_arc_dataset.py --arc-dir data/arc-procedural-tasks --split-mode heldout \\
      --num-aug 0 --canvas 11 --output-dir data/arc-procedural-heldout
  python dataset_scripts/build_arc_dataset.py --arc-dir data/arc-procedural-tasks --split-mode original \\
      --num-aug 0 --canvas 11 --output-dir data/arc-procedural-original
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dataset_scripts.arc_procedural import generate_family
from dataset_scripts.common import run_cli

SPLIT_FILE = "split.json"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", required=True, help="folder for training/, evaluation/ and split.json")
    parser.add_argument("--num-train", type=int, default=340, help="training tasks (spread over the 17 kinds)")
    parser.add_argument("--num-heldout", type=int, default=42, help="held-out tasks (spread over the 6 kinds)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (the family is deterministic given it)")
    parser.add_argument("--quiet", action="store_true", help="print only errors")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    return parser


def check_output_dir(folder: Path) -> None:
    """A new or empty folder, or an earlier output of this script (it holds split.json), is overwritten; anything
    else is refused, so a typo cannot mix tasks into another folder."""
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--output-dir {folder} is a file, not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / SPLIT_FILE).is_file():
        raise ValueError(f"--output-dir {folder} already holds other files and is not a procedural family folder "
                         f"(no {SPLIT_FILE}); choose a new or empty folder")


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    for name in ("num_train", "num_heldout"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    out = Path(args.output_dir)
    check_output_dir(out)
    training, heldout, listing = generate_family(args.num_train, args.num_heldout, args.seed)
    listing["build_command"] = " ".join(["python dataset_scripts/build_arc_procedural.py",
                                         *(sys.argv[1:] if argv is None else map(str, argv))])
    for sub, tasks in (("training", training), ("evaluation", heldout)):
        folder = out / sub
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.json"):  # an earlier, larger family's tasks
            if stale.stem not in tasks:
                stale.unlink()
        for tid, task in tasks.items():
            (folder / f"{tid}.json").write_text(json.dumps(task))
    (out / SPLIT_FILE).write_text(json.dumps(listing, indent=1))
    if not args.quiet:
        print(f"{len(training)} training and {len(heldout)} held-out tasks written to {out}", file=sys.stderr)
    return listing


if __name__ == "__main__":
    sys.exit(run_cli(main))
