"""Configuration of the Hierarchical Reasoning Model (HRM, Wang et al. 2025, arXiv 2506.21734)."""

import math

from transformers import PretrainedConfig


class HRMConfig(PretrainedConfig):
    r"""
    Configuration of [`HRMForPuzzleSolving`]. Defaults are those of the original code (27M parameters,
    Sudoku shapes); the data-dependent fields (`vocab_size`, `seq_len`, `num_puzzle_identifiers`) normally
    come from a dataset's `hrm_dataset.json` through [`HRMConfig.from_dataset_metadata`].

    Args:
        vocab_size: Number of token ids (PAD = 0 included).
        seq_len: Number of grid tokens per puzzle (81 for 9×9 Sudoku, 900 for 30×30 maze / ARC).
        num_puzzle_identifiers: Rows of the puzzle-embedding table (1 = one shared id).
        puzzle_emb_ndim: Width of a puzzle embedding; `ceil(puzzle_emb_ndim / hidden_size)` positions are
            prepended to the sequence. 0 disables puzzle embeddings (position 0 is then an ordinary token).
        hidden_size, num_heads, expansion: Transformer width, heads, SwiGLU expansion factor.
        H_cycles, L_cycles: N (high-level updates per segment) and T (low-level updates per high-level one).
        H_layers, L_layers: Transformer blocks in the high- and low-level modules.
        pos_encodings: `"rope"` or `"learned"`.
        rope_theta, rms_norm_eps: RoPE base and RMSNorm epsilon.
        halt_max_steps: Maximum ACT segments (M_max). 1 = no deep supervision / ACT.
        halt_exploration_prob: Probability per row of drawing a minimum step count during training.
        loss_type: `"stablemax"` (original default) or `"softmax"` cross entropy.
        q_loss_weight: Weight of the Q-halt and Q-continue losses (0.5 in the original).
        initializer_scale: Multiplier of every initial standard deviation (1.0 = original).
    """

    model_type = "hrm"

    vocab_size: int = 11
    seq_len: int = 81
    num_puzzle_identifiers: int = 1
    puzzle_emb_ndim: int = 512
    hidden_size: int = 512
    num_heads: int = 8
    expansion: float = 4.0
    H_cycles: int = 2
    L_cycles: int = 2
    H_layers: int = 4
    L_layers: int = 4
    pos_encodings: str = "rope"
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5
    halt_max_steps: int = 16
    halt_exploration_prob: float = 0.1
    loss_type: str = "stablemax"
    q_loss_weight: float = 0.5
    initializer_scale: float = 1.0
    pad_token_id: int | None = 0
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        self.validate()
        super().__post_init__(**kwargs)

    def validate(self, **kwargs):
        """Raise a `ValueError` that names the field when the configuration cannot work."""
        positive = ("vocab_size", "seq_len", "num_puzzle_identifiers", "hidden_size", "num_heads", "H_cycles",
                    "L_cycles", "H_layers", "L_layers", "halt_max_steps")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"HRMConfig.{name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.puzzle_emb_ndim, int) or self.puzzle_emb_ndim < 0:
            raise ValueError(f"HRMConfig.puzzle_emb_ndim must be an integer >= 0, got {self.puzzle_emb_ndim!r}")
        if self.hidden_size % self.num_heads != 0:
            raise ValueError(f"HRMConfig.hidden_size ({self.hidden_size}) must be divisible by "
                             f"HRMConfig.num_heads ({self.num_heads})")
        if self.pos_encodings == "rope" and (self.hidden_size // self.num_heads) % 2 != 0:
            raise ValueError(f"HRMConfig.num_heads: head_dim {self.hidden_size // self.num_heads} must be even for RoPE")
        if self.pos_encodings not in ("rope", "learned"):
            raise ValueError(f"HRMConfig.pos_encodings must be 'rope' or 'learned', got {self.pos_encodings!r}")
        if self.loss_type not in ("stablemax", "softmax"):
            raise ValueError(f"HRMConfig.loss_type must be 'stablemax' or 'softmax', got {self.loss_type!r}")
        if not self.expansion > 0:
            raise ValueError(f"HRMConfig.expansion must be > 0, got {self.expansion!r}")
        if not 0.0 <= self.halt_exploration_prob <= 1.0:
            raise ValueError(f"HRMConfig.halt_exploration_prob must be in [0, 1], got {self.halt_exploration_prob!r}")
        for name in ("rope_theta", "rms_norm_eps", "initializer_scale"):
            if not getattr(self, name) > 0:
                raise ValueError(f"HRMConfig.{name} must be > 0, got {getattr(self, name)!r}")
        if self.q_loss_weight < 0:
            raise ValueError(f"HRMConfig.q_loss_weight must be >= 0, got {self.q_loss_weight!r}")

    # Derived sizes, kept as properties so a saved config.json holds only the primary fields.
    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def puzzle_emb_len(self) -> int:
        """Positions prepended for the puzzle embedding (position 0 doubles as the Q-head's CLS token)."""
        return math.ceil(self.puzzle_emb_ndim / self.hidden_size)

    @property
    def intermediate_size(self) -> int:
        """SwiGLU width: 2/3 of expansion × hidden, rounded up to a multiple of 256 (as the original)."""
        return 256 * math.ceil(round(self.expansion * self.hidden_size * 2 / 3) / 256)

    @property
    def total_seq_len(self) -> int:
        return self.seq_len + self.puzzle_emb_len

    @classmethod
    def from_dataset_metadata(cls, metadata: dict, **overrides) -> "HRMConfig":
        """Build a config from a dataset's `hrm_dataset.json` (vocab, sequence length, puzzle ids) plus overrides."""
        missing = [k for k in ("vocab_size", "seq_len", "num_puzzle_identifiers") if k not in metadata]
        if missing:
            raise ValueError(f"dataset metadata lacks {', '.join(missing)}; is this an hrm dataset?")
        for key in ("vocab_size", "seq_len"):
            if key in overrides and overrides[key] != metadata[key]:
                raise ValueError(f"HRMConfig.{key}={overrides[key]} contradicts the dataset ({metadata[key]})")
        fields = {k: metadata[k] for k in ("vocab_size", "seq_len", "num_puzzle_identifiers")}
        fields.update(overrides)
        return cls(**fields)


__all__ = ["HRMConfig"]
