"""Test-time search: spend inference compute on depth, breadth and a selector, with the compute counted.

One API for HRM, TRM and the one-pass Transformer baseline (an HRM with one cycle and one segment), used by
`solve`'s candidates, the `puzzle-solving` pipeline (`search=`), `hrm-solve --search` and
`hrm-evaluate --search`:

```python
from modeling_hrm.search import search, SearchSetting

res = search(model, input_ids, task="sudoku", depth=64, breadth=8, kind="symmetry", selector="vote")
res.predictions        # (N, seq_len) the selected answers, in the puzzles' own frame
res.flops_per_puzzle   # inference FLOPs per puzzle (modeling_hrm/flops.py), counting what ran
res.pick("valid")      # another selector on the same candidates, without running the model again
```

- depth: `depth` segments (more than trained is inference-time scaling; `early_exit` stops a trajectory when its
  Q head halts), and `h_cycles` / `l_cycles` recursion cycles per segment (TRM's N and T, HRM's H and L cycles);
- breadth: `breadth` = K candidates per puzzle. Candidate 0 is always the plain run; candidates 1..K-1 differ by
  `kind` (several join with "+", e.g. "symmetry+sample"):
  - "noise": the initial states plus Gaussian noise of std `noise` (today's `solve(num_candidates=K)`);
  - "restart": both states drawn afresh from the initialiser's truncated normal of std `noise` (a random
    restart of the latent state, as equilibrium-style solvers do);
  - "step_noise": Gaussian noise of std `step_noise` added after every recursion step (every application of a
    reasoning module);
  - "symmetry": a symmetry-transformed copy of the puzzle, whose answer is mapped back (Sudoku: digit
    relabelling and the row / column / band / stack permutations, transposition for square boxes; maze: the
    dihedral group; ARC: dihedral transforms and permutations of colours 1-9, as the dataset's augmentation);
  - "sample": the answer is sampled cell by cell from softmax(logits / `temperature`) instead of the argmax.
    Alone, all K samples come from the one trajectory (and cost one trajectory).
- selector: "q" (the largest Q-halt logit), "vote" (the answer most candidates give; ties by mean Q-halt
  confidence, then the lower index), "residual" (the trajectory closest to a fixed point: the smallest relative
  change of (z_H, z_L) over its last segment) or "valid" (the task's validity check: Sudoku rules and clues,
  maze shortest path; the most confident valid candidate, else the Q head's pick). "valid" is a verifier outside
  the model: report it apart from the others.

Every result carries the inference FLOPs per puzzle (segments each trajectory actually ran × FLOPs of a
segment at the cycles used, summed over trajectories; selection, symmetry transforms and validity checks are
not counted) and its wall time. Randomness is seeded per (seed, puzzle, candidate), the puzzle named by its
tokens, wherever the draw is per candidate (initial noise, restarts, symmetries, samples), so a puzzle gets the
same candidates wherever it sits in a list and whatever batch it runs in; the step noise is drawn per working
batch (the same seed and inputs give the same answers).

Rows run in chunks of at most `max_rows` trajectories, fewer where the estimated memory of a chunk would
exceed `memory_budget` bytes; a setting whose results alone would not fit is refused with one line.
"""

from __future__ import annotations

import copy
import itertools
import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace

import numpy as np
import torch

from dataset_scripts.formats import (ARC_MAX_SIZE, arc_transform, check_maze_solution, decode_arc_grid, dihedral,
                                     encode_arc_grid, invert_arc_version, row_hashes, sudoku_batch_valid,
                                     sudoku_box_shape)
from dataset_scripts.sudoku import sudoku_augment_transform
from dataset_scripts.validation import (OptionTypeError, check_bool, check_int, check_number, check_sequence,
                                        describe)

from .flops import inference_flops
from .modeling_recursive import puzzle_keys

KINDS = ("noise", "restart", "step_noise", "symmetry", "sample")
SELECTORS = ("q", "vote", "residual", "valid")
TASKS = ("sudoku", "maze", "arc")
# The symmetries of each task (what `symmetries=` may name); the default is all that the puzzle's shape allows.
TASK_SYMMETRIES = {"sudoku": ("digits", "rows", "cols", "transpose"), "maze": ("dihedral", "flips"),
                   "arc": ("dihedral", "colors")}
# Dihedral transforms (formats.dihedral numbering) that keep an H×W grid H×W for any shape, and for squares.
SHAPE_KEEPING_DIHEDRAL, SQUARE_DIHEDRAL = (0, 2, 4, 5), tuple(range(8))
# Share of the free memory one chunk of trajectories may use (estimate: states, activations of one block, logits).
MEMORY_SHARE = 0.25


class SearchError(ValueError):
    """A search setting that cannot work (one line naming the problem)."""


# ---------------------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SearchSetting:
    """How to spend inference compute on one puzzle (see the module doc). The defaults are a plain run."""

    depth: int | None = None  # segments; None = config.halt_max_steps
    breadth: int = 1
    kind: str = "noise"
    selector: str = "q"
    early_exit: bool = True
    h_cycles: int | None = None  # None = the config's
    l_cycles: int | None = None
    noise: float = 1.0  # std of the initial-state noise ("noise") and of restarted states ("restart")
    step_noise: float = 0.1  # std of the noise after every recursion step ("step_noise"; states have RMS 1)
    temperature: float = 1.0  # sampled decoding ("sample")
    symmetries: str | None = None  # "+"-joined subset of the task's symmetries; None = all it has
    seed: int = 0

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self.kind.split("+"))

    @property
    def trajectories(self) -> int:
        """Model trajectories per puzzle: K, or 1 when the candidates are only samples of one trajectory."""
        return 1 if self.kinds == ("sample",) else self.breadth

    def label(self) -> str:
        parts = [f"depth={self.depth or 'trained'}", f"breadth={self.breadth}"]
        if self.breadth > 1:
            parts.append(f"kind={self.kind}")
        parts += [f"{name}={getattr(self, name)}" for name in ("h_cycles", "l_cycles") if getattr(self, name)]
        if not self.early_exit:
            parts.append("early_exit=false")
        return " ".join(parts)

    def check(self, config=None, task: str | None = None, grid_shape: tuple[int, int] | None = None
              ) -> "SearchSetting":
        """Raise `SearchError` naming the first value that cannot work (for this model and task, where given)."""
        # Types first, by the project's typed-option rules (a wrong type is an `OptionTypeError`: a TypeError and a
        # ValueError), then ranges.
        for name in ("depth", "breadth", "h_cycles", "l_cycles"):
            value = getattr(self, name)
            if (value is not None or name == "breadth") and check_int(value, name) < 1:
                raise SearchError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("noise", "step_noise"):
            if check_number(getattr(self, name), name) < 0:
                raise SearchError(f"{name} must be a finite number >= 0, got {getattr(self, name)!r}")
        if check_number(self.temperature, "temperature") <= 0:
            raise SearchError(f"temperature must be a finite number > 0, got {self.temperature!r}")
        if check_int(self.seed, "seed") < 0:
            raise SearchError(f"seed must be an integer >= 0, got {self.seed!r}")
        check_bool(self.early_exit, "early_exit")
        check_text(self.kind, "kind", f"({', '.join(KINDS)}, or several joined by '+')")
        check_text(self.selector, "selector", f"({', '.join(SELECTORS)})")
        if self.symmetries is not None:
            check_text(self.symmetries, "search symmetries", "such as 'rows+cols'")
        if task is not None:
            check_text(task, "task", f"({', '.join(TASKS)})")
        if not self.kind:
            raise SearchError(f"kind must be one of {', '.join(KINDS)} (or several joined by '+'), got {self.kind!r}")
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown:
            raise SearchError(f"unknown breadth kind {unknown[0]!r}; expected {', '.join(KINDS)} "
                              f"(or several joined by '+')")
        if len(set(self.kinds)) != len(self.kinds):
            raise SearchError(f"breadth kind {self.kind!r} names a kind twice")
        if {"noise", "restart"} <= set(self.kinds):
            raise SearchError("breadth kinds 'noise' and 'restart' exclude each other (a restart replaces the "
                              "initial state that 'noise' perturbs)")
        if self.selector not in SELECTORS:
            raise SearchError(f"unknown selector {self.selector!r}; expected one of {', '.join(SELECTORS)}")
        if task is not None and task not in TASKS:
            raise SearchError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
        if self.selector == "valid" and task == "arc":
            raise SearchError("selector 'valid' needs a task with a validity check (sudoku or maze); "
                              "ARC has none (use q, vote or residual)")
        if self.symmetries is not None and "symmetry" not in self.kinds:
            raise SearchError(f"symmetries={self.symmetries!r} is given but the breadth kind {self.kind!r} makes no "
                              f"symmetric copies (add 'symmetry' to kind)")
        if config is not None and task is not None:
            shape = check_task_fits(config, task, grid_shape)
            if "symmetry" in self.kinds:
                names = task_symmetries(task, shape, self.symmetries)
                size = symmetry_group_size(task, shape, names)
                if self.kinds == ("symmetry",) and size is not None and self.breadth > size:
                    raise SearchError(f"the {task} symmetries {'+'.join(names)} give {size} distinct copies of a "
                                      f"puzzle (the identity included) but breadth is {self.breadth}; lower the "
                                      f"breadth or add another kind (e.g. kind=symmetry+noise)")
        return self


def check_text(value, name: str, accepted: str) -> str:
    """`value` if it is a string; `OptionTypeError` naming `name` and what is `accepted` otherwise."""
    if not isinstance(value, str):
        raise OptionTypeError(f"{name} must be text {accepted}, got {describe(value)}")
    return value


def check_grid_shape(grid_shape) -> tuple[int, int] | None:
    """A maze's `grid_shape`: None or (height, width), two integers >= 1."""
    if grid_shape is None:
        return None
    if not isinstance(grid_shape, (list, tuple)):
        raise OptionTypeError(f"grid_shape must be (height, width), two integers, got {describe(grid_shape)}")
    if len(grid_shape) != 2:
        raise SearchError(f"grid_shape must be (height, width), two integers, got {len(grid_shape)} value(s)")
    return tuple(check_int(v, f"grid_shape {name}", minimum=1) for v, name in zip(grid_shape, ("height", "width")))


def check_task_fits(config, task: str, grid_shape: tuple[int, int] | None = None) -> tuple[int, int]:
    """The (height, width) of the model's puzzles for `task`; `SearchError` when the model cannot be that task."""
    grid_shape = check_grid_shape(grid_shape)
    seq_len, vocab = config.seq_len, config.vocab_size
    if task == "sudoku":
        n = math.isqrt(seq_len)
        if n * n != seq_len or n not in (4, 6, 9) or vocab != n + 2:
            raise SearchError(f"this model (seq_len={seq_len}, vocab_size={vocab}) is not a Sudoku model "
                              f"(4x4, 6x6 or 9x9: seq_len n*n, vocab_size n+2)")
        return n, n
    if task == "maze":
        if vocab != 6:
            raise SearchError(f"this model (vocab_size={vocab}) is not a maze model (vocab_size 6)")
        if grid_shape is None:
            side = math.isqrt(seq_len)
            if side * side != seq_len:
                raise SearchError(f"give the maze's grid shape: seq_len={seq_len} is not a square")
            grid_shape = (side, side)
        if grid_shape[0] * grid_shape[1] != seq_len:
            raise SearchError(f"maze shape {grid_shape} does not hold seq_len={seq_len} cells")
        return tuple(grid_shape)
    if (seq_len, vocab) != (ARC_MAX_SIZE * ARC_MAX_SIZE, 12):
        raise SearchError(f"this model (seq_len={seq_len}, vocab_size={vocab}) is not an ARC model "
                          f"(seq_len 900, vocab_size 12)")
    return ARC_MAX_SIZE, ARC_MAX_SIZE


# ---------------------------------------------------------------------------------------------------------
# Symmetries: each candidate's transform, applied to the puzzle and undone on the answer
# ---------------------------------------------------------------------------------------------------------
def task_symmetries(task: str, shape: tuple[int, int], requested: str | None) -> tuple[str, ...]:
    """The symmetries used: `requested` ("+"-joined names) checked against what a puzzle of this shape has."""
    height, width = shape
    if task == "sudoku":
        br, bc = sudoku_box_shape(height)
        has = ("digits", "rows", "cols") + (("transpose",) if br == bc else ())
        why = f"a {height}x{width} Sudoku has {br}x{bc} boxes"
    elif task == "maze":
        has = ("dihedral", "flips") if height == width else ("flips",)
        why = f"a {height}x{width} maze keeps its shape only under flips and the half turn"
    else:
        has = TASK_SYMMETRIES["arc"]
        why = "ARC"
    if requested is None:
        return has if task != "maze" else has[:1]
    names = tuple(requested.split("+"))
    for name in names:
        if name not in TASK_SYMMETRIES[task]:
            raise SearchError(f"unknown {task} symmetry {name!r}; expected {' / '.join(TASK_SYMMETRIES[task])}")
        if name not in has:
            raise SearchError(f"{name!r} is not a symmetry of this puzzle: {why} (it has {', '.join(has)})")
    return names


def _maze_elements(names: tuple[str, ...]) -> tuple[int, ...]:
    return SQUARE_DIHEDRAL if "dihedral" in names else SHAPE_KEEPING_DIHEDRAL


def symmetry_group_size(task: str, shape: tuple[int, int], names: tuple[str, ...]) -> int | None:
    """Distinct transforms available (None: more than any breadth asks for)."""
    if task == "maze":
        return len(_maze_elements(names))
    if task == "arc" and names == ("dihedral",):
        return 8
    if task == "sudoku" and shape[0] == 4 and names == ("transpose",):
        return 2
    return None


def _sudoku_transform(n: int, names: tuple[str, ...], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(positions (n*n,), token_map (n+2,)) of one random validity-preserving transform restricted to `names`.

    The draw is `dataset_scripts.sudoku.sudoku_augment_transform` (the training augmentation); the moves not in
    `names` are then undone: its positions read (r, c) from (row_perm[r], col_perm[c]), transposed or not."""
    positions, digit_map = sudoku_augment_transform(n, 1, rng)
    grid = positions[0].reshape(n, n)
    transposed = grid[0, 0] // n != grid[0, 1] // n
    rows, cols = (grid[:, 0] % n, grid[0, :] // n) if transposed else (grid[:, 0] // n, grid[0, :] % n)
    identity = np.arange(n)
    rows = rows if "rows" in names else identity
    cols = cols if "cols" in names else identity
    positions = rows[:, None] * n + cols[None, :]
    if transposed and "transpose" in names:
        positions = positions % n * n + positions // n
    digits = digit_map[0] if "digits" in names else np.arange(n + 1)
    token_map = np.concatenate([[0], digits + 1])  # PAD stays PAD, blank (digit 0) stays blank
    return positions.reshape(-1), token_map


class Symmetries:
    """The transform of every (puzzle, candidate) pair: candidate 0 is the identity, candidate c >= 1 of puzzle p
    a transform drawn from a generator seeded by (seed, p, c) (maze: the c-th element of the group, in turn)."""

    def __init__(self, task: str, shape: tuple[int, int], names: tuple[str, ...], seed: int):
        self.task, self.shape, self.names, self.seed = task, shape, names, seed
        self._drawn: dict[tuple[int, int], tuple] = {}  # transforms of the rows in flight (apply, then invert)

    def forget(self) -> None:
        self._drawn.clear()

    def _rng(self, puzzle: int, candidate: int) -> np.random.Generator:
        return np.random.default_rng((self.seed, puzzle, candidate))

    def _permutation(self, puzzle: int, candidate: int) -> tuple[np.ndarray, np.ndarray]:
        """(positions, token_map) for Sudoku and maze: transformed[i] = token_map[original[positions[i]]]."""
        height, width = self.shape
        if self.task == "sudoku":
            key = (puzzle, candidate)
            if key not in self._drawn:
                self._drawn[key] = _sudoku_transform(height, self.names, self._rng(puzzle, candidate))
            return self._drawn[key]
        elements = _maze_elements(self.names)
        k = elements[candidate % len(elements)]
        positions = np.ascontiguousarray(dihedral(np.arange(height * width).reshape(height, width), k)).reshape(-1)
        return positions, np.arange(6)

    def _arc_version(self, puzzle: int, candidate: int) -> tuple[int, np.ndarray]:
        k = candidate % 8 if "dihedral" in self.names else 0
        perm = np.arange(10)
        if "colors" in self.names:
            perm = np.concatenate([[0], self._rng(puzzle, candidate).permutation(9) + 1])
        return k, perm

    def apply(self, tokens: np.ndarray, puzzles: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """Transformed copies: row i of `tokens` is puzzle `puzzles[i]` seen by candidate `candidates[i]`."""
        out = tokens.copy()
        for i, (p, c) in enumerate(zip(puzzles.tolist(), candidates.tolist())):
            if c == 0:
                continue
            if self.task == "arc":
                k, perm = self._arc_version(p, c)
                out[i] = encode_arc_grid(arc_transform(decode_arc_grid(tokens[i]), k, perm))
            else:
                positions, token_map = self._permutation(p, c)
                out[i] = token_map[tokens[i][positions]]
        return out

    def invert(self, answers: np.ndarray, puzzles: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """Answers mapped back to each puzzle's own frame (an ARC answer that decodes to no grid stays all PAD)."""
        out = answers.copy()
        for i, (p, c) in enumerate(zip(puzzles.tolist(), candidates.tolist())):
            if c == 0:
                continue
            if self.task == "arc":
                k, perm = self._arc_version(p, c)
                grid = decode_arc_grid(answers[i])
                out[i] = encode_arc_grid(invert_arc_version(grid, k, perm)) if grid.size else 0
            else:
                positions, token_map = self._permutation(p, c)
                inverse_map = np.argsort(token_map)
                out[i][positions] = inverse_map[answers[i]]
        return out


# ---------------------------------------------------------------------------------------------------------
# Selectors
# ---------------------------------------------------------------------------------------------------------
def select(selector: str, predictions: np.ndarray, q_halt: np.ndarray, residual: np.ndarray | None = None,
           valid: np.ndarray | None = None) -> np.ndarray:
    """The candidate each puzzle answers with, (N,), from (K, N, seq_len) answers and (K, N) scores.

    q: largest Q-halt logit; vote: most frequent answer (ties: larger mean sigmoid(q_halt) of its voters, then
    the lower index); residual: smallest fixed-point residual; valid: the most confident valid answer, else the
    q pick. Ties always go to the lower index (candidate 0, the plain run, first)."""
    q_halt = np.asarray(q_halt, dtype=np.float64)
    if selector == "q":
        return q_halt.argmax(0)
    if selector == "residual":
        if residual is None:
            raise SearchError("selector 'residual' needs the candidates' residuals")
        return np.asarray(residual).argmin(0)
    if selector == "valid":
        if valid is None:
            raise SearchError("selector 'valid' needs the candidates' validity (a task with a check)")
        valid = np.asarray(valid, dtype=bool)
        best_valid = np.where(valid, q_halt, -np.inf).argmax(0)
        return np.where(valid.any(0), best_valid, q_halt.argmax(0))
    if selector == "vote":
        k, n = q_halt.shape
        keys = row_hashes(np.asarray(predictions).reshape(k * n, -1)).reshape(k, n)
        confidence = 1.0 / (1.0 + np.exp(-q_halt))
        chosen = np.empty(n, dtype=np.int64)
        step = max(1, 2**22 // max(1, k * k))  # bound the (K, K, chunk) comparison
        for start in range(0, n, step):
            same = keys[:, None, start:start + step] == keys[None, :, start:start + step]  # (K, K, chunk)
            votes = same.sum(1)
            mean_confidence = (same * confidence[None, :, start:start + step]).sum(1) / votes
            # votes are integers and the mean confidence lies in [0, 1]: one key orders by both
            chosen[start:start + step] = (votes + 0.999 * mean_confidence).argmax(0)
        return chosen
    raise SearchError(f"unknown selector {selector!r}; expected one of {', '.join(SELECTORS)}")


def validity(task: str, inputs: np.ndarray, answers: np.ndarray, shape: tuple[int, int]) -> np.ndarray | None:
    """(K, N) bool: answer k of puzzle n passes the task's check (None for ARC, which has none).

    Sudoku: complete, every unit holds each digit once, the clues kept (`formats.sudoku_batch_valid`); maze: a
    shortest S→G path that changes nothing else (`formats.check_maze_solution`, once per distinct answer)."""
    k, n, seq_len = answers.shape
    if task == "sudoku":
        givens = np.clip(inputs.astype(np.int64) - 1, 0, None)
        digits = np.clip(answers.astype(np.int64) - 1, 0, None)
        return np.stack([sudoku_batch_valid(givens, digits[c]) for c in range(k)])
    if task == "maze":
        out = np.zeros((k, n), dtype=bool)
        for p in range(n):
            question = inputs[p].reshape(shape)
            seen: dict[bytes, bool] = {}
            for c in range(k):
                key = answers[c, p].tobytes()
                if key not in seen:
                    try:
                        check_maze_solution(question, answers[c, p].reshape(shape))
                        seen[key] = True
                    except ValueError:
                        seen[key] = False
                out[c, p] = seen[key]
        return out
    return None


# ---------------------------------------------------------------------------------------------------------
# Running a setting
# ---------------------------------------------------------------------------------------------------------
@dataclass
class SearchResult:
    """What one search setting gave on N puzzles.

    Attributes:
        predictions: the selected answers in each puzzle's own frame, (N, seq_len) int64.
        chosen: the candidate each puzzle answers with, (N,).
        candidate_predictions: every candidate's answer mapped back, (K, N, seq_len) uint8.
        q_halt_logits, residual: per candidate at its stopping segment, (K, N) float32.
        steps: segments each candidate's trajectory ran, (K, N) (the shared trajectory for pure sampling).
        valid: (K, N) bool from the task's check, or None (no task given, or ARC).
        flops_per_puzzle: mean inference FLOPs per puzzle of every trajectory run (`flops.inference_flops`).
        seconds: wall time of the whole search (model, transforms, selection, checks).
        setting: the setting that ran; trajectories_per_puzzle: model trajectories per puzzle.
    """

    predictions: np.ndarray
    chosen: np.ndarray
    candidate_predictions: np.ndarray
    q_halt_logits: np.ndarray
    residual: np.ndarray
    steps: np.ndarray
    valid: np.ndarray | None
    flops_per_puzzle: float
    seconds: float
    setting: SearchSetting
    trajectories_per_puzzle: int

    def pick(self, selector: str) -> np.ndarray:
        """The candidate index per puzzle under another selector (no model run)."""
        return select(selector, self.candidate_predictions, self.q_halt_logits, self.residual, self.valid)

    def answers(self, selector: str) -> np.ndarray:
        chosen = self.pick(selector)
        return self.candidate_predictions[chosen, np.arange(len(chosen))].astype(np.int64)

    def chosen_steps(self, selector: str | None = None) -> np.ndarray:
        """Segments run by the trajectory of each puzzle's selected candidate."""
        chosen = self.chosen if selector is None else self.pick(selector)
        if self.trajectories_per_puzzle == 1:  # every candidate comes from the one trajectory
            return self.steps[0]
        return self.steps[chosen, np.arange(len(chosen))]


@contextmanager
def recursion_cycles(model, h_cycles: int | None, l_cycles: int | None):
    """Run the model with other cycle counts per segment (the config is read at every segment), then restore."""
    config = model.config
    saved = (config.H_cycles, config.L_cycles)
    try:
        config.H_cycles = h_cycles or saved[0]
        config.L_cycles = l_cycles or saved[1]
        yield config
    finally:
        config.H_cycles, config.L_cycles = saved


def setting_flops_config(config, setting: SearchSetting):
    """A copy of the config with the setting's cycles: what `flops.segment_flops` should count."""
    counted = copy.copy(config)
    counted.H_cycles = setting.h_cycles or config.H_cycles
    counted.L_cycles = setting.l_cycles or config.L_cycles
    return counted


def bytes_per_trajectory(config, setting: SearchSetting) -> int:
    """Rough peak memory of one trajectory row in a forward: input and both states (+ the previous ones for the
    residual), one block's activations (attention scores or the sequence MLP, the channel MLP), the logits
    (kept at the stopping segment for sampling), in float32."""
    positions, hidden, vocab = config.total_seq_len, config.hidden_size, config.vocab_size
    mixer = positions * positions * config.num_heads if not getattr(config, "mlp_t", False) else positions * hidden * 4
    floats = positions * hidden * 8 + mixer + 3 * positions * config.intermediate_size + 3 * config.seq_len * vocab
    return 4 * floats


def default_memory_budget(device: torch.device) -> int:
    """Bytes one chunk of trajectories may use: MEMORY_SHARE of the free device (CUDA) or host memory."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(MEMORY_SHARE * free)
    try:
        import os

        return int(MEMORY_SHARE * os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 2 * 2**30


def as_setting(setting, overrides: dict) -> SearchSetting:
    if setting is None:
        setting = SearchSetting()
    elif isinstance(setting, str):
        setting = parse_setting(setting)
    elif isinstance(setting, dict):
        setting = setting_from_dict(setting)
    elif not isinstance(setting, SearchSetting):
        raise OptionTypeError(f"search settings must be a SearchSetting, a dict or a string like 'depth=16 breadth=8', "
                              f"got {describe(setting)}")
    unknown = [k for k in overrides if k not in _FIELDS]
    if unknown:
        raise SearchError(f"search: unknown key {unknown[0]!r}; expected {', '.join(_FIELDS)}")
    return replace(setting, **overrides) if overrides else setting


@torch.no_grad()
def search(model, input_ids, puzzle_identifiers=None, setting: SearchSetting | dict | str | None = None, *,
           task: str | None = None, grid_shape: tuple[int, int] | None = None, max_rows: int = 1024,
           memory_budget: int | None = None, **overrides) -> SearchResult:
    """Solve `input_ids` (N, seq_len) with one search setting (a `SearchSetting`, a dict or a string like
    "depth=64 breadth=8 kind=symmetry selector=vote"; keyword overrides win) and return a `SearchResult`.

    Args:
        model: an HRM or TRM model (`HRMForPuzzleSolving`, `TRMForPuzzleSolving`), used in eval mode.
        puzzle_identifiers: (N,) puzzle-embedding rows (default 0).
        task: "sudoku", "maze" or "arc"; needed by the "symmetry" kind and the "valid" selector (and then
            checked against the model's vocabulary and sequence length).
        grid_shape: a maze's (height, width) where it is not square.
        max_rows: trajectories per forward at most (fewer where `memory_budget` demands).
        memory_budget: bytes one chunk of trajectories may use (default: a quarter of the free memory).
    """
    grid_shape = check_grid_shape(grid_shape)
    setting = as_setting(setting, overrides).check(model.config, task, grid_shape)
    if task is None and setting.selector == "valid":
        raise SearchError("selector 'valid' needs the task (sudoku or maze) to check answers against: pass task=")
    if task is None and "symmetry" in setting.kinds:
        raise SearchError("breadth kind 'symmetry' needs the task (sudoku, maze or arc) to transform puzzles: "
                          "pass task=")
    config = model.config
    device = next(model.parameters()).device
    input_ids = torch.as_tensor(input_ids)
    puzzle_identifiers = model._check_inputs(input_ids, puzzle_identifiers, None, allow_empty=True)
    if check_int(max_rows, "max_rows") < 1:
        raise SearchError(f"max_rows must be an integer >= 1, got {max_rows!r}")
    if memory_budget is not None and check_int(memory_budget, "memory_budget (bytes)") < 1:
        raise SearchError(f"memory_budget must be a number of bytes >= 1, got {memory_budget!r}")
    shape = check_task_fits(config, task, grid_shape) if task is not None else None
    kinds, breadth, trajectories = setting.kinds, setting.breadth, setting.trajectories
    num_puzzles, seq_len = input_ids.shape
    inputs = input_ids.cpu().numpy().astype(np.int64)
    # Per-candidate draws are seeded by (seed, puzzle, candidate) with the puzzle named by its tokens: a puzzle
    # gets the same candidates wherever it sits in a list and whatever chunk it runs in.
    keys = puzzle_keys(input_ids).numpy()

    symmetries = None
    if "symmetry" in kinds and breadth > 1:
        names = task_symmetries(task, shape, setting.symmetries)  # the breadth fits them (checked above)
        if task == "arc" and num_puzzles and int(puzzle_identifiers.max()) != 0:
            raise SearchError("ARC symmetric copies need the blank puzzle id 0: these puzzles use trained ids, each "
                              "naming one augmented version (solve the versions the dataset gives instead)")
        symmetries = Symmetries(task, shape, names, setting.seed)

    memory_budget = default_memory_budget(device) if memory_budget is None else memory_budget
    per_row = bytes_per_trajectory(config, setting)
    result_bytes = breadth * num_puzzles * (seq_len + 16) + trajectories * num_puzzles * 16
    if result_bytes > 4 * memory_budget or per_row > memory_budget:
        needed = max(result_bytes, per_row)
        raise SearchError(f"this setting needs about {needed / 2**30:.1f} GiB (breadth {breadth} x {num_puzzles} "
                          f"puzzles) but about {memory_budget / 2**30:.1f} GiB is available for it; lower the "
                          f"breadth or solve fewer puzzles at a time")
    rows_per_chunk = max(1, min(max_rows, memory_budget // per_row))

    candidate_tokens = np.zeros((breadth, num_puzzles, seq_len), dtype=np.uint8)
    q_halt = np.zeros((breadth, num_puzzles), dtype=np.float32)
    residual = np.zeros((breadth, num_puzzles), dtype=np.float32)
    steps = np.zeros((trajectories, num_puzzles), dtype=np.int64)
    init_kind = next((k for k in kinds if k in ("noise", "restart")), None)
    sampled = "sample" in kinds
    max_steps = setting.depth or config.halt_max_steps
    was_training = model.training
    model.eval()
    start_time = time.perf_counter()
    try:
        with recursion_cycles(model, setting.h_cycles, setting.l_cycles):
            pairs = np.array(list(itertools.product(range(num_puzzles), range(trajectories))), dtype=np.int64)
            pairs = pairs.reshape(-1, 2)
            for chunk, begin in enumerate(range(0, len(pairs), rows_per_chunk)):
                puzzles, candidates = pairs[begin:begin + rows_per_chunk].T
                global_puzzles = keys[puzzles]
                rows = inputs[puzzles]
                if symmetries is not None:
                    rows = symmetries.apply(rows, global_puzzles, candidates)
                x = torch.as_tensor(rows, device=device)
                ids = puzzle_identifiers[torch.as_tensor(puzzles, device=puzzle_identifiers.device)].to(device)
                initial = None
                if init_kind is not None and breadth > 1:
                    initial = model.candidate_initial_states(torch.as_tensor(global_puzzles),
                                                             torch.as_tensor(candidates), init_kind, setting.noise,
                                                             setting.seed)
                step_noise = None
                if "step_noise" in kinds and breadth > 1 and setting.step_noise > 0:
                    generator = torch.Generator(device=device).manual_seed(
                        _mix(setting.seed, int(keys[puzzles[0]]), chunk))
                    step_noise = (torch.as_tensor(np.where(candidates > 0, setting.step_noise, 0.0)), generator)
                out = model._solve_rows(x, ids, max_steps, setting.early_exit, False, initial_states=initial,
                                        step_noise=step_noise, track_residual=True,
                                        return_logits=sampled and breadth > 1)
                answers = out.predictions.cpu().numpy()
                if sampled and breadth > 1:
                    answers = _sample_answers(out.logits, answers, global_puzzles, candidates, breadth,
                                              trajectories, setting)
                q = out.q_halt_logits.float().cpu().numpy()
                r = out.residual.cpu().numpy()
                steps[candidates, puzzles] = out.steps.cpu().numpy()
                if trajectories == 1 and breadth > 1:  # samples of one trajectory: K answers per row
                    for c in range(breadth):
                        candidate_tokens[c, puzzles] = answers[c]
                        q_halt[c, puzzles], residual[c, puzzles] = q, r
                    continue
                if symmetries is not None:
                    answers = symmetries.invert(answers, global_puzzles, candidates)
                    symmetries.forget()
                candidate_tokens[candidates, puzzles] = answers
                q_halt[candidates, puzzles], residual[candidates, puzzles] = q, r
    finally:
        model.train(was_training)
    valid = validity(task, inputs, candidate_tokens, shape) if task is not None else None
    chosen = select(setting.selector, candidate_tokens, q_halt, residual, valid)
    predictions = candidate_tokens[chosen, np.arange(num_puzzles)].astype(np.int64)
    seconds = time.perf_counter() - start_time
    segments = steps.sum(0).mean() if num_puzzles else 0.0
    flops = inference_flops(setting_flops_config(config, setting), float(segments))
    return SearchResult(predictions=predictions, chosen=chosen, candidate_predictions=candidate_tokens,
                        q_halt_logits=q_halt, residual=residual, steps=steps, valid=valid,
                        flops_per_puzzle=flops, seconds=seconds, setting=setting, trajectories_per_puzzle=trajectories)


def _mix(*values: int) -> int:
    """A 63-bit seed from a few integers (numpy's SeedSequence)."""
    return int(np.random.SeedSequence([int(v) for v in values]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def _sample_answers(logits: torch.Tensor, argmax: np.ndarray, puzzles: np.ndarray, candidates: np.ndarray,
                    breadth: int, trajectories: int, setting: SearchSetting) -> np.ndarray:
    """Sampled decoding: every cell drawn from softmax(logits / temperature), seeded per (seed, puzzle,
    candidate); candidate 0 keeps the argmax. With one trajectory per puzzle, returns (K, rows, seq_len): the K
    answers drawn from each row's logits; else (rows, seq_len), row i's answer for its own candidate."""
    probs = torch.softmax(logits.float().cpu() / setting.temperature, dim=-1)  # (rows, seq_len, vocab)

    def draw(row: int, candidate: int) -> np.ndarray:
        generator = torch.Generator().manual_seed(_mix(setting.seed, puzzles[row], candidate, 7))
        return torch.multinomial(probs[row], 1, generator=generator)[:, 0].numpy()

    if trajectories == 1:
        out = np.repeat(argmax[None], breadth, axis=0)
        for row in range(len(puzzles)):
            for c in range(1, breadth):
                out[c, row] = draw(row, c)
        return out
    out = argmax.copy()
    for row, c in enumerate(candidates.tolist()):
        if c > 0:
            out[row] = draw(row, c)
    return out


# ---------------------------------------------------------------------------------------------------------
# Spelling settings and grids: "depth=4,16,64 breadth=1,8,32 kind=noise selector=q,vote"
# ---------------------------------------------------------------------------------------------------------
_FIELDS = {f.name: f for f in fields(SearchSetting)}
_ALIASES = {"breadth_kind": "kind", "selectors": "selector", "segments": "depth", "cycles": "h_cycles"}
# Axes of a grid that need their own model run; the selectors share a run.
RUN_AXES = ("depth", "breadth", "kind", "h_cycles", "l_cycles", "early_exit", "noise", "step_noise", "temperature")


def _convert(key: str, text: str):
    text = text.strip()
    try:
        if key in ("depth", "h_cycles", "l_cycles"):
            return None if text.lower() in ("trained", "default", "none") else int(text)
        if key in ("breadth", "seed"):
            return int(text)
        if key in ("noise", "step_noise", "temperature"):
            return float(text)
    except ValueError:
        raise SearchError(f"search: {key} takes {'integers' if key in ('depth', 'breadth', 'seed') else 'numbers'}, "
                          f"got {text!r}") from None
    if key == "early_exit":
        if text.lower() in ("true", "yes", "1", "on"):
            return True
        if text.lower() in ("false", "no", "0", "off"):
            return False
        raise SearchError(f"search: early_exit takes true or false, got {text!r}")
    return text


def parse_grid(spec) -> dict[str, list]:
    """`key=v1,v2 key=v ...` (a string or a list of such tokens) → {field: [values]} (values converted)."""
    tokens = spec.split() if isinstance(spec, str) else [t for item in spec for t in str(item).split()]
    grid: dict[str, list] = {}
    for token in tokens:
        key, sep, values = token.partition("=")
        key = _ALIASES.get(key.strip().replace("-", "_"), key.strip().replace("-", "_"))
        if not sep or not values.strip():
            raise SearchError(f"search: expected key=value[,value...], got {token!r}")
        if key not in _FIELDS:
            raise SearchError(f"search: unknown key {key!r}; expected {', '.join(_FIELDS)}")
        if key in grid:
            raise SearchError(f"search: {key} is given twice")
        grid[key] = [_convert(key, v) for v in values.split(",") if v.strip()]
        if not grid[key]:
            raise SearchError(f"search: {key} has no value")
    return check_grid(grid)


def check_grid(grid: dict) -> dict[str, list]:
    """A grid given as a dict {key: [values]}: every key known (or an alias), every value a non-empty list or tuple,
    seed and symmetries one value each. The values themselves are checked with the settings they make."""
    checked: dict[str, list] = {}
    for key, values in grid.items():
        name = _ALIASES.get(key, key) if isinstance(key, str) else key
        if name not in _FIELDS:
            raise SearchError(f"search: unknown key {key!r}; expected {', '.join(_FIELDS)}")
        if name in checked:
            raise SearchError(f"search: {name} is given twice")
        checked[name] = check_sequence(values, f"search grid values of {name}")
        if not checked[name]:
            raise SearchError(f"search: {name} has no value")
    for key in ("seed", "symmetries"):
        if len(checked.get(key, [])) > 1:
            raise SearchError(f"search: {key} takes one value, got {len(checked[key])}")
    return checked


def parse_setting(spec) -> SearchSetting:
    """One setting from `key=value ...` (each key one value)."""
    grid = parse_grid(spec)
    several = [k for k, v in grid.items() if len(v) > 1]
    if several:
        raise SearchError(f"search: {several[0]} has several values; one setting takes one value per key "
                          f"(grids are for hrm-evaluate --search)")
    return SearchSetting(**{k: v[0] for k, v in grid.items()}).check()


def setting_from_dict(values: dict) -> SearchSetting:
    values = {_ALIASES.get(k, k): v for k, v in values.items()}
    unknown = [k for k in values if k not in _FIELDS]
    if unknown:
        raise SearchError(f"search: unknown key {unknown[0]!r}; expected {', '.join(_FIELDS)}")
    return SearchSetting(**values).check()


def grid_settings(grid: dict[str, list], config=None, task: str | None = None, grid_shape=None
                  ) -> tuple[list[SearchSetting], list[str]]:
    """(the settings to run: the product of the run axes, breadth 1 once per depth and cycles since every kind
    is the same plain run there; the selectors to score on each)."""
    selectors = list(dict.fromkeys(grid.get("selector", ["q"])))
    fixed = {k: v[0] for k, v in grid.items() if k in ("seed", "symmetries")}
    axes = {k: list(dict.fromkeys(grid.get(k, [getattr(SearchSetting, k)]))) for k in RUN_AXES}
    settings = []
    for values in itertools.product(*axes.values()):
        setting = SearchSetting(**dict(zip(RUN_AXES, values)), **fixed)
        if setting.breadth == 1:  # no candidates: the kind and its parameters do not matter
            setting = replace(setting, kind="noise", noise=SearchSetting.noise, step_noise=SearchSetting.step_noise,
                              temperature=SearchSetting.temperature, symmetries=None)
        if setting not in settings:
            settings.append(setting)
    for s in settings:
        for selector in selectors:
            replace(s, selector=selector).check(config, task, grid_shape)
    return settings, selectors


# ---------------------------------------------------------------------------------------------------------
# A grid on labelled puzzles: accuracy against compute
# ---------------------------------------------------------------------------------------------------------
def exact_rows(predictions: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(exact (…, N), scored (N,)): every scored cell right; labels 0 (PAD) and -100 are not scored."""
    labels = np.asarray(labels).astype(np.int64)
    scored_cells = ~np.isin(labels, (0, -100))
    exact = ((np.asarray(predictions).astype(np.int64) == labels) | ~scored_cells).all(-1)
    return exact, scored_cells.any(-1)


def evaluate_grid(model, inputs: np.ndarray, labels: np.ndarray, puzzle_identifiers: np.ndarray | None = None, *,
                  grid: dict[str, list] | str | None = None, settings: list[SearchSetting] | None = None,
                  selectors: list[str] | None = None, reference: SearchSetting | None = None, task: str | None = None,
                  grid_shape=None, max_rows: int = 1024, log=None) -> dict:
    """Run every setting of `grid` (or the given `settings`, each scored with `selectors`) on labelled puzzles;
    score each selector on it.

    Returns {"reference": the plain run's row, "rows": [one dict per (setting, selector): the setting's fields,
    `selector`, `exact_accuracy`, `flops_per_puzzle`, `relative_flops` (to the plain run at the trained depth),
    `seconds`, `seconds_per_100_puzzles`, `mean_segments_per_trajectory`, `oracle` (some candidate right: the
    ceiling of any selector), `correct` (per puzzle, bool list)]}. The plain run (`reference`; default: trained
    depth, breadth 1, the grid's first early-exit value) is run too when the grid lacks it."""
    grid_shape = check_grid_shape(grid_shape)
    if log is not None and not callable(log):
        raise OptionTypeError(f"log must be a function that takes one line of text, got {describe(log)}")
    inputs, labels = np.asarray(inputs), np.asarray(labels)
    if inputs.ndim != 2 or labels.shape != inputs.shape:
        raise SearchError(f"inputs and labels must be arrays of one shape (puzzles, seq_len), got {inputs.shape} "
                          f"and {labels.shape}")
    if settings is None:
        if isinstance(grid, dict):
            grid = check_grid(grid)
        elif isinstance(grid, (str, list, tuple)):
            grid = parse_grid(grid)
        else:
            raise OptionTypeError(f"grid must be a string like 'depth=4,16 breadth=1,8', a list of such tokens or a "
                                  f"dict {{key: [values]}} (or give settings=), got {describe(grid)}")
        settings, selectors = grid_settings(grid, model.config, task, grid_shape)
    else:
        for i, setting in enumerate(check_sequence(settings, "settings")):
            if not isinstance(setting, SearchSetting):
                raise OptionTypeError(f"settings[{i}] must be a SearchSetting, got {describe(setting)}")
        if selectors is not None:
            for i, selector in enumerate(check_sequence(selectors, "selectors")):
                check_text(selector, f"selectors[{i}]", f"({', '.join(SELECTORS)})")
        settings, selectors = list(dict.fromkeys(settings)), list(dict.fromkeys(selectors or ["q"]))
        for setting in settings:
            for selector in selectors:
                replace(setting, selector=selector).check(model.config, task, grid_shape)
    if reference is not None and not isinstance(reference, SearchSetting):
        raise OptionTypeError(f"reference must be a SearchSetting, got {describe(reference)}")
    plain = reference or SearchSetting(early_exit=settings[0].early_exit, seed=settings[0].seed)
    runs = settings if plain in settings else [plain] + settings
    ids = None if puzzle_identifiers is None else torch.as_tensor(np.asarray(puzzle_identifiers).astype(np.int64))
    rows, reference = [], None
    for number, setting in enumerate(runs, 1):
        res = search(model, torch.as_tensor(inputs.astype(np.int64)), ids, setting, task=task, grid_shape=grid_shape,
                     max_rows=max_rows)
        right, scored = exact_rows(res.candidate_predictions, labels)
        oracle = float(right.any(0)[scored].mean()) if scored.any() else 0.0
        base = {**{k: v for k, v in asdict(setting).items() if k != "selector"},
                "flops_per_puzzle": res.flops_per_puzzle, "seconds": res.seconds,
                "seconds_per_100_puzzles": 100 * res.seconds / max(1, len(inputs)),
                "mean_segments_per_trajectory": float(res.steps.mean()) if res.steps.size else 0.0,
                "trajectories_per_puzzle": res.trajectories_per_puzzle, "oracle": oracle,
                "num_puzzles": int(scored.sum())}
        if setting == plain:
            reference = {**base, "selector": "q", "correct": right[0].tolist(),
                         "exact_accuracy": float(right[0][scored].mean()) if scored.any() else 0.0}
        if setting in settings:
            for selector in selectors:
                if selector == "valid" and res.valid is None:
                    continue
                chosen = res.pick(selector)
                correct = right[chosen, np.arange(len(chosen))]
                rows.append({**base, "selector": selector,
                             "exact_accuracy": float(correct[scored].mean()) if scored.any() else 0.0,
                             "correct": correct.tolist()})
        if log is not None:
            scored_here = rows[-len(selectors):] if setting in settings else [reference]
            best = max(r["exact_accuracy"] for r in scored_here)
            log(f"[{number}/{len(runs)}] {setting.label()}{'' if setting in settings else ' (plain run)'}: "
                f"{res.seconds:.1f}s, {res.flops_per_puzzle / 1e6:.1f} MFLOP/puzzle, best exact {100 * best:.1f}%")
    for row in rows:
        row["relative_flops"] = row["flops_per_puzzle"] / reference["flops_per_puzzle"]
    reference["relative_flops"] = 1.0
    return {"reference": reference, "rows": rows, "selectors": selectors}


def format_table(result: dict) -> str:
    """The grid's accuracy / compute table as Markdown (verifier rows marked)."""
    ref = result["reference"]
    lines = [f"plain run (trained depth, breadth 1): exact {100 * ref['exact_accuracy']:.2f}%, "
             f"{ref['flops_per_puzzle'] / 1e6:.2f} MFLOP/puzzle, {ref['seconds_per_100_puzzles']:.2f} s/100 puzzles",
             "",
             "| depth | cycles (H, L) | breadth | kind | selector | exact | oracle | MFLOP/puzzle | × plain | "
             "segments/trajectory | s/100 puzzles |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    shown = set()
    for r in result["rows"]:
        cycles = f"{r['h_cycles'] or '-'}, {r['l_cycles'] or '-'}"
        selector = r["selector"] + (" (verifier)" if r["selector"] == "valid" else "")
        kind = r["kind"] if r["breadth"] > 1 else "-"
        if r["breadth"] == 1:  # one candidate: every selector returns it
            key = (r["depth"], r["h_cycles"], r["l_cycles"], r["early_exit"])
            if key in shown:
                continue
            shown.add(key)
            selector = "-"
        lines.append(f"| {r['depth'] or 'trained'}{'' if r['early_exit'] else ' (full)'} | {cycles} | {r['breadth']} "
                     f"| {kind} | {selector} | {100 * r['exact_accuracy']:.2f}% | {100 * r['oracle']:.2f}% | "
                     f"{r['flops_per_puzzle'] / 1e6:.2f} | {r['relative_flops']:.1f} | "
                     f"{r['mean_segments_per_trajectory']:.2f} | {r['seconds_per_100_puzzles']:.2f} |")
    return "\n".join(lines)


KIND_MARKERS = {"noise": "o", "restart": "s", "step_noise": "^", "symmetry": "D", "sample": "v"}


def plot_accuracy_vs_flops(panels: dict[str, dict], path, title: str = "Test-time search") -> None:
    """Exact accuracy vs inference FLOPs per puzzle: one panel per model (`panels`: name → `evaluate_grid`
    result), one line per selector: its frontier, the best accuracy at or below each compute over every setting
    (depth, cycles, breadth and kind); each setting a marker in the selector's colour, shaped by its breadth kind
    (a cross for breadth 1); the plain run a black star. The verifier ("valid") is dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.6), dpi=120, squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    kinds_seen = set()
    for ax, (name, result) in zip(axes[0], panels.items()):
        for number, selector in enumerate(result["selectors"]):
            colour = colours[number % len(colours)]
            rows = sorted((r for r in result["rows"] if r["selector"] == selector),
                          key=lambda r: (r["flops_per_puzzle"], -r["exact_accuracy"]))
            frontier, best = [], -1.0
            for r in rows:
                kind = r["kind"] if r["breadth"] > 1 else None
                kinds_seen.add(kind)
                ax.scatter(r["flops_per_puzzle"], 100 * r["exact_accuracy"], s=22, color=colour, alpha=0.55,
                           marker=KIND_MARKERS.get((kind or "").split("+")[-1], "x") if kind else "x")
                if r["exact_accuracy"] > best:
                    best = r["exact_accuracy"]
                    frontier.append((r["flops_per_puzzle"], 100 * best))
            if frontier:
                ax.plot(*zip(*frontier), color=colour, linestyle="--" if selector == "valid" else "-",
                        label=selector + (" (verifier)" if selector == "valid" else ""))
        ref = result["reference"]
        ax.scatter([ref["flops_per_puzzle"]], [100 * ref["exact_accuracy"]], marker="*", s=140, color="black",
                   zorder=5, label="plain run")
        ax.set_xscale("log")
        ax.set_xlabel("inference FLOPs per puzzle")
        ax.set_ylabel("exact accuracy (%)")
        ax.set_title(name if len(panels) > 1 else title)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    shapes = [Line2D([], [], color="grey", linestyle="", marker=KIND_MARKERS.get((k or "").split("+")[-1], "x"),
                     label=k or "breadth 1") for k in sorted(kinds_seen, key=lambda k: (k is not None, k or ""))]
    fig.legend(handles=shapes, loc="lower center", ncol=len(shapes), fontsize=7, frameon=False)
    if len(panels) > 1:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path)
    plt.close(fig)


__all__ = ["search", "SearchSetting", "SearchResult", "SearchError", "as_setting", "select", "validity", "Symmetries",
           "task_symmetries", "parse_grid", "parse_setting", "grid_settings", "evaluate_grid", "format_table",
           "plot_accuracy_vs_flops", "recursion_cycles", "KINDS", "SELECTORS"]
