"""Evaluation of an HRM model on encoded puzzle arrays: accuracy metrics, per-step scores and ARC scoring.

`evaluate_model` is what the trainer calls during training; `hrm-evaluate` (training/hrm_evaluate.py, its report in
training/evaluation_report.py) and `hrm-analyze` build on `run_segments`, `arc_scores` and the split helpers
(`load_split`, `check_model_fits_dataset`, `select_rows`) of this module.
Metrics are computed through the local `evaluate` modules in training/metrics/.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

# ARC answers and voting are data helpers; re-exported here under their old names.
from dataset_scripts.arc import arc_vote_strings, grid_to_str, invert_arc_version, str_to_grid  # noqa: F401

METRICS_DIR = Path(__file__).resolve().parent / "metrics"
# Dataset labels use 0 (PAD) for "not scored"; trainer-side labels use -100. Neither is ever a real answer.
IGNORE_LABELS = (0, -100)


def load_metric(name: str):
    """Load one of the local metric modules (`puzzle_accuracy`, `arc_pass_at_k`) offline.

    An absolute path is used because `evaluate.load` takes a relative name that does not exist as a Hub id.
    `keep_in_memory` avoids cache files that several processes evaluating at once would share.
    """
    import evaluate

    path = METRICS_DIR / name
    if not (path / f"{name}.py").is_file():
        raise FileNotFoundError(f"metric module {name!r} not found at {path}")
    return evaluate.load(str(path), keep_in_memory=True)


def _unwrap(model, accelerator=None):
    """The HRM model itself (DDP / compiled wrappers hide `solve`)."""
    if accelerator is not None:
        model = accelerator.unwrap_model(model)
    while hasattr(model, "module") and not hasattr(model, "solve"):
        model = model.module
    return model


def _model_device(model) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def _shard(num_rows: int, accelerator) -> np.ndarray:
    """Row indices this process evaluates: a strided shard, padded (with repeats) to the same length everywhere
    so that `gather` sees equal shapes; the repeats are dropped again by row index after gathering."""
    if accelerator is None or accelerator.num_processes == 1:
        return np.arange(num_rows)
    world, rank = accelerator.num_processes, accelerator.process_index
    per_process = -(-num_rows // world)
    idx = np.arange(rank, num_rows, world)
    if len(idx) < per_process:
        idx = np.concatenate([idx, np.full(per_process - len(idx), idx[-1] if len(idx) else 0)])
    return idx


def _gather_rows(local: dict[str, np.ndarray], indices: np.ndarray, num_rows: int, accelerator) -> dict:
    """Gather per-row results of all processes and put them back in dataset order (one copy per row)."""
    if accelerator is None or accelerator.num_processes == 1:
        return local
    device = accelerator.device
    # Plain `gather`, not `gather_for_metrics`: outside a prepared dataloader the latter may truncate by the
    # training dataloader's remainder. Duplicates from padding are removed below by row index instead.
    all_idx = accelerator.gather(torch.as_tensor(indices, device=device)).cpu().numpy()
    out = {}
    _, first = np.unique(all_idx, return_index=True)
    order = all_idx[first]
    for key, value in local.items():
        tensor = torch.as_tensor(value).to(device)
        if tensor.dtype == torch.bool:
            tensor = tensor.to(torch.uint8)
        gathered = accelerator.gather(tensor).cpu().numpy()
        if value.dtype == bool:
            gathered = gathered.astype(bool)
        rows = np.empty((num_rows,) + gathered.shape[1:], dtype=gathered.dtype)
        rows[order] = gathered[first]
        out[key] = rows
    return out


def row_scores(predictions: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-row (exact, token accuracy, scored) with the same definitions as the puzzle_accuracy metric."""
    labels = labels.astype(np.int64, copy=False)
    valid = ~np.isin(labels, IGNORE_LABELS)
    counts = valid.sum(-1)
    correct = ((predictions.astype(np.int64, copy=False) == labels) & valid).sum(-1)
    scored = counts > 0
    return correct == counts, correct / np.maximum(counts, 1), scored


@torch.no_grad()
def run_solve(model, arrays: dict[str, np.ndarray], *, batch_size: int = 256, max_steps: int | None = None,
              early_exit: bool = False, accelerator=None) -> dict[str, np.ndarray]:
    """Run `model.solve` over all rows in batches; returns per-row numpy arrays in dataset order:
    `predictions` (N, seq_len) uint8, `steps` (N,), `q_halt_logits`, `q_continue_logits` (N,)."""
    hrm = _unwrap(model, accelerator)
    device = _model_device(hrm)
    inputs, ids = arrays["inputs"], arrays.get("puzzle_identifiers")
    num_rows = len(inputs)
    indices = _shard(num_rows, accelerator)
    preds = np.zeros((len(indices), inputs.shape[1]), dtype=np.uint8)
    steps = np.zeros(len(indices), dtype=np.int32)
    q_halt = np.zeros(len(indices), dtype=np.float32)
    q_cont = np.zeros(len(indices), dtype=np.float32)
    was_training = hrm.training
    hrm.eval()
    try:
        for start in range(0, len(indices), batch_size):
            rows = indices[start:start + batch_size]
            x = torch.as_tensor(inputs[rows].astype(np.int64), device=device)
            pid = None if ids is None else torch.as_tensor(ids[rows].astype(np.int64), device=device)
            res = hrm.solve(x, puzzle_identifiers=pid, max_steps=max_steps, early_exit=early_exit)
            end = start + len(rows)
            preds[start:end] = res.predictions.cpu().numpy()
            steps[start:end] = res.steps.cpu().numpy()
            q_halt[start:end] = res.q_halt_logits.float().cpu().numpy()
            q_cont[start:end] = res.q_continue_logits.float().cpu().numpy()
    finally:
        hrm.train(was_training)
    local = {"predictions": preds, "steps": steps, "q_halt_logits": q_halt, "q_continue_logits": q_cont}
    return _gather_rows(local, indices, num_rows, accelerator)


def puzzle_metrics(predictions, labels, steps, q_halt_logits, *, batch_size: int = 4096) -> dict:
    """Exact / token accuracy, mean steps, Q-halt accuracy and steps histogram via the puzzle_accuracy metric."""
    metric = load_metric("puzzle_accuracy")
    for start in range(0, len(predictions), batch_size):
        end = start + batch_size
        metric.add_batch(predictions=predictions[start:end], references=labels[start:end].astype(np.int32),
                         steps=steps[start:end], q_halt_logits=q_halt_logits[start:end])
    if len(predictions) == 0:
        return {"exact_accuracy": 0.0, "token_accuracy": 0.0, "mean_steps": 0.0, "q_halt_accuracy": 0.0,
                "num_examples": 0, "num_rows": 0, "steps_histogram": {}}
    return metric.compute(ignore_index=list(IGNORE_LABELS))


def evaluate_model(model, arrays: dict[str, np.ndarray], *, batch_size: int = 256, max_steps: int | None = None,
                   early_exit: bool = False, accelerator=None) -> dict[str, float]:
    """Evaluate `model` on encoded puzzles and return scalar metrics.

    Args:
        model: an `HRMForPuzzleSolving` (possibly wrapped by accelerate / DDP).
        arrays: `dataset_scripts.common.dataset_arrays(ds)`: `inputs`, `labels` (uint8, label 0 = not scored),
            `puzzle_identifiers`, `group_id`.
        batch_size: rows per `model.solve` call (per process).
        max_steps: ACT segment budget (default `config.halt_max_steps`).
        early_exit: stop rows when the Q head says halt; `False` runs every row `max_steps` segments (the
            original's evaluation).
        accelerator: shard rows across processes and gather the per-row results; every process gets the result.

    Returns:
        `exact_accuracy`, `token_accuracy`, `mean_steps`, `q_halt_accuracy`, `num_examples` (rows with at least
        one scored cell), all as floats. The model's train/eval mode is restored afterwards.
    """
    if len(arrays["inputs"]) != len(arrays["labels"]):
        raise ValueError(f"arrays hold {len(arrays['inputs'])} inputs but {len(arrays['labels'])} labels")
    out = run_solve(model, arrays, batch_size=batch_size, max_steps=max_steps, early_exit=early_exit,
                    accelerator=accelerator)
    res = puzzle_metrics(out["predictions"], arrays["labels"], out["steps"], out["q_halt_logits"])
    keys = ("exact_accuracy", "token_accuracy", "mean_steps", "q_halt_accuracy", "num_examples")
    return {k: float(res[k]) for k in keys}


@torch.no_grad()
def run_segments(model, arrays: dict[str, np.ndarray], *, max_steps: int, headline_steps: int | None = None,
                 batch_size: int = 256, accelerator=None) -> dict[str, np.ndarray]:
    """One pass of `max_steps` segments per row that yields every evaluation view at once.

    Uses the segment API (`model(x, carry=carry)`) and clears `carry.halted` between calls so no row restarts;
    this records per-step scores and Q values, from which the results of any budget m <= max_steps, with or
    without early exit, follow exactly (a row's state after m segments does not depend on the budget).

    Returns per-row arrays (dataset order):
      `exact_per_step`, `token_acc_per_step` (max_steps, N); `q_halt_per_step`, `q_continue_per_step`
      (max_steps, N); `halt_step` (N,): first step the model halts (its `halts` rule: q_halt > q_continue, or
      q_halt > 0 with halt-only ACT; max_steps + 1 if never);
      `pred_full` (N, seq_len): predictions after `headline_steps` segments; `pred_act` (N, seq_len):
      predictions where early exit with budget `headline_steps` stops the row.
    """
    hrm = _unwrap(model, accelerator)
    device = _model_device(hrm)
    headline = max_steps if headline_steps is None else int(headline_steps)
    if not 1 <= headline <= max_steps:
        raise ValueError(f"headline_steps={headline} must lie in 1..max_steps={max_steps}")
    inputs, labels, ids = arrays["inputs"], arrays["labels"], arrays.get("puzzle_identifiers")
    num_rows, seq_len = inputs.shape
    indices = _shard(num_rows, accelerator)
    n = len(indices)
    exact = np.zeros((max_steps, n), dtype=bool)
    token = np.zeros((max_steps, n), dtype=np.float32)
    q_halt = np.zeros((max_steps, n), dtype=np.float32)
    q_cont = np.zeros((max_steps, n), dtype=np.float32)
    pred_full = np.zeros((n, seq_len), dtype=np.uint8)
    pred_act = np.zeros((n, seq_len), dtype=np.uint8)
    halt_step = np.full(n, max_steps + 1, dtype=np.int32)
    was_training = hrm.training
    hrm.eval()  # eval mode: no exploration, no extra Q-target forward
    try:
        for start in range(0, n, batch_size):
            rows = indices[start:start + batch_size]
            sl = slice(start, start + len(rows))
            x = torch.as_tensor(inputs[rows].astype(np.int64), device=device)
            pid = None if ids is None else torch.as_tensor(ids[rows].astype(np.int64), device=device)
            y = labels[rows]
            act_done = np.zeros(len(rows), dtype=bool)
            carry = None
            for step in range(1, max_steps + 1):
                out = hrm(x, puzzle_identifiers=pid, carry=carry)
                carry = out.carry
                carry.halted = torch.zeros_like(carry.halted)  # keep every row on its puzzle
                pred = out.logits.argmax(-1).cpu().numpy().astype(np.uint8)
                qh = out.q_halt_logits.float().cpu().numpy()
                qc = out.q_continue_logits.float().cpu().numpy()
                e, t, _ = row_scores(pred, y)
                exact[step - 1, sl], token[step - 1, sl] = e, t
                q_halt[step - 1, sl], q_cont[step - 1, sl] = qh, qc
                # The model's own rule (q_halt > 0 with halt-only ACT, whose q_continue is never trained).
                halts = hrm.halts(out.q_halt_logits, out.q_continue_logits).cpu().numpy()
                wants_halt = halts & (halt_step[sl] > max_steps)
                halt_step[sl][wants_halt] = step
                if step <= headline:
                    # Early exit keeps each row's prediction from the step it stops at (or the budget).
                    live = ~act_done
                    pred_act[sl][live] = pred[live]
                    act_done |= halts
                if step == headline:
                    pred_full[sl] = pred
    finally:
        hrm.train(was_training)
    local = {"exact_per_step": exact.T, "token_acc_per_step": token.T, "q_halt_per_step": q_halt.T,
             "q_continue_per_step": q_cont.T, "halt_step": halt_step, "pred_full": pred_full, "pred_act": pred_act}
    rows = _gather_rows(local, indices, num_rows, accelerator)
    for key in ("exact_per_step", "token_acc_per_step", "q_halt_per_step", "q_continue_per_step"):
        rows[key] = np.ascontiguousarray(rows[key].T)
    return rows


def budget_view(seg: dict[str, np.ndarray], budget: int, early_exit: bool) -> dict[str, np.ndarray]:
    """Per-row `steps`, `exact`, `token_acc`, `q_halt_logits` of a run with segment budget `budget`
    (with or without early exit), read off a `run_segments` result."""
    max_steps = seg["exact_per_step"].shape[0]
    if not 1 <= budget <= max_steps:
        raise ValueError(f"budget {budget} outside the recorded 1..{max_steps} steps")
    n = seg["halt_step"].shape[0]
    steps = np.minimum(seg["halt_step"], budget) if early_exit else np.full(n, budget, dtype=np.int32)
    col = np.arange(n)
    return {"steps": steps.astype(np.int32), "exact": seg["exact_per_step"][steps - 1, col],
            "token_acc": seg["token_acc_per_step"][steps - 1, col],
            "q_halt_logits": seg["q_halt_per_step"][steps - 1, col]}


# ---------------------------------------------------------------------------------------------------------
# ARC
# ---------------------------------------------------------------------------------------------------------
def arc_scores(predictions: np.ndarray, labels: np.ndarray, confidences: np.ndarray, task_ids, pair_indices,
               dihedrals, color_perms, *, k_values=(1, 2), protocol: str = "hrm", puzzle_identifiers=None,
               tally=None) -> dict:
    """ARC pass@K and fractional score of per-version predictions (rows = test pairs of augmented versions).

    Each row's prediction and label are inverted to the original frame, then the arc_pass_at_k metric votes
    across versions of the same (task, test input); ties are broken by mean confidence (sigmoid(q_halt), float64),
    then by first proposal. With `puzzle_identifiers` the rows vote in version order (the originals' test-set
    order, so exact ties break as there). `protocol` "hrm" | "trm" sets the pass@K rule
    (`dataset_scripts.arc.score_tasks`). `tally` (a `dataset_scripts.arc.VoteTally`): add this checkpoint's votes
    to it and score everything it holds, TRM's aggregated voting over the evaluations of a run.
    An undecodable prediction is the 0x0 grid and votes like any other answer, as in the originals.
    """
    order = np.arange(len(predictions)) if puzzle_identifiers is None else np.argsort(
        np.asarray(puzzle_identifiers), kind="stable")
    preds, refs = arc_vote_strings(predictions[order], labels[order], np.asarray(dihedrals, dtype=object)[order],
                                   [color_perms[i] for i in order])
    rows = dict(task_ids=[str(task_ids[i]) for i in order], test_indices=[int(pair_indices[i]) for i in order],
                confidences=[float(confidences[i]) for i in order])
    if tally is not None:
        tally.add(preds, refs, rows["task_ids"], rows["test_indices"], rows["confidences"])
        return tally.score(k_values, protocol)
    metric = load_metric("arc_pass_at_k")
    return metric.compute(predictions=preds, references=refs, k_values=list(k_values), protocol=protocol, **rows)


# ---------------------------------------------------------------------------------------------------------
# A built dataset split to evaluate on
# ---------------------------------------------------------------------------------------------------------
def load_split(path: str, split: str):
    """(dataset, metadata, arrays) of a built dataset split (a folder or a Hub dataset repo id)."""
    from dataset_scripts.common import dataset_arrays, load_hrm_dataset

    ds, meta = load_hrm_dataset(path, split)
    return ds, meta, dataset_arrays(ds)


def check_model_fits_dataset(config, meta: dict, arrays: dict) -> None:
    """One-line `ValueError` when the model cannot read the dataset: another sequence length or vocabulary, or
    puzzle identifiers beyond the model's puzzle embedding."""
    for key in ("seq_len", "vocab_size"):
        if key in meta and int(meta[key]) != int(getattr(config, key)):
            raise ValueError(f"the dataset has {key}={meta[key]} but the model has {key}={getattr(config, key)}; "
                             f"was the model trained on another puzzle kind?")
    ids = arrays.get("puzzle_identifiers")
    if ids is not None and len(ids) and int(ids.max()) >= config.num_puzzle_identifiers:
        raise ValueError(f"the dataset uses puzzle identifiers up to {int(ids.max())} but the model has only "
                         f"{config.num_puzzle_identifiers}; evaluate on the dataset the model was trained with")



def select_rows(ds, meta: dict, arrays: dict, limit: int | None, seed: int = 0):
    """The rows to evaluate: ARC keeps the test pairs (of the first `limit` tasks); other tasks keep `limit` rows
    drawn at random (seeded, in split order), so that a split written bucket by bucket (the open-world builds,
    shallow first) is sampled over every depth. Returns (kept row indices, arrays of those rows)."""
    n = len(arrays["inputs"])
    keep = np.arange(n)
    if meta.get("task") == "arc":
        if "is_test_pair" in ds.column_names:
            keep = np.flatnonzero(np.asarray(ds["is_test_pair"], dtype=bool))
        if limit is not None:
            tasks = np.asarray(ds["task_id"], dtype=object)[keep]
            chosen = set(sorted(set(tasks))[:limit])
            keep = keep[np.fromiter((t in chosen for t in tasks), dtype=bool, count=len(keep))]
    elif limit is not None and limit < n:
        keep = np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))
    if len(keep) == n:
        return keep, arrays
    return keep, {k: v[keep] for k, v in arrays.items()}


__all__ = ["evaluate_model", "run_solve", "run_segments", "budget_view", "puzzle_metrics", "row_scores",
           "load_metric", "arc_scores", "load_split", "check_model_fits_dataset", "select_rows", "invert_arc_version",
           "grid_to_str", "str_to_grid"]
