"""ARC pass@K with voting across augmented versions, and the official per-test-input fractional score.

Each input row is one prediction for one test input of one task, already mapped back to the original
frame (inverse dihedral transform and colour permutation). Grids are given as strings (any canonical
encoding works, e.g. rows of digits joined by "|"); an empty string marks a prediction that could not be
decoded and gets no vote.

Load offline with an absolute path:

```python
import evaluate
from pathlib import Path
metric = evaluate.load(str(Path("training/metrics/arc_pass_at_k").resolve()))
metric.compute(predictions=[...], references=[...], task_ids=[...], test_indices=[...], confidences=[...])
```
"""

from collections import defaultdict

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """\
ARC scoring as in the HRM paper. For every (task, test input) the predictions of all augmented versions
vote: candidate answers are ranked by number of votes, ties broken by the mean confidence (sigmoid of the
Q-halt logit) of the versions that proposed them. pass@K: a task counts as solved only if, for every one
of its test inputs, the right answer is among the K best-ranked candidates. The official ARC Prize score
is fractional instead: each test input solved within 2 attempts earns 1 / (number of test inputs of its
task); reported here as `fractional@K` for every K (`official_score` = fractional@2).
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions: predicted grid per row (string; "" = undecodable, no vote).
    references: the right answer of the row's test input (string; "" = unknown, the task is not scored).
    task_ids: task of each row.
    test_indices: index of the test input within its task.
    confidences: confidence of each row's prediction (e.g. sigmoid(q_halt_logit)), used to break ties.
    k_values (list of int, default [1, 2]): the K of pass@K.
Returns:
    dict with pass@K and fractional@K for each K, official_score, num_tasks, num_test_inputs,
    num_unscored_tasks and per_task: {task_id: {"pass@K": bool, "fractional@K": float,
    "ranks": [1-based rank of the right answer per test input, or None], "top": [best answer per test input],
    "num_test_inputs": int}}.
"""


def rank_candidates(predictions, confidences):
    """Rank the distinct non-empty predictions by (votes desc, mean confidence desc, answer).

    Returns a list of (answer, votes, mean_confidence), best first. The answer string is the last key only
    to make the order deterministic when votes and confidences tie exactly.
    """
    votes = defaultdict(int)
    conf_sum = defaultdict(float)
    for pred, conf in zip(predictions, confidences):
        if not pred:
            continue
        votes[pred] += 1
        conf_sum[pred] += float(conf)
    ranked = [(ans, votes[ans], conf_sum[ans] / votes[ans]) for ans in votes]
    ranked.sort(key=lambda item: (-item[1], -item[2], item[0]))
    return ranked


def score_tasks(predictions, references, task_ids, test_indices, confidences, k_values=(1, 2)):
    """Vote, rank and score; see the module description. Plain-Python core of the metric."""
    k_values = sorted({int(k) for k in k_values})
    if not k_values or k_values[0] < 1:
        raise ValueError(f"k_values must be positive integers, got {k_values}")
    groups = defaultdict(lambda: {"preds": [], "confs": [], "refs": set()})
    for pred, ref, task, index, conf in zip(predictions, references, task_ids, test_indices, confidences):
        group = groups[(task, int(index))]
        group["preds"].append(pred)
        group["confs"].append(conf)
        group["refs"].add(ref)

    tasks = defaultdict(dict)
    for (task, index), group in groups.items():
        known = {r for r in group["refs"] if r}
        if len(known) > 1:
            # Every version of one test input must map back to one answer; if not, an inverse is wrong.
            raise ValueError(f"task {task!r} test input {index}: the rows disagree on the reference answer "
                             f"({len(known)} different grids); check the inverse augmentation")
        tasks[task][index] = (rank_candidates(group["preds"], group["confs"]), next(iter(known), None))

    per_task = {}
    totals = {k: [0.0, 0.0] for k in k_values}  # k -> [pass sum, fractional sum]
    num_test_inputs = 0
    unscored = 0
    for task in sorted(tasks):
        inputs = tasks[task]
        if any(ref is None for _, ref in inputs.values()):
            unscored += 1  # an unknown answer: the task cannot be scored (e.g. a hidden test set)
            continue
        ranks = []
        for index in sorted(inputs):
            ranked, ref = inputs[index]
            answers = [ans for ans, _, _ in ranked]
            ranks.append(answers.index(ref) + 1 if ref in answers else None)
        entry = {"num_test_inputs": len(ranks), "ranks": ranks,
                 "top": [inputs[i][0][0][0] if inputs[i][0] else "" for i in sorted(inputs)]}
        for k in k_values:
            hits = [r is not None and r <= k for r in ranks]
            entry[f"pass@{k}"] = all(hits)
            entry[f"fractional@{k}"] = sum(hits) / len(hits)
            totals[k][0] += entry[f"pass@{k}"]
            totals[k][1] += entry[f"fractional@{k}"]
        per_task[task] = entry
        num_test_inputs += len(ranks)

    n = len(per_task)
    result = {}
    for k in k_values:
        result[f"pass@{k}"] = totals[k][0] / n if n else 0.0
        result[f"fractional@{k}"] = totals[k][1] / n if n else 0.0
    if 2 in k_values:
        result["official_score"] = result["fractional@2"]
    result.update(num_tasks=n, num_test_inputs=num_test_inputs, num_unscored_tasks=unscored, per_task=per_task)
    return result


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
                "confidences": datasets.Value("float32"),
            }),
        )

    def _compute(self, predictions, references, task_ids, test_indices, confidences, k_values=(1, 2)):
        return score_tasks(predictions, references, task_ids, test_indices,
                           np.asarray(confidences, dtype=np.float64), k_values=k_values)
