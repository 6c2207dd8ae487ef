"""The project's `evaluate` metric modules, shipped with the package (one folder per metric).

```python
import evaluate
from training.metrics import metric_path

accuracy = evaluate.load(metric_path("puzzle_accuracy"))   # works from any directory, offline
accuracy.compute(predictions=[[2, 3], [2, 4]], references=[[2, 3], [2, 3]], steps=[1, 2], q_halt_logits=[3.0, 1.0])
```

`evaluate.load` takes a name that is not an existing path for a Hub id, so give it the absolute path this
helper returns. Once a metric is pushed as a Hub Space (`push_metric(name, "owner/name")`), `evaluate.load("owner/name")`
loads it anywhere.
"""

from __future__ import annotations

from pathlib import Path

METRICS_DIR = Path(__file__).resolve().parent
METRICS = ("puzzle_accuracy", "arc_pass_at_k")


def metric_path(name: str) -> str:
    """Absolute path of a metric module's folder, for `evaluate.load(metric_path(name))`."""
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; this package has {', '.join(METRICS)}")
    path = METRICS_DIR / name
    if not (path / f"{name}.py").is_file():
        raise FileNotFoundError(f"metric module {name!r} is missing from {path} (a broken install?)")
    return str(path)


def push_metric(name: str, repo_id: str, *, token: str | None = None, private: bool = False) -> str:
    """Upload a metric folder as a Hub Space (the form `evaluate.load("owner/name")` reads); returns the URL."""
    from huggingface_hub import HfApi

    folder = Path(metric_path(name))
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
    # evaluate loads `<name>.py` named like the repo: upload the module under the repo's name.
    api.upload_file(path_or_fileobj=str(folder / f"{name}.py"), path_in_repo=f"{repo_id.split('/')[-1]}.py",
                    repo_id=repo_id, repo_type="space")
    app = "import evaluate\nfrom evaluate.utils import launch_gradio_widget\n\n" \
          f"launch_gradio_widget(evaluate.load({repo_id!r}))\n"
    api.upload_file(path_or_fileobj=app.encode(), path_in_repo="app.py", repo_id=repo_id, repo_type="space")
    return f"https://huggingface.co/spaces/{repo_id}"


__all__ = ["METRICS", "METRICS_DIR", "metric_path", "push_metric"]
