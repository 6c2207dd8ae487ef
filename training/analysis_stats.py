"""The computations of `training.analysis` (`hrm-analyze`): participation ratio, PCA and calibration error, the
one pass that runs every puzzle through all segments and records what the analyses need, and the per-model report
read off that pass (convergence by depth, halting calibration)."""

from __future__ import annotations

import math

import numpy as np
import torch

from training.evaluation import row_scores

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
