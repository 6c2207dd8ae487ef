"""Depth curriculum: `training.depth_curriculum` (training/curriculum.py) grows the recursion depth during
training through `model.recursion_depth`; the schedule depends on the step alone, so resuming stays bitwise."""

import json
import shutil

import pytest
import torch

from test_compile import batch, tiny
from training.curriculum import DepthStage, depth_at_step, parse_depth_curriculum
from training_fixtures import run_train, tiny_args, write_tiny_sudoku


def test_stages_parse_and_give_the_depth_of_each_step():
    stages = parse_depth_curriculum("1x2:0.25, 2x4:500")
    assert stages == [DepthStage(1, 2, 0.25), DepthStage(2, 4, 500)]
    # 1000 steps: 0..249 at 1x2, 250..499 at 2x4, then the model's own depth (None)
    steps = (0, 249, 250, 499, 500, 999)
    assert [depth_at_step(stages, s, 1000) for s in steps] == [(1, 2), (1, 2), (2, 4), (2, 4), None, None]


@pytest.mark.parametrize("kind", ["hrm", "trm"])
def test_recursion_depth_runs_the_shallow_model_then_restores_the_config(kind):
    deep, shallow = tiny(kind, H_cycles=3, L_cycles=3).train(), tiny(kind, H_cycles=1, L_cycles=2).train()
    assert all(torch.equal(a, b) for a, b in zip(deep.state_dict().values(), shallow.state_dict().values()))
    inputs, labels, ids = batch()

    def segment(model):
        torch.manual_seed(7)  # the exploration draws
        out = model(inputs, ids, labels=labels)
        return [t for t in (out.loss, out.logits, out.q_halt_logits, out.target_q_continue) if t is not None]

    with deep.recursion_depth(1, 2):
        assert (deep.config.H_cycles, deep.config.L_cycles) == (1, 2)
        inside = segment(deep)
    assert all(torch.equal(a, b) for a, b in zip(inside, segment(shallow)))
    assert (deep.config.H_cycles, deep.config.L_cycles) == (3, 3)
    assert not torch.equal(segment(deep)[1], inside[1])  # the model's own depth computes something else
    with pytest.raises(RuntimeError), deep.recursion_depth(2, 1):
        raise RuntimeError("interrupted")
    assert (deep.config.H_cycles, deep.config.L_cycles) == (3, 3)  # restored after an error too
    with pytest.raises(ValueError, match="L_cycles must be an integer >= 1"), deep.recursion_depth(1, 0):
        pass


def test_training_follows_the_schedule_and_resumes_bitwise(tmp_path):
    dataset = write_tiny_sudoku(tmp_path / "data")
    common = ("--max_steps", "12", "--save_steps", "6", "--save_total_limit", "0",
              "--depth_curriculum", "1x1:4,1x2:0.67")  # the tiny model is 2x2: 1x1 for 4 steps, 1x2 to step 8
    straight, _ = run_train(tiny_args(dataset, tmp_path / "straight", *common))
    records = [json.loads(line) for line in open(tmp_path / "straight" / "metrics.jsonl")]
    depths = [(r["train/H_cycles"], r["train/L_cycles"]) for r in records if "train/loss" in r]
    assert depths == [(1, 1)] * 4 + [(1, 2)] * 4 + [(2, 2)] * 4
    saved = json.loads((tmp_path / "straight" / "model" / "config.json").read_text())
    assert (saved["H_cycles"], saved["L_cycles"]) == (2, 2)  # the saved model keeps its own depth

    # Resumed in the middle of the 1x2 stage: the same weights, bit for bit.
    shutil.copytree(tmp_path / "straight" / "checkpoint-6", tmp_path / "resumed" / "checkpoint-6")
    resumed, result = run_train(tiny_args(dataset, tmp_path / "resumed", *common, "--resume_from_checkpoint", "latest"))
    assert "resumed from" in result.stderr
    assert resumed["weights_sha256"] == straight["weights_sha256"]
    # ... and the curriculum did change the run.
    plain, _ = run_train(tiny_args(dataset, tmp_path / "plain", "--max_steps", "12", "--save_steps", "12"))
    assert plain["weights_sha256"] != straight["weights_sha256"]
