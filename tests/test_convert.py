"""Conversion of original-code checkpoints (raw state dict with `_orig_mod.model.inner.` keys)."""

import pytest
import torch
import yaml
from transformers import AutoConfig, AutoModel

import modeling_hrm  # noqa: F401  (registers the Auto classes)
from modeling_hrm.convert_original_checkpoint import ConversionError, main
from original_reference import original_segments, original_trm_segments

PREFIX = "_orig_mod.model.inner."


def original_layout(arch, vocab=11, num_ids=5, seq_len=16, seed=0):
    """A fabricated checkpoint in the original key layout with random (non-trivial) values everywhere."""
    g = torch.Generator().manual_seed(seed)
    D = arch["hidden_size"]
    inter = 256 * -(-round(arch["expansion"] * D * 2 / 3) // 256)

    def rand(*shape, std=None):
        return torch.randn(*shape, generator=g) * (std if std is not None else shape[-1] ** -0.5)

    sd = {"H_init": rand(D, std=1.0), "L_init": rand(D, std=1.0), "embed_tokens.embedding_weight": rand(vocab, D),
          "lm_head.weight": rand(vocab, D), "q_head.weight": rand(2, D), "q_head.bias": torch.tensor([-0.1, 0.1]),
          "puzzle_emb.weights": rand(num_ids, arch["puzzle_emb_ndim"], std=0.5)}
    plen = -(-arch["puzzle_emb_ndim"] // D)
    if arch["pos_encodings"] == "learned":
        sd["embed_pos.embedding_weight"] = rand(seq_len + plen, D)
    for level, n in (("H", arch["H_layers"]), ("L", arch["L_layers"])):
        for i in range(n):
            p = f"{level}_level.layers.{i}."
            sd[p + "self_attn.qkv_proj.weight"] = rand(3 * D, D)
            sd[p + "self_attn.o_proj.weight"] = rand(D, D)
            sd[p + "mlp.gate_up_proj.weight"] = rand(2 * inter, D)
            sd[p + "mlp.down_proj.weight"] = rand(D, inter)
    return sd


ARCH = dict(name="hrm.hrm_act_v1@HierarchicalReasoningModel_ACTV1", hidden_size=32, num_heads=4, expansion=4,
            H_cycles=2, L_cycles=2, H_layers=2, L_layers=2, puzzle_emb_ndim=48, pos_encodings="rope",
            halt_max_steps=3, halt_exploration_prob=0.1, rope_theta=10000.0, rms_norm_eps=1e-5,
            loss=dict(name="losses@ACTLossHead", loss_type="stablemax_cross_entropy"))


def write_original(tmp_path, sd, arch=ARCH):
    torch.save({PREFIX + k: v for k, v in sd.items()}, tmp_path / "checkpoint")
    (tmp_path / "all_config.yaml").write_text(yaml.safe_dump({"arch": arch, "lr": 1e-4, "global_batch_size": 768}))
    return ["--checkpoint", str(tmp_path / "checkpoint"), "--config", str(tmp_path / "all_config.yaml")]


def assert_matches_reference(model, reference_segments, sd, arch):
    """Logits and Q values of 3 segments from a fresh carry equal the reference forward's.

    float32: equal up to float32 rounding accumulated over the segments' blocks; float64: the same computation,
    so agreement to ~1e-12 shows the float32 difference is rounding only."""
    g = torch.Generator().manual_seed(3)
    inputs = torch.randint(0, 11, (3, 16), generator=g)
    ids = torch.tensor([0, 4, 2])
    for dtype, tol in ((torch.float32, 1e-4), (torch.float64, 1e-10)):
        model = model.to(dtype)
        reference = reference_segments({k: v.to(dtype) for k, v in sd.items()}, arch, inputs, ids, num_segments=3)
        carry = None
        for logits_ref, q_halt_ref, q_cont_ref in reference:
            out = model(inputs, ids, carry=carry)
            carry = out.carry
            torch.testing.assert_close(out.logits, logits_ref, rtol=tol, atol=tol)
            torch.testing.assert_close(out.q_halt_logits, q_halt_ref.to(out.q_halt_logits.dtype), rtol=tol, atol=tol)
            torch.testing.assert_close(out.q_continue_logits, q_cont_ref.to(out.q_halt_logits.dtype),
                                       rtol=tol, atol=tol)


@pytest.mark.parametrize("pos", ["rope", "learned"])
def test_converted_checkpoint_reproduces_the_original_forward(tmp_path, pos):
    arch = dict(ARCH, pos_encodings=pos)
    sd = original_layout(arch)
    args = write_original(tmp_path, sd, arch)
    assert main(args + ["--seq-len", "16", "--output", str(tmp_path / "hf")]) == 0
    model = AutoModel.from_pretrained(tmp_path / "hf", dtype=torch.float32).eval()
    cfg = model.config
    assert (cfg.vocab_size, cfg.num_puzzle_identifiers, cfg.puzzle_emb_len, cfg.seq_len) == (11, 5, 2, 16)
    # every tensor landed
    ours = model.state_dict()
    for key, tensor in sd.items():
        name = {"embed_tokens.embedding_weight": "embed_tokens.weight", "puzzle_emb.weights": "puzzle_embedding.weight",
                "embed_pos.embedding_weight": "embed_pos.weight"}.get(key, key)
        assert torch.equal(ours[name], tensor), key
    assert len(ours) == len(sd)

    assert_matches_reference(model, original_segments, sd, arch)


def test_missing_and_unexpected_keys_are_listed(tmp_path, capsys):
    sd = original_layout(ARCH)
    del sd["L_level.layers.1.mlp.down_proj.weight"]
    sd["L_level.layers.1.mlp.extra.weight"] = torch.zeros(1)
    args = write_original(tmp_path, sd)
    assert main(args + ["--seq-len", "16", "--output", str(tmp_path / "hf")]) == 2
    err = capsys.readouterr().err
    assert "\n" not in err.strip() and "Traceback" not in err
    assert "missing keys: L_level.layers.1.mlp.down_proj.weight" in err
    assert "unexpected keys: L_level.layers.1.mlp.extra.weight" in err
    assert not (tmp_path / "hf").exists()


def test_shape_mismatch_is_reported(tmp_path):
    from modeling_hrm.convert_original_checkpoint import convert

    sd = original_layout(ARCH)
    sd["H_level.layers.0.self_attn.o_proj.weight"] = torch.zeros(32, 31)
    write_original(tmp_path, sd)
    with pytest.raises(ConversionError, match="o_proj.weight: checkpoint \\(32, 31\\)"):
        convert(tmp_path / "checkpoint", tmp_path / "all_config.yaml", 16)


def test_learned_positions_need_the_right_seq_len(tmp_path):
    from modeling_hrm.convert_original_checkpoint import convert

    write_original(tmp_path, original_layout(dict(ARCH, pos_encodings="learned")), dict(ARCH, pos_encodings="learned"))
    with pytest.raises(ConversionError, match="embed_pos"):
        convert(tmp_path / "checkpoint", tmp_path / "all_config.yaml", 81)


# ---------------------------------------------------------------- TRM
TRM_ARCH = dict(name="recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1", hidden_size=32, num_heads=4,
                expansion=4, H_cycles=2, L_cycles=3, H_layers=0, L_layers=2, puzzle_emb_ndim=48, puzzle_emb_len=4,
                pos_encodings="rope", mlp_t=False, no_ACT_continue=True, halt_max_steps=3,
                halt_exploration_prob=0.1, rope_theta=10000.0, rms_norm_eps=1e-5, forward_dtype="bfloat16",
                loss=dict(name="losses@ACTLossHead", loss_type="stablemax_cross_entropy"))


def trm_original_layout(arch, vocab=11, num_ids=5, seq_len=16, seed=0):
    """A fabricated original-TRM checkpoint: one `L_level`, attention or mlp_t token mixers."""
    g = torch.Generator().manual_seed(seed)
    D = arch["hidden_size"]

    def width(n):
        return 256 * -(-round(arch["expansion"] * n * 2 / 3) // 256)

    def rand(*shape, std=None):
        return torch.randn(*shape, generator=g) * (std if std is not None else shape[-1] ** -0.5)

    positions = seq_len + arch["puzzle_emb_len"]
    sd = {"H_init": rand(D, std=1.0), "L_init": rand(D, std=1.0), "embed_tokens.embedding_weight": rand(vocab, D),
          "lm_head.weight": rand(vocab, D), "q_head.weight": rand(2, D), "q_head.bias": torch.tensor([-0.1, 0.1]),
          "puzzle_emb.weights": rand(num_ids, arch["puzzle_emb_ndim"], std=0.5)}
    if arch["pos_encodings"] == "learned":
        sd["embed_pos.embedding_weight"] = rand(positions, D)
    for i in range(arch["L_layers"]):
        p = f"L_level.layers.{i}."
        if arch["mlp_t"]:
            sd[p + "mlp_t.gate_up_proj.weight"] = rand(2 * width(positions), positions)
            sd[p + "mlp_t.down_proj.weight"] = rand(positions, width(positions))
        else:
            sd[p + "self_attn.qkv_proj.weight"] = rand(3 * D, D)
            sd[p + "self_attn.o_proj.weight"] = rand(D, D)
        sd[p + "mlp.gate_up_proj.weight"] = rand(2 * width(D), D)
        sd[p + "mlp.down_proj.weight"] = rand(D, width(D))
    return sd


@pytest.mark.parametrize("variant", [dict(pos_encodings="rope"), dict(pos_encodings="learned"),
                                     dict(mlp_t=True, pos_encodings="none"), dict(mlp_t=True, pos_encodings="learned")],
                         ids=["attention-rope", "attention-learned", "mlp_t", "mlp_t-learned"])
def test_converted_trm_reproduces_the_original_forward(tmp_path, variant):
    arch = dict(TRM_ARCH, **variant)
    sd = trm_original_layout(arch)
    write_original(tmp_path, sd, arch)
    # No --seq-len: mlp_t and learned positions show it in the weights; rope falls back to --seq-len below.
    args = [str(tmp_path), "--output", str(tmp_path / "hf")] + ([] if "learned" in arch["pos_encodings"]
                                                                  or arch["mlp_t"] else ["--seq-len", "16"])
    assert main(args) == 0
    model = AutoModel.from_pretrained(tmp_path / "hf", dtype=torch.float32).eval()
    cfg = model.config
    assert cfg.model_type == "trm" and isinstance(model, modeling_hrm.TRMForPuzzleSolving)
    assert (cfg.seq_len, cfg.puzzle_emb_len, cfg.mlp_t, cfg.no_ACT_continue, cfg.L_cycles) == (
        16, 4, arch["mlp_t"], True, 3)
    assert len(model.state_dict()) == len(sd)

    assert_matches_reference(model, original_trm_segments, sd, arch)


def test_seq_len_is_inferred_from_the_task_of_a_hub_layout_folder(tmp_path):
    """A folder laid out as the published repos (checkpoint + all_config.yaml, no seq_len) converts as is."""
    sd = original_layout(ARCH)
    torch.save({PREFIX + k: v for k, v in sd.items()}, tmp_path / "checkpoint")
    (tmp_path / "all_config.yaml").write_text(yaml.safe_dump({"arch": ARCH, "data_path": "data/sudoku-extreme-1k-aug-1000"}))
    assert main([str(tmp_path), "--output", str(tmp_path / "hf")]) == 0
    assert AutoConfig.from_pretrained(tmp_path / "hf").seq_len == 81


def test_hub_id_offline_names_the_repo_and_the_network(tmp_path, monkeypatch, capsys):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    assert main(["sapientinc/HRM-checkpoint-sudoku-extreme", "--output", str(tmp_path / "hf")]) == 2
    err = capsys.readouterr().err.strip()
    assert "sapientinc/HRM-checkpoint-sudoku-extreme" in err and "HF_HUB_OFFLINE" in err
    assert "\n" not in err and not (tmp_path / "hf").exists()


def test_hub_id_with_unreachable_endpoint_fails_cleanly(tmp_path, monkeypatch, capsys):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                        "http://127.0.0.1:9/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "2")
    assert main(["sapientinc/HRM-checkpoint-maze-30x30-hard", "--output", str(tmp_path / "hf")]) == 2
    err = capsys.readouterr().err.strip()
    assert "sapientinc/HRM-checkpoint-maze-30x30-hard" in err and "\n" not in err and "Traceback" not in err


@pytest.mark.parametrize("change, message", [
    (dict(name="recursive_reasoning.trm_singlez@TinyRecursiveReasoningModel_ACTV1"), "not a variant this converter knows"),
    (dict(mlp_t=True, pos_encodings="rope"), "mlp_t replaces attention"),
    (dict(puzzle_emb_len=1), "cannot hold a puzzle embedding"),
])
def test_bad_trm_configs_give_one_line(tmp_path, capsys, change, message):
    arch = dict(TRM_ARCH, **change)
    write_original(tmp_path, trm_original_layout(dict(TRM_ARCH)), arch)
    assert main([str(tmp_path), "--seq-len", "16", "--output", str(tmp_path / "hf")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_bad_files_and_outputs(tmp_path, capsys):
    write_original(tmp_path, original_layout(ARCH))
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "text").write_text("not a checkpoint")
    torch.save({"model": {"w": torch.zeros(1)}, "step": 3}, tmp_path / "nested")
    (tmp_path / "bad.yaml").write_text("arch: [unclosed")
    (tmp_path / "afile").write_text("x")
    cases = [
        (["--checkpoint", str(tmp_path / "empty")], "is empty"),
        (["--checkpoint", str(tmp_path / "text")], "is not a torch checkpoint"),
        (["--checkpoint", str(tmp_path / "nested")], "not a raw state dict"),
        ([str(tmp_path / "checkpoint"), "--config", str(tmp_path / "bad.yaml")], "not valid YAML"),
        ([str(tmp_path / "missing")], "no such file or folder"),
    ]
    for args, message in cases:
        assert main(args + ["--seq-len", "16", "--output", str(tmp_path / "out")]) == 2, args
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err, (args, err)
    assert main([str(tmp_path), "--seq-len", "16", "--output", str(tmp_path / "afile")]) == 2
    assert "is an existing file" in capsys.readouterr().err
    assert (tmp_path / "afile").read_text() == "x"


def test_existing_output_is_kept_unless_overwrite(tmp_path, capsys):
    write_original(tmp_path, original_layout(ARCH))
    out = tmp_path / "hf"
    out.mkdir()
    (out / "keep.txt").write_text("earlier work")
    assert main([str(tmp_path), "--seq-len", "16", "--output", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err and (out / "keep.txt").exists()
    assert main([str(tmp_path), "--seq-len", "16", "--output", str(out), "--overwrite"]) == 0
    assert (out / "config.json").exists() and not (out / "keep.txt").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_task_and_vocabulary_must_agree_to_infer_seq_len(tmp_path, capsys):
    sd = original_layout(ARCH, vocab=7)  # no n×n Sudoku has 7 tokens (n + 2)
    torch.save({PREFIX + k: v for k, v in sd.items()}, tmp_path / "checkpoint")
    (tmp_path / "all_config.yaml").write_text(yaml.safe_dump({"arch": ARCH, "data_path": "data/sudoku-extreme"}))
    assert main([str(tmp_path), "--output", str(tmp_path / "hf")]) == 2
    assert "pass --seq-len" in capsys.readouterr().err
    sd = original_layout(ARCH, vocab=6)  # 4×4 Sudoku: 16 cells
    torch.save({PREFIX + k: v for k, v in sd.items()}, tmp_path / "checkpoint")
    assert main([str(tmp_path), "--output", str(tmp_path / "hf")]) == 0
    assert AutoConfig.from_pretrained(tmp_path / "hf").seq_len == 16
