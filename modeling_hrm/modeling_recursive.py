"""What HRM (modeling_hrm.py) and TRM (modeling_trm.py) share: numerics, the Transformer block, the puzzle
embedding, outputs, and `RecursiveReasoningModel`, whose `forward` is one ACT segment of deep supervision and
whose `solve` runs segments until the Q head halts. A model only says which modules it has and how one
segment updates the two states (`reasoning_segment`).

Read top to bottom: numerics (RMSNorm, RoPE, stablemax) → blocks → outputs → the ACT model.
The behaviour follows the original codes (github.com/sapientinc/HRM, github.com/SamsungSAILMontreal/
TinyRecursiveModels); where they differ from the papers' text the code wins (post-norm blocks, stablemax loss,
ACT unused at evaluation, Q-head bias −5).
"""

import contextlib
import math
import numbers
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput, can_return_tuple

from .configuration_hrm import RecursiveReasoningConfig, swiglu_width

IGNORE_LABEL_ID = -100
# Std of a standard normal truncated at ±2: dividing by it makes the realised std equal the target (JAX style).
_TRUNC_NORMAL_STD_RATIO = 0.8796256610342398


def trunc_normal_init_(tensor: torch.Tensor, std: float) -> torch.Tensor:
    """Truncated normal at ±2σ, rescaled so the realised std equals `std` (the original's initialiser)."""
    sigma = std / _TRUNC_NORMAL_STD_RATIO
    return init.trunc_normal_(tensor, mean=0.0, std=sigma, a=-2 * sigma, b=2 * sigma)


def _at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    return x.float() if x.element_size() < 4 else x


def rms_norm(hidden_states: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm over the last axis without a learnable weight, computed in (at least) float32, as the original."""
    dtype = hidden_states.dtype
    hidden_states = _at_least_fp32(hidden_states)
    hidden_states = hidden_states * torch.rsqrt(hidden_states.square().mean(-1, keepdim=True) + eps)
    return hidden_states.to(dtype)


def rotary_cos_sin(seq_len: int, head_dim: int, theta: float, device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos / signed sin tables of shape (seq_len, head_dim) for rotate-half RoPE, in float32: the sin table's
    first half is negated (the sign of rotate-half, folded in; see `apply_rotary`)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32, device=device) / head_dim))
    freqs = torch.outer(torch.arange(seq_len, dtype=torch.float32, device=device), inv_freq)
    sin = freqs.sin()
    return torch.cat((freqs, freqs), dim=-1).cos(), torch.cat((-sin, sin), dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
    """Llama-style (non-interleaved) rotation of x (..., seq, head_dim), done in (at least) float32:
    x·cos + cat(−x2, x1)·sin, computed as x·cos + cat(x2, x1)·signed_sin (the same products bit for bit), where
    the half swap is a flip over a (2, head_dim/2) view: one elementwise expression that a compiler fuses, with no
    negation pass and no concatenation."""
    dtype = x.dtype
    x = _at_least_fp32(x)
    swapped = x.unflatten(-1, (2, -1)).flip(-2).flatten(-2)
    return (x * cos + swapped * signed_sin).to(dtype)


def stablemax_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-token cross entropy under stablemax (s(x) = 1/(1-x) for x < 0, x + 1 otherwise), in float64.

    Returns a tensor of labels' shape with 0 where the label is IGNORE_LABEL_ID. Only the label's entry is
    normalised and logged (−log(s_label / Σ s)): the same float64 operations on that entry as normalising the
    whole row, so the value is bit-identical, without a vocab-wide division and log.
    """
    logits = logits.double()
    # clamp: the unused branch of `where` must stay finite (1/(1-x) is inf at x = 1, and NaN in its gradient)
    s = torch.where(logits < 0, 1 / (1 - logits.clamp(max=0)), logits + 1)
    valid = labels != IGNORE_LABEL_ID
    picked = torch.gather(s, -1, torch.where(valid, labels, 0).unsqueeze(-1)).squeeze(-1)
    return torch.where(valid, -torch.log(picked / s.sum(dim=-1)), 0)


def softmax_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-token softmax cross entropy in float32, 0 where the label is IGNORE_LABEL_ID."""
    flat = F.cross_entropy(logits.float().flatten(0, -2), labels.flatten(), ignore_index=IGNORE_LABEL_ID,
                           reduction="none")
    return flat.view(labels.shape)


def _row_seed(seed: int, puzzle: int, candidate: int) -> int:
    """A 63-bit seed for one (puzzle, candidate) search trajectory, well mixed (splitmix64 of the three)."""
    x = (int(seed) * 0x9E3779B97F4A7C15 + int(puzzle) * 0xBF58476D1CE4E5B9 + int(candidate) * 0x94D049BB133111EB
         + 0x632BE59BD9B4E019) % 2**64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) % 2**64
    return (x ^ (x >> 31)) >> 1


def puzzle_keys(input_ids: torch.Tensor) -> torch.Tensor:
    """(N,) int64 >= 0 naming each puzzle by its tokens (a random linear form, wrapping in int64): search seeds its
    per-candidate draws with it, so a puzzle gets the same candidates wherever it sits in a batch."""
    tokens = input_ids.detach().long().cpu()
    coefficients = torch.tensor([_row_seed(0, position, 0) for position in range(tokens.shape[1])], dtype=torch.long)
    return (tokens * coefficients).sum(1) & (2**62 - 1)


def _relative_change(before: tuple[torch.Tensor, ...], after: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Per row: ||after - before|| / ||after|| over all the given states (float32), the fixed-point residual."""
    change = sum((a.float() - b.float()).square().flatten(1).sum(1) for a, b in zip(after, before))
    size = sum(a.float().square().flatten(1).sum(1) for a in after)
    return (change / size.clamp_min(1e-30)).sqrt()


class CastedLinear(nn.Linear):
    """`nn.Linear` that casts its (fp32 master) weights to the input's dtype at use, as the original's
    CastedLinear: with `forward_dtype="bfloat16"` the matmuls run in bf16 while the optimizer keeps fp32 weights.
    In fp32 the cast is a no-op and this is exactly `nn.Linear`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return F.linear(x, self.weight.to(x.dtype), bias)


# --------------------------------------------------------------------------------------------------
# Transformer block
# --------------------------------------------------------------------------------------------------
class Attention(nn.Module):
    """Bidirectional multi-head attention with a fused qkv projection; no mask (PAD is an ordinary token)."""

    def __init__(self, config: RecursiveReasoningConfig):
        super().__init__()
        self.num_heads = config.num_heads
        self.head_dim = config.head_dim
        self.qkv_proj = CastedLinear(config.hidden_size, 3 * config.hidden_size, bias=False)
        self.o_proj = CastedLinear(config.hidden_size, config.hidden_size, bias=False)
        self.is_causal = False

    def forward(self, hidden_states: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        batch, seq_len, hidden = hidden_states.shape
        # (B, S, 3, heads, head_dim) → three tensors of (B, heads, S, head_dim); the fused output is
        # laid out as all Q heads, then K heads, then V heads (as the original).
        qkv = self.qkv_proj(hidden_states).view(batch, seq_len, 3, self.num_heads, self.head_dim)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        if rotary is not None:
            query, key = apply_rotary(query, *rotary), apply_rotary(key, *rotary)
        attn = F.scaled_dot_product_attention(query, key, value, is_causal=False)
        return self.o_proj(attn.transpose(1, 2).reshape(batch, seq_len, hidden))


class SwiGLU(nn.Module):
    """SwiGLU MLP over the last axis with a fused gate/up projection (first half gate, second half up)."""

    def __init__(self, width: int, intermediate_size: int):
        super().__init__()
        self.gate_up_proj = CastedLinear(width, 2 * intermediate_size, bias=False)
        self.down_proj = CastedLinear(intermediate_size, width, bias=False)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up_proj(hidden_states).chunk(2, dim=-1)
        return self.down_proj(F.silu(gate) * up)


class ReasoningBlock(nn.Module):
    """Post-norm Transformer block: h = rms(h + mix(h)); h = rms(h + mlp(h)).

    The token mixer is attention, or with `config.mlp_t` (TRM-MLP) a SwiGLU across the sequence axis: the state
    is transposed to (batch, hidden, positions), so that SwiGLU, its residual and its RMSNorm act over positions
    (as the original TRM), then transposed back.
    """

    def __init__(self, config: RecursiveReasoningConfig):
        super().__init__()
        if getattr(config, "mlp_t", False):
            self.mlp_t = SwiGLU(config.total_seq_len, swiglu_width(config.total_seq_len, config.expansion))
        else:
            self.self_attn = Attention(config)
        self.mlp = SwiGLU(config.hidden_size, config.intermediate_size)
        self.eps = config.rms_norm_eps

    def forward(self, hidden_states: torch.Tensor, rotary) -> torch.Tensor:
        if hasattr(self, "mlp_t"):
            hidden_states = hidden_states.transpose(1, 2)
            hidden_states = rms_norm(hidden_states + self.mlp_t(hidden_states), self.eps).transpose(1, 2)
        else:
            hidden_states = rms_norm(hidden_states + self.self_attn(hidden_states, rotary), self.eps)
        return rms_norm(hidden_states + self.mlp(hidden_states), self.eps)


class ReasoningModule(nn.Module):
    """A stack of blocks applied to `state + injection` (HRM's H or L module, TRM's one network)."""

    def __init__(self, config: RecursiveReasoningConfig, num_layers: int):
        super().__init__()
        self.layers = nn.ModuleList(ReasoningBlock(config) for _ in range(num_layers))

    def forward(self, state: torch.Tensor, injection: torch.Tensor, rotary) -> torch.Tensor:
        hidden_states = state + injection
        for layer in self.layers:
            hidden_states = layer(hidden_states, rotary)
        return hidden_states


class PuzzleEmbedding(nn.Module):
    """Per-puzzle embedding table, trained by sign-SGD outside the main optimizer (as the original).

    The table is a persistent buffer (saved with the model, not a Parameter). In training mode with
    gradients enabled, each forward copies the rows of the batch into a leaf tensor `local_weight`
    whose `.grad` (after backward) and `local_ids` the trainer's sparse optimizer reads.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int):
        super().__init__()
        self.register_buffer("weight", torch.zeros(num_embeddings, embedding_dim), persistent=True)
        self.local_ids: torch.Tensor | None = None
        self.local_weight: torch.Tensor | None = None

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        rows = self.weight[ids]
        if self.training and torch.is_grad_enabled():
            self.local_ids = ids
            self.local_weight = rows.detach().requires_grad_(True)
            return self.local_weight
        return rows


# --------------------------------------------------------------------------------------------------
# Outputs (named after HRM, the first model of the family; TRM returns the same)
# --------------------------------------------------------------------------------------------------
@dataclass
class HRMCarry(ModelOutput):
    """State carried from one ACT segment to the next (detached: no gradient crosses segments).

    Attributes:
        z_H, z_L: high- and low-level states (TRM: the answer y and the latent z),
            (batch, puzzle_emb_len + seq_len, hidden).
        steps: segments run so far on each row's current example, (batch,).
        halted: rows whose example is finished; the next call restarts them on the new batch row.
        inputs, labels, puzzle_identifiers: the example each row is working on.
    """

    z_H: torch.Tensor | None = None
    z_L: torch.Tensor | None = None
    steps: torch.Tensor | None = None
    halted: torch.Tensor | None = None
    inputs: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    puzzle_identifiers: torch.Tensor | None = None


@dataclass
class HRMOutput(ModelOutput):
    """Output of one ACT segment.

    Attributes:
        loss: mean over rows of `lm_loss_row + q_loss_weight · (q_halt + q_continue)` (labels given).
        logits: token logits, (batch, seq_len, vocab_size).
        q_halt_logits, q_continue_logits: Q values of halting / continuing, (batch,).
        carry: the detached state to pass to the next call.
        lm_loss, q_halt_loss, q_continue_loss: the loss terms, each a mean over rows (no continue loss with
            halt-only ACT).
        target_q_continue: Q-learning target of the continue action (training with Q-learning ACT only), (batch,).
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    q_halt_logits: torch.Tensor | None = None
    q_continue_logits: torch.Tensor | None = None
    carry: HRMCarry | None = None
    lm_loss: torch.Tensor | None = None
    q_halt_loss: torch.Tensor | None = None
    q_continue_loss: torch.Tensor | None = None
    target_q_continue: torch.Tensor | None = None


@dataclass
class HRMSolveOutput(ModelOutput):
    """Result of `solve`.

    Attributes:
        predictions: argmax tokens at the segment where each row stopped, (batch, seq_len).
        steps: segments each row used, (batch,).
        q_halt_logits, q_continue_logits: Q values at the stopping segment, (batch,).
        trace: predictions after every segment, (segments, batch, seq_len); stopped rows repeat their last.
        chosen_candidate: with `num_candidates=K > 1`, the candidate each row returns, (batch,).
        candidate_predictions, candidate_q_halt_logits, candidate_steps: every candidate's result,
            (K, batch, seq_len), (K, batch), (K, batch); candidate 0 is the unperturbed run.
        residual: with `track_residual` (search), the relative change of the state (z_H, z_L) in the last
            segment each row ran, (batch,): how far from a fixed point it stopped.
        logits: with `return_logits` (search's sampled decoding), token logits at the stopping segment,
            (batch, seq_len, vocab_size).
    """

    predictions: torch.Tensor | None = None
    steps: torch.Tensor | None = None
    q_halt_logits: torch.Tensor | None = None
    q_continue_logits: torch.Tensor | None = None
    trace: torch.Tensor | None = None
    chosen_candidate: torch.Tensor | None = None
    candidate_predictions: torch.Tensor | None = None
    candidate_q_halt_logits: torch.Tensor | None = None
    candidate_steps: torch.Tensor | None = None
    residual: torch.Tensor | None = None
    logits: torch.Tensor | None = None


# --------------------------------------------------------------------------------------------------
# The ACT model
# --------------------------------------------------------------------------------------------------
class RecursiveReasoningModel(PreTrainedModel):
    """Input network, heads, initial states and ACT shared by HRM and TRM. Subclasses add their reasoning
    modules in `__init__`, then call `add_states_and_heads()` and `post_init()`, and define
    `reasoning_segment(z_H, z_L, x) -> (z_H, z_L)`.

    One `forward` call = one ACT segment of deep supervision; `solve` runs a whole puzzle.
    """

    config: RecursiveReasoningConfig
    main_input_name = "input_ids"
    _supports_sdpa = True
    _no_split_modules = ["ReasoningBlock"]
    # `solve` shrinks its working batch to the rows still running once at most this fraction of them runs.
    COMPACT_AT = 0.75

    def __init__(self, config: RecursiveReasoningConfig):
        super().__init__(config)
        self.embed_scale = math.sqrt(config.hidden_size)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        if config.pos_encodings == "learned":
            self.embed_pos = nn.Embedding(config.total_seq_len, config.hidden_size)
        self.puzzle_embedding = (PuzzleEmbedding(config.num_puzzle_identifiers, config.puzzle_emb_ndim)
                                 if config.puzzle_emb_ndim > 0 else None)
        self._rotary_cache: dict = {}
        self._compiled_segment = self._compiled_solve_step = None  # set by `compile_segment`

    def add_states_and_heads(self):
        """Initial states and output heads; subclasses call this after adding their reasoning modules (module
        order fixes the order of initialisation draws, kept as in the first release)."""
        self.register_buffer("H_init", torch.empty(self.config.hidden_size), persistent=True)
        self.register_buffer("L_init", torch.empty(self.config.hidden_size), persistent=True)
        self.lm_head = CastedLinear(self.config.hidden_size, self.config.vocab_size, bias=False)
        self.q_head = CastedLinear(self.config.hidden_size, 2, bias=True)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module):
        scale = self.config.initializer_scale
        if isinstance(module, nn.Linear):
            if module is getattr(self, "q_head", None):
                # Q head starts at "continue, never confident": weight 0, bias −5.
                init.zeros_(module.weight)
                init.constant_(module.bias, -5.0)
            else:
                trunc_normal_init_(module.weight, scale / math.sqrt(module.in_features))
        elif isinstance(module, nn.Embedding):
            trunc_normal_init_(module.weight, scale / math.sqrt(self.config.hidden_size))
        elif isinstance(module, PuzzleEmbedding):
            init.zeros_(module.weight)
        elif isinstance(module, RecursiveReasoningModel):
            trunc_normal_init_(module.H_init, 1.0)
            trunc_normal_init_(module.L_init, 1.0)

    def reasoning_segment(self, z_H: torch.Tensor, z_L: torch.Tensor, x: torch.Tensor):
        raise NotImplementedError

    # ---- input checks: bad input gets a clear error, not a stack trace from inside torch ----
    def _check_inputs(self, input_ids, puzzle_identifiers, labels, allow_empty: bool = False) -> torch.Tensor:
        cfg = self.config
        if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
            raise ValueError(f"input_ids must be a 2-D tensor (batch, seq_len={cfg.seq_len}), got "
                             f"{getattr(input_ids, 'shape', type(input_ids))}")
        if input_ids.dtype.is_floating_point or input_ids.dtype.is_complex or input_ids.dtype == torch.bool:
            raise ValueError(f"input_ids must hold integer token ids, got dtype {input_ids.dtype}")
        if input_ids.shape[1] != cfg.seq_len:
            raise ValueError(f"input_ids has sequence length {input_ids.shape[1]}, but this model expects "
                             f"seq_len={cfg.seq_len} (grid size mismatch?)")
        if input_ids.shape[0] == 0:
            if not allow_empty:
                raise ValueError("input_ids holds no rows (batch size 0): a segment needs at least one puzzle")
            return torch.zeros(0, dtype=torch.long, device=input_ids.device)
        if int(input_ids.min()) < 0 or int(input_ids.max()) >= cfg.vocab_size:
            raise ValueError(f"input_ids must lie in [0, vocab_size={cfg.vocab_size}); got values in "
                             f"[{int(input_ids.min())}, {int(input_ids.max())}] (unknown symbol?)")
        batch = input_ids.shape[0]
        if puzzle_identifiers is None:
            puzzle_identifiers = torch.zeros(batch, dtype=torch.long, device=input_ids.device)
        elif not isinstance(puzzle_identifiers, torch.Tensor):
            raise ValueError(f"puzzle_identifiers must be a tensor of shape ({batch},), got {type(puzzle_identifiers)}")
        elif puzzle_identifiers.dtype.is_floating_point or puzzle_identifiers.dtype == torch.bool:
            raise ValueError(f"puzzle_identifiers must hold integer ids, got dtype {puzzle_identifiers.dtype}")
        elif puzzle_identifiers.shape != (batch,):
            raise ValueError(f"puzzle_identifiers must have shape ({batch},), got {tuple(puzzle_identifiers.shape)}")
        elif int(puzzle_identifiers.min()) < 0 or int(puzzle_identifiers.max()) >= cfg.num_puzzle_identifiers:
            raise ValueError(f"puzzle_identifiers must lie in [0, num_puzzle_identifiers="
                             f"{cfg.num_puzzle_identifiers}); got max {int(puzzle_identifiers.max())}, "
                             f"min {int(puzzle_identifiers.min())}")
        if labels is not None:
            if not isinstance(labels, torch.Tensor) or labels.shape != input_ids.shape:
                raise ValueError(f"labels must have the shape of input_ids {tuple(input_ids.shape)}, "
                                 f"got {tuple(getattr(labels, 'shape', ()))}")
            if labels.dtype.is_floating_point or labels.dtype == torch.bool:
                raise ValueError(f"labels must hold integer token ids, got dtype {labels.dtype}")
            bad = (labels != IGNORE_LABEL_ID) & ((labels < 0) | (labels >= cfg.vocab_size))
            if bool(bad.any()):
                raise ValueError(f"labels must be token ids in [0, {cfg.vocab_size}) or {IGNORE_LABEL_ID} "
                                 f"(ignored); got {int(labels[bad][0])}")
        return puzzle_identifiers.long()

    # ---- pieces of a segment ----
    @property
    def compute_dtype(self) -> torch.dtype:
        """dtype of the forward: bf16 with `config.forward_dtype == "bfloat16"`, else the weights' dtype."""
        if self.config.forward_dtype == "bfloat16":
            return torch.bfloat16
        return self.embed_tokens.weight.dtype

    def _rotary(self, device):
        if self.config.pos_encodings != "rope":
            return None
        key = (device.type, device.index, self.config.total_seq_len)
        if key not in self._rotary_cache:
            self._rotary_cache[key] = rotary_cos_sin(self.config.total_seq_len, self.config.head_dim,
                                                     self.config.rope_theta, device)
        return self._rotary_cache[key]

    def input_embeddings(self, input_ids: torch.Tensor, puzzle_identifiers: torch.Tensor | None = None,
                         puzzle_rows: torch.Tensor | None = None) -> torch.Tensor:
        """The input network: sqrt(hidden) · [puzzle-embedding positions; token embeddings] (+ positions), in
        `compute_dtype`. `puzzle_rows` (batch, puzzle_emb_ndim) are the puzzle-embedding rows if already looked up."""
        dtype = self.compute_dtype
        embedding = self.embed_tokens(input_ids).to(dtype)
        if self.config.puzzle_emb_ndim > 0:
            if puzzle_rows is None:
                puzzle_rows = self.puzzle_embedding(puzzle_identifiers)
            puzzle = puzzle_rows.to(dtype)
            padding = self.config.puzzle_emb_len * self.config.hidden_size - puzzle.shape[-1]
            if padding:
                puzzle = F.pad(puzzle, (0, padding))
            embedding = torch.cat((puzzle.view(-1, self.config.puzzle_emb_len, self.config.hidden_size), embedding),
                                  dim=1)
        if self.config.pos_encodings == "learned":
            embedding = 0.707106781 * (embedding + self.embed_pos.weight.to(dtype))
        return self.embed_scale * embedding

    def initial_states(self, batch_size: int, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """(z_H, z_L) at the start of a puzzle: H_init / L_init broadcast to every position."""
        shape = (batch_size, self.config.total_seq_len, self.config.hidden_size)
        return (self.H_init.to(device, dtype).expand(shape).clone(),
                self.L_init.to(device, dtype).expand(shape).clone())

    def heads(self, z_H: torch.Tensor):
        """Output network and Q head: (token logits, q_halt, q_continue)."""
        logits = self.lm_head(z_H[:, self.config.puzzle_emb_len:])
        return (logits, *self.q_values(z_H))

    def q_values(self, z_H: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The Q head alone (it reads position 0): (q_halt, q_continue) in at least float32."""
        q = _at_least_fp32(self.q_head(z_H[:, 0]))
        return q[..., 0], q[..., 1]

    def halts(self, q_halt: torch.Tensor, q_continue: torch.Tensor) -> torch.Tensor:
        """The Q head's halting decision: q_halt > 0 with halt-only ACT, else q_halt > q_continue."""
        return q_halt > 0 if self.config.no_ACT_continue else q_halt > q_continue

    # ---- compilation ----
    def compile_segment(self, solve: bool = True, **compile_kwargs) -> "RecursiveReasoningModel":
        """`torch.compile` the tensor work of `forward` (restart of halted rows, the recursion, heads, halting and
        losses: one graph, `fullgraph=True`, static shapes for the fixed-shape training loop) and, with `solve`,
        the per-segment step of `solve` (shapes may change as rows leave the batch). Input checks, the
        puzzle-embedding lookup and the ACT exploration draws stay eager, so the RNG stream and the trainer's
        sparse puzzle-embedding update are those of the eager model. Outputs match eager within float rounding
        (tests/test_compile.py). Returns the model; `compile_kwargs` (e.g. `mode=`) go to `torch.compile`."""
        options = {"fullgraph": True, "dynamic": False, **compile_kwargs}
        # Unbound functions called with the model as first argument: a deep copy (EMA) of a compiled model
        # still runs its own weights.
        self._compiled_segment = torch.compile(type(self)._segment, **options)
        if solve:
            self._compiled_solve_step = torch.compile(type(self)._solve_step, **{**options, "dynamic": None})
        return self

    @contextlib.contextmanager
    def recursion_depth(self, H_cycles: int, L_cycles: int):
        """Run segments with `H_cycles` × `L_cycles` cycles inside the block, the config's depth again after (what
        a depth curriculum trains its shallow stages with: `training.depth_curriculum`). A compiled segment
        compiles once per depth it sees."""
        for name, value in (("H_cycles", H_cycles), ("L_cycles", L_cycles)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        config = self.config
        saved = config.H_cycles, config.L_cycles
        config.H_cycles, config.L_cycles = int(H_cycles), int(L_cycles)
        try:
            yield self
        finally:
            config.H_cycles, config.L_cycles = saved

    # ---- one ACT segment ----
    def initial_carry(self, input_ids: torch.Tensor, puzzle_identifiers: torch.Tensor | None = None,
                      labels: torch.Tensor | None = None) -> HRMCarry:
        """A carry in which every row counts as halted, so the next call starts every row on its batch row."""
        batch = input_ids.shape[0]
        device = input_ids.device
        z_H, z_L = self.initial_states(batch, device, self.compute_dtype)
        # Copies, not the caller's tensors: a carry aliasing this call's inputs would make a compiled segment
        # specialise on that aliasing and compile a second time at the next call.
        return HRMCarry(z_H=z_H, z_L=z_L, steps=torch.zeros(batch, dtype=torch.long, device=device),
                        halted=torch.ones(batch, dtype=torch.bool, device=device), inputs=input_ids.clone(),
                        labels=None if labels is None else labels.clone(), puzzle_identifiers=puzzle_identifiers)

    @can_return_tuple
    def forward(self, input_ids: torch.Tensor, puzzle_identifiers: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, carry: HRMCarry | None = None, **kwargs) -> HRMOutput:
        r"""
        Run one ACT segment.

        Args:
            input_ids: puzzle tokens, (batch, seq_len).
            puzzle_identifiers: puzzle-embedding rows, (batch,); defaults to 0 (the shared id).
            labels: answer tokens, (batch, seq_len), `-100` where not scored.
            carry: the `carry` of the previous call; `None` starts every row fresh. Rows that halted in the
                previous call restart on the example at their row of this batch; the others keep their example.
        """
        cfg = self.config
        puzzle_identifiers = self._check_inputs(input_ids, puzzle_identifiers, labels)
        input_ids = input_ids.long()
        if labels is not None:
            labels = labels.long()
        batch = input_ids.shape[0]
        if carry is None:
            carry = self.initial_carry(input_ids, puzzle_identifiers, labels)
        elif carry.z_H is None or carry.z_H.shape[0] != batch:
            raise ValueError(f"carry holds {None if carry.z_H is None else carry.z_H.shape[0]} rows but the "
                             f"batch has {batch}; keep the batch size fixed across segments")
        elif labels is not None and carry.labels is None:
            raise ValueError("labels were given but the carry holds none; pass labels from the first segment on")

        # Eager part: the puzzle-embedding lookup (in training it creates the leaf the trainer's sparse optimizer
        # reads) and the ACT exploration draws (from the global RNG, as the original draws them; drawing them
        # here keeps the stream identical with and without compilation). Rows that halted take their new example.
        ids = torch.where(carry.halted, puzzle_identifiers, carry.puzzle_identifiers)
        puzzle_rows = self.puzzle_embedding(ids) if self.puzzle_embedding is not None else None
        explore_draws = None
        if self.training and cfg.halt_max_steps > 1:
            q_dtype = torch.promote_types(self.compute_dtype, torch.float32)
            explore_draws = (torch.rand(batch, dtype=q_dtype, device=input_ids.device),
                             torch.randint(2, cfg.halt_max_steps + 1, (batch,), device=input_ids.device))
        self._rotary(input_ids.device)  # fill the cache outside any compiled region

        segment = self._compiled_segment or type(self)._segment
        (z_H, z_L, steps, halted, inputs, current_labels, logits, q_halt, q_continue, target_q_continue,
         losses) = segment(self, carry.z_H, carry.z_L, carry.steps, carry.halted, carry.inputs, carry.labels,
                           input_ids, labels, puzzle_rows, explore_draws)

        new_carry = HRMCarry(z_H=z_H, z_L=z_L, steps=steps, halted=halted, inputs=inputs, labels=current_labels,
                             puzzle_identifiers=ids)
        output = HRMOutput(logits=logits, q_halt_logits=q_halt, q_continue_logits=q_continue, carry=new_carry,
                           target_q_continue=target_q_continue)
        if losses is not None:
            output.loss, output.lm_loss, output.q_halt_loss, output.q_continue_loss = losses
        return output

    def _segment(self, z_H, z_L, steps, reset, carry_inputs, carry_labels, input_ids, labels, puzzle_rows,
                 explore_draws):
        """The tensor work of one ACT segment, free of host syncs and Python-side state (what `compile_segment`
        compiles): restart the `reset` rows, run the recursion and heads, decide halting, compute the losses.
        Returns (z_H, z_L, steps, halted, inputs, labels, logits, q_halt, q_continue, target_q_continue, losses)."""
        cfg = self.config
        dtype = self.compute_dtype
        z_H = torch.where(reset[:, None, None], self.H_init.to(dtype), z_H.to(dtype))
        z_L = torch.where(reset[:, None, None], self.L_init.to(dtype), z_L.to(dtype))
        steps = torch.where(reset, 0, steps)
        inputs = torch.where(reset[:, None], input_ids, carry_inputs)
        labels = None if labels is None else torch.where(reset[:, None], labels, carry_labels)

        x = self.input_embeddings(inputs, puzzle_rows=puzzle_rows)
        z_H, z_L = self.reasoning_segment(z_H, z_L, x)
        logits, q_halt, q_continue = self.heads(z_H)

        steps = steps + 1
        target_q_continue = None
        with torch.no_grad():
            is_last_step = steps >= cfg.halt_max_steps
            halted = is_last_step
            # As the originals, the Q head decides halting only in training (`explore_draws` are drawn only then);
            # in eval mode every row runs halt_max_steps segments (`solve(early_exit=True)` halts at inference).
            if explore_draws is not None:
                halted = halted | self.halts(q_halt, q_continue)
                # Exploration: some rows must run at least a random number of steps in 2..halt_max_steps.
                explore_u, explore_steps = explore_draws
                min_steps = (explore_u < cfg.halt_exploration_prob) * explore_steps
                halted = halted & (steps >= min_steps)
                if not cfg.no_ACT_continue:
                    # Q-learning target for "continue": the Q values one segment later (no replay, no target net).
                    next_z_H, _ = self.reasoning_segment(z_H, z_L, x)
                    next_halt, next_continue = self.q_values(next_z_H)  # no token logits: only Q is used
                    target_q_continue = torch.sigmoid(
                        torch.where(is_last_step, next_halt, torch.maximum(next_halt, next_continue)))

        losses = None
        if labels is not None:
            losses = self._losses(logits, q_halt, q_continue, target_q_continue, labels)
        return (z_H.detach(), z_L.detach(), steps, halted, inputs, labels, logits, q_halt, q_continue,
                target_q_continue, losses)

    def _losses(self, logits, q_halt, q_continue, target_q_continue, labels):
        """(loss, lm_loss, q_halt_loss, q_continue_loss): lm loss = per-sequence mean of token losses; Q-halt BCE vs
        exact correctness; Q-continue BCE vs target (None without one). The last three are batch means."""
        valid = labels != IGNORE_LABEL_ID
        counts = valid.sum(-1)
        token_loss = (stablemax_cross_entropy if self.config.loss_type == "stablemax"
                      else softmax_cross_entropy)(logits, labels)
        lm_loss = (token_loss.sum(-1) / counts.clamp_min(1)).float()
        with torch.no_grad():
            correct = valid & (logits.argmax(-1) == labels)
            seq_correct = correct.sum(-1) == counts
        q_halt_loss = F.binary_cross_entropy_with_logits(q_halt, seq_correct.to(q_halt.dtype), reduction="none")
        q_loss = q_halt_loss
        q_continue_mean = None
        if target_q_continue is not None:
            q_continue_loss = F.binary_cross_entropy_with_logits(q_continue, target_q_continue, reduction="none")
            q_loss = q_loss + q_continue_loss
            q_continue_mean = q_continue_loss.mean()
        loss = (lm_loss + self.config.q_loss_weight * q_loss).mean()
        return loss, lm_loss.mean(), q_halt_loss.mean(), q_continue_mean

    # ---- inference ----
    def _solve_step(self, z_H: torch.Tensor, z_L: torch.Tensor, x: torch.Tensor):
        """One segment at inference: (z_H, z_L, argmax predictions, q_halt, q_continue)."""
        z_H, z_L = self.reasoning_segment(z_H, z_L, x)
        logits, q_halt, q_continue = self.heads(z_H)
        return z_H, z_L, logits.argmax(-1), q_halt, q_continue

    @torch.no_grad()
    def solve(self, input_ids: torch.Tensor, puzzle_identifiers: torch.Tensor | None = None,
              max_steps: int | None = None, early_exit: bool = True, return_trace: bool = False,
              num_candidates: int = 1, candidate_noise: float = 1.0, seed: int = 0) -> HRMSolveOutput:
        """Run segments until every row halts (the Q head, see `halts`) or `max_steps` is reached.

        Args:
            input_ids: puzzles, (batch, seq_len).
            puzzle_identifiers: puzzle-embedding rows, (batch,); defaults to 0.
            max_steps: segment budget; defaults to `config.halt_max_steps`. A larger value is inference-time scaling.
            early_exit: stop rows whose Q head halts (they cost nothing more once enough rows have stopped to
                be worth leaving the batch). With `False` every row runs exactly `max_steps` segments (the
                original's evaluation).
            return_trace: also return the predictions after every segment.
            num_candidates: K trajectories per puzzle. Candidate 0 is the plain run; candidates 1..K-1 start from
                H_init / L_init plus Gaussian noise of std `candidate_noise` (per position and channel; see
                `candidate_initial_states`: each candidate's draw is seeded by (`seed`, the puzzle's tokens, its
                index), so a puzzle gets the same candidates in any batch).
                Each row returns the candidate whose Q head is most confident (largest q_halt, i.e.
                sigmoid(q_halt), at its stopping segment; ties go to the lower index); all candidates are
                returned too (`candidate_*`), e.g. to pick by validity instead. This is
                `modeling_hrm.search.search(breadth=K, kind="noise", selector="q")`, which adds the other ways
                of spending inference compute (deeper recursion, noise at every step, restarts, symmetric
                copies, other selectors) and counts their FLOPs.
        """
        puzzle_identifiers = self._check_inputs(input_ids, puzzle_identifiers, None, allow_empty=True)
        if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, numbers.Integral)):
            raise ValueError(f"max_steps must be an integer >= 1 (or None for config.halt_max_steps), got {max_steps!r}")
        max_steps = self.config.halt_max_steps if max_steps is None else int(max_steps)
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        if isinstance(num_candidates, bool) or not isinstance(num_candidates, numbers.Integral) or num_candidates < 1:
            raise ValueError(f"num_candidates must be an integer >= 1, got {num_candidates!r}")
        if isinstance(candidate_noise, bool) or not (isinstance(candidate_noise, (int, float)) and
                                                     math.isfinite(candidate_noise) and candidate_noise >= 0):
            raise ValueError(f"candidate_noise must be a finite number >= 0, got {candidate_noise!r}")
        for name, flag in (("early_exit", early_exit), ("return_trace", return_trace)):
            if not isinstance(flag, bool):  # a string "false" would be read as true
                raise TypeError(f"{name} must be True or False, got {flag!r}")
        self._check_solve_memory(input_ids.shape[0], int(num_candidates), max_steps if return_trace else 0)
        if num_candidates == 1:
            return self._solve_rows(input_ids.long(), puzzle_identifiers, max_steps, early_exit, return_trace)

        batch, k = input_ids.shape[0], num_candidates
        puzzles = puzzle_keys(input_ids).repeat(k)
        candidates = torch.arange(k).repeat_interleave(batch)
        states = self.candidate_initial_states(puzzles, candidates, "noise", candidate_noise, seed)
        res = self._solve_rows(input_ids.long().repeat(k, 1), puzzle_identifiers.repeat(k), max_steps, early_exit,
                               return_trace, initial_states=states)
        q_halt = res.q_halt_logits.view(k, batch)
        chosen = q_halt.argmax(0)  # first maximum: candidate 0 wins ties
        rows = torch.arange(batch, device=input_ids.device)

        def pick(t):
            return t.view(k, batch, *t.shape[1:])[chosen, rows]

        trace = None
        if return_trace:
            trace = res.trace.view(res.trace.shape[0], k, batch, -1)[:, chosen, rows]
        return HRMSolveOutput(predictions=pick(res.predictions), steps=pick(res.steps), q_halt_logits=pick(q_halt.flatten()),
                              q_continue_logits=pick(res.q_continue_logits), trace=trace, chosen_candidate=chosen,
                              candidate_predictions=res.predictions.view(k, batch, -1), candidate_q_halt_logits=q_halt,
                              candidate_steps=res.steps.view(k, batch))

    def _check_solve_memory(self, num_puzzles: int, num_candidates: int, trace_steps: int) -> None:
        """Refuse, before anything is allocated, a solve whose memory estimate (`search.bytes_per_trajectory` per
        trajectory, plus the trace) exceeds the memory free on the model's device (one-line `ValueError`)."""
        try:
            from dataset_scripts.validation import check_memory

            from modeling_hrm.search import SearchSetting, bytes_per_trajectory
        except ImportError:  # remote code without the hrm package: no estimate
            return
        rows = num_puzzles * num_candidates
        needed = rows * (bytes_per_trajectory(self.config, SearchSetting()) + 8 * trace_steps * self.config.seq_len)
        check_memory(needed, f"solving {num_puzzles} puzzle(s) x num_candidates={num_candidates}"
                     + (f" with a trace of up to {trace_steps} segments" if trace_steps else ""),
                     "lower num_candidates (or max_steps with return_trace) or solve fewer puzzles at a time",
                     self.H_init.device)

    def candidate_initial_states(self, puzzle_index: torch.Tensor, candidate_index: torch.Tensor,
                                 kind: str = "noise", scale: float = 1.0, seed: int = 0):
        """Initial states (z_H, z_L) of search trajectories, one row per (puzzle, candidate) pair.

        Candidate 0 starts from H_init / L_init (the plain run). Other candidates: `kind="noise"` adds Gaussian
        noise of std `scale` per position and channel; `kind="restart"` draws both states afresh from the
        initialiser's truncated normal of std `scale` (a random restart of the latent state). Each row draws
        from a generator seeded by (`seed`, its puzzle index or key, its candidate index), on the CPU, so a
        candidate starts the same way whatever batch it runs in. Returns two tensors (rows, positions, hidden) on the
        model's device in `compute_dtype`."""
        if kind not in ("noise", "restart"):
            raise ValueError(f"kind must be 'noise' or 'restart', got {kind!r}")
        device, dtype = self.H_init.device, self.compute_dtype
        z_H, z_L = self.initial_states(len(puzzle_index), device, dtype)
        rows = [(row, p, c) for row, (p, c) in enumerate(zip(puzzle_index.tolist(), candidate_index.tolist()))
                if c != 0]
        if not rows or (kind == "noise" and scale == 0):
            return z_H, z_L
        shape = (2, *z_H.shape[1:])
        draws = torch.empty((len(rows), *shape))
        sigma = scale / _TRUNC_NORMAL_STD_RATIO
        for i, (_, p, c) in enumerate(rows):
            generator = torch.Generator().manual_seed(_row_seed(seed, p, c))
            if kind == "noise":
                draws[i] = scale * torch.randn(shape, generator=generator)
            else:
                nn.init.trunc_normal_(draws[i], std=sigma, a=-2 * sigma, b=2 * sigma, generator=generator)
        index = torch.as_tensor([row for row, _, _ in rows], device=device)
        draws = draws.to(device, dtype)
        if kind == "noise":
            z_H[index] += draws[:, 0]
            z_L[index] += draws[:, 1]
        else:
            z_H[index], z_L[index] = draws[:, 0], draws[:, 1]
        return z_H, z_L

    def _solve_rows(self, input_ids, puzzle_identifiers, max_steps, early_exit, return_trace, initial_states=None,
                    step_noise=None, track_residual=False, return_logits=False):
        """`solve` on every row of `input_ids`; also the trajectory runner of `modeling_hrm.search`.

        Args beyond `solve`'s:
            initial_states: (z_H, z_L), (batch, positions, hidden), to start from instead of H_init / L_init
                (`candidate_initial_states`).
            step_noise: (std, generator): Gaussian noise of per-row std `std` (batch,) added to the output of every
                application of a reasoning module (every recursion step: HRM's L and H updates, TRM's latent and
                answer updates). The draws depend on the working batch, so they are reproducible for the same
                inputs and seed, not across batch compositions.
            track_residual: return `residual`, the relative change of (z_H, z_L) over each row's last segment.
            return_logits: return `logits` at each row's stopping segment.
        """
        batch, device = input_ids.shape[0], input_ids.device
        dtype = self.compute_dtype
        predictions = torch.zeros_like(input_ids, dtype=torch.long)
        steps = torch.zeros(batch, dtype=torch.long, device=device)
        q_dtype = torch.promote_types(dtype, torch.float32)
        q_halt_out = torch.zeros(batch, dtype=q_dtype, device=device)
        q_continue_out = torch.zeros(batch, dtype=q_dtype, device=device)
        residual_out = torch.zeros(batch, dtype=torch.float32, device=device) if track_residual else None
        logits_out = (torch.zeros(batch, input_ids.shape[1], self.config.vocab_size, dtype=torch.float32, device=device)
                      if return_logits else None)
        trace = []
        if batch == 0:
            return HRMSolveOutput(predictions=predictions, steps=steps, q_halt_logits=q_halt_out.float(),
                                  q_continue_logits=q_continue_out.float(),
                                  trace=predictions.new_zeros(0, 0, input_ids.shape[1]) if return_trace else None,
                                  residual=residual_out, logits=logits_out)

        x = self.input_embeddings(input_ids, puzzle_identifiers)
        z_H, z_L = self.initial_states(batch, device, dtype) if initial_states is None else initial_states
        self._rotary(device)
        step_fn = self._compiled_solve_step or type(self)._solve_step
        # Noise at every recursion step: a hook on each reasoning module adds it to the state it returns. The
        # per-row std follows the working rows (`noise_std[0]` is replaced when the batch is compacted).
        hooks, noise_std = [], [None]
        if step_noise is not None and bool((step_noise[0] > 0).any()):
            noise_std[0] = step_noise[0].to(device, torch.float32)[:, None, None]
            generator = step_noise[1]

            def add_noise(module, args, output):
                draw = torch.randn(output.shape, generator=generator, device=output.device, dtype=torch.float32)
                return output + (noise_std[0] * draw).to(output.dtype)

            hooks = [m.register_forward_hook(add_noise) for m in self.modules() if isinstance(m, ReasoningModule)]
            step_fn = type(self)._solve_step  # hooks run eagerly

        # The working tensors hold the rows in `rows` (indices into the batch). Stopped rows keep computing,
        # masked out by `running`, until at most COMPACT_AT of the working rows still run; then the working set
        # shrinks to the running rows. Few halts cost a few masked `where`s, not a re-indexing of every tensor.
        rows = torch.arange(batch, device=device)
        running = None  # None: every working row runs
        out_pred = out_halt = out_continue = out_steps = out_residual = out_logits = None

        def flush():
            predictions[rows], steps[rows], q_halt_out[rows], q_continue_out[rows] = (
                out_pred, out_steps, out_halt.to(q_dtype), out_continue.to(q_dtype))
            if track_residual:
                residual_out[rows] = out_residual
            if return_logits:
                logits_out[rows] = out_logits

        try:
            for step in range(1, max_steps + 1):
                if track_residual:
                    previous = (z_H, z_L)
                if return_logits:
                    z_H, z_L = self.reasoning_segment(z_H, z_L, x)
                    logits, q_halt, q_continue = self.heads(z_H)
                    pred, logits = logits.argmax(-1), logits.float()
                else:
                    z_H, z_L, pred, q_halt, q_continue = step_fn(self, z_H, z_L, x)
                residual = _relative_change(previous, (z_H, z_L)) if track_residual else None
                if running is None:
                    out_pred, out_halt, out_continue = pred, q_halt, q_continue
                    out_steps = torch.full_like(rows, step)
                    out_residual = residual
                    out_logits = logits if return_logits else None
                else:
                    out_pred = torch.where(running[:, None], pred, out_pred)
                    out_halt = torch.where(running, q_halt, out_halt)
                    out_continue = torch.where(running, q_continue, out_continue)
                    out_steps = torch.where(running, step, out_steps)
                    if track_residual:
                        out_residual = torch.where(running, residual, out_residual)
                    if return_logits:
                        out_logits = torch.where(running[:, None, None], logits, out_logits)
                if return_trace:
                    flush()
                    trace.append(predictions.clone())
                if early_exit and step < max_steps:
                    halted = self.halts(q_halt, q_continue)
                    running = ~halted if running is None else running & ~halted
                    num_running = int(running.sum())
                    if num_running == 0:
                        break
                    if num_running <= self.COMPACT_AT * rows.numel():
                        flush()
                        keep = running.nonzero().squeeze(1)
                        rows, z_H, z_L, x = rows[keep], z_H[keep], z_L[keep], x[keep]
                        if noise_std[0] is not None:
                            noise_std[0] = noise_std[0][keep]
                        running = None
        finally:
            for hook in hooks:
                hook.remove()
        flush()
        return HRMSolveOutput(predictions=predictions, steps=steps, q_halt_logits=q_halt_out.float(),
                              q_continue_logits=q_continue_out.float(),
                              trace=torch.stack(trace) if return_trace else None, residual=residual_out,
                              logits=logits_out)

    # ---- fine-tuning helpers ----
    def resize_puzzle_embeddings(self, num_puzzle_identifiers: int) -> None:
        """Change the number of puzzle identifiers; kept rows are copied, new rows start at zero."""
        if isinstance(num_puzzle_identifiers, bool) or not isinstance(num_puzzle_identifiers, numbers.Integral):
            raise ValueError(f"num_puzzle_identifiers must be an integer >= 1, got {num_puzzle_identifiers!r}")
        if num_puzzle_identifiers < 1:
            raise ValueError(f"num_puzzle_identifiers must be >= 1, got {num_puzzle_identifiers}")
        if self.config.puzzle_emb_ndim == 0:
            raise ValueError("this model has no puzzle embeddings (puzzle_emb_ndim=0)")
        old = self.puzzle_embedding.weight
        new = torch.zeros(num_puzzle_identifiers, old.shape[1], dtype=old.dtype, device=old.device)
        keep = min(num_puzzle_identifiers, old.shape[0])
        new[:keep] = old[:keep]
        self.puzzle_embedding.weight = new
        self.config.num_puzzle_identifiers = num_puzzle_identifiers

    def adapt_to_task(self, task, **kwargs):
        """Learn puzzle-embedding rows for an ARC task the model never trained on, from its demonstration pairs,
        with the network frozen; then `solve_arc_task(model, task, versions=result.versions)` or the pipeline
        solves it. Arguments and result: `modeling_hrm.adaptation.adapt_to_task`."""
        try:
            from modeling_hrm.adaptation import adapt_to_task
        except ImportError:  # remote code: the adaptation is part of the hrm package, not of a model folder
            raise ImportError("adapt_to_task needs the hrm package installed (modeling_hrm.adaptation)") from None
        return adapt_to_task(self, task, **kwargs)


__all__ = ["RecursiveReasoningModel", "HRMOutput", "HRMCarry", "HRMSolveOutput", "ReasoningBlock",
           "ReasoningModule", "Attention", "SwiGLU", "PuzzleEmbedding", "IGNORE_LABEL_ID"]
