"""Puzzle accuracy: the HRM evaluation metrics (exact / token accuracy, mean ACT steps, Q-halt accuracy).

Load it from the installed package, offline, from any directory (`evaluate.load` takes a name that is not an
existing path for a Hub id, so `metric_path` gives the absolute one):

```python
import evaluate
from training.metrics import metric_path
metric = evaluate.load(metric_path("puzzle_accuracy"))
metric.add_batch(predictions=preds, references=labels, steps=steps, q_halt_logits=q_halt)
metric.compute(ignore_index=0)
```
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """\
Scores whole-grid predictions of a puzzle solver the way the HRM paper does. A row is scored on the
cells whose reference is not `ignore_index`; rows with no scored cell are left out.

- exact_accuracy: fraction of rows whose scored cells are all right (the headline number).
- token_accuracy: mean over rows of the fraction of scored cells that are right (per-row mean, as
  the original code computes it).
- mean_steps: mean number of ACT segments used; steps_histogram: {steps: number of rows}.
- q_halt_accuracy: fraction of rows where the Q head's halt decision (q_halt_logit >= 0) agrees with
  whether the row is exactly right.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions: predicted token ids, one sequence per row.
    references: reference token ids, same shape; cells equal to `ignore_index` are not scored.
    steps: ACT segments used per row.
    q_halt_logits: Q-halt logit per row at the stopping segment.
    ignore_index (int or list of int, default -100): reference value(s) that are not scored. Pass 0 for
        the raw dataset labels (0 = PAD), or [0, -100] to accept both.
Returns:
    dict with exact_accuracy, token_accuracy, mean_steps, q_halt_accuracy, num_examples (rows scored),
    num_rows (rows given) and steps_histogram.
Example:
    >>> metric.compute(predictions=[[2, 3], [2, 4]], references=[[2, 3], [2, 3]], steps=[1, 2],
    ...                q_halt_logits=[3.0, 1.0])["exact_accuracy"]
    0.5
"""


def _as_2d(column) -> np.ndarray:
    """Rows of equal length as one int64 array (the numpy formatter may hand back an object array)."""
    if isinstance(column, np.ndarray) and column.dtype != object:
        return column.astype(np.int64, copy=False).reshape(len(column), -1)
    rows = [np.asarray(r, dtype=np.int64) for r in column]
    if not rows:
        return np.zeros((0, 0), dtype=np.int64)
    lengths = {r.shape[0] for r in rows}
    if len(lengths) != 1:
        raise ValueError(f"puzzle_accuracy needs sequences of one length, got lengths {sorted(lengths)}")
    return np.stack(rows)


def _describe(value) -> str:
    return "None" if value is None else f"{type(value).__name__} {value!r}"[:80]


def check_columns(predictions, references, steps, q_halt_logits) -> None:
    """The metric's inputs, checked before `evaluate` casts them (a float token id would be truncated, a NaN logit
    counted as "continue"): one line naming the first bad value. Token ids: rows of integers (int32), predictions
    and references of one shape; steps: integers >= 1; q_halt_logits: finite numbers; one entry per row in each."""
    lengths = {}
    for name, column in (("predictions", predictions), ("references", references), ("steps", steps),
                         ("q_halt_logits", q_halt_logits)):
        if isinstance(column, (str, bytes, dict)) or not hasattr(column, "__len__"):
            raise TypeError(f"puzzle_accuracy: {name} must be a list with one entry per row, got {_describe(column)}")
        lengths[name] = len(column)
    if len(set(lengths.values())) > 1:
        raise ValueError("puzzle_accuracy: the inputs must have one entry per row, got "
                         + ", ".join(f"{n} {k}" for n, k in lengths.items()))
    for name, column in (("predictions", predictions), ("references", references)):
        for i, row in enumerate(column):
            if isinstance(row, (str, bytes)) or not hasattr(row, "__len__"):
                raise TypeError(f"puzzle_accuracy: {name}[{i}] must be a sequence of token ids, got {_describe(row)}")
            bad = next((v for v in row if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer))
                        or not -2**31 <= v < 2**31), None) if not (isinstance(row, np.ndarray) and row.dtype.kind
                                                                    in "iu") else None
            if bad is not None:
                raise TypeError(f"puzzle_accuracy: {name}[{i}] must hold integer token ids, got {_describe(bad)}")
    bad = next((v for v in steps if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer))
                or v < 1), None)
    if bad is not None:
        raise ValueError(f"puzzle_accuracy: steps must be integers >= 1 (ACT segments used), got {_describe(bad)}")
    bad = next((v for v in q_halt_logits if isinstance(v, (bool, np.bool_))
                or not isinstance(v, (int, float, np.number)) or not np.isfinite(v)), None)
    if bad is not None:
        raise ValueError(f"puzzle_accuracy: q_halt_logits must be finite numbers, got {_describe(bad)}")


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class PuzzleAccuracy(evaluate.Metric):
    """Exact / token accuracy with an ignore label, mean ACT steps and Q-halt accuracy."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="Wang et al. 2025, Hierarchical Reasoning Model, arXiv 2506.21734",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({
                "predictions": datasets.Sequence(datasets.Value("int32")),
                "references": datasets.Sequence(datasets.Value("int32")),
                "steps": datasets.Value("int32"),
                "q_halt_logits": datasets.Value("float32"),
            }),
            # No format: evaluate allows "numpy" only for scalar features; rows come back as lists.
        )

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add a batch of rows, checked first (`check_columns`).

        """
        check_columns(predictions, references, kwargs.get("steps"), kwargs.get("q_halt_logits"))
        return super().add_batch(predictions=predictions, references=references, **kwargs)

    def add(self, *, prediction=None, reference=None, **kwargs):
        """Add one row, checked first (`check_columns`).

        """
        check_columns([prediction], [reference], [kwargs.get("steps")], [kwargs.get("q_halt_logits")])
        return super().add(prediction=prediction, reference=reference, **kwargs)

    def _compute(self, predictions, references, steps, q_halt_logits, ignore_index=-100):
        ignored = ignore_index if isinstance(ignore_index, (list, tuple)) else [ignore_index]
        bad = next((v for v in ignored if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer))),
                   None)
        if bad is not None or not ignored:
            raise TypeError(f"puzzle_accuracy: ignore_index must be an integer or a list of integers, got "
                            f"{_describe(bad if ignored else ignore_index)}")
        preds, refs = _as_2d(predictions), _as_2d(references)
        if preds.shape != refs.shape:
            raise ValueError(f"predictions {preds.shape} and references {refs.shape} differ in shape")
        steps = np.asarray(steps, dtype=np.int64)
        q_halt = np.asarray(q_halt_logits, dtype=np.float64)
        ignore = np.atleast_1d(np.asarray(ignore_index, dtype=np.int64))

        valid = ~np.isin(refs, ignore)
        counts = valid.sum(-1)
        scored = counts > 0  # rows without a scored cell carry no information (as in the original)
        correct_cells = ((preds == refs) & valid).sum(-1)
        exact = correct_cells == counts
        n = int(scored.sum())

        def mean(x):
            return float(np.mean(x)) if len(x) else 0.0

        values, freq = np.unique(steps, return_counts=True)
        return {
            "exact_accuracy": mean(exact[scored]),
            "token_accuracy": mean(correct_cells[scored] / counts[scored]),
            "mean_steps": mean(steps),
            "q_halt_accuracy": mean(((q_halt >= 0) == exact)[scored]),
            "num_examples": n,
            "num_rows": int(len(steps)),
            "steps_histogram": {int(v): int(c) for v, c in zip(values, freq)},
        }
