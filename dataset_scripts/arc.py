"""ARC answers and voting: decode a version's prediction back to the task's frame, canonical grid strings,
ranking of candidate answers and pass@K scoring.

These are data concerns shared by the evaluator (`training/evaluation.py`), the `arc_pass_at_k` metric and
`hrm-solve` (`modeling_hrm/solve.py`); they live here so that none of those imports another's layer.

Voting follows the original HRM evaluator: each augmented version's prediction is cropped at the EOS border and
mapped back (undo colours, then the dihedral transform); candidates are ranked by (number of votes, mean
sigmoid(q_halt)), best first. A prediction with no decodable grid is cropped to the 0x0 grid, which is an
ordinary candidate (it can take a top-K slot, though it never equals an answer), exactly as in the original.
"""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np

from dataset_scripts import formats

#: `puzzle_identifier_names` entry of an ARC version: `task|d<dihedral>|c<perm, 10 digits>`.
VERSION_NAME = re.compile(r"^(?P<task>.+)\|d(?P<k>[0-7])\|c(?P<perm>\d{10})$")
#: The 0x0 grid (an undecodable prediction) as a vote string; no real answer maps to it.
EMPTY_GRID = ""


def grid_to_str(grid) -> str:
    """Canonical string of a grid for voting: digits per row, rows joined by "|"; "" for the 0x0 grid."""
    grid = np.asarray(grid)
    if grid.size == 0:
        return EMPTY_GRID
    return "|".join("".join(str(int(v)) for v in row) for row in grid)


def str_to_grid(text: str) -> np.ndarray:
    """Inverse of `grid_to_str`."""
    if not text:
        return np.zeros((0, 0), dtype=np.int64)
    return np.array([[int(c) for c in row] for row in text.split("|")], dtype=np.int64)


def invert_arc_version(tokens, dihedral: int, color_perm) -> np.ndarray:
    """Map a predicted token sequence of one augmented version back to the original task's frame.

    Decodes the 30x30 tokens (the largest top-left colour rectangle, i.e. cropped at the EOS border, as the
    original's `crop`), then undoes the colour permutation (`color_perm[original] = new`) and the dihedral
    transform. Returns an (h, w) colour grid, or the (0, 0) grid when the prediction holds no decodable grid.
    """
    grid = np.asarray(formats.decode_arc_grid(np.asarray(tokens)))
    if grid.size == 0:
        return np.zeros((0, 0), dtype=np.int64)
    return np.asarray(formats.invert_arc_version(grid, int(dihedral), np.asarray(color_perm)), dtype=np.int64)


def parse_version_name(name: str) -> tuple[str, int, np.ndarray] | None:
    """`task|d<k>|c<perm>` -> (task id, dihedral, colour permutation); None for other names (e.g. `<blank>`)."""
    match = VERSION_NAME.match(name)
    if match is None:
        return None
    return match["task"], int(match["k"]), np.array([int(c) for c in match["perm"]], dtype=np.uint8)


def task_versions_from_metadata(meta: dict, task_id: str) -> list[tuple[int, np.ndarray, int]]:
    """The versions the dataset made of `task_id`, as (dihedral, colour permutation, puzzle id), in id order.

    These are the versions a trained model has puzzle embeddings for; `solve_arc_task(versions=...)` votes
    over them. `ValueError` naming the task when the dataset gave it no trained versions (unknown task, or an
    evaluation task of a `heldout` build, whose rows all use the blank id 0)."""
    names = meta.get("puzzle_identifier_names") or []
    prefix = f"{task_id}|"
    found = []
    for pid, name in enumerate(names):
        if name.startswith(prefix):
            parsed = parse_version_name(name)
            if parsed is not None and parsed[0] == task_id:
                found.append((parsed[1], parsed[2], pid))
    if not found:
        raise ValueError(f"task {task_id!r} has no trained versions in this dataset's puzzle_identifier_names "
                         f"({len(names)} names); solve it with the blank id instead")
    return found


def rank_candidates(predictions, confidences) -> list[tuple[str, int, float]]:
    """Rank the distinct predictions by (votes desc, mean confidence desc, answer).

    Every prediction votes, the empty string (the 0x0 grid of an undecodable prediction) included, as in the
    original. Returns a list of (answer, votes, mean_confidence), best first. The answer string is the last key
    only to make the order deterministic when votes and confidences tie exactly.
    """
    votes: dict[str, int] = defaultdict(int)
    conf_sum: dict[str, float] = defaultdict(float)
    for pred, conf in zip(predictions, confidences):
        votes[pred] += 1
        conf_sum[pred] += float(conf)
    ranked = [(ans, votes[ans], conf_sum[ans] / votes[ans]) for ans in votes]
    ranked.sort(key=lambda item: (-item[1], -item[2], item[0]))
    return ranked


def score_tasks(predictions, references, task_ids, test_indices, confidences, k_values=(1, 2)) -> dict:
    """Vote, rank and score ARC predictions (rows = one version's answer to one test input, original frame).

    `references`: the right answer of each row's test input ("" = unknown: the task is not scored). pass@K: a
    task counts only if every one of its test inputs has its answer among the K best-ranked candidates;
    fractional@K gives each solved test input 1 / (test inputs of its task) (the ARC Prize score at K = 2).
    """
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


def arc_vote_strings(predictions, labels, dihedrals, color_perms) -> tuple[list[str], list[str]]:
    """Per-version token predictions and labels -> (prediction strings, reference strings) in the task's frame."""
    preds, refs = [], []
    for i in range(len(predictions)):
        preds.append(grid_to_str(invert_arc_version(predictions[i], dihedrals[i], color_perms[i])))
        refs.append(grid_to_str(invert_arc_version(labels[i], dihedrals[i], color_perms[i])))
    return preds, refs


__all__ = ["EMPTY_GRID", "grid_to_str", "str_to_grid", "invert_arc_version", "parse_version_name",
           "task_versions_from_metadata", "rank_candidates", "score_tasks", "arc_vote_strings"]
