"""ARC pass@K with voting across augmented versions, and the official per-test-input fractional score.

Each input row is one prediction for one test input of one task, already mapped back to the original
frame (inverse dihedral transform and colour permutation). Grids are given as strings (any canonical
encoding works, e.g. rows of digits joined by "|"); an empty string is the 0x0 grid of a prediction that
could not be decoded: it votes like any other answer (and can take a top-K slot), as in the original.

Load offline with an absolute path:

```python
import evaluate
from pathlib import Path
metric = evaluate.load(str(Path("training/metrics/arc_pass_at_k").resolve()))
metric.compute(predictions=[...], references=[...], task_ids=[...], test_indices=[...], confidences=[...])
```
"""

import datasets
import evaluate
import numpy as np

# The voting core lives with the other ARC data helpers (shared with the evaluator and hrm-solve); rank_candidates
# is re-exported.
from dataset_scripts.arc import check_vote_rows, rank_candidates, score_tasks  # noqa: F401

_DESCRIPTION = """\
ARC scoring as in the HRM and TRM papers. For every (task, test input) the predictions of all augmented
versions vote: candidate answers are ranked by number of votes, then by the mean confidence (sigmoid of the
Q-halt logit, float64) of the versions that proposed them; exact ties keep the order in which the answers
were first proposed (the originals' stable sort), so pass the rows in the originals' order. pass@K follows
`protocol`: "hrm" (default) counts a task only if, for every one of its test inputs, the right answer is
among the K best-ranked candidates; "trm" credits each such test input 1 / (number of test inputs of its
task), the ARC Prize rule. Both rules are reported by name too: `all_inputs@K` and `fractional@K`
(`official_score` = fractional@2). TRM's aggregated voting over the checkpoints of a run is these rows
of every checkpoint passed together (checkpoint after checkpoint).
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions: predicted grid per row (string; "" = the 0x0 grid of an undecodable prediction, which votes).
    references: the right answer of the row's test input (string; "" = unknown, the task is not scored).
    task_ids: task of each row.
    test_indices: index of the test input within its task.
    confidences: confidence of each row's prediction (e.g. sigmoid(q_halt_logit)), used to break ties.
    k_values (list of int, default [1, 2]): the K of pass@K.
    protocol ("hrm" or "trm", default "hrm"): the rule of pass@K.
Returns:
    dict with protocol, pass@K, all_inputs@K and fractional@K for each K, official_score, num_tasks,
    num_test_inputs, num_unscored_tasks and per_task: {task_id: {"pass@K": bool or float, "all_inputs@K": bool,
    "fractional@K": float,
    "ranks": [1-based rank of the right answer per test input, or None], "top": [best answer per test input],
    "num_test_inputs": int}}.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ArcPassAtK(evaluate.Metric):
    """ARC voting across augmented versions, pass@K per task and the fractional per-test-input score."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="Chollet 2019, On the Measure of Intelligence; Wang et al. 2025, arXiv 2506.21734",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({
                "predictions": datasets.Value("string"),
                "references": datasets.Value("string"),
                "task_ids": datasets.Value("string"),
                "test_indices": datasets.Value("int32"),
                "confidences": datasets.Value("float64"),  # float32 would tie confidences above q ~ 17
            }),
        )

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add a batch of rows, checked first (`check_vote_rows`).

        """
        # Checked before `evaluate` casts the columns (an int grid would become text, a NaN confidence would rank).
        check_vote_rows(predictions, references, kwargs.get("task_ids"), kwargs.get("test_indices"),
                        kwargs.get("confidences"))
        return super().add_batch(predictions=predictions, references=references, **kwargs)

    def add(self, *, prediction=None, reference=None, **kwargs):
        """Add one row, checked first (`check_vote_rows`).

        """
        check_vote_rows([prediction], [reference], [kwargs.get("task_ids")], [kwargs.get("test_indices")],
                        [kwargs.get("confidences")])
        return super().add(prediction=prediction, reference=reference, **kwargs)

    def _compute(self, predictions, references, task_ids, test_indices, confidences, k_values=(1, 2),
                 protocol="hrm"):
        return score_tasks(predictions, references, task_ids, test_indices,
                           np.asarray(confidences, dtype=np.float64), k_values=k_values, protocol=protocol)
