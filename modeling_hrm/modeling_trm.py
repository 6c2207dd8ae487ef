"""Tiny Recursive Model (TRM, Jolicoeur-Martineau 2025, arXiv 2510.04871) for grid puzzles.

HRM simplified: ONE small network (`L_level`, 2 blocks in every recipe) updates both states, the answer
z_H (the paper's y) and the latent z_L (z). One segment, with N = H_cycles and T = L_cycles:

    N - 1 times, without gradient:   T × { z_L = net(z_L, z_H + x) };  z_H = net(z_H, z_L)
    once, with gradient:             T × { z_L = net(z_L, z_H + x) };  z_H = net(z_H, z_L)

so the gradient flows through the whole last cycle (T + 1 applications), not HRM's one-step approximation.
Blocks may swap attention for a SwiGLU across positions (`mlp_t`, TRM-MLP). ACT halts on q_halt > 0 alone
(`no_ACT_continue`, default). Input network, heads and ACT are shared with HRM (modeling_recursive.py). The
behaviour follows the original code (github.com/SamsungSAILMontreal/TinyRecursiveModels).
"""

import torch

from .configuration_trm import TRMConfig
from .modeling_recursive import HRMCarry, HRMOutput, HRMSolveOutput, ReasoningModule, RecursiveReasoningModel


class TRMPreTrainedModel(RecursiveReasoningModel):
    """Weight initialisation and loading conventions of TRM models."""

    config_class = TRMConfig
    config: TRMConfig
    base_model_prefix = "trm"


class TRMForPuzzleSolving(TRMPreTrainedModel):
    """TRM with token and Q heads: one `forward` call = one ACT segment; `solve` runs a whole puzzle.

    Example:

    ```python
    >>> import torch, modeling_hrm
    >>> from modeling_hrm import TRMConfig, TRMForPuzzleSolving
    >>> model = TRMForPuzzleSolving(TRMConfig(hidden_size=64, num_heads=4, mlp_t=True, pos_encodings="none"))
    >>> puzzle = torch.randint(1, 11, (2, 81))
    >>> out = model(puzzle, labels=torch.randint(2, 11, (2, 81)))      # first segment
    >>> model.solve(puzzle).predictions.shape
    torch.Size([2, 81])
    ```
    """

    def __init__(self, config: TRMConfig):
        super().__init__(config)
        self.L_level = ReasoningModule(config, config.L_layers)
        self.add_states_and_heads()
        self.post_init()

    def latent_recursion(self, z_H: torch.Tensor, z_L: torch.Tensor, x: torch.Tensor, rotary):
        """One cycle: T updates of the latent from (answer + input), then one update of the answer."""
        for _ in range(self.config.L_cycles):
            z_L = self.L_level(z_L, z_H + x, rotary)
        z_H = self.L_level(z_H, z_L, rotary)
        return z_H, z_L

    def reasoning_segment(self, z_H: torch.Tensor, z_L: torch.Tensor, x: torch.Tensor):
        """N - 1 cycles without gradient, then one full cycle with gradient. Returns (z_H, z_L)."""
        rotary = self._rotary(x.device)
        with torch.no_grad():
            for _ in range(self.config.H_cycles - 1):
                z_H, z_L = self.latent_recursion(z_H, z_L, x, rotary)
        return self.latent_recursion(z_H, z_L, x, rotary)


__all__ = ["TRMForPuzzleSolving", "TRMPreTrainedModel", "HRMOutput", "HRMCarry", "HRMSolveOutput"]
