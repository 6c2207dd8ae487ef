"""Configuration of the Tiny Recursive Model (TRM, Jolicoeur-Martineau 2025, arXiv 2510.04871)."""

import math

from .configuration_hrm import RecursiveReasoningConfig


class TRMConfig(RecursiveReasoningConfig):
    r"""
    Configuration of [`TRMForPuzzleSolving`]: one network of `L_layers` blocks updates both states. Defaults
    are the original's Sudoku recipe (attention variant); `mlp_t=True, pos_encodings="none"` is TRM-MLP.

    Args:
        mlp_t: Replace each block's attention by a SwiGLU across the sequence axis (TRM-MLP). Needs
            `pos_encodings` "none" or "learned" (there is no attention for RoPE to act on).
        puzzle_emb_len: Positions prepended for the puzzle embedding (default 16; the table keeps width
            `puzzle_emb_ndim` and is zero-padded to `puzzle_emb_len · hidden_size`). 0 means HRM's
            `ceil(puzzle_emb_ndim / hidden_size)`; with `puzzle_emb_ndim=0` no position is prepended.
        no_ACT_continue: Halt-only ACT (the original TRM's default, True).

    The other fields are those of [`RecursiveReasoningConfig`]; TRM has no `H_layers` (one network).
    """

    model_type = "trm"

    H_cycles: int = 3
    L_cycles: int = 6
    L_layers: int = 2
    no_ACT_continue: bool = True
    mlp_t: bool = False
    puzzle_emb_len: int = 16

    _pos_encodings = ("rope", "learned", "none")

    def validate(self, **kwargs):
        super().validate(**kwargs)
        if not isinstance(self.mlp_t, bool):
            raise ValueError(f"TRMConfig.mlp_t must be true or false, got {self.mlp_t!r}")
        if self.mlp_t and self.pos_encodings == "rope":
            raise ValueError("TRMConfig: mlp_t replaces attention, so RoPE has nothing to rotate; "
                             "set pos_encodings to 'none' (the TRM-MLP recipe) or 'learned'")
        plen = self.puzzle_emb_len
        if not isinstance(plen, int) or isinstance(plen, bool) or plen < 0:
            raise ValueError(f"TRMConfig.puzzle_emb_len must be an integer >= 0, got {plen!r}")
        if self.puzzle_emb_ndim > 0 and 0 < plen and plen * self.hidden_size < self.puzzle_emb_ndim:
            raise ValueError(f"TRMConfig.puzzle_emb_len={plen} positions of width {self.hidden_size} cannot hold a "
                             f"puzzle embedding of puzzle_emb_ndim={self.puzzle_emb_ndim}; use at least "
                             f"{math.ceil(self.puzzle_emb_ndim / self.hidden_size)} (or 0 for that minimum)")

    def __post_init__(self, **kwargs):
        # The stored value is always the number of positions the model prepends.
        if isinstance(self.puzzle_emb_ndim, int) and isinstance(self.hidden_size, int) and self.hidden_size > 0:
            if self.puzzle_emb_ndim == 0:
                self.puzzle_emb_len = 0
            elif self.puzzle_emb_len == 0:
                self.puzzle_emb_len = math.ceil(self.puzzle_emb_ndim / self.hidden_size)
        super().__post_init__(**kwargs)


__all__ = ["TRMConfig"]
