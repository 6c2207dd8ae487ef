"""Compiled segment, bf16 forward, early exit bookkeeping and candidate search (modeling_recursive.py).

Compilation is slow on a loaded 2-core machine (tens of seconds to minutes the first time, seconds with
Inductor's on-disk cache), so this file compiles twice in all: one HRM training segment and its solve step (`-k 'not compiled'` skips
that test).
"""

import pytest
import torch

from modeling_hrm import HRMConfig, HRMForPuzzleSolving, TRMConfig, TRMForPuzzleSolving
from modeling_hrm.modeling_recursive import IGNORE_LABEL_ID, apply_rotary, rotary_cos_sin, stablemax_cross_entropy


def tiny(model="hrm", **overrides):
    torch.manual_seed(0)
    fields = dict(vocab_size=11, seq_len=16, hidden_size=32, num_heads=4, L_layers=1, H_cycles=2, L_cycles=2,
                  num_puzzle_identifiers=3, puzzle_emb_ndim=32, halt_max_steps=4)
    if model == "hrm":
        return HRMForPuzzleSolving(HRMConfig(H_layers=1, **{**fields, **overrides}))
    return TRMForPuzzleSolving(TRMConfig(**{**fields, "puzzle_emb_len": 2, **overrides}))


def batch(rows=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randint(1, 11, (rows, 16), generator=g)
    labels = torch.randint(2, 11, (rows, 16), generator=g)
    labels[:, :3] = IGNORE_LABEL_ID
    return inputs, labels, torch.randint(0, 3, (rows,), generator=g)


def run_segments(model, inputs, labels, ids, segments=2):
    """Loss, logits, Q, carry, parameter and puzzle-row gradients of `segments` training segments."""
    torch.manual_seed(7)  # the exploration draws
    carry, results = None, []
    for _ in range(segments):
        out = model(inputs, ids, labels=labels, carry=carry)
        out.loss.backward()
        results.append({"loss": out.loss.detach(), "logits": out.logits.detach(), "q_halt": out.q_halt_logits.detach(),
                        "target": out.target_q_continue, "z_H": out.carry.z_H, "halted": out.carry.halted,
                        "steps": out.carry.steps, "puzzle_grad": model.puzzle_embedding.local_weight.grad.clone(),
                        **{f"grad.{n}": p.grad.clone() for n, p in model.named_parameters()}})
        model.zero_grad(set_to_none=True)
        carry = out.carry
    return results


def test_compiled_segment_and_solve_match_eager():
    # One compiled graph for the whole segment (fullgraph=True raises on any graph break), backward included.
    model = tiny(halt_exploration_prob=1.0).train()
    inputs, labels, ids = batch()
    eager = run_segments(model, inputs, labels, ids)
    model.compile_segment()
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    compiled = run_segments(model, inputs, labels, ids)
    # One graph for both segments: the first call's carry (built from the inputs) does not alias them, which would
    # specialise the graph on that aliasing and compile again at the second call.
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] - graphs == 1
    # Tolerance: float32 rounding of reordered/fused reductions, through 2 segments of 6 block applications.
    for e, c in zip(eager, compiled):
        for key in e:
            if e[key] is None:
                assert c[key] is None, key
            elif e[key].dtype in (torch.bool, torch.long):
                assert torch.equal(e[key], c[key]), key  # halting and step counts: same decisions
            else:
                torch.testing.assert_close(c[key], e[key], rtol=1e-4, atol=1e-5, msg=key)

    model.eval()
    plain = type(model).solve(model, inputs, ids, max_steps=3, early_exit=False)
    model._compiled_solve_step = None
    reference = model.solve(inputs, ids, max_steps=3, early_exit=False)
    model.compile_segment()  # compiled again: the cached graph is reused
    assert torch.equal(plain.predictions, reference.predictions)
    torch.testing.assert_close(plain.q_halt_logits, reference.q_halt_logits, rtol=1e-4, atol=1e-5)


def test_rotary_is_rotate_half_bitwise():
    # apply_rotary folds rotate-half's sign into the sin table and swaps halves with a flip (one fusable
    # expression); it must equal x·cos + cat(−x2, x1)·sin, bit for bit, in float32 and bf16.
    head_dim = 8
    g = torch.Generator().manual_seed(0)
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    angles = torch.outer(torch.arange(5, dtype=torch.float32), inv_freq).repeat(1, 2)
    cos, sin = rotary_cos_sin(5, head_dim, 10000.0, "cpu")
    assert torch.equal(cos, angles.cos())
    for dtype in (torch.float32, torch.bfloat16):
        x = torch.randn(3, 2, 5, head_dim, generator=g).to(dtype)
        x1, x2 = x.float().chunk(2, dim=-1)
        expected = (x.float() * angles.cos() + torch.cat((-x2, x1), dim=-1) * angles.sin()).to(dtype)
        assert torch.equal(apply_rotary(x, cos, sin), expected)


def test_stablemax_picks_only_the_label_entry_bitwise():
    # The loss normalises only the label's entry; it must equal normalising the whole row, bit for bit.
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, 11, generator=g) * 4
    labels = torch.randint(0, 11, (3, 5), generator=g)
    labels[0, 1] = IGNORE_LABEL_ID
    s = torch.where(logits.double() < 0, 1 / (1 - logits.double().clamp(max=0)), logits.double() + 1)
    full = -torch.log(s / s.sum(-1, keepdim=True)).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    expected = torch.where(labels != IGNORE_LABEL_ID, full, 0)
    assert torch.equal(stablemax_cross_entropy(logits, labels), expected)


# ---------------------------------------------------------------- bf16 forward (the original's precision)
@pytest.mark.parametrize("kind", ["hrm", "trm"])
def test_bf16_forward_keeps_carry_in_bf16_and_fp32_master_weights(kind):
    model = tiny(kind).train()
    inputs, labels, ids = batch()
    torch.manual_seed(7)
    fp32 = model(inputs, ids, labels=labels)
    model.config.forward_dtype = "bfloat16"
    torch.manual_seed(7)
    out = model(inputs, ids, labels=labels)
    out.loss.backward()
    assert out.carry.z_H.dtype == out.carry.z_L.dtype == torch.bfloat16
    assert out.logits.dtype == torch.bfloat16 and out.q_halt_logits.dtype == torch.float32
    assert all(p.dtype == torch.float32 and p.grad.dtype == torch.float32 for p in model.parameters())
    assert model.puzzle_embedding.local_weight.grad.dtype == torch.float32
    # Bound: bf16 keeps 8 mantissa bits (relative rounding 2^-9 ≈ 0.002 per op); through 6 post-norm blocks the
    # logits (|logit| up to ~4 here) move by a few hundredths, the loss by well under 1%.
    assert (out.logits.float() - fp32.logits).abs().max() < 0.1
    assert abs(out.loss.item() - fp32.loss.item()) < 0.01 * fp32.loss.item()
    out2 = model(inputs, ids, labels=labels, carry=out.carry)
    assert out2.carry.z_H.dtype == torch.bfloat16


def test_bf16_solve_runs_in_bf16_and_agrees_with_fp32():
    model = tiny(halt_max_steps=2).eval()
    inputs, _, ids = batch(rows=8)
    fp32 = model.solve(inputs, ids)
    model.config.forward_dtype = "bfloat16"
    assert model.input_embeddings(inputs, ids).dtype == torch.bfloat16
    bf16 = model.solve(inputs, ids)
    assert (bf16.predictions == fp32.predictions).float().mean() > 0.9


def test_forward_dtype_is_validated():
    with pytest.raises(ValueError, match="forward_dtype"):
        HRMConfig(forward_dtype="float16")


# ---------------------------------------------------------------- early exit with masking / compaction
@pytest.mark.parametrize("compact_at", [0.0, 0.75, 1.0])
def test_early_exit_results_do_not_depend_on_when_rows_leave_the_batch(compact_at):
    # compact_at 0: rows never leave the batch (masked only); 1.0: the batch shrinks at every halt.
    model = tiny(halt_max_steps=6).eval()
    with torch.no_grad():
        model.q_head.weight.normal_(0, 0.5)
        model.q_head.bias.zero_()
    inputs, _, ids = batch(rows=16)
    full = model.solve(inputs, ids, early_exit=False, return_trace=True)
    model.COMPACT_AT = compact_at
    early = model.solve(inputs, ids, early_exit=True, return_trace=True)
    assert 1 < early.steps.float().mean() < 6  # some rows halt early, some run on
    for row, step in enumerate(early.steps.tolist()):
        assert torch.equal(early.predictions[row], full.trace[step - 1, row])
        assert torch.equal(early.trace[-1, row], early.predictions[row])


# ---------------------------------------------------------------- candidate search
def test_one_candidate_is_plain_solve():
    model = tiny().eval()
    inputs, _, ids = batch(rows=6)
    plain = model.solve(inputs, ids, max_steps=3)
    one = model.solve(inputs, ids, max_steps=3, num_candidates=1, candidate_noise=0.5, seed=3)
    for key in ("predictions", "steps", "q_halt_logits", "q_continue_logits"):
        assert torch.equal(plain[key], one[key]), key


@pytest.mark.parametrize("kind", ["hrm", "trm"])
def test_candidates_pick_the_most_confident_q_head_and_are_deterministic(kind):
    model = tiny(kind, halt_max_steps=3).eval()
    with torch.no_grad():
        model.q_head.weight.normal_(0, 0.5)
    inputs, _, ids = batch(rows=6)
    plain = model.solve(inputs, ids)
    res = model.solve(inputs, ids, num_candidates=4, candidate_noise=1.0, seed=11)
    assert res.candidate_predictions.shape == (4, 6, 16) and res.candidate_q_halt_logits.shape == (4, 6)
    # candidate 0 is the unperturbed run (same values up to float rounding: it runs in a 4× larger batch)
    assert torch.equal(res.candidate_predictions[0], plain.predictions)
    torch.testing.assert_close(res.candidate_q_halt_logits[0], plain.q_halt_logits, rtol=1e-5, atol=1e-5)
    # noise changes the other trajectories
    assert not torch.equal(res.candidate_q_halt_logits[1], plain.q_halt_logits)
    # the returned row is the candidate with the largest q_halt
    best = res.candidate_q_halt_logits.argmax(0)
    assert torch.equal(res.chosen_candidate, best)
    rows = torch.arange(6)
    assert torch.equal(res.predictions, res.candidate_predictions[best, rows])
    assert torch.equal(res.q_halt_logits, res.candidate_q_halt_logits.max(0).values)
    assert torch.equal(res.steps, res.candidate_steps[best, rows])
    again = model.solve(inputs, ids, num_candidates=4, candidate_noise=1.0, seed=11)
    assert torch.equal(again.candidate_q_halt_logits, res.candidate_q_halt_logits)
    other = model.solve(inputs, ids, num_candidates=4, candidate_noise=1.0, seed=12)
    assert not torch.equal(other.candidate_q_halt_logits, res.candidate_q_halt_logits)


@pytest.mark.parametrize("bad", [{"num_candidates": 0}, {"num_candidates": 2.0}, {"candidate_noise": -1.0},
                                 {"candidate_noise": float("nan")}])
def test_bad_candidate_arguments_are_refused(bad):
    model = tiny().eval()
    inputs, _, ids = batch(rows=2)
    with pytest.raises(ValueError, match=next(iter(bad))):
        model.solve(inputs, ids, **bad)


def test_hrm_evaluate_candidate_curve_scores_each_pick():
    from training.hrm_evaluate import candidate_curve

    model = tiny(halt_max_steps=2).eval()
    with torch.no_grad():
        model.q_head.weight.normal_(0, 0.5)
    inputs, _, ids = batch(rows=8)
    res = model.solve(inputs, ids, num_candidates=4, candidate_noise=1.0, seed=5)
    # Labels: candidate 2's answer on rows 0-3, candidate 0's on rows 4-7 (identical candidates are allowed).
    labels = torch.cat([res.candidate_predictions[2, :4], res.candidate_predictions[0, 4:]]).numpy()
    arrays = {"inputs": inputs.numpy(), "labels": labels, "puzzle_identifiers": ids.numpy()}
    curve = candidate_curve(model, arrays, "maze", [1, 4], max_steps=2, early_exit=True, noise=1.0, seed=5,
                            batch_size=32)
    right = (res.candidate_predictions == torch.as_tensor(labels)).all(-1)  # (K, rows)
    assert curve["any"] == [right[0].float().mean().item(), right.any(0).float().mean().item()]
    assert curve["any"][1] == 1.0 and "validity" not in curve
    assert curve["q_head"][1] == pytest.approx(right[res.chosen_candidate, torch.arange(8)].float().mean().item())
    assert curve["q_head"][0] == curve["any"][0]  # K = 1: the plain run
