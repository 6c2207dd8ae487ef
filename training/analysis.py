"""What a trained HRM / TRM does across its segments: the analyses the papers describe, for one's own checkpoint.

    from training.analysis import analyze
    report = analyze("outputs/quickstart/model", "data/sudoku4", split="test", limit=1000,
                     compare="untrained", output_dir="analysis")

`hrm-analyze` (training/hrm_analyze.py) is the command line of the same. One pass runs every puzzle for all
segments (no early exit) and, from the states after each segment, reports:

1. **Participation ratio** PR = (Σλ)² / Σλ² of the covariance of the states z_H and z_L (TRM: y and z), the
   effective number of dimensions they use (HRM paper, Fig. 8: 89.95 for z_H vs 30.22 for z_L on Sudoku with its
   27M model). The protocol is stated in the report (`PROTOCOL`): one vector per puzzle and segment, the state
   averaged over the grid positions; the headline PR pools all segments of all puzzles (the puzzles' state
   trajectories), and its growth with the number of puzzles is the paper's scaling plot.
2. **Convergence**: per segment, the relative change ‖z_t − z_{t−1}‖ / ‖z_t‖ of each state and the fraction of
   answer tokens that change, by depth bucket where the dataset has a depth column (`rounds`, `path_length`),
   and the segment at which each puzzle's answer first becomes right and stays right.
3. **Halting calibration**: reliability diagram and expected calibration error (ECE) of sigmoid(q_halt) against
   "the answer is right", and how many segments ACT uses at each depth.
4. **Trajectories**: a 2-D PCA of z_H (grid-averaged) across segments for a handful of puzzles.

`compare=` adds a second model (another checkpoint, or `"untrained"`: a freshly initialised model of the same
config) side by side. Everything goes to `output_dir`/analysis.json plus PNGs and per_puzzle.npz.

This module loads the inputs and assembles the report; the computations are in training/analysis_stats.py, the
pictures and the text summary in training/analysis_report.py (their names are importable from here too).
"""

from __future__ import annotations

import copy
import json
import math
import numbers
import time
from pathlib import Path

import numpy as np
import torch

from training.analysis_report import summary_text, write_plots
from training.analysis_stats import (DEPTH_COLUMNS, PAPER_PR, POOLINGS, PROTOCOL, STATES,  # noqa: F401
                                     TRM_STATE_NAMES, Moments, depth_groups, expected_calibration_error,
                                     first_stable_segment, participation_ratio, pca_2d, run_trajectories, summarise)
from training.evaluation import check_model_fits_dataset, load_split, select_rows


# ---------------------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------------------
def untrained_like(model, seed: int = 0):
    """A freshly initialised model of `model`'s class and config (weights drawn with `seed`), on its device."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh = type(model)(copy.deepcopy(model.config))
    return fresh.to(next(model.parameters()).device).eval()


def _as_model(model, device, what: str):
    from modeling_hrm import RecursiveReasoningModel
    from modeling_hrm.loading import load_pretrained_model

    if isinstance(model, RecursiveReasoningModel):
        return model.eval(), getattr(model.config, "_name_or_path", None) or type(model).__name__
    if isinstance(model, (str, Path)):
        return load_pretrained_model(model, device), str(model)
    raise TypeError(f"{what} must be an HRM/TRM model, a model folder or a Hub repo id, got {type(model).__name__}")


def _label(model, name: str, fallback: str) -> str:
    kind = model.config.model_type.upper()
    tail = Path(str(name)).name if name else ""
    return f"{kind} {tail}".strip() if tail and tail != "model" else f"{kind} {fallback}"


def check_options(limit, max_steps, batch_size, pooling, num_trajectories, bins) -> None:
    """One-line `ValueError`s for option values that cannot work (the CLI runs this before loading)."""
    for name, value, minimum in (("limit", limit, 1), ("max_steps", max_steps, 1), ("batch_size", batch_size, 1),
                                 ("num_trajectories", num_trajectories, 0), ("bins", bins, 1)):
        if value is None and name in ("limit", "max_steps"):
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")


# ---------------------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------------------
def load_inputs(model, dataset: str, split: str = "test", compare=None, *, device=None, seed: int = 0) -> dict:
    """Load the model(s) and the split and check they fit each other (one-line `ValueError`s).
    Returns {"models": [(label, model)], "ds", "meta", "arrays", "dataset", "split"}."""
    primary, name = _as_model(model, device, "model")
    models = [(_label(primary, name, "model"), primary)]
    if compare is not None:
        if isinstance(compare, str) and compare == "untrained":
            models.append((f"{primary.config.model_type.upper()} untrained", untrained_like(primary, seed)))
        else:
            other, other_name = _as_model(compare, device, "compare")
            label = _label(other, other_name, "compare")
            models.append((label if label != models[0][0] else label + " (compare)", other))
    ds, meta, arrays = load_split(dataset, split)
    for i, (label, m) in enumerate(models):
        try:
            check_model_fits_dataset(m.config, meta, arrays)
        except ValueError as err:
            raise ValueError(f"{'the --compare model' if i else 'the model'} does not fit the "
                             f"{meta.get('task', '')} dataset: {err}".replace("  ", " ")) from None
    if not len(arrays["inputs"]):
        raise ValueError(f"split {split!r} of {dataset} has no rows")
    return {"models": models, "ds": ds, "meta": meta, "arrays": arrays, "dataset": str(dataset), "split": split}


def run_analysis(inputs: dict, *, limit: int | None = 1000, max_steps: int | None = None, batch_size: int = 256,
                 pooling: str = "mean", num_trajectories: int = 6, bins: int = 10, seed: int = 0,
                 output_dir=None) -> dict:
    """The analyses on loaded inputs (`load_inputs`); writes analysis.json, per_puzzle.npz and the PNGs to
    `output_dir` when given."""
    check_options(limit, max_steps, batch_size, pooling, num_trajectories, bins)
    ds, meta = inputs["ds"], inputs["meta"]
    keep, arrays = select_rows(ds, meta, inputs["arrays"], limit, seed)
    column, buckets, bucket_order, how = depth_groups(ds, keep, meta)
    order = np.random.default_rng(seed).permutation(len(keep))
    buckets = buckets[order]
    report = {"dataset": inputs["dataset"], "split": inputs["split"], "task": meta.get("task"),
              "rows": int(len(keep)), "limit": limit, "pooling": pooling, "seed": seed,
              "protocol": PROTOCOL, "paper": PAPER_PR,
              "depth": {"column": column, "buckets": bucket_order, "grouping": how},
              "models": []}
    per_puzzle = {"row": keep[order], "depth_bucket": buckets.astype(str)}
    trajectories = []
    for i, (label, model) in enumerate(inputs["models"]):
        steps = int(max_steps or model.config.halt_max_steps)
        t0 = time.perf_counter()
        run = run_trajectories(model, arrays, max_steps=steps, batch_size=batch_size, pooling=pooling, order=order)
        seconds = time.perf_counter() - t0
        result = summarise(run, buckets, bucket_order, bins=bins)
        cfg = model.config
        result = {"label": label, "model": getattr(cfg, "_name_or_path", None) or None,
                  "model_type": cfg.model_type, "hidden_size": cfg.hidden_size,
                  "parameters": sum(p.numel() for p in model.parameters()),
                  "state_names": TRM_STATE_NAMES if cfg.model_type == "trm" else {s: s for s in STATES},
                  "seconds": seconds, **result}
        result["participation_ratio"]["max_possible"] = {
            k: min(cfg.hidden_size, v - 1) for k, v in run["pr_samples"].items()}
        result["trajectories"] = _trajectory_points(run, num_trajectories, keep[order], buckets, bucket_order)
        trajectories.append(result["trajectories"].pop("_points"))
        report["models"].append(result)
        for key in ("exact", "q_halt", "halt_step", "rel_change_z_H", "rel_change_z_L", "answer_changed"):
            per_puzzle[f"m{i}_{key}"] = run[key].T if run[key].ndim == 2 else run[key]
        per_puzzle[f"m{i}_first_stable_segment"] = np.where(run["scored"], first_stable_segment(run["exact"]), -1)

    if output_dir is not None:
        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        report["files"] = write_plots(report, trajectories, output_dir)
        np.savez_compressed(output_dir / "per_puzzle.npz", **per_puzzle)
        report["files"].append("per_puzzle.npz")
        (output_dir / "analysis.json").write_text(json.dumps(_finite(report), indent=2))
    return _finite(report)


def analyze(model, dataset: str, split: str = "test", limit: int | None = 1000, compare=None, *,
            max_steps: int | None = None, batch_size: int = 256, pooling: str = "mean", num_trajectories: int = 6,
            bins: int = 10, seed: int = 0, output_dir=None, device=None) -> dict:
    """Analyse `model` (a loaded HRM/TRM, a folder or a Hub repo id) on a built dataset split.

    Args:
        limit: analyse `limit` rows of the split drawn at random with `seed` (ARC: the first `limit` tasks);
            None = all of them.
        compare: a second model shown side by side: a model, a folder, a Hub repo id, or "untrained" (a freshly
            initialised model of the same config, weights drawn with `seed`).
        max_steps: segments to run (default: the model's `halt_max_steps`).
        pooling: "mean" (one grid-averaged state per puzzle and segment) or "tokens" (every grid position).
        num_trajectories: puzzles drawn in the PCA picture.
        bins: bins of the reliability diagram.
        output_dir: where analysis.json, per_puzzle.npz and the PNGs go (nothing is written when None).

    Returns the report (the content of analysis.json). Raises `ValueError` (one line) for bad input.
    """
    check_options(limit, max_steps, batch_size, pooling, num_trajectories, bins)
    return run_analysis(load_inputs(model, dataset, split, compare, device=device, seed=seed), limit=limit,
                        max_steps=max_steps, batch_size=batch_size, pooling=pooling,
                        num_trajectories=num_trajectories, bins=bins, seed=seed, output_dir=output_dir)


def _trajectory_points(run: dict, count: int, rows: np.ndarray, buckets: np.ndarray, bucket_order: list[str]) -> dict:
    """PCA of the grid-averaged z_H after each segment (fitted on every puzzle) and the paths of `count` puzzles
    taken in turn from each depth bucket. The points go to the plot only (`_points`); the report keeps the rows
    and the axes' explained variance."""
    states = run["mean_z_H"][:, 1:]  # the initial state is the same for every puzzle: left out
    mean, axes, ratio = pca_2d(states.reshape(-1, states.shape[-1]))
    queues = [list(np.flatnonzero(buckets == b)) for b in bucket_order]
    picked = []
    while len(picked) < count and any(queues):
        picked += [q.pop(0) for q in queues if q][:count - len(picked)]
    picked = np.asarray(picked, dtype=np.int64)
    paths = (states[picked] - mean) @ axes.T  # (count, segments, 2)
    return {"explained_variance_ratio": ratio.tolist(), "rows": rows[picked].tolist(),
            "_points": {"paths": paths, "right_at_end": run["exact"][-1, picked], "buckets": buckets[picked],
                        "rows": rows[picked], "ratio": ratio}}


def _finite(obj):
    """NaN / inf → None, numpy scalars → Python, so analysis.json is strict JSON."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _finite(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


__all__ = ["analyze", "load_inputs", "run_analysis", "run_trajectories", "summarise", "participation_ratio",
           "Moments", "pca_2d", "expected_calibration_error", "first_stable_segment", "depth_groups",
           "untrained_like", "summary_text", "write_plots", "PROTOCOL"]
