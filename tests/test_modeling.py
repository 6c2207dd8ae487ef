"""Core model: recurrence, one-step gradient, ACT, losses, input checks, save/load and remote code."""

import math
import subprocess
import sys
import textwrap

import pytest
import torch
from transformers import AutoConfig, AutoModel

import modeling_hrm
from modeling_hrm import HRMConfig, HRMForPuzzleSolving
from modeling_hrm.modeling_hrm import IGNORE_LABEL_ID, stablemax_cross_entropy


def tiny_config(**overrides) -> HRMConfig:
    fields = dict(vocab_size=11, seq_len=16, num_puzzle_identifiers=3, puzzle_emb_ndim=32, hidden_size=32,
                  num_heads=4, expansion=2.0, H_cycles=2, L_cycles=2, H_layers=1, L_layers=1, halt_max_steps=4)
    fields.update(overrides)
    return HRMConfig(**fields)


def tiny_model(seed=0, **overrides) -> HRMForPuzzleSolving:
    torch.manual_seed(seed)
    return HRMForPuzzleSolving(tiny_config(**overrides))


def batch(config, size=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randint(1, config.vocab_size, (size, config.seq_len), generator=g)
    labels = torch.randint(2, config.vocab_size, (size, config.seq_len), generator=g)
    ids = torch.randint(0, config.num_puzzle_identifiers, (size,), generator=g)
    return inputs, labels, ids


# ---------------------------------------------------------------- config
def test_config_defaults_match_the_original():
    cfg = HRMConfig()
    assert (cfg.hidden_size, cfg.num_heads, cfg.head_dim, cfg.intermediate_size) == (512, 8, 64, 1536)
    assert (cfg.H_cycles, cfg.L_cycles, cfg.H_layers, cfg.L_layers, cfg.puzzle_emb_len) == (2, 2, 4, 4, 1)
    assert cfg.halt_max_steps == 16 and cfg.halt_exploration_prob == 0.1 and cfg.loss_type == "stablemax"


def test_parameter_count_matches_the_original_27m():
    with torch.device("meta"):
        model = HRMForPuzzleSolving(HRMConfig(vocab_size=11, seq_len=81))
    assert sum(p.numel() for p in model.parameters()) == 27_275_266
    block = model.H_level.layers[0]
    assert sum(p.numel() for p in block.parameters()) == 3_407_872


@pytest.mark.parametrize("overrides, field", [
    (dict(hidden_size=100, num_heads=8), "num_heads"),
    (dict(H_cycles=0), "H_cycles"),
    (dict(L_cycles=0), "L_cycles"),
    (dict(pos_encodings="alibi"), "pos_encodings"),
    (dict(loss_type="focal"), "loss_type"),
    (dict(halt_max_steps=0), "halt_max_steps"),
    (dict(halt_exploration_prob=1.5), "halt_exploration_prob"),
    (dict(puzzle_emb_ndim=-1), "puzzle_emb_ndim"),
    (dict(vocab_size=0), "vocab_size"),
])
def test_bad_configs_name_the_field(overrides, field):
    with pytest.raises(ValueError, match=field):
        HRMConfig(**overrides)


def test_config_from_dataset_metadata():
    cfg = HRMConfig.from_dataset_metadata({"vocab_size": 6, "seq_len": 100, "num_puzzle_identifiers": 1},
                                          hidden_size=64, num_heads=4)
    assert (cfg.vocab_size, cfg.seq_len, cfg.hidden_size) == (6, 100, 64)
    with pytest.raises(ValueError, match="seq_len"):
        HRMConfig.from_dataset_metadata({"vocab_size": 6, "seq_len": 100, "num_puzzle_identifiers": 1}, seq_len=81)


# ---------------------------------------------------------------- init
def test_initialisation_follows_the_spec():
    model = HRMForPuzzleSolving(HRMConfig(vocab_size=11, seq_len=81, hidden_size=256, num_heads=4,
                                          H_layers=1, L_layers=1, puzzle_emb_ndim=256))
    w = model.L_level.layers[0].mlp.gate_up_proj.weight
    assert w.std().item() == pytest.approx(1 / math.sqrt(256), rel=0.03)
    assert w.abs().max().item() <= 2 / 0.8796256610342398 / math.sqrt(256) + 1e-6  # truncated at 2σ
    assert model.embed_tokens.weight.std().item() == pytest.approx(1 / 16, rel=0.1)
    assert torch.all(model.q_head.weight == 0) and torch.all(model.q_head.bias == -5)
    assert torch.all(model.puzzle_embedding.weight == 0)
    assert model.H_init.std().item() == pytest.approx(1.0, rel=0.2)
    assert not any(n.endswith(("H_init", "L_init", "puzzle_embedding.weight")) for n, _ in model.named_parameters())


# ---------------------------------------------------------------- inputs
@pytest.mark.parametrize("make, message", [
    (lambda c: (torch.randint(0, 11, (2, c.seq_len + 1)), None, None), "seq_len"),
    (lambda c: (torch.full((2, c.seq_len), 11), None, None), "vocab_size"),
    (lambda c: (torch.full((2, c.seq_len), -1), None, None), "vocab_size"),
    (lambda c: (torch.ones(2, c.seq_len), None, None), "integer"),
    (lambda c: (torch.ones(c.seq_len, dtype=torch.long), None, None), "2-D"),
    (lambda c: (torch.ones(2, c.seq_len, dtype=torch.long), torch.tensor([0, 3]), None), "num_puzzle_identifiers"),
    (lambda c: (torch.ones(2, c.seq_len, dtype=torch.long), torch.tensor([0]), None), "puzzle_identifiers"),
    (lambda c: (torch.ones(2, c.seq_len, dtype=torch.long), None, torch.full((2, c.seq_len), 12)), "labels"),
    (lambda c: (torch.ones(2, c.seq_len, dtype=torch.long), None, torch.ones(2, 3, dtype=torch.long)), "labels"),
])
def test_bad_inputs_raise_clear_value_errors(make, message):
    model = tiny_model()
    inputs, ids, labels = make(model.config)
    with pytest.raises(ValueError, match=message):
        model(inputs, puzzle_identifiers=ids, labels=labels)
    if labels is None:
        with pytest.raises(ValueError, match=message):
            model.solve(inputs, puzzle_identifiers=ids)


def test_carry_of_another_batch_size_is_rejected():
    model = tiny_model()
    inputs, labels, ids = batch(model.config, 4)
    out = model(inputs, ids, labels)
    with pytest.raises(ValueError, match="batch"):
        model(inputs[:3], ids[:3], labels[:3], carry=out.carry)


# ---------------------------------------------------------------- recurrence and gradient
def _count_level_calls(model):
    calls = {"H": [0, 0], "L": [0, 0]}  # [without grad, with grad]

    def hook(name):
        def fn(module, args, output):
            calls[name][int(torch.is_grad_enabled())] += 1
        return fn

    model.H_level.register_forward_hook(hook("H"))
    model.L_level.register_forward_hook(hook("L"))
    return calls


@pytest.mark.parametrize("cycles", [(1, 1), (2, 2), (3, 4)])
def test_one_step_gradient_runs_NxT_updates_and_only_the_last_carry_gradient(cycles):
    H, L = cycles
    model = tiny_model(H_cycles=H, L_cycles=L, halt_max_steps=1)
    calls = _count_level_calls(model)
    inputs, labels, ids = batch(model.config)
    model.train()
    model(inputs, ids, labels).loss.backward()
    # N·T low-level and N high-level updates, of which exactly one each records a graph.
    assert calls["L"] == [H * L - 1, 1]
    assert calls["H"] == [H - 1, 1]
    # ...and every parameter is still trained through those two steps.
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    # the Q head's continue row has no loss without ACT (halt_max_steps=1); everything else must learn
    assert missing == [] or set(missing) <= {"q_head.weight"}
    assert model.puzzle_embedding.local_weight.grad is not None


def _saved_activation_bytes(model, inputs, labels, ids):
    total = 0

    def pack(tensor):
        nonlocal total
        total += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model(inputs, ids, labels).loss
    loss.backward()
    return total


def test_activation_memory_does_not_grow_with_cycles():
    sizes = {}
    for cycles in [(1, 1), (2, 2), (8, 8)]:
        model = tiny_model(H_cycles=cycles[0], L_cycles=cycles[1])
        model.train()
        inputs, labels, ids = batch(model.config)
        torch.manual_seed(0)
        sizes[cycles] = _saved_activation_bytes(model, inputs, labels, ids)
    assert sizes[(1, 1)] == sizes[(2, 2)] == sizes[(8, 8)] > 0


# ---------------------------------------------------------------- losses
def test_stablemax_cross_entropy_matches_hand_computation():
    logits = torch.tensor([[[-1.0, 0.0, 2.0]], [[0.5, -3.0, 1.0]]])
    labels = torch.tensor([[2], [IGNORE_LABEL_ID]])
    s = torch.tensor([1 / 2, 1.0, 3.0])
    expected = -math.log(3.0 / s.sum().item())
    loss = stablemax_cross_entropy(logits, labels)
    assert loss.dtype == torch.float64
    assert loss[0, 0].item() == pytest.approx(expected, rel=1e-12)
    assert loss[1, 0].item() == 0.0


def test_stablemax_gradient_is_finite_at_logit_one():
    logits = torch.tensor([[[1.0, 0.0, -2.0]]], requires_grad=True)
    stablemax_cross_entropy(logits, torch.tensor([[0]])).sum().backward()
    assert torch.isfinite(logits.grad).all()


def test_loss_is_the_original_combination():
    model = tiny_model(halt_max_steps=1)
    model.eval()
    inputs, labels, ids = batch(model.config)
    labels[0, :5] = IGNORE_LABEL_ID
    out = model(inputs, ids, labels)
    token = stablemax_cross_entropy(out.logits, labels)
    valid = labels != IGNORE_LABEL_ID
    lm = token.sum(-1) / valid.sum(-1)
    correct = ((out.logits.argmax(-1) == labels) | ~valid).all(-1).float()
    q_halt = torch.nn.functional.binary_cross_entropy_with_logits(out.q_halt_logits, correct, reduction="none")
    assert out.loss.item() == pytest.approx((lm + 0.5 * q_halt).mean().item(), rel=1e-6)
    assert out.q_continue_loss is None  # no Q-continue target outside ACT training


def test_softmax_loss_option():
    model = tiny_model(loss_type="softmax", halt_max_steps=1)
    inputs, labels, ids = batch(model.config)
    out = model(inputs, ids, labels)
    ce = torch.nn.functional.cross_entropy(out.logits.transpose(1, 2), labels, reduction="none").mean(-1)
    q_halt = torch.nn.functional.binary_cross_entropy_with_logits(
        out.q_halt_logits, (out.logits.argmax(-1) == labels).all(-1).float(), reduction="none")
    assert out.loss.item() == pytest.approx((ce + 0.5 * q_halt).mean().item(), rel=1e-5)


# ---------------------------------------------------------------- ACT
def _set_q(model, q_halt, q_continue):
    with torch.no_grad():
        model.q_head.weight.zero_()
        model.q_head.bias.copy_(torch.tensor([q_halt, q_continue]))


def test_act_halts_when_q_halt_exceeds_q_continue_in_training():
    model = tiny_model(halt_exploration_prob=0.0)
    model.train()
    inputs, labels, ids = batch(model.config)
    _set_q(model, 1.0, 0.0)
    out = model(inputs, ids, labels)
    assert out.carry.halted.all() and out.carry.steps.tolist() == [1] * 4
    _set_q(model, -1.0, 0.0)
    carry = None
    for step in range(1, 5):
        carry = model(inputs, ids, labels, carry=carry).carry
        assert carry.halted.tolist() == [step == 4] * 4  # only halt_max_steps stops the rows
    # eval mode (as the original): the Q head does not halt, rows run halt_max_steps segments
    model.eval()
    _set_q(model, 1.0, 0.0)
    assert not model(inputs, ids, labels).carry.halted.any()


def test_exploration_forbids_halting_before_a_random_minimum():
    model = tiny_model(halt_exploration_prob=1.0, halt_max_steps=6)
    model.train()
    _set_q(model, 5.0, 0.0)  # the Q head always wants to halt
    inputs, labels, ids = batch(model.config, size=256)
    torch.manual_seed(0)
    carry = model(inputs, ids, labels).carry
    assert not carry.halted.any()  # minimum steps are drawn from 2..6, so nobody halts at step 1
    halted_at = torch.zeros(256, dtype=torch.long)
    for step in range(2, 7):
        carry = model(inputs, ids, labels, carry=carry).carry
        newly = carry.halted & (halted_at == 0)
        halted_at[newly] = step
        carry.halted = carry.halted & (halted_at == step)  # keep halted rows from restarting in this test
    counts = torch.bincount(halted_at, minlength=7)[2:].float()
    # As the original, a minimum is drawn afresh each segment, uniform on 2..6: a row halts at step s with
    # probability P(min <= s) = (s - 1) / 5 given it has not halted before (step 6 is forced).
    survive, expected = 1.0, []
    for s in range(2, 7):
        p = 1.0 if s == 6 else (s - 1) / 5
        expected.append(256 * survive * p)
        survive *= 1 - p
    expected = torch.tensor(expected)
    assert counts.sum() == 256
    assert ((counts - expected).abs() <= 4 * expected.sqrt() + 3).all(), (counts, expected)


def test_target_q_continue_follows_the_spec():
    model = tiny_model(halt_exploration_prob=0.0, halt_max_steps=2)
    model.train()
    _set_q(model, -1.0, 0.5)  # constant Q values: next segment gives the same
    inputs, labels, ids = batch(model.config)
    out = model(inputs, ids, labels)
    assert torch.allclose(out.target_q_continue, torch.sigmoid(torch.tensor(0.5)).expand(4))
    out = model(inputs, ids, labels, carry=out.carry)  # last step: target = sigmoid(next q_halt)
    assert torch.allclose(out.target_q_continue, torch.sigmoid(torch.tensor(-1.0)).expand(4))
    q_cont = torch.nn.functional.binary_cross_entropy_with_logits(
        out.q_continue_logits, out.target_q_continue)
    assert out.q_continue_loss.item() == pytest.approx(q_cont.item(), rel=1e-6)


def test_halted_rows_take_new_examples_and_the_others_keep_theirs():
    model = tiny_model()
    model.train()
    first, labels, ids = batch(model.config, seed=1)
    second, labels2, ids2 = batch(model.config, seed=2)
    out = model(first, ids, labels)
    carry = out.carry
    carry.halted = torch.tensor([True, False, True, False])
    out2 = model(second, ids2, labels2, carry=carry)
    expect = torch.where(carry.halted[:, None], second, first)
    assert torch.equal(out2.carry.inputs, expect)
    assert torch.equal(out2.carry.labels, torch.where(carry.halted[:, None], labels2, labels))
    assert out2.carry.steps.tolist() == [1, 2, 1, 2]


def test_carry_is_detached():
    model = tiny_model()
    model.train()
    inputs, labels, ids = batch(model.config)
    out = model(inputs, ids, labels)
    assert not out.carry.z_H.requires_grad and not out.carry.z_L.requires_grad


# ---------------------------------------------------------------- solve
def test_solve_early_exit_matches_full_length_runs_for_halted_rows():
    model = tiny_model(halt_max_steps=6)
    with torch.no_grad():  # make the Q head data dependent so rows halt at different steps
        model.q_head.weight.normal_(0, 2.0)
        model.q_head.bias.zero_()
    model.eval()
    inputs, _, ids = batch(model.config, size=16)
    early = model.solve(inputs, ids, early_exit=True)
    full = model.solve(inputs, ids, early_exit=False, return_trace=True)
    assert full.steps.tolist() == [6] * 16 and full.trace.shape == (6, 16, model.config.seq_len)
    assert len(set(early.steps.tolist())) > 1  # rows really stopped at different steps
    for row, step in enumerate(early.steps.tolist()):
        assert torch.equal(early.predictions[row], full.trace[step - 1, row])
        if step < 6:
            assert early.q_halt_logits[row] > early.q_continue_logits[row]


def test_solve_matches_repeated_forward_and_scales_beyond_training_steps():
    model = tiny_model(halt_max_steps=3)
    model.eval()
    inputs, _, ids = batch(model.config)
    carry, logits = None, []
    for _ in range(3):
        out = model(inputs, ids, carry=carry)
        carry = out.carry
        logits.append(out.logits.argmax(-1))
    res = model.solve(inputs, ids, early_exit=False, return_trace=True)
    assert all(torch.equal(a, b) for a, b in zip(logits, res.trace))
    longer = model.solve(inputs, ids, max_steps=7, early_exit=False, return_trace=True)
    assert longer.trace.shape[0] == 7 and torch.equal(longer.trace[:3], res.trace)


# ---------------------------------------------------------------- save / load
@pytest.mark.parametrize("pos", ["rope", "learned"])
def test_save_and_auto_model_round_trip(tmp_path, pos):
    model = tiny_model(pos_encodings=pos)
    with torch.no_grad():
        model.puzzle_embedding.weight.normal_()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert AutoConfig.from_pretrained(tmp_path).model_type == "hrm"
    loaded = AutoModel.from_pretrained(tmp_path, dtype=torch.float32)
    assert isinstance(loaded, HRMForPuzzleSolving)
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name
    inputs, labels, ids = batch(model.config)
    a, b = model(inputs, ids, labels), loaded(inputs, ids, labels)
    assert torch.equal(a.logits, b.logits) and torch.equal(a.q_halt_logits, b.q_halt_logits)


def test_bfloat16_dtype_is_honoured(tmp_path):
    tiny_model().save_pretrained(tmp_path)
    model = AutoModel.from_pretrained(tmp_path, dtype=torch.bfloat16)
    assert model.lm_head.weight.dtype == torch.bfloat16
    inputs, _, ids = batch(model.config)
    out = model(inputs, ids)
    assert out.logits.dtype == torch.bfloat16 and out.q_halt_logits.dtype == torch.float32


def test_remote_code_load_without_the_package(tmp_path):
    model = tiny_model()
    model.save_pretrained(tmp_path / "ckpt")
    config = (tmp_path / "ckpt" / "config.json").read_text()
    assert '"auto_map"' in config and (tmp_path / "ckpt" / "modeling_hrm.py").exists()
    inputs, _, ids = batch(model.config)
    torch.save({"inputs": inputs, "ids": ids, "logits": model(inputs, ids).logits}, tmp_path / "io.pt")
    script = textwrap.dedent(f"""
        import sys
        sys.modules["modeling_hrm"] = None  # the package must not be importable here
        try:
            import modeling_hrm
            raise SystemExit("modeling_hrm importable")
        except ImportError:
            pass
        import torch
        from transformers import AutoModel
        model = AutoModel.from_pretrained({str(tmp_path / 'ckpt')!r}, trust_remote_code=True, dtype=torch.float32)
        io = torch.load({str(tmp_path / 'io.pt')!r})
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        torch.set_num_threads(1)  # as the parent (tests/conftest.py): same reduction order, same bits
        assert torch.equal(model(io["inputs"], io["ids"]).logits, io["logits"])
        print("REMOTE_OK")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                            timeout=120)
    assert "REMOTE_OK" in result.stdout, result.stderr[-3000:]


def test_resize_puzzle_embeddings_keeps_rows():
    model = tiny_model()
    with torch.no_grad():
        model.puzzle_embedding.weight.normal_()
    old = model.puzzle_embedding.weight.clone()
    model.resize_puzzle_embeddings(5)
    assert model.config.num_puzzle_identifiers == 5
    assert torch.equal(model.puzzle_embedding.weight[:3], old) and torch.all(model.puzzle_embedding.weight[3:] == 0)
    model(torch.ones(1, model.config.seq_len, dtype=torch.long), torch.tensor([4]))


def test_package_registers_auto_classes():
    assert AutoConfig.for_model("hrm").__class__ is modeling_hrm.HRMConfig
