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

from training.evaluation import row_scores
from training.hrm_evaluate import _check_compatible, _load_dataset, _select_rows

STATES = ("z_H", "z_L")
# TRM names its two states after their roles: z_H is the answer y, z_L the latent z.
TRM_STATE_NAMES = {"z_H": "y", "z_L": "z"}
DEPTH_COLUMNS = ("rounds", "path_length")  # Sudoku propagation rounds, maze shortest-path moves
POOLINGS = ("mean", "tokens")
PAPER_PR = {"z_H": 89.95, "z_L": 30.22, "ratio": 2.98,
            "source": "HRM paper (arXiv 2506.21734) Fig. 8: trained 27M HRM (hidden 512) on Sudoku"}
PROTOCOL = (
    "PR = (sum of eigenvalues)^2 / (sum of squared eigenvalues) of the covariance of state vectors. "
    "Samples: the state after each segment (no early exit), puzzle-embedding positions dropped; pooling 'mean' "
    "(default) averages it over the grid positions into one vector per puzzle and segment, 'tokens' makes every "
    "grid position a sample. 'trajectory' PR (the headline) pools all segments of all puzzles (the puzzles' state "
    "trajectories, as the paper's PR of neural trajectories across puzzles); 'per_segment' uses one segment. "
    "The scaling curve is the trajectory PR of the first n puzzles of a seeded random order of the analysed "
    "puzzles (the paper's PR vs number of trajectories). The HRM paper reports trained z_H 89.95 vs z_L 30.22 "
    "(ratio 2.98) for its 27M model on Sudoku; the paper text in this repository's reference (an excerpt that "
    "ends in the introduction) does not give its position pooling or puzzle count, so those choices are ours. "
    "PR cannot exceed min(hidden_size, samples - 1): see 'max_possible'.")


# ---------------------------------------------------------------------------------------------------------
# Linear algebra
# ---------------------------------------------------------------------------------------------------------
def participation_ratio(states) -> float:
    """PR = (Σλ)² / Σλ² of the covariance of `states` (samples, features): between 1 (one direction) and the
    number of features (isotropic). Computed as tr(C)² / ‖C‖_F² (the same for a symmetric C), in float64.
    NaN when the states do not vary."""
    x = torch.as_tensor(np.asarray(states) if not isinstance(states, torch.Tensor) else states)
    if x.dim() != 2 or x.shape[0] < 2:
        raise ValueError(f"states must be a 2-D array (samples >= 2, features), got shape {tuple(x.shape)}")
    moments = Moments(x.shape[1])
    moments.add(x)
    return moments.participation_ratio()


class Moments:
    """Running count, sum and Gram matrix of vectors: the covariance of a stream without keeping the stream."""

    def __init__(self, dim: int, device=None):
        self.count = 0
        self.sum = torch.zeros(dim, dtype=torch.float64, device=device)
        self.gram = torch.zeros(dim, dim, dtype=torch.float64, device=device)

    def add(self, x: torch.Tensor) -> None:
        x = x.to(self.gram.device, torch.float64)
        self.count += x.shape[0]
        self.sum += x.sum(0)
        self.gram += x.T @ x

    def merge(self, other: "Moments") -> None:
        self.count += other.count
        self.sum += other.sum
        self.gram += other.gram

    def covariance(self) -> torch.Tensor:
        mean = self.sum / self.count
        return (self.gram - self.count * torch.outer(mean, mean)) / max(self.count - 1, 1)

    def participation_ratio(self) -> float:
        if self.count < 2:
            return float("nan")
        cov = self.covariance()
        cov = (cov + cov.T) / 2
        denominator = float(cov.square().sum())
        return float(torch.trace(cov) ** 2 / denominator) if denominator > 0 else float("nan")


def pca_2d(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, the two leading principal axes (2, d), their explained-variance ratios) of `points` (n, d)."""
    points = np.asarray(points, dtype=np.float64)
    mean = points.mean(0)
    _, singular, axes = np.linalg.svd(points - mean, full_matrices=False)
    variance = singular ** 2
    ratio = variance / variance.sum() if variance.sum() > 0 else np.zeros_like(variance)
    axes, ratio = axes[:2], ratio[:2]
    if axes.shape[0] < 2:  # fewer than two samples or features: pad with a zero axis
        axes = np.vstack([axes, np.zeros((2 - axes.shape[0], points.shape[1]))])
        ratio = np.concatenate([ratio, np.zeros(2 - ratio.shape[0])])
    return mean, axes, ratio


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> tuple[float, list]:
    """ECE = Σ_b (n_b / N) |accuracy_b − confidence_b| over `bins` equal-width bins of [0, 1], and the bins
    ({lo, hi, count, confidence, accuracy}; the last bin includes 1)."""
    confidence, correct = np.asarray(confidence, dtype=np.float64), np.asarray(correct, dtype=bool)
    which = np.clip((confidence * bins).astype(np.int64), 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        inside = which == b
        n = int(inside.sum())
        conf = float(confidence[inside].mean()) if n else None
        acc = float(correct[inside].mean()) if n else None
        if n:
            ece += n / len(confidence) * abs(acc - conf)
        table.append({"lo": b / bins, "hi": (b + 1) / bins, "count": n, "confidence": conf, "accuracy": acc})
    return (float(ece) if len(confidence) else float("nan")), table


# ---------------------------------------------------------------------------------------------------------
# One pass over the puzzles
# ---------------------------------------------------------------------------------------------------------
def _scaling_points(num_puzzles: int) -> list[int]:
    """2, 4, 8, ... below `num_puzzles`, then `num_puzzles` itself."""
    points, n = [], 2
    while n < num_puzzles:
        points.append(n)
        n *= 2
    return points + [num_puzzles] if num_puzzles >= 2 else []


def _pool(z: torch.Tensor, pooling: str) -> torch.Tensor:
    """(batch, positions, d) grid states → samples: (batch, d) for 'mean', (batch·positions, d) for 'tokens'."""
    z = z.float()
    return z.mean(1) if pooling == "mean" else z.reshape(-1, z.shape[-1])


@torch.no_grad()
def run_trajectories(model, arrays: dict, *, max_steps: int, batch_size: int = 256, pooling: str = "mean",
                     order: np.ndarray | None = None) -> dict:
    """Run every row for `max_steps` segments and record, per segment, what the analyses need.

    Rows are processed in `order` (default: as given), which is also the order of the per-row outputs; the
    scaling curve takes the first n rows of that order. Returns per-row arrays `exact`, `answer_changed`,
    `q_halt`, `q_continue`, `rel_change_z_H`, `rel_change_z_L` (segments, N), `halt_step` (N,; the first
    segment where the model's ACT rule halts, max_steps + 1 if never), `scored` (N,), `mean_z_H`
    (N, segments + 1, d; the grid-averaged z_H, index 0 = the initial state); and the PR of each state per
    segment, of the whole trajectories, and of the trajectories of the first n rows (`scaling`).
    """
    cfg = model.config
    device = next(model.parameters()).device
    order = np.arange(len(arrays["inputs"])) if order is None else np.asarray(order)
    inputs, labels = arrays["inputs"][order], arrays["labels"][order].astype(np.int64)
    ids = arrays.get("puzzle_identifiers")
    ids = np.zeros(len(order), dtype=np.int64) if ids is None else ids[order]
    n, segments, d, prefix = len(order), max_steps, cfg.hidden_size, cfg.puzzle_emb_len
    points = _scaling_points(n)

    out = {key: np.zeros((segments, n), dtype=np.float32)
           for key in ("q_halt", "q_continue", "answer_changed", "rel_change_z_H", "rel_change_z_L")}
    out["exact"] = np.zeros((segments, n), dtype=bool)
    out["answer_changed"][0] = np.nan  # nothing to compare the first answer with
    out["halt_step"] = np.full(n, segments + 1, dtype=np.int32)
    out["mean_z_H"] = np.zeros((n, segments + 1, d), dtype=np.float32)
    per_segment = {s: [Moments(d, device) for _ in range(segments)] for s in STATES}
    trajectory = {s: Moments(d, device) for s in STATES}
    scaling = {s: [] for s in STATES}
    scored_cells = ~np.isin(labels, (0, -100))

    was_training = model.training
    model.eval()
    try:
        for start in range(0, n, batch_size):
            end = min(start + batch_size, n)
            sl = slice(start, end)
            x_ids = torch.as_tensor(inputs[sl].astype(np.int64), device=device)
            pid = torch.as_tensor(ids[sl].astype(np.int64), device=device)
            # Chunks of this batch that end at a scaling point: their trajectory moments are kept apart so the PR
            # of the first n rows can be read after every segment of those rows is in.
            bounds = [start] + [p for p in points if start < p < end] + [end]
            chunks = {s: [Moments(d, device) for _ in bounds[1:]] for s in STATES}

            x = model.input_embeddings(x_ids, pid)
            z_H, z_L = model.initial_states(end - start, device, model.compute_dtype)
            out["mean_z_H"][sl, 0] = z_H[:, prefix:].float().mean(1).cpu().numpy()
            previous = {"z_H": z_H[:, prefix:].float(), "z_L": z_L[:, prefix:].float()}
            previous_pred = None
            for t in range(segments):
                z_H, z_L = model.reasoning_segment(z_H, z_L, x)
                logits, q_halt, q_continue = model.heads(z_H)
                pred = logits.argmax(-1).cpu().numpy()
                out["exact"][t, sl] = row_scores(pred, labels[sl])[0]
                out["q_halt"][t, sl] = q_halt.float().cpu().numpy()
                out["q_continue"][t, sl] = q_continue.float().cpu().numpy()
                halts = model.halts(q_halt, q_continue).cpu().numpy()
                first_halt = halts & (out["halt_step"][sl] > segments)
                out["halt_step"][sl][first_halt] = t + 1
                if previous_pred is not None:
                    changed = (pred != previous_pred) & scored_cells[sl]
                    out["answer_changed"][t, sl] = changed.sum(-1) / np.maximum(scored_cells[sl].sum(-1), 1)
                previous_pred = pred

                for name, z in (("z_H", z_H), ("z_L", z_L)):
                    grid = z[:, prefix:].float()
                    change = (grid - previous[name]).flatten(1).norm(dim=1) / grid.flatten(1).norm(dim=1).clamp_min(1e-12)
                    out[f"rel_change_{name}"][t, sl] = change.cpu().numpy()
                    previous[name] = grid
                    samples = _pool(grid, pooling)
                    per_segment[name][t].add(samples)
                    per_row = samples.view(end - start, -1, d)
                    for k, (a, b) in enumerate(zip(bounds, bounds[1:])):
                        chunks[name][k].add(per_row[a - start:b - start].reshape(-1, d))
                out["mean_z_H"][sl, t + 1] = z_H[:, prefix:].float().mean(1).cpu().numpy()

            for name in STATES:
                for b, chunk in zip(bounds[1:], chunks[name]):
                    trajectory[name].merge(chunk)
                    if b in points:
                        scaling[name].append(trajectory[name].participation_ratio())
    finally:
        model.train(was_training)

    out["scored"] = scored_cells.any(-1)
    samples_per_puzzle = 1 if pooling == "mean" else cfg.seq_len
    out["pr"] = {name: {"trajectory": trajectory[name].participation_ratio(),
                        "per_segment": [m.participation_ratio() for m in per_segment[name]]} for name in STATES}
    out["pr_samples"] = {"trajectory": n * segments * samples_per_puzzle, "per_segment": n * samples_per_puzzle}
    out["scaling"] = {"num_puzzles": points, **scaling}
    return out


# ---------------------------------------------------------------------------------------------------------
# Reading the pass
# ---------------------------------------------------------------------------------------------------------
def first_stable_segment(exact: np.ndarray) -> np.ndarray:
    """Per row of `exact` (segments, N): the first segment (1-based) from which the answer is right at every
    later segment, 0 where it is wrong at the last segment."""
    segments = exact.shape[0]
    stays = np.flip(np.logical_and.accumulate(np.flip(exact, 0), axis=0), 0)  # right from t to the end
    first = segments - stays.sum(0) + 1
    return np.where(stays[-1], first, 0).astype(np.int32)


def depth_groups(ds, keep: np.ndarray, meta: dict) -> tuple[str | None, np.ndarray, list[str], str]:
    """(depth column, bucket label per kept row, bucket labels in depth order, how they were formed).

    With `depth_buckets` in the metadata and a `depth_bucket(value, buckets)` function in the Sudoku builder,
    that function names the buckets; otherwise each raw value is its own bucket (Sudoku rounds -1 = 'stuck',
    -2 = 'not computed'). No depth column: one bucket 'all'."""
    column = next((c for c in DEPTH_COLUMNS if c in ds.column_names), None)
    if column is None:
        return None, np.full(len(keep), "all", dtype=object), ["all"], "the dataset has no depth column"
    values = np.asarray(ds[column], dtype=np.int64)[keep]
    labels, how = None, f"raw values of `{column}`"
    bucket = None
    if meta.get("depth_buckets") is not None:
        from dataset_scripts import build_sudoku_dataset

        bucket = getattr(build_sudoku_dataset, "depth_bucket", None)
    if callable(bucket):
        try:
            names = {int(v): str(bucket(int(v), meta["depth_buckets"])) for v in np.unique(values)}
            labels = np.array([names[int(v)] for v in values], dtype=object)
            how = "the builder's depth_bucket() over the metadata's depth_buckets"
        except (TypeError, ValueError, KeyError):
            labels = None
    if labels is None:
        special = {-1: "stuck", -2: "not computed"} if column == "rounds" else {}
        labels = np.array([special.get(int(v), str(int(v))) for v in values], dtype=object)
    # Buckets in depth order; negative values (stuck, not computed) after every real depth.
    rank = {}
    for v, label in zip(values, labels):
        rank[label] = min(rank.get(label, math.inf), int(v) if v >= 0 else 10 ** 9 - int(v))
    order = sorted(rank, key=rank.get)
    return column, labels, order, how


def _mean(values: np.ndarray):
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else None


def summarise(run: dict, buckets: np.ndarray, bucket_order: list[str], *, bins: int = 10) -> dict:
    """The report of one model from `run_trajectories` output (per-row arrays in processing order) and the
    depth bucket of each row."""
    segments = run["exact"].shape[0]
    scored = run["scored"]
    exact = run["exact"][:, scored]
    stable = first_stable_segment(exact)
    ever = exact.any(0)
    act_steps = np.minimum(run["halt_step"][scored], segments)
    col = np.arange(exact.shape[1])
    act_exact = exact[act_steps - 1, col]
    scored_buckets = buckets[scored]

    def convergence(mask):
        return {"puzzles": int(mask.sum()),
                "exact_per_segment": [_mean(exact[t, mask]) for t in range(segments)],
                "rel_change_z_H": [_mean(run["rel_change_z_H"][t, scored][mask]) for t in range(segments)],
                "rel_change_z_L": [_mean(run["rel_change_z_L"][t, scored][mask]) for t in range(segments)],
                "answer_tokens_changed": [_mean(run["answer_changed"][t, scored][mask]) for t in range(segments)],
                "solved_and_stable_by_segment": [_mean(((stable > 0) & (stable <= t + 1))[mask])
                                                 for t in range(segments)],
                "first_stable_segment_mean": _mean(stable[mask & (stable > 0)]),
                "right_at_some_segment_but_wrong_at_the_end": _mean((ever & ~exact[-1])[mask]),
                "act_steps_mean": _mean(act_steps[mask]), "act_exact": _mean(act_exact[mask]),
                "never_halts": _mean((run["halt_step"][scored] > segments)[mask])}

    everything = np.ones(exact.shape[1], dtype=bool)
    confidence = 1 / (1 + np.exp(-run["q_halt"][:, scored].astype(np.float64)))
    ece_all, table_all = expected_calibration_error(confidence.ravel(), exact.ravel(), bins)
    ece_act, table_act = expected_calibration_error(confidence[act_steps - 1, col], act_exact, bins)
    pr = run["pr"]
    return {
        "puzzles": int(scored.sum()), "segments": segments,
        "participation_ratio": {
            **{name: {"trajectory": pr[name]["trajectory"], "per_segment": pr[name]["per_segment"]}
               for name in STATES},
            "ratio_z_H_over_z_L": (pr["z_H"]["trajectory"] / pr["z_L"]["trajectory"]
                                   if pr["z_L"]["trajectory"] and np.isfinite(pr["z_L"]["trajectory"]) else None),
            "samples": run["pr_samples"], "scaling": run["scaling"]},
        "convergence": {"all": convergence(everything),
                        "by_depth": {b: convergence(scored_buckets == b) for b in bucket_order
                                     if (scored_buckets == b).any()},
                        "first_stable_segment_histogram": {str(k): int((stable == k).sum())
                                                           for k in range(0, segments + 1)}},
        "halting": {"ece_all_segments": ece_all, "reliability_all_segments": table_all,
                    "ece_at_act_stop": ece_act, "reliability_at_act_stop": table_act,
                    "mean_confidence": _mean(confidence), "accuracy_all_segments": _mean(exact),
                    "act_steps_mean": _mean(act_steps), "act_exact": _mean(act_exact),
                    "act_steps_by_depth": {b: _mean(act_steps[scored_buckets == b]) for b in bucket_order
                                           if (scored_buckets == b).any()}},
    }


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
    ds, meta, arrays = _load_dataset(dataset, split)
    for i, (label, m) in enumerate(models):
        try:
            _check_compatible(m.config, meta, arrays)
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
    keep, arrays = _select_rows(ds, meta, inputs["arrays"], limit)
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
        limit: analyse the first `limit` rows (ARC: tasks) of the split; None = all of them.
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


# ---------------------------------------------------------------------------------------------------------
# Pictures
# ---------------------------------------------------------------------------------------------------------
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _state_label(model: dict, state: str) -> str:
    alias = model["state_names"][state]
    return state if alias == state else f"{state} ({alias})"


def write_plots(report: dict, trajectories: list[dict], output_dir: Path) -> list[str]:
    """participation_ratio.png, convergence.png, calibration.png, trajectories.png; returns their names."""
    plt = _pyplot()
    models = report["models"]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    files = []

    # 1. PR per segment and PR vs number of puzzles.
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=120)
    for i, m in enumerate(models):
        pr = m["participation_ratio"]
        for state, style in (("z_H", "-"), ("z_L", "--")):
            segs = range(1, len(pr[state]["per_segment"]) + 1)
            ax1.plot(segs, [np.nan if v is None else v for v in pr[state]["per_segment"]], style, marker="o",
                     color=colors[i % len(colors)], label=f"{m['label']}: {_state_label(m, state)}")
            ax2.plot(pr["scaling"]["num_puzzles"], [np.nan if v is None else v for v in pr["scaling"][state]], style,
                     marker="o", color=colors[i % len(colors)], label=f"{m['label']}: {_state_label(m, state)}")
    ax1.set(xlabel="segment", ylabel="participation ratio", title="PR of each segment's states")
    ax1.xaxis.get_major_locator().set_params(integer=True)
    ax2.set(xlabel="puzzles", ylabel="participation ratio", title="PR of the trajectories vs puzzles", xscale="log")
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(output_dir / "participation_ratio.png")
    plt.close(fig)
    files.append("participation_ratio.png")

    # 2. Convergence: one row per model: state change, answer change by depth, solved-and-stable by depth.
    fig, axes = plt.subplots(len(models), 3, figsize=(13, 3.6 * len(models)), dpi=120, squeeze=False)
    for row, m in zip(axes, models):
        conv = m["convergence"]
        segs = list(range(1, m["segments"] + 1))
        for state, style in (("z_H", "-"), ("z_L", "--")):
            row[0].plot(segs, [np.nan if v is None else v for v in conv["all"][f"rel_change_{state}"]], style,
                        marker="o", label=_state_label(m, state))
        row[0].set(yscale="log", xlabel="segment", ylabel="‖z_t − z_{t−1}‖ / ‖z_t‖", title=f"{m['label']}: state change")
        for j, (bucket, c) in enumerate(conv["by_depth"].items()):
            name = f"{report['depth']['column'] or 'depth'} {bucket} ({c['puzzles']})"
            row[1].plot(segs[1:], [np.nan if v is None else 100 * v for v in c["answer_tokens_changed"][1:]],
                        marker="o", color=colors[j % len(colors)], label=name)
            row[2].plot(segs, [np.nan if v is None else 100 * v for v in c["solved_and_stable_by_segment"]],
                        marker="o", color=colors[j % len(colors)], label=name)
        row[1].set(xlabel="segment", ylabel="% answer tokens changed", title="answer change from the previous segment")
        row[2].set(xlabel="segment", ylabel="% puzzles", ylim=(0, 100),
                   title="right from this segment on")
        for ax in row:
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(output_dir / "convergence.png")
    plt.close(fig)
    files.append("convergence.png")

    # 3. Halting: reliability diagram and ACT steps vs depth.
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=120)
    ax1.plot([0, 1], [0, 1], color="grey", linewidth=1, linestyle=":")
    for i, m in enumerate(models):
        table = [b for b in m["halting"]["reliability_all_segments"] if b["count"]]
        ax1.plot([b["confidence"] for b in table], [b["accuracy"] for b in table], marker="o",
                 color=colors[i % len(colors)], label=f"{m['label']} (ECE {m['halting']['ece_all_segments']:.3f})")
        by_depth = m["halting"]["act_steps_by_depth"]
        ax2.plot(list(by_depth), [np.nan if v is None else v for v in by_depth.values()], marker="o",
                 color=colors[i % len(colors)], label=m["label"])
    ax1.set(xlabel="sigmoid(q_halt)", ylabel="fraction right", xlim=(0, 1), ylim=(0, 1),
            title="halting calibration (every segment)")
    ax2.set(xlabel=report["depth"]["column"] or "depth", ylabel="mean ACT segments", title="ACT steps vs depth")
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(output_dir / "calibration.png")
    plt.close(fig)
    files.append("calibration.png")

    # 4. PCA trajectories of z_H, one panel per model: a triangle at segment 1, a dot (right) or cross (wrong)
    # at the last segment.
    fig, axes = plt.subplots(1, len(models), figsize=(5.2 * len(models), 4.4), dpi=120, squeeze=False)
    for ax, m, t in zip(axes[0], models, trajectories):
        for j, path in enumerate(t["paths"]):
            color = colors[j % len(colors)]
            right = bool(t["right_at_end"][j])
            ax.plot(path[:, 0], path[:, 1], "-", color=color, alpha=0.8, linewidth=1.2, marker=".",
                    label=f"row {int(t['rows'][j])} ({t['buckets'][j]}) {'right' if right else 'wrong'}")
            ax.scatter(path[0, 0], path[0, 1], marker="^", s=40, color=color, zorder=4)
            ax.scatter(path[-1, 0], path[-1, 1], marker="o" if right else "x", s=60, color=color, zorder=4)
        ax.set(xlabel=f"PC1 ({100 * t['ratio'][0]:.0f}%)", ylabel=f"PC2 ({100 * t['ratio'][1]:.0f}%)",
               title=f"{m['label']}: {_state_label(m, 'z_H')}, segments 1-{m['segments']}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6, title=f"row ({report['depth']['column'] or 'depth'})", title_fontsize=6)
    fig.tight_layout()
    fig.savefig(output_dir / "trajectories.png")
    plt.close(fig)
    files.append("trajectories.png")
    return files


def summary_text(report: dict) -> str:
    """A short text summary of a report."""
    def f(v, fmt=".2f"):
        return "n/a" if v is None else format(v, fmt)

    lines = [f"{report['task']} {report['split']}: {report['rows']} puzzles; PR pooling '{report['pooling']}', "
             f"states of every segment (paper, 27M HRM on Sudoku: z_H {PAPER_PR['z_H']} / z_L {PAPER_PR['z_L']})"]
    for m in report["models"]:
        pr, conv, halt = m["participation_ratio"], m["convergence"]["all"], m["halting"]
        names = {s: _state_label(m, s) for s in STATES}
        lines.append(f"[{m['label']}] {m['segments']} segments, exact at the last {100 * (conv['exact_per_segment'][-1] or 0):.1f}%, "
                     f"{m['seconds']:.1f} s")
        lines.append(f"  PR trajectory: {names['z_H']} {f(pr['z_H']['trajectory'])}, {names['z_L']} "
                     f"{f(pr['z_L']['trajectory'])} (ratio {f(pr['ratio_z_H_over_z_L'])}; at most "
                     f"{pr['max_possible']['trajectory']}); last segment {f(pr['z_H']['per_segment'][-1])} / "
                     f"{f(pr['z_L']['per_segment'][-1])}")
        lines.append(f"  state change per segment z_H: " + " ".join(f(v, ".3f") for v in conv["rel_change_z_H"])
                     + "; answer tokens changed: " + " ".join(f(v and 100 * v, ".1f") + "%"
                                                             for v in conv["answer_tokens_changed"][1:]))
        lines.append(f"  right and stable from segment (mean) {f(conv['first_stable_segment_mean'])}; right at "
                     f"some segment but wrong at the end {100 * (conv['right_at_some_segment_but_wrong_at_the_end'] or 0):.1f}%")
        lines.append(f"  halting: ECE {f(halt['ece_all_segments'], '.3f')} (every segment), "
                     f"{f(halt['ece_at_act_stop'], '.3f')} (at the ACT stop); ACT steps {f(halt['act_steps_mean'])}"
                     + ("; by depth " + ", ".join(f"{k}: {f(v)}" for k, v in halt["act_steps_by_depth"].items())
                        if report["depth"]["column"] else ""))
    return "\n".join(lines)


__all__ = ["analyze", "load_inputs", "run_analysis", "run_trajectories", "summarise", "participation_ratio",
           "Moments", "pca_2d", "expected_calibration_error", "first_stable_segment", "depth_groups",
           "untrained_like", "summary_text", "write_plots", "PROTOCOL"]
