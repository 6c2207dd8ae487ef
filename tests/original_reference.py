"""An independent, functional re-statement of the original HRM and TRM forwards (specs §1–2), written over the
original checkpoint's key layout. Tests use it as the "original code" that a converted checkpoint must
reproduce: it shares no code with `modeling_hrm` (explicit softmax attention, the original's
(B, S, heads, head_dim) qkv split and RoPE broadcast, its own loops).
"""

import math

import torch


def rms(h, eps):
    h32 = h.float() if h.element_size() < 4 else h
    return (h32 * torch.rsqrt(h32.pow(2).mean(-1, keepdim=True) + eps)).to(h.dtype)


def rope_tables(total_len, head_dim, theta):
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2).float() / head_dim))
    t = torch.arange(total_len).float()  # float32 tables, as the original
    f = torch.einsum("i,j->ij", t, inv)
    emb = torch.cat([f, f], dim=-1)
    return emb.cos(), emb.sin()


def rope(x, cos, sin):  # x: (B, S, heads, hd); cos: (S, hd)
    half = x.shape[-1] // 2
    rot = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos.unsqueeze(-2) + rot * sin.unsqueeze(-2)


def attention(sd, prefix, h, arch, rot):
    B, S, D = h.shape
    nh = arch["num_heads"]
    hd = D // nh
    qkv = (h @ sd[prefix + "self_attn.qkv_proj.weight"].T).view(B, S, 3 * nh, hd)
    q, k, v = qkv[:, :, :nh], qkv[:, :, nh:2 * nh], qkv[:, :, 2 * nh:]
    if rot is not None:
        q, k = rope(q, *rot), rope(k, *rot)
    q, k, v = (t.permute(0, 2, 1, 3) for t in (q, k, v))
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
    att = (scores.softmax(-1) @ v).permute(0, 2, 1, 3).reshape(B, S, D)
    return att @ sd[prefix + "self_attn.o_proj.weight"].T


def swiglu(h, gate_up, down):
    gate, up = (h @ gate_up.T).chunk(2, dim=-1)
    return (torch.nn.functional.silu(gate) * up) @ down.T


def block(sd, prefix, h, arch, rot):
    eps = arch["rms_norm_eps"]
    h = rms(h + attention(sd, prefix, h, arch, rot), eps)
    return rms(h + swiglu(h, sd[prefix + "mlp.gate_up_proj.weight"], sd[prefix + "mlp.down_proj.weight"]), eps)


def level(sd, name, n_layers, z, inj, arch, rot):
    h = z + inj
    for i in range(n_layers):
        h = block(sd, f"{name}.layers.{i}.", h, arch, rot)
    return h


def original_segments(sd, arch, inputs, puzzle_ids, num_segments):
    """Run `num_segments` eval-mode ACT segments from a fresh carry; returns [(logits, q_halt, q_continue)]."""
    D = arch["hidden_size"]
    ndim = sd["puzzle_emb.weights"].shape[1] if "puzzle_emb.weights" in sd else 0
    plen = -(-ndim // D)
    emb = sd["embed_tokens.embedding_weight"][inputs]
    if ndim:
        pe = sd["puzzle_emb.weights"][puzzle_ids]
        pe = torch.nn.functional.pad(pe, (0, plen * D - ndim))
        emb = torch.cat([pe.view(-1, plen, D), emb], dim=-2)
    rot = None
    if arch["pos_encodings"] == "learned":
        emb = 0.707106781 * (emb + sd["embed_pos.embedding_weight"])
    else:
        rot = rope_tables(emb.shape[1], D // arch["num_heads"], arch["rope_theta"])
    x = math.sqrt(D) * emb
    z_H = sd["H_init"].expand_as(x).clone()
    z_L = sd["L_init"].expand_as(x).clone()
    outputs = []
    for _ in range(num_segments):
        for h_step in range(arch["H_cycles"]):
            for l_step in range(arch["L_cycles"]):
                z_L = level(sd, "L_level", arch["L_layers"], z_L, z_H + x, arch, rot)
            z_H = level(sd, "H_level", arch["H_layers"], z_H, z_L, arch, rot)
        logits = z_H[:, plen:] @ sd["lm_head.weight"].T
        q = z_H[:, 0] @ sd["q_head.weight"].T + sd["q_head.bias"]
        outputs.append((logits, q[:, 0], q[:, 1]))
    return outputs


# ---------------------------------------------------------------------------------------------------------
# TRM (TRM_SPEC.md §1): one network `L_level` for both states; blocks with attention or, with mlp_t, a SwiGLU
# over the sequence axis whose residual and RMSNorm act on the transposed (B, D, S) state.
# ---------------------------------------------------------------------------------------------------------
def trm_block(sd, prefix, h, arch, rot):
    eps = arch["rms_norm_eps"]
    if arch.get("mlp_t"):
        t = h.transpose(1, 2)
        t = rms(t + swiglu(t, sd[prefix + "mlp_t.gate_up_proj.weight"], sd[prefix + "mlp_t.down_proj.weight"]), eps)
        h = t.transpose(1, 2)
    else:
        h = rms(h + attention(sd, prefix, h, arch, rot), eps)
    return rms(h + swiglu(h, sd[prefix + "mlp.gate_up_proj.weight"], sd[prefix + "mlp.down_proj.weight"]), eps)


def trm_net(sd, arch, z, inj, rot):
    h = z + inj
    for i in range(arch["L_layers"]):
        h = trm_block(sd, f"L_level.layers.{i}.", h, arch, rot)
    return h


def original_trm_segments(sd, arch, inputs, puzzle_ids, num_segments):
    """Eval-mode ACT segments of the original TRM from a fresh carry; returns [(logits, q_halt, q_continue)]."""
    D = arch["hidden_size"]
    ndim = sd["puzzle_emb.weights"].shape[1] if "puzzle_emb.weights" in sd else 0
    plen = (arch.get("puzzle_emb_len", 16) or -(-ndim // D)) if ndim else 0
    emb = sd["embed_tokens.embedding_weight"][inputs]
    if ndim:
        pe = torch.nn.functional.pad(sd["puzzle_emb.weights"][puzzle_ids], (0, plen * D - ndim))
        emb = torch.cat([pe.view(-1, plen, D), emb], dim=-2)
    rot = None
    if arch["pos_encodings"] == "learned":
        emb = 0.707106781 * (emb + sd["embed_pos.embedding_weight"])
    elif arch["pos_encodings"] == "rope":
        rot = rope_tables(emb.shape[1], D // arch["num_heads"], arch["rope_theta"])
    x = math.sqrt(D) * emb
    z_H = sd["H_init"].expand_as(x).clone()
    z_L = sd["L_init"].expand_as(x).clone()
    outputs = []
    for _ in range(num_segments):
        for _ in range(arch["H_cycles"]):
            for _ in range(arch["L_cycles"]):
                z_L = trm_net(sd, arch, z_L, z_H + x, rot)
            z_H = trm_net(sd, arch, z_H, z_L, rot)
        logits = z_H[:, plen:] @ sd["lm_head.weight"].T
        q = z_H[:, 0] @ sd["q_head.weight"].T + sd["q_head.bias"]
        outputs.append((logits, q[:, 0], q[:, 1]))
    return outputs
