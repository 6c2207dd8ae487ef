"""`hrm-solve`: solve a Sudoku, maze or ARC task from the command line, a thin layer over the `puzzle-solving`
pipeline (modeling_hrm/pipeline_puzzle_solving.py), which is also the Python API:

```python
import modeling_hrm
from transformers import pipeline
solver = pipeline("puzzle-solving", model="path/or/repo")
solver("53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79")
```

Command line:
    hrm-solve --model PATH_OR_REPO --sudoku STRING|FILE [--max-steps N] [--trace out.gif|out.png] [--json]
    hrm-solve --model PATH_OR_REPO --maze FILE [--search depth=64 breadth=8 kind=symmetry selector=vote]
    hrm-solve --model PATH_OR_REPO --arc TASK.json [--dataset DIR --task-id ID]
    hrm-solve --model PATH_OR_REPO --arc-task TASK.json --adapt-steps 100 [--save-adapted DIR]   # an unseen task

The puzzle is checked with the pipeline's parser before the model loads, so the messages are the pipeline's.
Exit status: 0 solved (also when the answer is not valid: the output says so), 2 bad input or usage (puzzle,
option, model folder, device), 1 a failure while solving.

Lower-level helpers stay here for scripts that hold token tensors: `solve_grid` (encoded puzzles → the model's
`solve` output on CPU) and `solve_arc_task` (ARC voting returning `SolveResult`s).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from .pipeline_puzzle_solving import PuzzleError, check_arc_grids_fit, parse_puzzle
from .pipeline_puzzle_solving import parse_arc_task as _parse_arc_task

KINDS = ("sudoku", "maze", "arc")
ARC_VOCAB, ARC_SEQ_LEN, MAZE_VOCAB = 12, 900, 6


def _formats():
    from dataset_scripts import formats

    return formats


# ---------------------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------------------
@dataclass
class SolveResult:
    """What the model answered for one puzzle (one ARC test input).

    Attributes:
        kind: "sudoku", "maze" or "arc".
        puzzle: the input grid in puzzle terms (Sudoku digits with 0 = blank, maze token ids, ARC colours).
        answer: the predicted grid in the same terms.
        steps: ACT segments used.
        q_halt_logit, q_continue_logit: Q values at the stopping segment.
        confidence: sigmoid(q_halt_logit), the model's own estimate that the answer is right.
        trace: predicted grid after every segment (when asked for).
        valid: Sudoku: the answer is a complete, rule-abiding grid keeping every clue; maze: the answer marks a
            shortest S→G path and changes nothing else.
        attempts: ARC only: ranked answers after voting across dihedral versions (best first).
        expected: the known answer, when the input carried one (ARC test outputs); `correct` compares to it.
    """

    kind: str
    puzzle: np.ndarray
    answer: np.ndarray
    steps: int
    q_halt_logit: float
    q_continue_logit: float
    trace: list[np.ndarray] | None = None
    valid: bool | None = None
    attempts: list[np.ndarray] = field(default_factory=list)
    expected: np.ndarray | None = None

    @property
    def confidence(self) -> float:
        return 1.0 / (1.0 + math.exp(-self.q_halt_logit))

    @property
    def correct(self) -> bool | None:
        if self.expected is None:
            return None
        return any(np.array_equal(a, self.expected) for a in (self.attempts[:2] or [self.answer]))

    def format(self) -> str:
        """Human-readable answer grid plus steps and confidence."""
        lines = [format_grid(self.kind, self.answer)]
        for k, attempt in enumerate(self.attempts[1:2], start=2):
            lines += [f"attempt {k}:", format_grid(self.kind, attempt)]
        info = f"ACT steps: {self.steps}   Q-halt confidence: {self.confidence:.3f} (logit {self.q_halt_logit:+.2f})"
        if self.valid is not None:
            info += f"   valid: {'yes' if self.valid else 'no'}"
        if self.correct is not None:
            info += f"   correct: {'yes' if self.correct else 'no'}"
        return "\n".join(lines + [info])


def format_grid(kind: str, grid: np.ndarray) -> str:
    """Text of a grid: Sudoku digits with box separators, maze characters, ARC colour digits."""
    grid = np.asarray(grid)
    if grid.size == 0:
        return "(no grid)"
    if kind == "sudoku":
        return _formats().format_sudoku(grid)
    if kind == "maze":
        return _formats().decode_maze(grid)
    return "\n".join("".join(str(int(v)) for v in row) for row in grid)


# ---------------------------------------------------------------------------------------------------------
# Model checks and the generic solver
# ---------------------------------------------------------------------------------------------------------
def expected_shape(kind: str, size: int | None = None) -> tuple[int, int]:
    """(vocab_size, seq_len) a model needs for a puzzle kind (`size`: Sudoku side or maze cell count)."""
    if kind == "sudoku":
        return size + 2, size * size
    if kind == "maze":
        return MAZE_VOCAB, size
    if kind == "arc":
        return ARC_VOCAB, ARC_SEQ_LEN
    raise ValueError(f"unknown puzzle kind {kind!r}")


def check_model_for(model, kind: str, size: int | None = None) -> None:
    """Raise `PuzzleError` if the model's vocabulary / sequence length cannot take this kind of puzzle (ARC: any
    square canvas, 30x30 or smaller)."""
    if kind == "arc":
        check_arc_grids_fit(model.config, [])
        return
    vocab, seq_len = expected_shape(kind, size)
    cfg = model.config
    what = {"sudoku": f"a {size}×{size} Sudoku", "maze": f"a maze of {size} cells", "arc": "an ARC grid"}[kind]
    if cfg.seq_len != seq_len or cfg.vocab_size != vocab:
        raise PuzzleError(f"{what} needs a model with seq_len={seq_len}, vocab_size={vocab}, but this model has "
                          f"seq_len={cfg.seq_len}, vocab_size={cfg.vocab_size} (trained on another puzzle kind "
                          f"or size?)")


def _device(model) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


@torch.no_grad()
def solve_grid(model, tokens, puzzle_identifiers=None, *, max_steps: int | None = None, early_exit: bool = True,
               return_trace: bool = False):
    """Run `model.solve` on encoded puzzles: `tokens` (seq_len,) or (B, seq_len). Returns the model's
    `HRMSolveOutput` on CPU (predictions (B, seq_len), steps, Q logits, optional trace (S, B, seq_len))."""
    tokens = torch.as_tensor(np.asarray(tokens), dtype=torch.long)
    if tokens.dim() == 1:
        tokens = tokens[None]
    if tokens.shape[1] != model.config.seq_len:
        raise PuzzleError(f"the puzzle has {tokens.shape[1]} cells but the model expects seq_len="
                          f"{model.config.seq_len}")
    ids = None
    if puzzle_identifiers is not None:
        ids = torch.as_tensor(np.broadcast_to(np.asarray(puzzle_identifiers), (tokens.shape[0],)).copy(),
                              dtype=torch.long)
        if int(ids.max()) >= model.config.num_puzzle_identifiers or int(ids.min()) < 0:
            raise PuzzleError(f"puzzle id {int(ids.max())} is outside this model's 0.."
                              f"{model.config.num_puzzle_identifiers - 1}")
    device = _device(model)
    was_training = model.training
    model.eval()
    try:
        res = model.solve(tokens.to(device), puzzle_identifiers=None if ids is None else ids.to(device),
                          max_steps=max_steps, early_exit=early_exit, return_trace=return_trace)
    finally:
        model.train(was_training)
    for key in ("predictions", "steps", "q_halt_logits", "q_continue_logits", "trace"):
        if getattr(res, key, None) is not None:
            setattr(res, key, getattr(res, key).cpu())
    return res


def _row_trace(res, row: int) -> list[np.ndarray]:
    """Predictions of one row after each of the segments it used."""
    steps = int(res.steps[row])
    return [res.trace[s, row].numpy() for s in range(steps)]


# ---------------------------------------------------------------------------------------------------------
# Sudoku
# ---------------------------------------------------------------------------------------------------------
def sudoku_is_valid(answer: np.ndarray, puzzle: np.ndarray) -> bool:
    """True if `answer` is a full n×n Sudoku obeying rows, columns and boxes and keeping every clue of `puzzle`."""
    try:
        _formats().check_sudoku_solution(puzzle, answer)
    except ValueError:
        return False
    return True



# ---------------------------------------------------------------------------------------------------------
# ARC
# ---------------------------------------------------------------------------------------------------------
def parse_arc_task(task) -> dict:
    """Validate an ARC task (dict, JSON text or path) → {"train": [(in, out)], "test": [(in, out or None)]}."""
    if isinstance(task, (str, Path)) and Path(str(task)).suffix == ".json" and Path(str(task)).is_file():
        task = Path(task).read_text()
    return _parse_arc_task(task)


def solve_arc_task(model, task, *, puzzle_identifier: int = 0, versions=None, max_steps: int | None = None,
                   early_exit: bool = True, augment: bool = True, trace: bool = False) -> list[SolveResult]:
    """Solve every test input of an ARC task; one `SolveResult` per test input.

    Each test input is solved in several versions (one batch), each prediction is mapped back to the task's
    frame, and the versions vote (ties by mean sigmoid(q_halt); an undecodable prediction is the 0x0 grid and
    votes too, as in the original); `attempts` holds the ranked answers, `answer` the best.

    Args:
        versions: (dihedral, colour permutation, puzzle id) per version, for a task the model was trained on:
            each version has its own puzzle embedding, the id the dataset gave it
            (`dataset_scripts.arc.task_versions_from_metadata(meta, task_id)`).
        puzzle_identifier: without `versions`: the id for every version. The blank id 0 (default, a task the
            model never saw) is shared by the 8 dihedral versions; a trained id names one version, so it is
            refused with `augment` (solve that version alone with `augment=False`).
        augment: without `versions`: the 8 dihedral versions (True) or only the untransformed input.
        trace: the prediction after every segment, for the first version.
    """
    from dataset_scripts.arc import grid_to_str, invert_arc_version, rank_candidates, str_to_grid

    fm = _formats()
    parsed = parse_arc_task(task)
    canvas = check_arc_grids_fit(model.config, [grid for grid, _ in parsed["test"]])
    from .pipeline_puzzle_solving import arc_plan

    plan = arc_plan(model.config, puzzle_identifier, augment, versions)
    ids = torch.as_tensor([pid for _, _, pid in plan], dtype=torch.long)
    results = []
    for grid_in, grid_out in parsed["test"]:
        try:
            batch = np.stack([np.asarray(fm.encode_arc_grid(fm.dihedral(perm[grid_in], k), canvas=canvas)).reshape(-1)
                              for k, perm, _ in plan])
        except ValueError as err:
            raise PuzzleError(f"invalid ARC task: {err}") from None
        res = solve_grid(model, batch, puzzle_identifiers=ids, max_steps=max_steps,
                         early_exit=early_exit, return_trace=trace)
        preds = [grid_to_str(invert_arc_version(res.predictions[i].numpy(), k, perm))
                 for i, (k, perm, _) in enumerate(plan)]
        confidences = torch.sigmoid(res.q_halt_logits.float()).tolist()
        ranked = rank_candidates(preds, confidences)
        attempts = [str_to_grid(answer) for answer, _, _ in ranked]
        row = next(i for i, p in enumerate(preds) if p == ranked[0][0])
        trace_grids = None
        if trace:
            k0, perm0, _ = plan[0]
            trace_grids = [invert_arc_version(t, k0, perm0) for t in _row_trace(res, 0)]
        results.append(SolveResult(
            kind="arc", puzzle=grid_in, answer=attempts[0], steps=int(res.steps[row]),
            q_halt_logit=float(res.q_halt_logits[row]), q_continue_logit=float(res.q_continue_logits[row]),
            trace=trace_grids, attempts=attempts, expected=grid_out))
    return results


# ---------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------
def load_model(path_or_repo: str, device: str | None = None):
    """A saved HRM / TRM model (folder, training checkpoint folder or Hub id) in eval mode on `device`.
    Raises `modeling_hrm.loading.ModelLoadError` (a `ValueError`, one line) for anything that cannot be loaded."""
    from .loading import load_pretrained_model

    return load_pretrained_model(path_or_repo, device=device)


def _read_text(value: str, what: str) -> str:
    path = Path(value)
    if path.is_file():
        try:
            return path.read_text()
        except UnicodeDecodeError:
            raise PuzzleError(f"{what} file {value} is not a UTF-8 text file") from None
    if path.is_dir():
        raise PuzzleError(f"{what} file expected, but {value} is a folder")
    raise PuzzleError(f"{what} file not found: {value}")


def _sudoku_text(value: str) -> str:
    """`--sudoku` takes the puzzle itself or a file holding it."""
    path = Path(value)
    try:
        if path.is_file():
            return _read_text(value, "Sudoku")
    except OSError:  # a long puzzle string is not a valid path on every system
        pass
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hrm-solve", description="Solve a Sudoku, maze or ARC task with a trained HRM or TRM model "
                                      "(the puzzle-solving pipeline on the command line).")
    parser.add_argument("--model", required=True, help="model folder, training checkpoint folder or Hub repo id")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--sudoku", metavar="STRING|FILE",
                       help="Sudoku as 16 / 36 / 81 cells ('.' or '0' = blank), or a file holding it")
    which.add_argument("--maze", metavar="FILE", help="maze text file (# wall, space open, S start, G goal)")
    which.add_argument("--arc", metavar="FILE", help="ARC task JSON ({\"train\": [...], \"test\": [...]}); "
                                                     "--arc-task is the same option")
    which.add_argument("--arc-task", dest="arc", metavar="FILE", help=argparse.SUPPRESS)
    parser.add_argument("--max-steps", type=int, default=None,
                        help="ACT segment budget (default: the model's halt_max_steps; more = inference-time scaling)")
    parser.add_argument("--no-early-exit", action="store_true",
                        help="always run max-steps segments instead of halting when the Q head says so")
    parser.add_argument("--num-candidates", type=int, default=None,
                        help="candidate search: K trajectories from perturbed initial states; the answer is the most "
                             "confident valid one (Sudoku, maze), or all vote (ARC)")
    parser.add_argument("--search", nargs="+", metavar="KEY=VALUE",
                        help="test-time search (modeling_hrm/search.py), e.g. --search depth=64 breadth=8 "
                             "kind=symmetry selector=vote (kind: noise, restart, step_noise, symmetry, sample, or "
                             "several joined by '+'; selector: q, vote, residual, valid); replaces --num-candidates")
    parser.add_argument("--trace", metavar="OUT.gif|OUT.png",
                        help="draw the predicted grid after every segment (GIF animation or PNG strip)")
    parser.add_argument("--puzzle-id", type=int, default=0, help="ARC: trained puzzle identifier (default 0 = blank)")
    parser.add_argument("--no-augment", action="store_true", help="ARC: solve only the untransformed version")
    parser.add_argument("--dataset", metavar="DIR|REPO",
                        help="ARC: the dataset the model was trained on; the task's versions there (each with its "
                             "own puzzle id) are solved and vote")
    parser.add_argument("--task-id", help="ARC with --dataset: the task's id in it (default: the JSON file name)")
    parser.add_argument("--adapt-steps", type=int, default=None, metavar="N",
                        help="ARC, a task the model never trained on: first learn its puzzle embedding from its "
                             "demonstrations (N sign-SGD steps, the network frozen), then solve")
    parser.add_argument("--save-adapted", metavar="DIR",
                        help="with --adapt-steps: save the adapted model (its new puzzle-embedding rows included) "
                             "to DIR, a new folder or a model folder")
    parser.add_argument("--show-steps", action="store_true",
                        help="print the predicted grid after every segment (Sudoku, maze)")
    parser.add_argument("--device", default=None, help="torch device: cpu, cuda, cuda:N, mps (default: cpu)")
    parser.add_argument("--json", action="store_true", help="print the pipeline's result as JSON")
    return parser


def format_answer(kind: str, answer) -> str:
    """Text of an answer as the pipeline returns it: a Sudoku digit grid, maze text, an ARC colour grid."""
    if kind == "maze":
        return str(answer).rstrip("\n")
    return format_grid(kind, np.asarray(answer))


def format_steps(kind: str, trace) -> str:
    """One line per segment: the predicted grid (rows separated by spaces / '|') and how many cells changed."""
    lines, previous = [], None
    for step, answer in enumerate(trace or [], 1):
        if kind == "maze":
            rows = str(answer).rstrip("\n").split("\n")
            grid, text = np.array([list(r) for r in rows]), "|".join(rows)
        else:
            grid = np.asarray(answer)
            text = " ".join("".join(str(int(v)) for v in row) for row in grid)
        changed = "" if previous is None or previous.shape != grid.shape else \
            f"  ({int((grid != previous).sum())} cells changed)"
        lines.append(f"segment {step:>2}: {text}{changed}")
        previous = grid
    return "\n".join(lines)


def _info_line(result: dict, i: int | None = None) -> str:
    pick = (lambda key: result[key]) if i is None else (lambda key: result[key][i])
    info = f"ACT steps: {pick('steps')}   Q-halt confidence: {pick('q_halt_confidence'):.3f}"
    if "valid" in result:
        info += f"   valid: {'yes' if result['valid'] else 'no'}"
    if "candidate" in result:
        info += f"   candidate: {result['candidate']}"
    if "correct" in result and pick("correct") is not None:
        info += f"   correct: {'yes' if pick('correct') else 'no'}"
    return info


def _trace_grids(kind: str, trace) -> list[np.ndarray]:
    """The pipeline's trace (answers in the puzzle's form) as grids for the renderer; maze cells that are no
    maze character (a PAD prediction, '?') are drawn as open cells."""
    if kind != "maze":
        return [np.asarray(t) for t in trace]
    ids = {ch: i for i, ch in enumerate("\0# SGo") if i}
    return [np.array([[ids.get(ch, 2) for ch in row] for row in str(t).rstrip("\n").split("\n")]) for t in trace]


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    """Entry point of `hrm-solve`: 0 solved, 2 bad input or usage, 1 a failure while solving."""
    args = build_parser().parse_args(argv)

    def fail(message, code: int = 2) -> int:
        print(f"hrm-solve: error: {message}", file=sys.stderr)
        return code

    if args.max_steps is not None and args.max_steps < 1:
        return fail(f"--max-steps must be >= 1, got {args.max_steps}")
    if args.num_candidates is not None and args.num_candidates < 1:
        return fail(f"--num-candidates must be >= 1, got {args.num_candidates}")
    if (args.num_candidates or 1) > 1 and (args.trace or args.show_steps):
        return fail("--trace / --show-steps need --num-candidates 1: only the Q head's pick is traced")
    if args.trace:
        trace_path = Path(args.trace).expanduser()
        if trace_path.suffix.lower() not in (".gif", ".png"):
            return fail(f"--trace must end in .gif or .png, got {args.trace}")
        if not trace_path.parent.is_dir():
            return fail(f"--trace: folder {str(trace_path.parent)!r} does not exist (create it first)")
        if trace_path.is_dir():
            return fail(f"--trace: {args.trace} is a folder; give a file name ending in .gif or .png")
    kind = "sudoku" if args.sudoku is not None else "maze" if args.maze is not None else "arc"
    search = None
    if args.search is not None:
        from .search import SearchError, parse_grid, parse_setting

        try:
            given = parse_grid(args.search)
            search = parse_setting(args.search)
            if args.max_steps is not None:
                if "depth" in given:
                    raise SearchError("give the segment budget once: --max-steps or --search depth=")
                search = replace(search, depth=args.max_steps)
            if args.no_early_exit:
                if "early_exit" in given:
                    raise SearchError("give early exit once: --no-early-exit or --search early_exit=")
                search = replace(search, early_exit=False)
            search.check(task=kind)
        except SearchError as err:
            return fail(err if str(err).startswith("search:") else f"search: {err}")
        if args.num_candidates is not None or args.trace or args.show_steps:
            return fail("--search replaces --num-candidates and cannot be traced (--trace / --show-steps)")
    if args.adapt_steps is not None:
        if args.adapt_steps < 1:
            return fail(f"--adapt-steps must be >= 1, got {args.adapt_steps}")
        if kind != "arc":
            return fail("--adapt-steps applies to ARC tasks (--arc-task FILE) only")
        if args.dataset or args.puzzle_id != 0 or args.no_augment:
            return fail("--adapt-steps learns new puzzle-embedding rows; it cannot be combined with --dataset, "
                        "--puzzle-id or --no-augment, which use trained ones")
    if args.save_adapted:
        target = Path(args.save_adapted).expanduser()
        if args.adapt_steps is None:
            return fail("--save-adapted needs --adapt-steps")
        reusable = target.is_dir() and (not any(target.iterdir()) or (target / "config.json").is_file())
        if target.exists() and not reusable:
            return fail(f"--save-adapted {args.save_adapted} exists and is not an empty folder or a model folder")
    try:  # read and check the puzzle before the (slow) model load, so typos fail fast
        source = (_sudoku_text(args.sudoku) if kind == "sudoku" else
                  _read_text(args.maze, "maze") if kind == "maze" else _read_text(args.arc, "ARC task"))
        parsed = parse_puzzle(source, kind)
    except PuzzleError as err:
        return fail(err)
    try:
        from .loading import resolve_device

        resolve_device(args.device)  # a bogus or missing device fails before the model loads
        model = load_model(args.model, args.device)
    except ValueError as err:  # ModelLoadError: one line naming the problem
        return fail(err)
    options = dict(kind=kind, max_steps=args.max_steps, early_exit=not args.no_early_exit,
                   return_trace=bool(args.trace) or args.show_steps, num_candidates=args.num_candidates)
    if search is not None:  # the search carries the depth and early exit
        options.update(max_steps=None, early_exit=None, search=search)
    if kind == "arc":
        versions = None
        if args.dataset:
            try:
                from dataset_scripts.arc import task_versions_from_metadata
                from dataset_scripts.common import load_hrm_metadata

                versions = task_versions_from_metadata(load_hrm_metadata(args.dataset),
                                                       args.task_id or Path(args.arc).stem)
            except (ValueError, OSError) as err:
                return fail(str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__)
        options.update(puzzle_id=args.puzzle_id, augment=not args.no_augment, arc_versions=versions,
                       adapt_steps=args.adapt_steps)

    from transformers import pipeline

    solver = pipeline("puzzle-solving", model=model, device=model.device)
    # A Sudoku goes in as its digit grid, so the answer and trace come back as grids to print and draw.
    puzzle = parsed.grid if kind == "sudoku" else source
    try:
        result = solver(puzzle, **options)
    except ValueError as err:  # PuzzleError, or an option the pipeline refuses
        return fail(err)
    except (RuntimeError, MemoryError) as err:
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return fail(f"solving failed: {text}", 1)

    if args.save_adapted:
        try:
            model.save_pretrained(Path(args.save_adapted).expanduser())
        except OSError as err:
            return fail(f"cannot save the adapted model to {args.save_adapted}: {err.strerror or err}", 1)
        print(f"adapted model saved to {args.save_adapted}", file=sys.stderr)
    if args.json:
        shown = dict(result) if args.show_steps else {k: v for k, v in result.items() if k != "trace"}
        print(json.dumps(_jsonable(shown)))
    elif kind == "arc":
        for i, answer in enumerate(result["answer"]):
            print(f"test input {i}:")
            print(format_answer(kind, answer))
            for k, attempt in enumerate(result["attempts"][i][1:2], start=2):
                print(f"attempt {k}:\n{format_answer(kind, attempt)}")
            print(_info_line(result, i))
    else:
        if args.show_steps:
            print("reasoning steps (prediction after each ACT segment):")
            print(format_steps(kind, result["trace"]))
        print(format_answer(kind, result["answer"]))
        print(_info_line(result))
    if args.trace:
        from .render import save_trace, trace_frames

        trace = result["trace"][0] if kind == "arc" else result["trace"]
        try:
            frames = trace_frames(kind, _trace_grids(kind, trace),
                                  **({"givens": parsed.grid} if kind == "sudoku" else {}))
            save_trace(frames, args.trace)
        except OSError as err:
            return fail(f"cannot write the trace to {args.trace}: {err.strerror or err}", 1)
        print(f"trace ({len(trace)} segments) written to {args.trace}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
