"""Hierarchical Reasoning Model (HRM, Wang et al. 2025, arXiv 2506.21734) for grid puzzles.

Two Transformer modules at two speeds: a fast low-level L and a slow high-level H. One segment, with
N = H_cycles and T = L_cycles:

    for the first N·T - 1 low-level steps and N - 1 high-level steps (no gradient):
        z_L = L(z_L, z_H + x)            every step        (input injection: L sees z_H + input)
        z_H = H(z_H, z_L)                every T-th step
    z_L = L(z_L, z_H + x); z_H = H(z_H, z_L)              (with gradient: the one-step gradient)

so a training step stores activations of one L and one H application whatever N and T are. Blocks, the
input network, heads and ACT (one `forward` = one segment of deep supervision, `solve` = a whole puzzle) are
shared with TRM in modeling_recursive.py. The behaviour follows the original code (github.com/sapientinc/HRM).
"""

import torch

from .configuration_hrm import HRMConfig
from .modeling_recursive import (IGNORE_LABEL_ID, HRMCarry, HRMOutput, HRMSolveOutput, ReasoningModule,
                                 RecursiveReasoningModel, stablemax_cross_entropy)


class HRMPreTrainedModel(RecursiveReasoningModel):
    """Weight initialisation and loading conventions of HRM models."""

    config_class = HRMConfig
    config: HRMConfig
    base_model_prefix = "hrm"


class HRMForPuzzleSolving(HRMPreTrainedModel):
    """HRM with token and Q heads: one `forward` call = one ACT segment; `solve` runs a whole puzzle.

    Example:

    ```python
    >>> import torch, modeling_hrm
    >>> from modeling_hrm import HRMConfig, HRMForPuzzleSolving
    >>> model = HRMForPuzzleSolving(HRMConfig(hidden_size=64, num_heads=4, H_layers=1, L_layers=1))
    >>> puzzle = torch.randint(1, 11, (2, 81))
    >>> out = model(puzzle, labels=torch.randint(2, 11, (2, 81)))      # first segment
    >>> out = model(puzzle, carry=out.carry)                            # next segment
    >>> model.solve(puzzle).predictions.shape
    torch.Size([2, 81])
    ```
    """

    def __init__(self, config: HRMConfig):
        super().__init__(config)
        self.H_level = ReasoningModule(config, config.H_layers)
        self.L_level = ReasoningModule(config, config.L_layers)
        self.add_states_and_heads()
        self.post_init()

    def reasoning_segment(self, z_H: torch.Tensor, z_L: torch.Tensor, x: torch.Tensor):
        """One segment of the hierarchical recurrence with the one-step gradient. Returns (z_H, z_L)."""
        rotary = self._rotary(x.device)
        cycles_H, cycles_L = self.config.H_cycles, self.config.L_cycles
        with torch.no_grad():
            for h in range(cycles_H):
                for l in range(cycles_L):
                    if h < cycles_H - 1 or l < cycles_L - 1:
                        z_L = self.L_level(z_L, z_H + x, rotary)
                if h < cycles_H - 1:
                    z_H = self.H_level(z_H, z_L, rotary)
        # The last L and H steps carry the gradient (1-step approximation of the fixed-point gradient).
        z_L = self.L_level(z_L, z_H + x, rotary)
        z_H = self.H_level(z_H, z_L, rotary)
        return z_H, z_L


__all__ = ["HRMForPuzzleSolving", "HRMPreTrainedModel", "HRMOutput", "HRMCarry", "HRMSolveOutput",
           "IGNORE_LABEL_ID", "stablemax_cross_entropy"]
