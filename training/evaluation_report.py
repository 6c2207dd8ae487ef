"""What `hrm-evaluate` reports for a model on a dataset split (training/hrm_evaluate.py is its command line).

- `evaluate_checkpoint`: one pass of every puzzle for the largest budget (`run_segments`), from which follow the
  headline (all segments and ACT early exit), the accuracy-vs-max_steps curve, candidate search
  (`candidate_curve`), ARC pass@K under a scoring protocol, the plots and examples.png, results.json;
- `evaluate_run_checkpoints`: TRM's aggregated voting, every checkpoint of a training run voting into one tally;
- `evaluate_search`: a test-time search grid (modeling_hrm/search.py) with its table, search.json and plot.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from dataset_scripts.arc import VoteTally
from training.evaluation import (arc_scores, budget_view, check_model_fits_dataset, puzzle_metrics, run_segments,
                                 select_rows)

def _decode_for_picture(kind: str, tokens: np.ndarray, meta: dict) -> np.ndarray:
    tokens = np.asarray(tokens, dtype=np.int64)
    if kind == "sudoku":
        n = int(round(len(tokens) ** 0.5))
        return np.where(tokens >= 2, tokens - 1, 0).reshape(n, n)
    if kind == "maze":
        h = int(meta.get("grid_height", round(len(tokens) ** 0.5)))
        return tokens.reshape(h, -1)
    from dataset_scripts import formats

    try:
        return np.asarray(formats.decode_arc_grid(tokens))
    except ValueError:
        return np.zeros((0, 0), dtype=np.int64)


def _examples_picture(kind: str, arrays: dict, predictions: np.ndarray, exact: np.ndarray, meta: dict, count: int,
                      path: Path) -> Path | None:
    """Rows of (puzzle, prediction, answer) for the first `count` puzzles."""
    from modeling_hrm.render import add_caption, hstack, render_grid

    if count <= 0 or not len(predictions) or kind not in ("sudoku", "maze", "arc"):
        return None
    from PIL import Image

    rows = []
    for i in range(min(count, len(predictions))):
        puzzle = _decode_for_picture(kind, arrays["inputs"][i], meta)
        pred = _decode_for_picture(kind, predictions[i], meta)
        answer = _decode_for_picture(kind, arrays["labels"][i], meta)
        extra = {"givens": puzzle, "solution": answer} if kind == "sudoku" else {}
        pieces = [add_caption(render_grid(kind, puzzle, **({"givens": puzzle} if kind == "sudoku" else {})),
                              f"puzzle {i}"),
                  add_caption(render_grid(kind, pred, **extra), "prediction " + ("(right)" if exact[i] else "(wrong)")),
                  add_caption(render_grid(kind, answer, **({"givens": puzzle} if kind == "sudoku" else {})), "answer")]
        rows.append(hstack(pieces, gap=12))
    width = max(r.width for r in rows)
    out = Image.new("RGB", (width, sum(r.height for r in rows) + 12 * (len(rows) - 1)), "white")
    y = 0
    for r in rows:
        out.paste(r, (0, y))
        y += r.height + 12
    out.save(path)
    return path


def candidate_curve(model, arrays: dict, kind: str, candidates: list[int], *, max_steps: int, early_exit: bool,
                    noise: float, seed: int, batch_size: int) -> dict:
    """Exact accuracy vs number of candidates K (each K uses the first K of one `solve(num_candidates=max K)`):
    picked by the Q head, by validity (Sudoku: the first valid grid, else the Q head's pick) and `any` (some
    candidate right: the bound a perfect picker reaches)."""
    import torch

    from dataset_scripts.formats import sudoku_batch_valid

    top = max(candidates)
    device = next(model.parameters()).device
    inputs, ids, labels = arrays["inputs"], arrays.get("puzzle_identifiers"), arrays["labels"].astype(np.int64)
    preds, q_halt = [], []
    for start in range(0, len(inputs), max(1, batch_size // top)):
        x = torch.as_tensor(inputs[start:start + max(1, batch_size // top)].astype(np.int64), device=device)
        pid = None if ids is None else torch.as_tensor(ids[start:start + len(x)].astype(np.int64), device=device)
        res = model.solve(x, pid, max_steps=max_steps, early_exit=early_exit, num_candidates=top,
                          candidate_noise=noise, seed=seed + start)
        preds.append(res.candidate_predictions.cpu().numpy() if top > 1 else res.predictions[None].cpu().numpy())
        q_halt.append(res.candidate_q_halt_logits.float().cpu().numpy() if top > 1
                      else res.q_halt_logits[None].float().cpu().numpy())
    preds, q_halt = np.concatenate(preds, axis=1), np.concatenate(q_halt, axis=1)  # (K, N, seq), (K, N)
    scored_cells = ~np.isin(labels, (0, -100))
    correct = ((preds == labels) | ~scored_cells).all(-1)  # (K, N)
    rows = np.arange(preds.shape[1])
    valid = None
    if kind == "sudoku":
        givens = np.where(inputs >= 2, inputs.astype(np.int64) - 1, 0)
        valid = np.stack([sudoku_batch_valid(givens, np.clip(p - 1, 0, None)) for p in preds])
    curve = {"num_candidates": candidates, "q_head": [], "validity": [], "any": [], "noise": noise, "seed": seed}
    has_scored = scored_cells.any(-1)
    for k in candidates:
        pick = q_halt[:k].argmax(0)
        curve["q_head"].append(float(correct[pick, rows][has_scored].mean()))
        curve["any"].append(float(correct[:k].any(0)[has_scored].mean()))
        if valid is not None:
            first_valid = np.where(valid[:k].any(0), valid[:k].argmax(0), pick)
            curve["validity"].append(float(correct[first_valid, rows][has_scored].mean()))
    if valid is None:
        curve.pop("validity")
    return curve


def evaluate_checkpoint(model, ds, meta: dict, arrays: dict, *, max_steps: int | None = None,
                        budgets: list[int] | None = None, early_exit_headline: bool = False, batch_size: int = 256,
                        pass_k=(1, 2), output_dir: Path | None = None, num_examples: int = 4,
                        limit: int | None = None, accelerator=None, candidates: list[int] | None = None,
                        candidate_noise: float = 1.0, candidate_seed: int = 0, protocol: str = "hrm",
                        tally=None) -> dict:
    """Everything `hrm-evaluate` reports, as a dict (also written to `output_dir`/results.json with plots)."""
    cfg = model.config
    check_model_fits_dataset(cfg, meta, arrays)
    keep, arrays = select_rows(ds, meta, arrays, limit)
    headline = int(max_steps or cfg.halt_max_steps)
    budgets = sorted(set(budgets or [headline]) | {headline})
    top = max(budgets)
    t0 = time.perf_counter()
    seg = run_segments(model, arrays, max_steps=top, headline_steps=headline, batch_size=batch_size,
                       accelerator=accelerator)
    seconds = time.perf_counter() - t0
    labels = arrays["labels"]
    scored = ~np.all(np.isin(labels.astype(np.int64), (0, -100)), axis=-1)

    full_view, act_view = budget_view(seg, headline, False), budget_view(seg, headline, True)
    full = puzzle_metrics(seg["pred_full"], labels, full_view["steps"], full_view["q_halt_logits"])
    act = puzzle_metrics(seg["pred_act"], labels, act_view["steps"], act_view["q_halt_logits"])
    main, headline_preds, headline_view = ((act, seg["pred_act"], act_view) if early_exit_headline
                                           else (full, seg["pred_full"], full_view))

    curve = {"max_steps": budgets, "full": [], "act": [], "act_mean_steps": []}
    for b in budgets:
        f, a = budget_view(seg, b, False), budget_view(seg, b, True)
        curve["full"].append(float(f["exact"][scored].mean()) if scored.any() else 0.0)
        curve["act"].append(float(a["exact"][scored].mean()) if scored.any() else 0.0)
        curve["act_mean_steps"].append(float(a["steps"].mean()) if len(a["steps"]) else 0.0)

    kind = meta.get("task", "unknown")
    results = {
        "model": getattr(cfg, "_name_or_path", None), "task": kind, "num_rows": int(len(labels)),
        "max_steps": headline, "headline_mode": "act" if early_exit_headline else "full", "protocol": protocol,
        "exact_accuracy": main["exact_accuracy"], "token_accuracy": main["token_accuracy"],
        "mean_steps": main["mean_steps"], "q_halt_accuracy": main["q_halt_accuracy"],
        "num_examples": main["num_examples"],
        "full": {k: v for k, v in full.items() if k != "steps_histogram"},
        "act": act, "scaling": curve, "seconds": seconds,
    }

    depth_column = "path_length" if kind == "maze" else "rounds"  # the depth the buckets are over
    if meta.get("depth_buckets") and depth_column in ds.column_names:
        results["by_depth"] = depth_table(np.asarray(_kept_column(ds, keep, depth_column)), meta["depth_buckets"],
                                          headline_view["exact"])

    if candidates:
        results["candidates"] = candidate_curve(model, arrays, kind, candidates, max_steps=headline,
                                                early_exit=early_exit_headline, noise=candidate_noise,
                                                seed=candidate_seed, batch_size=batch_size)

    if kind == "arc":
        confidences = 1.0 / (1.0 + np.exp(-headline_view["q_halt_logits"].astype(np.float64)))
        cols = {c: np.asarray(_kept_column(ds, keep, c), dtype=object)
                for c in ("task_id", "pair_index", "dihedral", "color_perm")}
        arc = arc_scores(headline_preds, labels, confidences, cols["task_id"], cols["pair_index"], cols["dihedral"],
                         [np.asarray(p, dtype=np.int64) for p in cols["color_perm"]], k_values=pass_k,
                         protocol=protocol, puzzle_identifiers=arrays.get("puzzle_identifiers"), tally=tally)
        results["arc"] = arc
        # Task-level ARC scores at the top level too (pass@2 is the headline of the paper).
        results.update({k: v for k, v in arc.items()
                        if k.startswith(("pass@", "all_inputs@", "fractional@", "official", "protocol"))})

    if output_dir is not None and (accelerator is None or accelerator.is_main_process):
        from modeling_hrm.render import plot_scaling_curve, plot_steps_histogram

        output_dir.mkdir(parents=True, exist_ok=True)
        plot_scaling_curve(budgets, {"all segments": curve["full"], "ACT early exit": curve["act"]},
                           output_dir / "scaling_curve.png", trained_steps=cfg.halt_max_steps,
                           title=f"{kind}: exact accuracy vs max_steps")
        plot_steps_histogram(act["steps_histogram"], output_dir / "steps_histogram.png",
                             title=f"{kind}: ACT steps used (budget {headline})")
        _examples_picture(kind, arrays, headline_preds, headline_view["exact"], meta, num_examples,
                          output_dir / "examples.png")
        with open(output_dir / "results.json", "w") as fh:
            json.dump(results, fh, indent=2, default=json_default)
    return results




def _kept_column(ds, keep: np.ndarray, name: str):
    """Column `name` of the rows `select_rows` kept."""
    return ds[name] if len(keep) == len(ds) else ds.select(keep)[name]


def depth_table(rounds: np.ndarray, buckets, exact: np.ndarray) -> dict[str, dict]:
    """Exact accuracy per depth bucket of an open-world build (`depth_buckets` in its `hrm_dataset.json`), in the
    buckets' order: the deepest bucket is where recursion has to pay."""
    from dataset_scripts.sudoku import depth_bucket_names, parse_depth_buckets

    names = depth_bucket_names(rounds, buckets)
    table = {}
    for bucket in parse_depth_buckets(buckets):
        rows = names == bucket.name
        if rows.any():
            table[bucket.name] = {"exact_accuracy": float(exact[rows].mean()), "num_puzzles": int(rows.sum())}
    return table


def evaluate_run_checkpoints(checkpoints: list[Path], ds, meta: dict, arrays: dict, *, device, output_dir: Path,
                             **options) -> dict:
    """TRM's aggregated voting: every checkpoint of a run (oldest first, the order in which TRM's evaluator collects
    the votes) adds its ARC votes to one tally; the result is the last checkpoint's report scored on all the votes,
    with `aggregated_checkpoints` and the pass@K after each checkpoint (`aggregated_curve`), written to
    `output_dir`/results.json. `options` are those of `evaluate_checkpoint`."""
    from modeling_hrm.loading import load_pretrained_model

    accelerator = options.get("accelerator")
    tally, curve = VoteTally(), []
    for path in checkpoints:
        last = path == checkpoints[-1]
        results = evaluate_checkpoint(load_pretrained_model(path, device), ds, meta, arrays, tally=tally,
                                      output_dir=output_dir if last else None, **options)
        curve.append({"checkpoint": path.name, **{k: results[k] for k in results if k.startswith("pass@")}})
    results.update(aggregated_checkpoints=[p.name for p in checkpoints], aggregated_curve=curve)
    if accelerator is None or accelerator.is_main_process:
        with open(output_dir / "results.json", "w") as fh:
            json.dump(results, fh, indent=2, default=json_default)
    return results


def json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")



def evaluate_search(model, ds, meta: dict, arrays: dict, grid, *, batch_size: int = 256, limit: int | None = None,
                    output_dir: Path | None = None, name: str | None = None) -> dict:
    """`--search`: every setting of a test-time search grid on the split (modeling_hrm.search.evaluate_grid), written
    to `output_dir` as search.json and search_accuracy_vs_flops.png. Returns the grid's result."""
    from modeling_hrm.search import evaluate_grid, parse_grid, plot_accuracy_vs_flops

    grid = parse_grid(grid)
    _, arrays = select_rows(ds, meta, arrays, limit)
    task = meta.get("task")
    shape = (int(meta["grid_height"]), int(meta["grid_width"])) if task == "maze" and "grid_height" in meta else None
    result = evaluate_grid(model, arrays["inputs"], arrays["labels"], arrays.get("puzzle_identifiers"), grid=grid,
                           task=task, grid_shape=shape, max_rows=batch_size,
                           log=lambda line: print(line, file=sys.stderr, flush=True))
    result = {"model": name or getattr(model.config, "_name_or_path", None), "task": task,
              "num_rows": int(len(arrays["inputs"])), "grid": grid, **result}
    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
        with open(output_dir / "search.json", "w") as fh:
            json.dump(result, fh, indent=2, default=json_default)
        plot_accuracy_vs_flops({result["model"] or "model": result}, output_dir / "search_accuracy_vs_flops.png",
                               title=f"{task}: exact accuracy vs inference FLOPs")
    return result



__all__ = ["evaluate_checkpoint", "evaluate_run_checkpoints", "candidate_curve", "evaluate_search", "json_default"]
