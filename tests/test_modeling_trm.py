"""TRM: one network for both states, full gradient through the last cycle, mlp_t, halt-only ACT; and the
halt-only ACT flag of HRM."""

import subprocess
import sys
import textwrap

import pytest
import torch
from transformers import AutoConfig, AutoModel

import modeling_hrm
from modeling_hrm import HRMConfig, HRMForPuzzleSolving, TRMConfig, TRMForPuzzleSolving


def tiny_trm(seed=0, **overrides) -> TRMForPuzzleSolving:
    fields = dict(vocab_size=11, seq_len=16, num_puzzle_identifiers=3, puzzle_emb_ndim=32, puzzle_emb_len=2,
                  hidden_size=32, num_heads=4, expansion=2.0, H_cycles=2, L_cycles=3, L_layers=2, halt_max_steps=4)
    fields.update(overrides)
    torch.manual_seed(seed)
    return TRMForPuzzleSolving(TRMConfig(**fields))


def batch(config, size=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randint(1, config.vocab_size, (size, config.seq_len), generator=g)
    labels = torch.randint(2, config.vocab_size, (size, config.seq_len), generator=g)
    ids = torch.randint(0, config.num_puzzle_identifiers, (size,), generator=g)
    return inputs, labels, ids


def count_calls(module):
    calls = [0, 0]  # [without grad, with grad]
    module.register_forward_hook(lambda m, a, o: calls.__setitem__(int(torch.is_grad_enabled()),
                                                                   calls[int(torch.is_grad_enabled())] + 1))
    return calls


# ---------------------------------------------------------------- sizes and config
def test_parameter_counts_match_the_papers_7M_and_5M():
    attention = TRMForPuzzleSolving(TRMConfig(vocab_size=11, seq_len=81))
    mlp = TRMForPuzzleSolving(TRMConfig(vocab_size=11, seq_len=81, mlp_t=True, pos_encodings="none"))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    # 2 blocks of 3,407,872 + token embedding and lm head (11 × 512 each) + Q head (2 × 512 + 2)
    assert count(attention) == 2 * 3_407_872 + 2 * 11 * 512 + 1026 == 6_828_034
    # mlp_t over 81 + 16 positions: SwiGLU width round_up(round(4·97·2/3), 256) = 512
    assert count(mlp) == 2 * (2 * 512 * 97 + 97 * 512 + 3 * 512 * 1536) + 2 * 11 * 512 + 1026 == 5_028_866
    assert attention.config.puzzle_emb_len == 16 and attention.config.total_seq_len == 97
    assert not hasattr(attention, "H_level") and not hasattr(mlp.L_level.layers[0], "self_attn")


@pytest.mark.parametrize("fields, message", [
    (dict(mlp_t=True), "mlp_t replaces attention"),
    (dict(puzzle_emb_len=1, hidden_size=256, num_heads=4), "cannot hold a puzzle embedding"),
    (dict(pos_encodings="alibi"), "pos_encodings"),
    (dict(H_cycles=0), "H_cycles"),
    (dict(q_loss_weight=float("nan")), "q_loss_weight"),
    (dict(mlp_t="yes", pos_encodings="none"), "mlp_t"),
])
def test_bad_configs_name_the_field(fields, message):
    with pytest.raises(ValueError, match=message):
        TRMConfig(**fields)


def test_puzzle_emb_len_zero_means_hrms_minimum_and_no_table_means_no_positions():
    assert TRMConfig(puzzle_emb_len=0, hidden_size=256, num_heads=4).puzzle_emb_len == 2
    assert TRMConfig(puzzle_emb_ndim=0).puzzle_emb_len == 0


# ---------------------------------------------------------------- recursion and gradient
@pytest.mark.parametrize("cycles", [(1, 1), (2, 3), (3, 6)])
def test_full_gradient_through_the_last_cycle_only(cycles):
    N, T = cycles
    model = tiny_trm(H_cycles=N, L_cycles=T, halt_max_steps=1)
    calls = count_calls(model.L_level)
    model.train()
    inputs, labels, ids = batch(model.config)
    model(inputs, ids, labels).loss.backward()
    # (N - 1) cycles of T + 1 applications without gradient, then T + 1 with gradient; no second forward.
    assert calls == [(N - 1) * (T + 1), T + 1]
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert set(missing) <= {"q_head.weight"}
    assert model.puzzle_embedding.local_weight.grad is not None


def test_activation_memory_grows_with_T_not_with_N():
    def saved_bytes(N, T):
        model = tiny_trm(H_cycles=N, L_cycles=T)
        model.train()
        inputs, labels, ids = batch(model.config)
        total = 0

        def pack(tensor):
            nonlocal total
            total += tensor.numel() * tensor.element_size()
            return tensor

        torch.manual_seed(0)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = model(inputs, ids, labels).loss
        loss.backward()
        return total

    assert saved_bytes(1, 2) == saved_bytes(4, 2) < saved_bytes(1, 4)


def test_mlp_t_mixes_positions_and_normalises_over_them():
    model = tiny_trm(mlp_t=True, pos_encodings="none")
    block = model.L_level.layers[0]
    assert block.mlp_t.gate_up_proj.weight.shape == (2 * 256, 18) and block.mlp_t.down_proj.weight.shape == (18, 256)
    h = torch.randn(2, 18, 32)
    with torch.no_grad():
        mixed = h.transpose(1, 2) + block.mlp_t(h.transpose(1, 2))
        expected = mixed * torch.rsqrt(mixed.square().mean(-1, keepdim=True) + 1e-5)  # over positions
        expected = expected.transpose(1, 2)
        expected = expected + block.mlp(expected)
        expected = expected * torch.rsqrt(expected.square().mean(-1, keepdim=True) + 1e-5)
        torch.testing.assert_close(block(h, None), expected)
    # a change at one position reaches every other position through the sequence mixer
    h2 = h.clone()
    h2[:, 5] += 1.0
    with torch.no_grad():
        assert (block(h2, None) - block(h, None)).abs().sum(-1).min() > 0


# ---------------------------------------------------------------- halt-only ACT
@pytest.mark.parametrize("model_type", ["trm", "hrm"])
def test_halt_only_act_halts_on_q_halt_and_runs_no_second_segment(model_type):
    if model_type == "trm":
        model = tiny_trm(halt_max_steps=4, halt_exploration_prob=0.0)
        level = model.L_level
    else:
        torch.manual_seed(0)
        model = HRMForPuzzleSolving(HRMConfig(vocab_size=11, seq_len=16, num_puzzle_identifiers=3, puzzle_emb_ndim=32,
                                              hidden_size=32, num_heads=4, expansion=2.0, H_layers=1, L_layers=1,
                                              halt_max_steps=4, halt_exploration_prob=0.0, no_ACT_continue=True))
        level = model.H_level
    with torch.no_grad():  # q_halt = ±3 by row, q_continue always higher: only halt-only ACT can halt
        model.q_head.weight.zero_()
        model.q_head.bias.copy_(torch.tensor([0.0, 10.0]))
    model.train()
    inputs, labels, ids = batch(model.config)
    calls = count_calls(level)
    out = model(inputs, ids, labels)
    assert out.target_q_continue is None and out.q_continue_loss is None
    one_segment = sum(calls)
    assert not out.carry.halted.any()  # q_halt = 0 is not > 0
    with torch.no_grad():
        model.q_head.bias.copy_(torch.tensor([3.0, 10.0]))
    out = model(inputs, ids, labels, carry=out.carry)
    assert out.carry.halted.all() and sum(calls) == 2 * one_segment
    # the loss is lm + 0.5 · q_halt only
    expected = out.lm_loss + 0.5 * out.q_halt_loss
    torch.testing.assert_close(out.loss, expected)


def test_q_learning_act_is_still_the_hrm_default():
    config = HRMConfig(vocab_size=11, seq_len=16, hidden_size=32, num_heads=4, puzzle_emb_ndim=32, H_layers=1,
                       L_layers=1, halt_max_steps=4)
    assert config.no_ACT_continue is False and TRMConfig().no_ACT_continue is True
    model = HRMForPuzzleSolving(config).train()
    inputs, labels, _ = batch(config)
    out = model(inputs, labels=labels)
    assert out.target_q_continue is not None and out.q_continue_loss is not None


def test_solve_early_exit_uses_the_halt_only_rule():
    model = tiny_trm(halt_max_steps=6)
    with torch.no_grad():
        model.q_head.weight.normal_(0, 2.0)
        model.q_head.bias.zero_()
    model.eval()
    inputs, _, ids = batch(model.config, size=16)
    early = model.solve(inputs, ids, early_exit=True)
    full = model.solve(inputs, ids, early_exit=False, return_trace=True)
    assert len(set(early.steps.tolist())) > 1
    for row, step in enumerate(early.steps.tolist()):
        assert torch.equal(early.predictions[row], full.trace[step - 1, row])
        if step < 6:
            assert early.q_halt_logits[row] > 0
        else:
            assert full.q_halt_logits is not None


def test_solve_matches_repeated_forward_calls():
    model = tiny_trm(halt_max_steps=3).eval()
    inputs, _, ids = batch(model.config)
    res = model.solve(inputs, ids, early_exit=False, return_trace=True)
    carry = None
    for step in range(3):
        out = model(inputs, ids, carry=carry)
        carry = out.carry
        assert torch.equal(out.logits.argmax(-1), res.trace[step])


# ---------------------------------------------------------------- save / load
@pytest.mark.parametrize("variant", [dict(), dict(mlp_t=True, pos_encodings="none"), dict(pos_encodings="learned")])
def test_save_and_auto_model_round_trip(tmp_path, variant):
    model = tiny_trm(**variant)
    with torch.no_grad():
        model.puzzle_embedding.weight.normal_()
    model.save_pretrained(tmp_path)
    assert AutoConfig.from_pretrained(tmp_path).model_type == "trm"
    loaded = AutoModel.from_pretrained(tmp_path, dtype=torch.float32)
    assert isinstance(loaded, TRMForPuzzleSolving) and loaded.config.puzzle_emb_len == 2
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name
    inputs, labels, ids = batch(model.config)
    a, b = model(inputs, ids, labels), loaded(inputs, ids, labels)
    assert torch.equal(a.logits, b.logits) and torch.equal(a.q_halt_logits, b.q_halt_logits)


def test_remote_code_load_without_the_package(tmp_path):
    model = tiny_trm(mlp_t=True, pos_encodings="none")
    model.save_pretrained(tmp_path / "ckpt")
    copied = {p.name for p in (tmp_path / "ckpt").glob("*.py")}
    assert {"modeling_trm.py", "modeling_recursive.py", "configuration_trm.py", "configuration_hrm.py"} <= copied
    inputs, _, ids = batch(model.config)
    torch.save({"inputs": inputs, "ids": ids, "logits": model(inputs, ids).logits}, tmp_path / "io.pt")
    script = textwrap.dedent(f"""
        import sys
        sys.modules["modeling_hrm"] = None  # the package must not be importable here
        import torch
        from transformers import AutoModel
        model = AutoModel.from_pretrained({str(tmp_path / 'ckpt')!r}, trust_remote_code=True, dtype=torch.float32)
        io = torch.load({str(tmp_path / 'io.pt')!r})
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        assert type(model).__name__ == "TRMForPuzzleSolving"
        torch.set_num_threads(1)
        assert torch.equal(model(io["inputs"], io["ids"]).logits, io["logits"])
        print("REMOTE_OK")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                            timeout=120)
    assert "REMOTE_OK" in result.stdout, result.stderr[-3000:]


def test_package_registers_both_model_types():
    assert AutoConfig.for_model("trm").__class__ is modeling_hrm.TRMConfig
    assert modeling_hrm.MODEL_CLASSES["trm"] == (TRMConfig, TRMForPuzzleSolving)
    assert AutoConfig.for_model("hrm").__class__ is modeling_hrm.HRMConfig
