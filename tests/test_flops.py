"""The one FLOP convention (modeling_hrm/flops.py), checked against counts worked out by hand."""

import pytest

from modeling_hrm import HRMConfig, TRMConfig
from modeling_hrm.flops import (block_applications, block_flops_per_token, inference_flops, segment_flops,
                                training_step_flops)


def hrm(**kw):
    fields = dict(hidden_size=64, num_heads=4, expansion=4.0, H_layers=2, L_layers=2, H_cycles=2, L_cycles=2,
                  seq_len=36, vocab_size=8, num_puzzle_identifiers=1, puzzle_emb_ndim=64, halt_max_steps=4,
                  no_ACT_continue=True)
    fields.update(kw)
    return HRMConfig(**fields)


def test_block_flops_by_hand():
    c = hrm()
    seq = 36 + 1  # one puzzle-embedding position
    # SwiGLU width: round(4 * 64 * 2/3) = 171 -> 256; attention: q,k,v,o + scores and values.
    assert block_flops_per_token(c) == 2 * (3 * 64 * 256 + 4 * 64 * 64 + 2 * seq * 64)


def test_block_applications_hrm_trm():
    assert block_applications(hrm()) == (2 * 2 * 2 + 2 * 2, 2 + 2)
    trm = TRMConfig(hidden_size=64, num_heads=4, L_layers=2, H_cycles=3, L_cycles=6, seq_len=81, vocab_size=11)
    assert block_applications(trm) == (3 * 7 * 2, 7 * 2)


def test_segments_and_batch_scale_linearly():
    c = hrm()
    assert inference_flops(c, 4, num_puzzles=3) == pytest.approx(12 * segment_flops(c, 1))


def test_training_step_counts_backward_and_q_target():
    halt_only = hrm()
    q_learning = hrm(no_ACT_continue=False)
    tokens = 64 * 37
    backward = 2 * tokens * (4 * block_flops_per_token(halt_only) + 2 * 64 * 8)
    assert training_step_flops(halt_only, 64) == pytest.approx(segment_flops(halt_only, 64) + backward)
    # Q-learning ACT runs one more no-grad segment for its target; a one-segment model has no target.
    assert training_step_flops(q_learning, 64) == pytest.approx(training_step_flops(halt_only, 64)
                                                                + segment_flops(halt_only, 64))
    one_pass = hrm(H_cycles=1, L_cycles=1, halt_max_steps=1, no_ACT_continue=False)
    assert training_step_flops(one_pass, 64) == pytest.approx(3 * segment_flops(one_pass, 64))
