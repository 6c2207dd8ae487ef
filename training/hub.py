"""Model cards generated from `model_cards/` templates, and pushing a model folder to the Hugging Face Hub.

The card holds the task, the data, the training configuration, intended use and limitations, and the evaluation
results as `model-index` metadata (so the Hub shows them). Metric names are fixed so that later pushes replace,
not append, the results.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import yaml

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
_REPO_ID_RE = re.compile(r"^[\w.-]+/[\w.-]+$")


def looks_like_repo_id(name: str | None) -> bool:
    """`owner/name` that is not an existing local path."""
    return bool(name) and _REPO_ID_RE.match(str(name)) is not None and not Path(str(name)).exists()


def build_model_card(config, *, train_config: dict | None = None, dataset_meta: dict | None = None,
                     dataset_id: str | None = None, eval_results: dict | None = None, repo_id: str | None = None,
                     step: int | None = None, num_parameters: int | None = None,
                     base_model: str | None = None, template_path: str | os.PathLike = TEMPLATE):
    """A `huggingface_hub.ModelCard` for an HRM model, filled from the `model_cards/` template.

    Args:
        config: the model's `HRMConfig`.
        train_config: the run's full configuration (`dataset`, `model`, `training`), shown in the card.
        dataset_meta: the dataset's `hrm_dataset.json` (task, grid size, build command).
        dataset_id: dataset folder or Hub repo id used for training.
        eval_results: `evaluate_model` output on the test split (becomes `model-index` metadata).
        repo_id: Hub repo the card is for (used in the snippet and as model name).
        step: optimizer steps trained; num_parameters: parameter count; base_model: `--init_from` source.
    """
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    meta = dataset_meta or {}
    task = meta.get("task", "puzzle")
    task_title, encoding = TASKS.get(task, (task.title(), "see the dataset card."))
    if task in ("sudoku", "maze") and meta.get("grid_height"):
        task_title = f"{meta['grid_height']}×{meta.get('grid_width', meta['grid_height'])} {task_title}"
    dataset_name = Path(str(dataset_id)).name if dataset_id else "unknown"
    model_name = repo_id.split("/")[-1] if repo_id else f"HRM {task_title}"

    eval_entries, eval_table = [], []
    for key, (metric_type, display) in EVAL_METRICS.items():
        value = (eval_results or {}).get(key)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        eval_entries.append(EvalResult(
            task_type="puzzle-solving", task_name=f"{task_title} puzzle solving",
            dataset_type=str(dataset_id) if looks_like_repo_id(dataset_id) else dataset_name,
            dataset_name=dataset_name, dataset_split="test", metric_type=metric_type, metric_name=display,
            metric_value=round(float(value), 6)))
        eval_table.append((display, f"{float(value):.4f}"))

    card_data = ModelCardData(
        library_name="transformers", license="apache-2.0", tags=["hrm", "hierarchical-reasoning-model", task,
                                                                 "puzzle-solving", "adaptive-computation-time"],
        datasets=[dataset_id] if looks_like_repo_id(dataset_id) else None,
        base_model=base_model if looks_like_repo_id(base_model) else None,
        model_name=model_name, eval_results=eval_entries or None)

    training = (train_config or {}).get("training", {})
    optimizer = training.get("optimizer", "adam_atan2")
    optimizer_line = (f"{'Adam-atan2' if optimizer == 'adam_atan2' else 'AdamW'} (lr {training.get('learning_rate')}, "
                      f"weight decay {training.get('weight_decay')}, global batch {training.get('global_batch_size')})"
                      if training else "Adam-atan2")
    num_rows = meta.get("num_rows", {})
    data_line = (f"`{dataset_id}`" + (f" ({num_rows.get('train')} training rows, {num_rows.get('test')} test rows)"
                                      if num_rows else "")
                 + (f", built with `{meta['build_command']}`." if meta.get("build_command") else "."))
    if eval_results:
        eval_line = (f"On the test split of `{dataset_name}` ({int(eval_results.get('num_examples', 0))} puzzles), "
                     f"after {step} training steps:" if step is not None else f"On the test split of `{dataset_name}`:")
    else:
        eval_line = "Not evaluated yet."
    parameter_line = f"Parameters: {num_parameters:,}." if num_parameters else ""
    if base_model:
        parameter_line += f" Fine-tuned from `{base_model}`."
    return ModelCard.from_template(
        card_data, template_path=str(template_path), model_name=model_name, repo_id=repo_id or "path/to/model",
        task_title=task_title, encoding=encoding, H_layers=config.H_layers, L_layers=config.L_layers,
        hidden_size=config.hidden_size, H_cycles=config.H_cycles, L_cycles=config.L_cycles,
        halt_max_steps=config.halt_max_steps, seq_len=config.seq_len, vocab_size=config.vocab_size,
        parameter_line=parameter_line, data_line=data_line, eval_line=eval_line, eval_table=eval_table,
        optimizer_line=optimizer_line, steps_line=f"Trained for {step} optimizer steps." if step is not None else "",
        config_yaml=yaml.safe_dump(train_config or {}, sort_keys=False).strip())


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
    if missing:
        raise ValueError(f"model folder {folder} is incomplete, missing {', '.join(missing)}")


def push_to_hub(folder: str | os.PathLike, repo_id: str, *, token: str | None = None, private: bool = False,
                create_pr: bool = False, commit_message: str = "Upload HRM model") -> str:
    """Upload a model folder (weights, config, remote code, card) to `repo_id`; returns the commit URL.

    Raises `ValueError` for a bad repo id or an incomplete folder and `RuntimeError` with what to do when no
    token is configured or the Hub cannot be reached (the folder stays on disk for a later push).
    """
    from huggingface_hub import HfApi, get_token

    if not repo_id or not re.match(r"^([\w.-]+/)?[\w.-]+$", repo_id):
        raise ValueError(f"--hub_model_id must look like 'owner/name' or 'name', got {repo_id!r}")
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
