"""Adaptation to an unseen ARC task (modeling_hrm/adaptation.py): only the new puzzle-embedding rows change, the
update is the trainer's sign-SGD, the rows learn (the loss falls), the run is seeded, and an adapted model saved and
reloaded solves the task the same way (pipeline, hrm-solve)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import pipeline

import modeling_hrm  # noqa: F401  (registers the pipeline)
from dataset_scripts.arc_procedural import make_task
from modeling_hrm import HRMConfig, HRMForPuzzleSolving, TRMConfig, TRMForPuzzleSolving
from modeling_hrm.adaptation import adapt_to_task, sign_sgd_rows
from modeling_hrm.loading import load_pretrained_model
from modeling_hrm.pipeline_puzzle_solving import arc_task_key, parse_arc_task
from modeling_hrm.solve import solve_arc_task

ARC = dict(vocab_size=12, seq_len=900, num_puzzle_identifiers=5, hidden_size=16, num_heads=2, puzzle_emb_ndim=16,
           L_layers=1, H_cycles=1, L_cycles=1, halt_max_steps=2)


def tiny_model(kind: str = "hrm", seed: int = 0, **overrides):
    torch.manual_seed(seed)
    if kind == "trm":
        return TRMForPuzzleSolving(TRMConfig(**{**ARC, "puzzle_emb_len": 1, **overrides})).eval()
    model = HRMForPuzzleSolving(HRMConfig(**{**ARC, "H_layers": 1, **overrides})).eval()
    with torch.no_grad():  # trained-looking rows, so that "the old rows are untouched" is not trivially zeros
        model.puzzle_embedding.weight.normal_()
    return model


@pytest.fixture(scope="module")
def task() -> dict:
    return make_task(("gravity",), np.random.default_rng(0), num_demos=2)[0]


def test_only_the_new_rows_change(task):
    model = tiny_model()
    before = {name: t.clone() for name, t in model.state_dict().items()}
    rng_state = torch.get_rng_state()
    calls = []
    result = adapt_to_task(model, task, steps=2, num_aug=1, callback=lambda step, versions: calls.append((step, versions)))
    after = model.state_dict()
    assert [step for step, _ in calls] == [1, 2] and calls[-1][1] is result.versions

    assert result.puzzle_ids == [5, 6] and model.config.num_puzzle_identifiers == 7
    for name, tensor in before.items():
        if name == "puzzle_embedding.weight":
            assert torch.equal(after[name][:5], tensor)  # every old row bit-identical
            assert (after[name][5:] != 0).all()  # the new rows moved from their zero start
        else:
            assert torch.equal(after[name], tensor), f"{name} changed"
    assert all(p.requires_grad for p in model.parameters()) and not model.training
    assert torch.equal(torch.get_rng_state(), rng_state)  # the caller's RNG stream is left as it was
    assert model.config.adapted_tasks[result.task_key]["versions"][0] == [0, "0123456789", 5]


def test_sign_sgd_rows_by_hand():
    """Adaptation and the trainer share this update: gradients of a repeated id are summed before the sign, weight
    decay is applied to the touched rows only, and a non-finite gradient leaves the table as it was."""
    weight = torch.ones(5, 2)
    ids = torch.tensor([1, 3, 1])
    grads = torch.tensor([[1.0, -3.0], [-2.0, 0.0], [-2.0, 1.0]])  # id 1: sum (-1, -2)
    updated = sign_sgd_rows(weight, ids, grads, lr=0.1, weight_decay=0.5)
    assert updated.tolist() == [1, 3]
    decayed = 1.0 * (1 - 0.1 * 0.5)
    assert torch.allclose(weight[1], torch.tensor([decayed + 0.1, decayed + 0.1]))
    assert torch.allclose(weight[3], torch.tensor([decayed + 0.1, decayed]))  # sign(0) = 0
    assert torch.equal(weight[[0, 2, 4]], torch.ones(3, 2))
    before = weight.clone()
    sign_sgd_rows(weight, ids, torch.full((3, 2), float("nan")), lr=0.1, weight_decay=0.5)
    assert torch.equal(weight, before)


@pytest.mark.parametrize("kind", ["hrm", "trm"])
def test_the_rows_learn_the_demonstrations(task, kind):
    """With one segment per step every step sees the same rows from scratch, so the losses are comparable: the
    embedding gradient must bring the demonstrations' loss down."""
    model = tiny_model(kind, halt_max_steps=1)
    result = adapt_to_task(model, task, steps=8, num_aug=1, lr=0.05)
    assert len(result.losses) == 8 and result.num_rows == 4 and result.seconds > 0
    assert np.mean(result.losses[-3:]) < result.losses[0] - 1e-3


def test_seeded_and_readapting_reuses_the_rows(task):
    rows = []
    for seed in (0, 0, 1):
        model = tiny_model()
        result = adapt_to_task(model, task, steps=2, num_aug=1, seed=seed)
        rows.append(model.puzzle_embedding.weight[result.puzzle_ids].clone())
    assert torch.equal(rows[0], rows[1]) and not torch.equal(rows[0], rows[2])
    # Adapting the same task again starts its rows afresh in place: the table does not grow, same seed, same rows.
    again = adapt_to_task(model, task, steps=2, num_aug=1, seed=1)
    assert again.puzzle_ids == [5, 6] and model.config.num_puzzle_identifiers == 7
    assert torch.equal(model.puzzle_embedding.weight[again.puzzle_ids], rows[2])


def test_saved_and_reloaded_solves_the_same_way(task, tmp_path):
    model = tiny_model()
    solver = pipeline("puzzle-solving", model=model)
    adapted = solver(task, adapt_steps=2)
    direct = solve_arc_task(model, task, versions=model.adapt_to_task(task, steps=2, num_aug=7).versions)
    assert [np.asarray(a).tolist() for a in adapted["attempts"][0]] == [a.tolist() for a in direct[0].attempts[:2]]

    model.save_pretrained(tmp_path / "adapted")
    reloaded = load_pretrained_model(tmp_path / "adapted")
    assert reloaded.config.adapted_tasks == model.config.adapted_tasks
    assert torch.equal(reloaded.puzzle_embedding.weight, model.puzzle_embedding.weight)
    # The pipeline finds the task's rows by its key (test outputs are not part of it), before and after reloading.
    unanswered = {"train": task["train"], "test": [{"input": task["test"][0]["input"]}]}
    assert arc_task_key(parse_arc_task(unanswered)) == arc_task_key(parse_arc_task(task))
    first, second = pipeline("puzzle-solving", model=model)(unanswered), pipeline("puzzle-solving", model=reloaded)(
        json.dumps(unanswered))
    assert first["attempts"] == second["attempts"] and first["q_halt_confidence"] == second["q_halt_confidence"]
    assert first["attempts"] == [[np.asarray(a).tolist() for a in direct[0].attempts[:2]]]
    # A task that was not adapted to is still solved as before: 8 dihedral versions with the blank id.
    other = make_task(("recolor",), np.random.default_rng(1), num_demos=2)[0]
    blank = solve_arc_task(reloaded, other)
    answer = pipeline("puzzle-solving", model=reloaded)(other)
    assert answer["attempts"] == [[a.tolist() for a in blank[0].attempts[:2]]]
    assert answer["q_halt_confidence"] == [pytest.approx(torch.sigmoid(torch.tensor(blank[0].q_halt_logit)).item())]


def test_hrm_solve_adapts_and_saves(task, tmp_path):
    from modeling_hrm.solve import main

    tiny_model().save_pretrained(tmp_path / "model")
    task_file = tmp_path / "task.json"
    task_file.write_text(json.dumps(task))
    assert main(["--model", str(tmp_path / "model"), "--arc-task", str(task_file), "--adapt-steps", "2",
                 "--save-adapted", str(tmp_path / "adapted"), "--json"]) == 0
    reloaded = load_pretrained_model(tmp_path / "adapted")
    assert list(reloaded.config.adapted_tasks) == [arc_task_key(parse_arc_task(task))]
    assert reloaded.config.num_puzzle_identifiers == 5 + len(next(iter(reloaded.config.adapted_tasks.values()))
                                                             ["versions"])


def test_small_canvas_model_adapts_and_solves(task, tmp_path):
    """A model of a `--canvas 13` build (seq_len 169): the demonstrations become 13x13 rows, translated inside that
    canvas as the builder does; the adapted model solves through the pipeline, also reloaded; a grid that does not
    fit the canvas is refused in one line before anything changes."""
    from dataset_scripts import formats as F
    from modeling_hrm.pipeline_puzzle_solving import PuzzleError

    model = tiny_model(seq_len=169)
    inputs = []
    real_forward = model.forward

    def spy(input_ids, *args, **kwargs):
        inputs.append(input_ids.clone())
        return real_forward(input_ids, *args, **kwargs)

    model.forward = spy
    result = adapt_to_task(model, task, steps=2, num_aug=1)
    model.forward = real_forward
    rows = torch.cat(inputs[:2]).numpy()
    assert rows.shape == (2 * result.num_rows, 169)
    corners = [F.arc_grid_location(r)[:2] for r in rows]
    assert (0, 0) in corners and any(c != (0, 0) for c in corners)  # one pair per version stays at the corner
    demo_inputs = {np.asarray(p["input"]).tobytes() for p in task["train"]}
    for r in rows:  # each row is a demonstration input in one of the versions, moved inside the 13x13 canvas
        r0, c0, h, w = F.arc_grid_location(r)
        grid = F.decode_arc_grid(np.roll(r.reshape(13, 13), (-r0, -c0), axis=(0, 1)))
        assert any(F.invert_arc_version(grid, k, perm).astype(np.int64).tobytes() in demo_inputs
                   for k, perm, _ in result.versions)

    answer = pipeline("puzzle-solving", model=model)(task)  # the adapted rows are found by the task's key
    direct = solve_arc_task(model, task, versions=result.versions)
    assert answer["attempts"] == [[a.tolist() for a in direct[0].attempts[:2]]]
    model.save_pretrained(tmp_path / "small")
    reloaded = load_pretrained_model(tmp_path / "small")
    assert pipeline("puzzle-solving", model=reloaded)(task)["attempts"] == answer["attempts"]

    big = {"train": task["train"] + [{"input": [[1] * 13] * 3, "output": [[2] * 13] * 3}], "test": task["test"]}
    before = model.puzzle_embedding.weight.clone()
    with pytest.raises(PuzzleError, match=r"an ARC grid of 3x13 needs a canvas of at least 14x14 \(seq_len 196\), "
                                          r"but this model's canvas is 13x13 \(seq_len 169\)"):
        adapt_to_task(model, big, steps=1)
    assert torch.equal(model.puzzle_embedding.weight, before)
