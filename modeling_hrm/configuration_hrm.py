"""Configuration of the Hierarchical Reasoning Model (HRM, Wang et al. 2025, arXiv 2506.21734).

`RecursiveReasoningConfig` holds what HRM and TRM (configuration_trm.py) share: data shapes, block sizes,
recursion depth, ACT and loss settings, and their validation.
"""

import importlib
import math
import os
import sys

from transformers import PretrainedConfig

PIPELINE_TASK = "puzzle-solving"


class RecursiveReasoningConfig(PretrainedConfig):
    r"""
    Fields shared by [`HRMConfig`] and [`TRMConfig`]. Not a model of its own (no `model_type`).

    Args:
        vocab_size: Number of token ids (PAD = 0 included).
        seq_len: Number of grid tokens per puzzle (81 for 9×9 Sudoku, 900 for 30×30 maze / ARC).
        num_puzzle_identifiers: Rows of the puzzle-embedding table (1 = one shared id).
        puzzle_emb_ndim: Width of a puzzle embedding (0 disables puzzle embeddings; position 0 is then an
            ordinary token).
        hidden_size, num_heads, expansion: Transformer width, heads, SwiGLU expansion factor.
        H_cycles, L_cycles: N (high-level updates per segment) and T (low-level updates per high-level one).
        L_layers: Transformer blocks of the low-level module.
        pos_encodings: `"rope"` or `"learned"` (TRM also `"none"`).
        rope_theta, rms_norm_eps: RoPE base and RMSNorm epsilon.
        halt_max_steps: Maximum ACT segments (M_max). 1 = no deep supervision / ACT.
        halt_exploration_prob: Probability per row of drawing a minimum step count during training.
        no_ACT_continue: Halt-only ACT: a row halts when q_halt > 0, and no second segment is run for a
            Q-continue target (no continue loss). False = the original HRM's Q-learning (halt when
            q_halt > q_continue, continue target from one more segment).
        loss_type: `"stablemax"` (original default) or `"softmax"` cross entropy.
        q_loss_weight: Weight of the Q-halt and Q-continue losses (0.5 in the original).
        initializer_scale: Multiplier of every initial standard deviation (1.0 = original).
        forward_dtype: `"float32"` (default) or `"bfloat16"`: the dtype of the whole forward (embeddings,
            carried states, residual stream, matmuls), as the original's `forward_dtype`; weights stay in
            their own dtype (fp32 master weights) and are cast at use; RMSNorm and RoPE run in fp32.
    """

    vocab_size: int = 11
    seq_len: int = 81
    num_puzzle_identifiers: int = 1
    puzzle_emb_ndim: int = 512
    hidden_size: int = 512
    num_heads: int = 8
    expansion: float = 4.0
    H_cycles: int = 2
    L_cycles: int = 2
    L_layers: int = 4
    pos_encodings: str = "rope"
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5
    halt_max_steps: int = 16
    halt_exploration_prob: float = 0.1
    no_ACT_continue: bool = False
    loss_type: str = "stablemax"
    q_loss_weight: float = 0.5
    initializer_scale: float = 1.0
    forward_dtype: str = "float32"
    pad_token_id: int | None = 0
    tie_word_embeddings: bool = False

    _positive_int_fields = ("vocab_size", "seq_len", "num_puzzle_identifiers", "hidden_size", "num_heads",
                            "H_cycles", "L_cycles", "L_layers", "halt_max_steps")
    _pos_encodings = ("rope", "learned")

    def __post_init__(self, **kwargs):
        self.validate()
        folder = kwargs.get("name_or_path")
        # config.json names the `puzzle-solving` pipeline saved with the model, for remote code. Where this
        # package has registered its own pipeline for the task, that one serves it (as its model classes win over
        # `auto_map`); transformers would otherwise insist on trust_remote_code for the folder's copy.
        pipelines = sys.modules.get("transformers.pipelines")
        if PIPELINE_TASK in kwargs.get("custom_pipelines", {}) and pipelines is not None and \
                PIPELINE_TASK in pipelines.PIPELINE_REGISTRY.supported_tasks:
            kwargs["custom_pipelines"] = {k: v for k, v in kwargs["custom_pipelines"].items() if k != PIPELINE_TASK}
        super().__post_init__(**kwargs)
        if folder and os.path.isdir(folder):
            # Read from a local model folder (AutoConfig, from_pretrained, pipeline(model=folder)): its config file
            # and the weights beside it must agree, checked before transformers loads them (one-line ValueError).
            try:
                from modeling_hrm.loading import check_folder_agrees
            except ImportError:  # remote code: the folder's own copy of this file, without the loader
                return
            check_folder_agrees(folder, self)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """`PretrainedConfig.from_pretrained`, telling the config where it was read from (as AutoConfig does), so
        that a local folder is checked (see `__post_init__`)."""
        kwargs.setdefault("name_or_path", str(pretrained_model_name_or_path))
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    def save_pretrained(self, save_directory, *args, **kwargs):
        """`PretrainedConfig.save_pretrained`, plus the `puzzle-solving` pipeline: its file and the puzzle formats
        it reads go next to the config, and `custom_pipelines` names it (pipeline_puzzle_solving.py), so that
        `pipeline("puzzle-solving", model=folder, trust_remote_code=True)` works without this package."""
        try:
            bundle = importlib.import_module(f"{__package__}.pipeline_puzzle_solving")
        except ImportError:  # remote code without the pipeline file at hand: save the config alone
            bundle = None
        if bundle is None or os.path.isfile(save_directory):
            return super().save_pretrained(save_directory, *args, **kwargs)
        os.makedirs(save_directory, exist_ok=True)
        bundle.save_pipeline_files(save_directory)
        saved = getattr(self, "custom_pipelines", None)
        self.custom_pipelines = {**(saved or {}), **bundle.CUSTOM_PIPELINES}
        try:
            return super().save_pretrained(save_directory, *args, **kwargs)
        finally:
            if saved is None:
                del self.custom_pipelines
            else:
                self.custom_pipelines = saved

    def validate(self, **kwargs):
        """Raise a `ValueError` that names the field when the configuration cannot work."""
        name = type(self).__name__
        for field in self._positive_int_fields:
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}.{field} must be an integer >= 1, got {value!r}")
        if not isinstance(self.puzzle_emb_ndim, int) or isinstance(self.puzzle_emb_ndim, bool) or self.puzzle_emb_ndim < 0:
            raise ValueError(f"{name}.puzzle_emb_ndim must be an integer >= 0, got {self.puzzle_emb_ndim!r}")
        for field in ("expansion", "rope_theta", "rms_norm_eps", "initializer_scale", "halt_exploration_prob",
                      "q_loss_weight"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name}.{field} must be a finite number, got {value!r}")
        if not isinstance(self.no_ACT_continue, bool):
            raise ValueError(f"{name}.no_ACT_continue must be true or false, got {self.no_ACT_continue!r}")
        if self.hidden_size % self.num_heads != 0:
            raise ValueError(f"{name}.hidden_size ({self.hidden_size}) must be divisible by "
                             f"{name}.num_heads ({self.num_heads})")
        if self.pos_encodings not in self._pos_encodings:
            raise ValueError(f"{name}.pos_encodings must be one of {', '.join(map(repr, self._pos_encodings))}, "
                             f"got {self.pos_encodings!r}")
        if self.pos_encodings == "rope" and (self.hidden_size // self.num_heads) % 2 != 0:
            raise ValueError(f"{name}.num_heads: head_dim {self.hidden_size // self.num_heads} must be even for RoPE")
        if self.loss_type not in ("stablemax", "softmax"):
            raise ValueError(f"{name}.loss_type must be 'stablemax' or 'softmax', got {self.loss_type!r}")
        if not self.expansion > 0:
            raise ValueError(f"{name}.expansion must be > 0, got {self.expansion!r}")
        if not 0.0 <= self.halt_exploration_prob <= 1.0:
            raise ValueError(f"{name}.halt_exploration_prob must be in [0, 1], got {self.halt_exploration_prob!r}")
        for field in ("rope_theta", "rms_norm_eps", "initializer_scale"):
            if not getattr(self, field) > 0:
                raise ValueError(f"{name}.{field} must be > 0, got {getattr(self, field)!r}")
        if self.forward_dtype not in ("float32", "bfloat16"):
            raise ValueError(f"{name}.forward_dtype must be 'float32' or 'bfloat16', got {self.forward_dtype!r}")
        if self.q_loss_weight < 0:
            raise ValueError(f"{name}.q_loss_weight must be >= 0, got {self.q_loss_weight!r}")

    # Derived sizes, kept as properties so a saved config.json holds only the primary fields.
    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def intermediate_size(self) -> int:
        """SwiGLU width: 2/3 of expansion × hidden, rounded up to a multiple of 256 (as the original)."""
        return swiglu_width(self.hidden_size, self.expansion)

    @property
    def total_seq_len(self) -> int:
        return self.seq_len + self.puzzle_emb_len

    @classmethod
    def from_dataset_metadata(cls, metadata: dict, **overrides) -> "RecursiveReasoningConfig":
        """Build a config from a dataset's `hrm_dataset.json` (vocab, sequence length, puzzle ids) plus overrides."""
        if not isinstance(metadata, dict):
            raise ValueError(f"dataset metadata must be the dict of a dataset's hrm_dataset.json, got {type(metadata).__name__}")
        missing = [k for k in ("vocab_size", "seq_len", "num_puzzle_identifiers") if k not in metadata]
        if missing:
            raise ValueError(f"dataset metadata lacks {', '.join(missing)}; is this an hrm dataset?")
        for key in ("vocab_size", "seq_len"):
            if key in overrides and overrides[key] != metadata[key]:
                raise ValueError(f"{cls.__name__}.{key}={overrides[key]} contradicts the dataset ({metadata[key]})")
        fields = {k: metadata[k] for k in ("vocab_size", "seq_len", "num_puzzle_identifiers")}
        fields.update(overrides)
        return cls(**fields)


def swiglu_width(width: int, expansion: float) -> int:
    """The original's SwiGLU inner width: round(expansion · width · 2/3), rounded up to a multiple of 256."""
    return 256 * math.ceil(round(expansion * width * 2 / 3) / 256)


class HRMConfig(RecursiveReasoningConfig):
    r"""
    Configuration of [`HRMForPuzzleSolving`]. Defaults are those of the original code (27M parameters,
    Sudoku shapes); the data-dependent fields (`vocab_size`, `seq_len`, `num_puzzle_identifiers`) normally
    come from a dataset's `hrm_dataset.json` through [`HRMConfig.from_dataset_metadata`].

    Args:
        H_layers: Transformer blocks of the high-level module (the other fields: [`RecursiveReasoningConfig`]).

    `ceil(puzzle_emb_ndim / hidden_size)` positions are prepended to the sequence for the puzzle embedding.
    """

    model_type = "hrm"

    H_layers: int = 4

    _positive_int_fields = RecursiveReasoningConfig._positive_int_fields + ("H_layers",)

    @property
    def puzzle_emb_len(self) -> int:
        """Positions prepended for the puzzle embedding (position 0 doubles as the Q-head's CLS token)."""
        return math.ceil(self.puzzle_emb_ndim / self.hidden_size)


__all__ = ["HRMConfig", "RecursiveReasoningConfig"]
