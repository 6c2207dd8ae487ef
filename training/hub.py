"""Model cards generated from `model_cards/` templates, and pushing a model folder to the Hugging Face Hub.

The card says which model it is (HRM or TRM, attention or mlp_t, Q-learning or halt-only ACT), names the data by
its Hub id or by task and size (never by a local folder name), shows the build command, the training
configuration, intended use and limitations, a "How to use" snippet with the `puzzle-solving` pipeline (tested),
and the evaluation results as `model-index` metadata, one entry per evaluated split and metric (so the Hub shows
them). Metric names are fixed so that later pushes replace, not append, the results.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import yaml

from dataset_scripts.validation import REPO_ID_RULE, is_repo_id

TEMPLATE = Path(__file__).resolve().parent.parent / "model_cards" / "hrm_model_card.md"
# key in evaluate_model's result → (metric_type, display name); fixed so model-index entries stay comparable.
EVAL_METRICS = {
    "exact_accuracy": ("exact_match", "Exact accuracy"),
    "token_accuracy": ("accuracy", "Token accuracy"),
    "mean_steps": ("mean_act_steps", "Mean ACT steps"),
    "q_halt_accuracy": ("q_halt_accuracy", "Q-halt accuracy"),
}
TASKS = {
    "sudoku": ("Sudoku", "PAD 0, blank 1, digit d → d + 1; the grid row by row."),
    "maze": ("Maze", "PAD 0, `#` wall 1, open 2, `S` start 3, `G` goal 4, `o` path 5; the grid row by row."),
    "arc": ("ARC-AGI", "PAD 0, EOS 1, colour c → c + 2; each grid in a 30×30 canvas with an EOS border."),
}
CITATIONS = {
    "hrm": """@article{wang2025hrm,
  title   = {Hierarchical Reasoning Model},
  author  = {Wang, Guan and Li, Jin and Sun, Yuhao and Chen, Xing and Liu, Changling and Wu, Yue and Lu, Meng and Song, Sen and Abbasi Yadkori, Yasin},
  journal = {arXiv preprint arXiv:2506.21734},
  year    = {2025}
}""",
    "trm": """@article{jolicoeurmartineau2025trm,
  title   = {Less is More: Recursive Reasoning with Tiny Networks},
  author  = {Jolicoeur-Martineau, Alexia},
  journal = {arXiv preprint arXiv:2510.04871},
  year    = {2025}
}""",
}
MODEL_PATH_PLACEHOLDER = "path/to/model-folder"


def looks_like_repo_id(name: str | None) -> bool:
    """A valid `owner/name` Hub repo id (dataset_scripts.validation.is_repo_id) that is not an existing local path."""
    return bool(name) and is_repo_id(str(name)) and not Path(str(name)).exists()


def infer_task(config, meta: dict | None = None) -> str:
    """The puzzle kind: the dataset metadata's `task`, else what the vocabulary / sequence length imply."""
    if meta and meta.get("task"):
        return meta["task"]
    if (config.vocab_size, config.seq_len) == (12, 900):
        return "arc"
    n = math.isqrt(config.seq_len)
    return "sudoku" if n * n == config.seq_len and config.vocab_size == n + 2 and n in (4, 6, 9) else "maze"


def task_title(task: str, config, meta: dict | None = None) -> str:
    """"9×9 Sudoku", "30×30 Maze", "ARC-AGI (arc-agi-1, heldout split)": the task and its size."""
    meta = meta or {}
    name = TASKS.get(task, (task.title(), ""))[0]
    if task == "arc":
        details = ", ".join(str(meta[k]) + (" split" if k == "split_mode" else "")
                            for k in ("source", "split_mode") if meta.get(k))
        return f"{name} ({details})" if details else name
    height = meta.get("grid_height") or math.isqrt(config.seq_len)
    width = meta.get("grid_width") or config.seq_len // max(height, 1)
    return f"{height}×{width} {name}"


def dataset_reference(dataset_id: str | None, title: str, meta: dict | None = None) -> dict:
    """How the card names the training data: by its Hub id (linked), or by task and size for a local build; a
    folder name like "data" says nothing to a reader and is never used. Returns `text` (Markdown), `type`
    (model-index dataset type: the Hub id, or an `hrm-<task>-<size>` slug) and `name` (model-index display)."""
    meta = meta or {}
    num_rows = meta.get("num_rows") or {}
    rows = ", ".join(f"{num_rows[s]:,} {s} rows" for s in ("train", "test") if s in num_rows)
    if looks_like_repo_id(dataset_id):
        return {"text": f"[`{dataset_id}`](https://huggingface.co/datasets/{dataset_id}) ({title}"
                        + (f"; {rows})" if rows else ")"),
                "type": str(dataset_id), "name": f"{title} ({dataset_id})"}
    slug = "hrm-" + re.sub(r"[^a-z0-9]+", "-", title.lower().replace("×", "x")).strip("-")
    return {"text": f"a locally built {title} dataset" + (f" ({rows})" if rows else ""),
            "type": slug, "name": f"{title} (local build)"}


def _example_sudoku(n: int) -> str:
    """A puzzle for the card's snippet: the classic newspaper 9×9, or a pattern grid with half its cells blank."""
    if n == 9:
        return "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
    from dataset_scripts.formats import sudoku_box_shape

    br, bc = sudoku_box_shape(n)
    grid = [[(bc * (r % br) + r // br + c) % n + 1 for c in range(n)] for r in range(n)]
    return "".join("." if (r * 7 + c * 3) % 2 else str(grid[r][c]) for r in range(n) for c in range(n))


def _example_maze(height: int, width: int) -> str:
    """An open room with walls around, a wall across the middle with one gap, S top left, G bottom right."""
    rows = [["#"] * width] + [["#"] + [" "] * (width - 2) + ["#"] for _ in range(height - 2)] + [["#"] * width]
    if height >= 5 and width >= 4:
        middle = height // 2
        rows[middle] = ["#"] * (width - 2) + [" ", "#"]
    rows[1][1], rows[height - 2][width - 2] = "S", "G"
    return "\n".join("".join(r) for r in rows) + "\n"


def usage_snippet(task: str, model_ref: str, config, meta: dict | None = None) -> tuple[str, str]:
    """The card's "How to use" code (runs as written against the model) and the matching hrm-solve arguments."""
    meta = meta or {}
    if task == "sudoku":
        n = meta.get("grid_height") or math.isqrt(config.seq_len)
        puzzle, cli = f"puzzle = {json.dumps(_example_sudoku(n))}", f"--sudoku {_example_sudoku(n)}"
    elif task == "maze":
        height = meta.get("grid_height") or math.isqrt(config.seq_len)
        width = meta.get("grid_width") or config.seq_len // height
        puzzle, cli = f'puzzle = """\\\n{_example_maze(height, width)}"""', "--maze maze.txt"
    else:
        task_json = {"train": [{"input": [[1, 0], [0, 0]], "output": [[1, 1], [1, 1]]}],
                     "test": [{"input": [[0, 2], [0, 0]]}]}
        puzzle, cli = f"puzzle = {json.dumps(task_json)}  # an ARC task: train pairs and test inputs", "--arc task.json"
    code = "\n".join([
        "import modeling_hrm  # registers the model and the pipeline (pip install hrm); or pass trust_remote_code=True",
        "from transformers import pipeline", "",
        f"solver = pipeline(\"puzzle-solving\", model={json.dumps(model_ref)})",
        puzzle,
        "result = solver(puzzle)"]
        + (["print(result[\"answer\"][0])  # one output grid per test input; result[\"attempts\"] has the top 2",
            "print(result[\"steps\"][0], result[\"q_halt_confidence\"][0])"] if task == "arc" else
           ["print(result[\"answer\"])",
            "print(result[\"valid\"], result[\"steps\"], result[\"q_halt_confidence\"])  # valid: checked answer"]))
    return code, cli


def describe_model(config) -> dict:
    """Which model (HRM or TRM) and variant (attention / mlp_t, ACT mode) the card is about."""
    halt_only = bool(getattr(config, "no_ACT_continue", False))
    act = ("halt-only ACT: a puzzle stops when q_halt > 0" if halt_only else
           "Q-learning ACT as in the original HRM: a puzzle stops when q_halt > q_continue")
    if config.model_type == "trm":
        variant = "mlp_t" if getattr(config, "mlp_t", False) else "attention"
        mixer = "a SwiGLU across the sequence axis (mlp_t)" if variant == "mlp_t" else "self-attention"
        return {"family": "trm", "variant": variant, "act": "halt-only" if halt_only else "q-learning", "act_line": act,
                "model_line": (f"A **Tiny Recursive Model** (TRM, Jolicoeur-Martineau 2025, "
                               f"[arXiv 2510.04871](https://arxiv.org/abs/2510.04871)), {variant} variant,"),
                "architecture_line": (
                    f"TRM uses one small network ({config.L_layers} blocks of width {config.hidden_size}, mixing "
                    f"positions with {mixer}) for both its latent and its answer state: per segment, "
                    f"{config.H_cycles} cycles of {config.L_cycles} latent updates and one answer update, the last "
                    f"cycle with gradient.")}
    return {"family": "hrm", "variant": "attention", "act": "halt-only" if halt_only else "q-learning", "act_line": act,
            "model_line": ("A **Hierarchical Reasoning Model** (HRM, Wang et al. 2025, "
                           "[arXiv 2506.21734](https://arxiv.org/abs/2506.21734))"),
            "architecture_line": (
                f"HRM couples a slow high-level module and a fast low-level module (Transformer stacks, here "
                f"{config.H_layers} + {config.L_layers} blocks of width {config.hidden_size}) that refine a solution "
                f"over {config.H_cycles} × {config.L_cycles} recurrent updates per segment.")}


def _results_by_split(eval_results: dict | None) -> dict[str, dict]:
    """`{split: results}` from either that or one flat results dict (the test split)."""
    if not eval_results:
        return {}
    if all(isinstance(v, dict) for v in eval_results.values()):
        return dict(eval_results)
    return {"test": eval_results}


def build_model_card(config, *, train_config: dict | None = None, dataset_meta: dict | None = None,
                     dataset_id: str | None = None, eval_results: dict | None = None, repo_id: str | None = None,
                     step: int | None = None, num_parameters: int | None = None,
                     base_model: str | None = None, model_path: str | None = None,
                     template_path: str | os.PathLike = TEMPLATE):
    """A `huggingface_hub.ModelCard` for an HRM or TRM model, filled from the `model_cards/` template.

    Args:
        config: the model's config (`HRMConfig` or `TRMConfig`; the card says which, and the variant).
        train_config: the run's full configuration (`dataset`, `model`, `training`), shown in the card.
        dataset_meta: the dataset's `hrm_dataset.json` (task, grid size, row counts, build command).
        dataset_id: dataset Hub repo id (named and linked) or local folder (then the card names the task and size).
        eval_results: evaluation results, `{split: evaluate_model output}` or one output for the test split;
            one `model-index` entry per split and metric.
        repo_id: Hub repo the card is for (model name, snippet); model_path: where the snippet loads the model
            from when there is no repo id (default a placeholder).
        step: optimizer steps trained; num_parameters: parameter count; base_model: `--init_from` source.
    """
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    meta = dataset_meta or {}
    task = infer_task(config, meta)
    title = task_title(task, config, meta)
    encoding = TASKS.get(task, ("", "see the dataset card."))[1]
    dataset = dataset_reference(dataset_id, title, meta)
    model = describe_model(config)
    family = model["family"].upper()
    model_name = repo_id.split("/")[-1] if repo_id else f"{family} {title}"
    model_ref = repo_id or model_path or MODEL_PATH_PLACEHOLDER

    eval_entries, eval_table = [], []
    for split, results in _results_by_split(eval_results).items():
        for key, (metric_type, display) in EVAL_METRICS.items():
            value = results.get(key)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            eval_entries.append(EvalResult(
                task_type="puzzle-solving", task_name=f"{title} puzzle solving", dataset_type=dataset["type"],
                dataset_name=dataset["name"], dataset_split=split, metric_type=metric_type, metric_name=display,
                metric_value=round(float(value), 6)))
            eval_table.append((split, display, f"{float(value):.4f}"))

    card_data = ModelCardData(
        library_name="transformers", license="apache-2.0",
        tags=[model["family"], "trm-" + model["variant"] if model["family"] == "trm" else "hierarchical-reasoning-model",
              task, "puzzle-solving", "adaptive-computation-time", f"act-{model['act']}"],
        datasets=[dataset_id] if looks_like_repo_id(dataset_id) else None,
        base_model=base_model if looks_like_repo_id(base_model) else None,
        model_name=model_name, eval_results=eval_entries or None)

    training = (train_config or {}).get("training", {})
    optimizer = training.get("optimizer", "adam_atan2")
    optimizer_line = (f"{'Adam-atan2' if optimizer == 'adam_atan2' else 'AdamW'} (lr {training.get('learning_rate')}, "
                      f"weight decay {training.get('weight_decay')}, global batch {training.get('global_batch_size')})"
                      if training else "Adam-atan2")
    data_line = dataset["text"][0].upper() + dataset["text"][1:] + "."
    if meta.get("build_command"):
        data_line += f" Built with the `hrm` dataset builders:\n\n```bash\n{meta['build_command']}\n```"
    splits = _results_by_split(eval_results)
    if splits:
        counts = "; ".join(f"{s}: {int(r['num_examples'])} puzzles" for s, r in splits.items() if r.get("num_examples"))
        eval_line = (f"On {dataset['name']}" + (f" ({counts})" if counts else "")
                     + (f", after {step} training steps:" if step is not None else ":"))
    else:
        eval_line = "Not evaluated yet."
    parameter_line = f"Parameters: {num_parameters:,}." if num_parameters else ""
    if base_model:
        parameter_line += f" Fine-tuned from `{base_model}`."
    snippet, cli_example = usage_snippet(task, model_ref, config, meta)
    return ModelCard.from_template(
        card_data, template_path=str(template_path), model_name=model_name, repo_id=model_ref, task_title=title,
        dataset_ref=dataset["text"], model_line=model["model_line"], architecture_line=model["architecture_line"],
        act_line=model["act_line"], encoding=encoding, halt_max_steps=config.halt_max_steps, seq_len=config.seq_len,
        vocab_size=config.vocab_size, parameter_line=parameter_line, data_line=data_line, eval_line=eval_line,
        eval_table=eval_table, optimizer_line=optimizer_line, usage_snippet=snippet, cli_example=cli_example,
        steps_line=f"Trained for {step} optimizer steps." if step is not None else "",
        config_yaml=yaml.safe_dump(train_config or {}, sort_keys=False).strip(), citation=CITATIONS[model["family"]])


def write_model_card(model_dir: str | os.PathLike, config, **kwargs) -> Path:
    """Write the generated card as `model_dir/README.md` (see `build_model_card` for the arguments)."""
    path = Path(model_dir) / "README.md"
    build_model_card(config, **kwargs).save(str(path))
    return path


def check_model_folder(folder: str | os.PathLike) -> None:
    """Raise `ValueError` unless `folder` holds what a Hub model repo needs: config, safetensors weights, card."""
    folder = Path(folder)
    missing = [name for name in ("config.json", "README.md") if not (folder / name).is_file()]
    if not list(folder.glob("*.safetensors")):
        missing.append("*.safetensors")
    if (folder / "config.json").is_file():  # remote code: every file the config's auto_map / pipeline names
        import json

        config = json.loads((folder / "config.json").read_text())
        refs = list((config.get("auto_map") or {}).values()) + [
            task.get("impl", "") for task in (config.get("custom_pipelines") or {}).values()]
        missing += sorted({f"{ref.split('.')[0]}.py" for ref in refs if isinstance(ref, str) and "." in ref
                           and not (folder / f"{ref.split('.')[0]}.py").is_file()})
    if missing:
        raise ValueError(f"model folder {folder} is incomplete, missing {', '.join(missing)}")


def push_to_hub(folder: str | os.PathLike, repo_id: str, *, token: str | None = None, private: bool = False,
                create_pr: bool = False, commit_message: str = "Upload HRM model") -> str:
    """Upload a model folder (weights, config, remote code, card) to `repo_id`; returns the commit URL.

    Raises `ValueError` for a bad repo id or an incomplete folder and `RuntimeError` with what to do when no
    token is configured or the Hub cannot be reached (the folder stays on disk for a later push).
    """
    from huggingface_hub import HfApi, get_token

    if not is_repo_id(repo_id, owner=False):
        raise ValueError(f"--hub_model_id must look like 'owner/name' or 'name', got {repo_id!r} ({REPO_ID_RULE})")
    check_model_folder(folder)
    token = token or get_token()
    if not token:
        raise RuntimeError(f"cannot push to the Hub: no Hugging Face token. Set HF_TOKEN or run `hf auth login`, then "
                           f"push the saved folder with: python -m training.hub {folder} {repo_id}")
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        commit = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model",
                                   commit_message=commit_message, create_pr=create_pr)
    except Exception as error:  # network, DNS, auth, HTTP errors all end here; say what failed and what is kept
        from huggingface_hub import constants

        raise RuntimeError(f"pushing {folder} to {repo_id} on {constants.ENDPOINT} failed: "
                           f"{type(error).__name__}: {error}. The model folder is kept; push it later with: "
                           f"python -m training.hub {folder} {repo_id}") from error
    return str(getattr(commit, "commit_url", commit))


def main(argv=None) -> None:
    """`python -m training.hub FOLDER REPO_ID [--private] [--create_pr]`: push a saved model folder."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("folder")
    parser.add_argument("repo_id")
    parser.add_argument("--private", action="store_true")
    parser.add_argument("--create_pr", action="store_true")
    args = parser.parse_args(argv)
    print(push_to_hub(args.folder, args.repo_id, private=args.private, create_pr=args.create_pr))


if __name__ == "__main__":
    main()


__all__ = ["build_model_card", "write_model_card", "push_to_hub", "check_model_folder", "looks_like_repo_id"]
