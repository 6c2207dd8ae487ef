"""FLOPs of HRM / TRM (and the one-pass Transformer baseline, an HRM with one cycle and one segment), counted
one way for every figure the project reports: training budgets, inference compute of a search setting, MFU.

The convention: 2 FLOPs per multiply-add of every matrix product that depends on the batch —
- a block application: its linear layers (attention q/k/v/o = 4·h² per token, or TRM-MLP's SwiGLU across
  positions = 3·seq·w per channel; the SwiGLU over channels 3·h·i per token) and, for attention, the score and
  value products (2·seq·h per token);
- the token head once per segment (h·vocab per token);
- a backward costs 2× the forward of what carries gradient.
Embedding lookups, norms, RoPE, softmax and the Q head (two numbers per puzzle) are left out: they are a few
per cent at most and the same for every model here.

Per segment, HRM applies H_cycles·L_cycles·L_layers + H_cycles·H_layers blocks, of which the last L step and the
last H step carry gradient (the one-step gradient); TRM applies H_cycles·(L_cycles + 1)·L_layers blocks, of which
the last cycle carries gradient. A training step is one segment (deep supervision: the carry moves on between
steps), plus, with Q-learning ACT (`no_ACT_continue=False` and more than one segment), the extra no-grad segment
that computes the Q-continue target.
"""

from __future__ import annotations

from .configuration_hrm import swiglu_width


def block_flops_per_token(config) -> float:
    """Forward FLOPs of one block application, per token of the (puzzle-embedding + grid) sequence."""
    hidden, seq = config.hidden_size, config.total_seq_len
    mlp = 3 * hidden * config.intermediate_size
    if getattr(config, "mlp_t", False):  # SwiGLU across positions, applied to every (row, channel)
        mixer = 3 * swiglu_width(seq, config.expansion) * hidden
    else:
        mixer = 4 * hidden * hidden + 2 * seq * hidden  # projections + scores and weighted values
    return 2.0 * (mlp + mixer)


def block_applications(config) -> tuple[int, int]:
    """(blocks applied in one segment, of which carry gradient in training)."""
    if config.model_type == "trm":
        return config.H_cycles * (config.L_cycles + 1) * config.L_layers, (config.L_cycles + 1) * config.L_layers
    applied = config.H_cycles * config.L_cycles * config.L_layers + config.H_cycles * config.H_layers
    return applied, config.L_layers + config.H_layers


def head_flops_per_token(config) -> float:
    return 2.0 * config.hidden_size * config.vocab_size


def segment_flops(config, num_puzzles: int = 1) -> float:
    """Forward FLOPs of one ACT segment (blocks + token head) for `num_puzzles` puzzles."""
    applied, _ = block_applications(config)
    tokens = num_puzzles * config.total_seq_len
    return tokens * (applied * block_flops_per_token(config) + head_flops_per_token(config))


def inference_flops(config, segments: float, num_puzzles: int = 1) -> float:
    """FLOPs to run `segments` segments (a mean is fine: early exit) on `num_puzzles` puzzles."""
    return segments * segment_flops(config, num_puzzles)


def training_step_flops(config, batch_size: int) -> float:
    """FLOPs of one optimizer step: one segment forward + the backward of what carries gradient (+ the
    Q-continue target segment under Q-learning ACT)."""
    _, with_grad = block_applications(config)
    tokens = batch_size * config.total_seq_len
    forward = segment_flops(config, batch_size)
    backward = 2 * tokens * (with_grad * block_flops_per_token(config) + head_flops_per_token(config))
    q_target = forward if (not config.no_ACT_continue and config.halt_max_steps > 1) else 0.0
    return forward + backward + q_target
