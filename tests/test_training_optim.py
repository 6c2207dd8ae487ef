"""Unit tests of the training building blocks: optimisers against hand-computed updates, LR schedule, data stream,
batch layout, EMA, checkpoint discovery."""

import numpy as np
import pytest
import torch

from training.optim import AdamATan2, build_optimizer, lr_at_step, sign_sgd_puzzle_embedding_step


# ---------------------------------------------------------------------------------------------------------------
# Adam-atan2
# ---------------------------------------------------------------------------------------------------------------
def reference_adam_atan2(p, grads, lr, betas, wd):
    """Spec §4, written out with numpy: p *= 1 - lr·wd; m, v as Adam; p -= lr/bc1 · atan2(m, sqrt(v/bc2))."""
    p = p.astype(np.float64).copy()
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    b1, b2 = betas
    for t, g in enumerate(grads, start=1):
        p *= 1 - lr * wd
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p -= lr / (1 - b1 ** t) * np.arctan2(m, np.sqrt(v / (1 - b2 ** t)))
    return p


def test_adam_atan2_matches_hand_computed_update():
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=(3, 4))
    grads = [rng.normal(size=(3, 4)) * s for s in (1.0, 0.01, 3.0, 0.0)]  # includes a zero gradient
    param = torch.nn.Parameter(torch.tensor(p0, dtype=torch.float64))
    opt = AdamATan2([param], lr=0.05, betas=(0.9, 0.95), weight_decay=0.1)
    for g in grads:
        param.grad = torch.tensor(g)
        opt.step()
    expected = reference_adam_atan2(p0, grads, 0.05, (0.9, 0.95), 0.1)
    np.testing.assert_allclose(param.detach().numpy(), expected, rtol=0, atol=1e-12)


def test_adam_atan2_first_step_by_hand():
    # t = 1: m = 0.1 g, v = 0.05 g², bc1 = 0.1, bc2 = 0.05 → step = lr · 10 · atan2(0.1 g, |g|) per element.
    param = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64))
    g = torch.tensor([0.3, -4.0, 0.0], dtype=torch.float64)
    param.grad = g.clone()
    AdamATan2([param], lr=0.01, betas=(0.9, 0.95), weight_decay=1.0).step()
    decayed = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64) * (1 - 0.01 * 1.0)
    expected = decayed - 0.01 * 10 * torch.atan2(0.1 * g, g.abs())
    torch.testing.assert_close(param.detach(), expected, rtol=0, atol=1e-15)


def test_adam_atan2_pytorch_package_differs_from_spec():
    """Why training/optim.py has its own AdamATan2: the package puts 1/bc1 inside atan2 (and scales by a=1.27)."""
    from adam_atan2_pytorch import AdamAtan2

    p0 = torch.tensor([0.5, -0.3, 1.2], dtype=torch.float64)
    g = torch.tensor([0.2, -0.05, 1.0], dtype=torch.float64)
    ours = torch.nn.Parameter(p0.clone())
    theirs = torch.nn.Parameter(p0.clone())
    ours.grad, theirs.grad = g.clone(), g.clone()
    AdamATan2([ours], lr=0.01, betas=(0.9, 0.95)).step()
    AdamAtan2([theirs], lr=0.01, betas=(0.9, 0.95), a=1.0, b=1.0).step()  # its closest setting to the spec
    assert (ours - theirs).abs().max() > 1e-3


def test_adamw_option_and_bad_name():
    p = torch.nn.Parameter(torch.ones(2))
    assert isinstance(build_optimizer("adamw", [p], 1e-3, (0.9, 0.95), 0.1), torch.optim.AdamW)
    with pytest.raises(ValueError, match="optimizer"):
        build_optimizer("sgd", [p], 1e-3, (0.9, 0.95), 0.1)
    with pytest.raises(ValueError, match="betas"):
        AdamATan2([p], betas=(0.9, 1.5))


# ---------------------------------------------------------------------------------------------------------------
# Sign-SGD on the puzzle-embedding table
# ---------------------------------------------------------------------------------------------------------------
def test_sign_sgd_matches_hand_computed_update():
    weight = torch.tensor([[1.0, 1.0], [2.0, -2.0], [3.0, 3.0], [4.0, 4.0]])
    ids = torch.tensor([1, 3, 1, 1])
    grads = torch.tensor([[0.5, -1.0], [-2.0, 0.0], [-1.0, 0.25], [0.25, 0.5]])
    updated = sign_sgd_puzzle_embedding_step(weight, ids, grads, lr=0.1, weight_decay=0.5)
    # id 1: Σg = (-0.25, -0.25) → sign (-1, -1); id 3: Σg = (-2, 0) → sign (-1, 0); decay factor 1 - 0.05 = 0.95.
    expected = torch.tensor([[1.0, 1.0], [2.0 * 0.95 + 0.1, -2.0 * 0.95 + 0.1], [3.0, 3.0],
                             [4.0 * 0.95 + 0.1, 4.0 * 0.95]])
    torch.testing.assert_close(weight, expected, rtol=0, atol=1e-6)
    assert updated.tolist() == [1, 3]


def test_sign_sgd_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="puzzle-embedding"):
        sign_sgd_puzzle_embedding_step(torch.zeros(4, 2), torch.tensor([0, 1]), torch.zeros(3, 2), 0.1, 0.0)


# ---------------------------------------------------------------------------------------------------------------
# Learning-rate schedule
# ---------------------------------------------------------------------------------------------------------------
def test_sign_sgd_skips_non_finite_gradients():
    weight = torch.randn(4, 3)
    before = weight.clone()
    grads = torch.tensor([[1.0, float("inf"), 0.0], [float("nan"), 1.0, 1.0]])
    sign_sgd_puzzle_embedding_step(weight, torch.tensor([1, 2]), grads, lr=0.1, weight_decay=0.1)
    assert torch.equal(weight, before)


def test_fp16_overflow_never_writes_nan_into_the_puzzle_table():
    """An overflowed (scaled) loss gives inf/NaN puzzle-embedding gradients: the trainer's update skips with the
    scaler's skipped step, and skips on its own if the scaler did not flag it; finite gradients do update."""
    from modeling_hrm import HRMConfig, HRMForPuzzleSolving
    from training.train import update_puzzle_table

    torch.manual_seed(0)
    config = HRMConfig(vocab_size=6, seq_len=16, num_puzzle_identifiers=4, puzzle_emb_ndim=16, hidden_size=16,
                       num_heads=2, H_layers=1, L_layers=1, halt_max_steps=2)
    model = HRMForPuzzleSolving(config).train()
    x = torch.randint(1, 6, (3, 16))
    out = model(x, puzzle_identifiers=torch.tensor([1, 2, 3]), labels=x)
    (out.loss * float("inf")).backward()  # what an overflowing fp16 loss scale produces
    table = model.puzzle_embedding
    ids, grads = table.local_ids, table.local_weight.grad
    assert not torch.isfinite(grads).all()
    with torch.no_grad():
        table.weight.normal_()
    before = table.weight.clone()
    update_puzzle_table(table.weight, [ids], [grads], 0.1, 0.1, step_was_skipped=True)
    assert torch.equal(table.weight, before)
    update_puzzle_table(table.weight, [ids], [grads], 0.1, 0.1, step_was_skipped=False)
    assert torch.equal(table.weight, before) and not table.weight.isnan().any()
    update_puzzle_table(table.weight, [ids], [torch.ones_like(grads)], 0.1, 0.1, step_was_skipped=False)
    assert torch.equal(table.weight[0], before[0])
    torch.testing.assert_close(table.weight[1:], before[1:] * (1 - 0.1 * 0.1) - 0.1)


def test_lr_schedule_warmup_then_cosine_to_min_ratio():
    assert lr_at_step(0, 1.0, 10, 110, 0.1) == 0.0
    assert lr_at_step(5, 1.0, 10, 110, 0.1) == pytest.approx(0.5)
    assert lr_at_step(10, 1.0, 10, 110, 0.1) == pytest.approx(1.0)
    assert lr_at_step(60, 1.0, 10, 110, 0.1) == pytest.approx(0.1 + 0.9 * 0.5)  # halfway through the cosine
    assert lr_at_step(110, 1.0, 10, 110, 0.1) == pytest.approx(0.1)
    assert lr_at_step(500, 1.0, 10, 110, 0.1) == pytest.approx(0.1)
    assert lr_at_step(50, 2.0, 10, 110, 1.0) == pytest.approx(2.0)  # ratio 1 = constant (the original's default)
    assert lr_at_step(1, 2.0, 0, 110, 1.0) == pytest.approx(2.0)


# ---------------------------------------------------------------------------------------------------------------
# Data stream
# ---------------------------------------------------------------------------------------------------------------
def test_batch_stream_rows_is_a_seeded_permutation_per_epoch():
    from training.train import BatchStream

    stream = BatchStream(None, num_rows=10, global_batch_size=4, seed=3, sampling="rows")
    first_epoch = np.concatenate([stream.global_batch(0), stream.global_batch(1), stream.global_batch(2)[:2]])
    assert sorted(first_epoch.tolist()) == list(range(10))  # batch 2 spans the epoch boundary
    again = BatchStream(None, num_rows=10, global_batch_size=4, seed=3, sampling="rows")
    for step in (5, 0, 7):  # any order: a batch depends only on (seed, step)
        assert again.global_batch(step).tolist() == stream.global_batch(step).tolist()
    other = BatchStream(None, num_rows=10, global_batch_size=4, seed=4, sampling="rows")
    assert other.global_batch(0).tolist() != stream.global_batch(0).tolist()
    assert stream.epoch_at(5) == pytest.approx(2.0)


def test_batch_stream_groups_takes_one_row_per_group_per_epoch():
    from training.train import BatchStream

    group_id = np.repeat(np.arange(6), 3)  # 6 groups of 3 augmentations
    stream = BatchStream(group_id, num_rows=18, global_batch_size=3, seed=0, sampling="groups")
    assert stream.units == 6
    epoch0 = np.concatenate([stream.global_batch(s) for s in range(2)])
    assert sorted(group_id[epoch0].tolist()) == list(range(6))
    picks = {int(r) for s in range(60) for r in stream.global_batch(s)}
    assert len(picks) > 12  # different augmentations get picked across epochs


# ---------------------------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------------------------
def test_batch_layout_divisibility():
    from training.train import batch_layout

    t = {"gradient_accumulation_steps": 2, "per_device_train_batch_size": None, "global_batch_size": 16}
    assert batch_layout(t, 2) == (16, 4)
    with pytest.raises(ValueError, match="not divisible"):
        batch_layout({**t, "global_batch_size": 18}, 4)
    assert batch_layout({**t, "per_device_train_batch_size": 3}, 2) == (12, 3)


# ---------------------------------------------------------------------------------------------------------------
# EMA and checkpoint discovery
# ---------------------------------------------------------------------------------------------------------------
def test_ema_update_and_swap():
    from training.checkpointing import EMA

    model = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema = EMA(model, decay=0.9)
    with torch.no_grad():
        model.weight.fill_(3.0)
    ema.update(model)  # 0.9 · 1 + 0.1 · 3
    with ema.swapped_in(model):
        torch.testing.assert_close(model.weight, torch.full((1, 2), 1.2))
    torch.testing.assert_close(model.weight, torch.full((1, 2), 3.0))
    with pytest.raises(ValueError, match="ema_decay"):
        EMA(model, 1.5)


def test_latest_checkpoint_ignores_incomplete_folders(tmp_path):
    from training.checkpointing import find_latest_checkpoint, resolve_resume_path, rotate_checkpoints

    for step in (5, 10):
        (tmp_path / f"checkpoint-{step}" / "state").mkdir(parents=True)
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-15.tmp").mkdir()              # a crash mid-write
    (tmp_path / "checkpoint-20").mkdir()                  # no trainer_state.json: incomplete
    assert find_latest_checkpoint(tmp_path).name == "checkpoint-10"
    assert resolve_resume_path("latest", tmp_path / "nothing") is None
    with pytest.raises(ValueError, match="not a complete checkpoint"):
        resolve_resume_path(str(tmp_path / "checkpoint-20"), tmp_path)
    with pytest.raises(ValueError, match="a training output folder.*checkpoint-10 is the newest"):
        resolve_resume_path(str(tmp_path), tmp_path)
    rotate_checkpoints(tmp_path, keep=1)
    assert not (tmp_path / "checkpoint-5").exists() and (tmp_path / "checkpoint-10").exists()
    assert not (tmp_path / "checkpoint-15.tmp").exists()
