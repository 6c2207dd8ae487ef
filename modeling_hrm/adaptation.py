"""Solve an ARC task the model never trained on: learn its puzzle embedding from its demonstrations.

HRM and TRM name an ARC task by learned puzzle-embedding rows, one per augmented version of the task. The
originals learn them by training on the evaluation tasks' demonstration pairs together with everything else; a
task outside training only has the blank id 0, which tells the network nothing. `adapt_to_task` does what that
training does for one task, at inference, with the network frozen:

1. the task's versions are made as the ARC builder makes them (`build_arc_dataset.task_versions`: the identity and
   up to `num_aug` distinct dihedral x colour-permutation versions, colour 0 fixed), and its demonstration pairs are
   encoded in every version as the builder encodes training rows (`emit_pair`: a random translation in the model's
   canvas, 30x30 or the smaller one of a `--canvas` build, except one random pair per version);
2. each version gets a new row of the puzzle-embedding table, zero-initialised as in training;
3. `steps` optimizer steps train only those rows: one ACT segment per step in training mode with the carry kept
   across steps (deep supervision, halting with exploration), the model's own loss (stablemax or softmax LM loss
   plus the Q losses), and the trainer's sparse sign-SGD on the rows the batch used;
4. the versions are then solved and vote as any trained ARC task (`solve_arc_task(versions=...)`, the pipeline's
   `arc_versions`).

Every network weight and every other row of the table stays bit-identical (the parameters do not even get
gradients). The versions are recorded in `config.adapted_tasks` under the task's key (a digest of its
demonstrations and test inputs, `pipeline_puzzle_solving.arc_task_key`), so `save_pretrained` keeps them and a
reloaded model solves the task the same way: the `puzzle-solving` pipeline uses a task's adapted rows on its own.

```python
result = model.adapt_to_task(task, steps=100)          # or adapt_to_task(model, task, ...)
solve_arc_task(model, task, versions=result.versions)  # or pipeline(task): the adapted rows are found by key
pipeline("puzzle-solving", model=model)(task, adapt_steps=100)   # adapt, then solve
```
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from .pipeline_puzzle_solving import PuzzleError, arc_task_key, check_arc_grids_fit, parse_arc_task, read_if_file

DEFAULT_STEPS = 100
DEFAULT_NUM_AUG = 7  # 8 versions, as many as the pipeline's 8 dihedral versions of a blank-id solve
DEFAULT_LR = 1e-2  # the puzzle-embedding learning rate of the originals' recipes
DEFAULT_WEIGHT_DECAY = 0.1


@dataclass
class AdaptationResult:
    """What `adapt_to_task` learned.

    Attributes:
        task_key: the task's key in `config.adapted_tasks` (a digest of its demonstrations and test inputs).
        versions: (dihedral, colour permutation, puzzle id) per version, as `solve_arc_task(versions=...)` and the
            pipeline's `arc_versions` take them.
        steps: optimizer steps run; losses: the loss of each step.
        seconds: wall-clock time of the adaptation (callbacks excluded).
        num_rows: demonstration rows trained on (versions x demonstration pairs).
    """

    task_key: str
    versions: list[tuple[int, np.ndarray, int]]
    steps: int
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    num_rows: int = 0

    @property
    def puzzle_ids(self) -> list[int]:
        return [pid for _, _, pid in self.versions]


@torch.no_grad()
def sign_sgd_rows(weight: torch.Tensor, ids: torch.Tensor, grads: torch.Tensor, lr: float,
                  weight_decay: float) -> None:
    """The puzzle-embedding update of training and adaptation (the trainer's
    `training.optim.sign_sgd_puzzle_embedding_step` checks shapes and calls it): gradients of a repeated id are
    summed, then `w[id] = w[id] * (1 - lr * wd) - lr * sign(sum g)`; nothing moves if a gradient is not finite.
    Returns the updated ids."""
    unique_ids, inverse = ids.unique(return_inverse=True)
    summed = torch.zeros(unique_ids.shape[0], grads.shape[1], dtype=grads.dtype, device=grads.device)
    summed.index_add_(0, inverse, grads)
    rows = weight[unique_ids]
    updated = rows * (1.0 - lr * weight_decay) - lr * torch.sign(summed).to(rows.dtype)
    weight[unique_ids] = torch.where(torch.isfinite(summed).all(), updated, rows)
    return unique_ids


class _Rows:
    """Collects the rows `build_arc_dataset.emit_pair` makes (it writes to a buffer with `add(**columns)`)."""

    def __init__(self):
        self.parts: list[dict] = []

    def add(self, **columns) -> None:
        self.parts.append(columns)

    def column(self, name: str) -> np.ndarray:
        return np.concatenate([part[name] for part in self.parts])


def _check_number(name: str, value, minimum: float, integer: bool, inclusive: bool = True):
    ok_type = isinstance(value, numbers.Integral) if integer else isinstance(value, numbers.Real)
    if isinstance(value, bool) or not ok_type or not math.isfinite(value) or \
            (value < minimum if inclusive else value <= minimum):
        kind = "an integer" if integer else "a number"
        raise ValueError(f"{name} must be {kind} {'>=' if inclusive else '>'} {minimum}, got {value!r}")
    return int(value) if integer else float(value)


def check_adaptation_args(steps, num_aug, lr, weight_decay, batch_size) -> None:
    """One-line `ValueError` for an option `adapt_to_task` cannot run with."""
    _check_number("adapt steps", steps, 1, integer=True)
    _check_number("num_aug", num_aug, 0, integer=True)
    _check_number("lr", lr, 0, integer=False, inclusive=False)
    _check_number("weight_decay", weight_decay, 0, integer=False)
    if batch_size is not None:
        _check_number("batch_size", batch_size, 1, integer=True)


def adapt_to_task(model, task, steps: int = DEFAULT_STEPS, num_aug: int = DEFAULT_NUM_AUG, lr: float = DEFAULT_LR,
                  weight_decay: float = DEFAULT_WEIGHT_DECAY, batch_size: int | None = None, seed: int = 0,
                  callback=None) -> AdaptationResult:
    """Learn new puzzle-embedding rows for an ARC task from its demonstration pairs, the network frozen.

    Args:
        model: an HRM or TRM model of the ARC layout (vocab 12, seq_len 900, or N * N for a smaller canvas) with a
            puzzle embedding.
        task: the ARC task (dict, JSON text or the path of a JSON file) with at least one demonstration pair;
            test outputs, if given, are not used.
        steps: optimizer steps (one ACT segment each).
        num_aug: augmented versions besides the identity (up to num_aug + 1 versions, fewer for tasks with few
            distinct ones), each its own row, as the ARC builder's `--num-aug`.
        lr, weight_decay: of the sign-SGD on the rows (the originals' puzzle-embedding optimizer), constant.
        batch_size: rows per step; default all of them (versions x demonstration pairs). A smaller batch draws
            rows in a fresh random order each pass.
        seed: versions, translations, batch order and the ACT exploration draws follow from it (the global torch
            RNG is left as it was).
        callback: called as `callback(step, versions)` after every step (`versions` as in the result: e.g. to
            solve at intermediate step counts); its time is not counted in `seconds`.

    Returns an `AdaptationResult`; the model's table gains the rows (or reuses those of an earlier adaptation of
    the same task) and `config.adapted_tasks[task_key]` records the versions. Raises `ValueError` (one line) for a
    task without demonstrations, steps < 1, a model that cannot take ARC grids or has no puzzle embedding, a grid
    larger than the model's canvas.
    """
    from dataset_scripts.build_arc_dataset import emit_pair, task_versions

    check_adaptation_args(steps, num_aug, lr, weight_decay, batch_size)
    check_arc_grids_fit(model.config, [])
    if model.config.puzzle_emb_ndim == 0 or model.puzzle_embedding is None:
        raise ValueError("this model has no puzzle embedding (puzzle_emb_ndim=0): there is nothing to adapt")
    parsed = parse_arc_task(read_if_file(task))
    if not parsed["train"]:
        raise PuzzleError('cannot adapt to an ARC task without demonstrations: its "train" list is empty')
    canvas = check_arc_grids_fit(model.config, [g for i, o in parsed["train"] for g in (i, o)]
                                 + [grid for grid, _ in parsed["test"]])
    key = arc_task_key(parsed)
    rng = np.random.default_rng(seed)

    # Versions and rows exactly as the builder makes a training task's (its random draws in its order).
    versions = task_versions({"train": parsed["train"], "test": [(grid, None) for grid, _ in parsed["test"]]},
                             num_aug, rng)
    ids = _rows_for(model, key, len(versions))
    solved = [(int(k), np.asarray(perm, dtype=np.uint8), int(pid)) for (k, perm), pid in zip(versions, ids)]
    rows = _Rows()
    untranslated = rng.integers(0, len(parsed["train"]), size=len(versions))
    for j, (inp, out) in enumerate(parsed["train"]):
        emit_pair(rows, inp.astype(np.uint8), out.astype(np.uint8), versions, np.asarray(ids, np.int32), 0, key, j,
                  False, untranslated != j, rng, canvas)
    device = model.puzzle_embedding.weight.device
    inputs = torch.as_tensor(rows.column("inputs"), dtype=torch.long, device=device)
    labels = torch.as_tensor(rows.column("labels"), dtype=torch.long, device=device)
    labels = labels.masked_fill(labels == 0, -100)  # PAD is not scored, as the trainer does
    puzzle_ids = torch.as_tensor(rows.column("puzzle_identifiers"), dtype=torch.long, device=device)
    num_rows = len(inputs)
    batch = num_rows if batch_size is None else min(int(batch_size), num_rows)

    table = model.puzzle_embedding
    table.weight[ids] = 0  # a fresh start, also when the task was adapted before
    was_training = model.training
    frozen = [(p, p.requires_grad) for p in model.parameters()]
    losses, seconds = [], 0.0
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(num_rows, generator=generator)
    position, carry = 0, None
    rng_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=rng_devices):
        torch.manual_seed(seed)  # the ACT exploration draws of training mode
        try:
            for p, _ in frozen:
                p.requires_grad_(False)
            model.train()
            for step in range(1, steps + 1):
                start = time.perf_counter()
                if position + batch > num_rows:
                    order, position = torch.randperm(num_rows, generator=generator), 0
                pick = order[position:position + batch].to(device)
                position += batch
                out = model(inputs[pick], puzzle_identifiers=puzzle_ids[pick], labels=labels[pick], carry=carry)
                carry = out.carry
                out.loss.backward()
                sign_sgd_rows(table.weight, table.local_ids, table.local_weight.grad.float(), lr, weight_decay)
                table.local_weight = table.local_ids = None
                losses.append(float(out.loss.detach()))
                seconds += time.perf_counter() - start
                if callback is not None:
                    callback(step, solved)
                    model.train()
        finally:
            for p, requires_grad in frozen:
                p.requires_grad_(requires_grad)
            model.train(was_training)

    record = dict(getattr(model.config, "adapted_tasks", None) or {})
    record[key] = {"versions": [[k, "".join(map(str, perm.tolist())), pid] for k, perm, pid in solved],
                   "steps": steps, "num_aug": num_aug, "lr": lr, "weight_decay": weight_decay, "seed": seed}
    model.config.adapted_tasks = record
    return AdaptationResult(task_key=key, versions=solved, steps=steps, losses=losses, seconds=seconds,
                            num_rows=num_rows)


def _rows_for(model, key: str, count: int) -> list[int]:
    """Table rows for `count` versions of task `key`: those of an earlier adaptation of it when it had as many,
    else new rows appended to the table."""
    earlier = (getattr(model.config, "adapted_tasks", None) or {}).get(key)
    if earlier is not None and len(earlier["versions"]) == count:
        return [int(pid) for _, _, pid in earlier["versions"]]
    start = model.config.num_puzzle_identifiers
    model.resize_puzzle_embeddings(start + count)
    return list(range(start, start + count))


__all__ = ["adapt_to_task", "AdaptationResult", "sign_sgd_rows", "check_adaptation_args", "DEFAULT_STEPS",
           "DEFAULT_NUM_AUG", "DEFAULT_LR"]
