"""What HRM (modeling_hrm.py) and TRM (modeling_trm.py) share: numerics, the Transformer block, the puzzle
embedding, outputs, and `RecursiveReasoningModel`, whose `forward` is one ACT segment of deep supervision and
whose `solve` runs segments until the Q head halts. A model only says which modules it has and how one
segment updates the two states (`reasoning_segment`).

Read top to bottom: numerics (RMSNorm, RoPE, stablemax) → blocks → outputs → the ACT model.
The behaviour follows the original codes (github.com/sapientinc/HRM, github.com/SamsungSAILMontreal/
TinyRecursiveModels); where they differ from the papers' text the code wins (post-norm blocks, stablemax loss,
ACT unused at evaluation, Q-head bias −5).
"""

import math
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
    """cos / sin tables of shape (seq_len, head_dim) for rotate-half RoPE, in float32."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32, device=device) / head_dim))
    freqs = torch.outer(torch.arange(seq_len, dtype=torch.float32, device=device), inv_freq)
    angles = torch.cat((freqs, freqs), dim=-1)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Llama-style (non-interleaved) rotation of x (..., seq, head_dim), done in (at least) float32."""
    dtype = x.dtype
    x = _at_least_fp32(x)
    x1, x2 = x.chunk(2, dim=-1)
    rotated = torch.cat((-x2, x1), dim=-1)
    return (x * cos + rotated * sin).to(dtype)


def stablemax_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-token cross entropy under stablemax (s(x) = 1/(1-x) for x < 0, x + 1 otherwise), in float64.

    Returns a tensor of labels' shape with 0 where the label is IGNORE_LABEL_ID.
    """
    logits = logits.double()
    # clamp: the unused branch of `where` must stay finite (1/(1-x) is inf at x = 1, and NaN in its gradient)
    s = torch.where(logits < 0, 1 / (1 - logits.clamp(max=0)), logits + 1)
    log_probs = torch.log(s / s.sum(dim=-1, keepdim=True))
    valid = labels != IGNORE_LABEL_ID
    picked = torch.gather(log_probs, -1, torch.where(valid, labels, 0).unsqueeze(-1)).squeeze(-1)
    return torch.where(valid, -picked, 0)


def softmax_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-token softmax cross entropy in float32, 0 where the label is IGNORE_LABEL_ID."""
    flat = F.cross_entropy(logits.float().flatten(0, -2), labels.flatten(), ignore_index=IGNORE_LABEL_ID,
                           reduction="none")
    return flat.view(labels.shape)


# --------------------------------------------------------------------------------------------------
# Transformer block
# --------------------------------------------------------------------------------------------------
class Attention(nn.Module):
    """Bidirectional multi-head attention with a fused qkv projection; no mask (PAD is an ordinary token)."""

    def __init__(self, config: RecursiveReasoningConfig):
        super().__init__()
        self.num_heads = config.num_heads
        self.head_dim = config.head_dim
        self.qkv_proj = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=False)
        self.o_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
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
        self.gate_up_proj = nn.Linear(width, 2 * intermediate_size, bias=False)
        self.down_proj = nn.Linear(intermediate_size, width, bias=False)

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
    """

    predictions: torch.Tensor | None = None
    steps: torch.Tensor | None = None
    q_halt_logits: torch.Tensor | None = None
    q_continue_logits: torch.Tensor | None = None
    trace: torch.Tensor | None = None


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

    def __init__(self, config: RecursiveReasoningConfig):
        super().__init__(config)
        self.embed_scale = math.sqrt(config.hidden_size)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        if config.pos_encodings == "learned":
            self.embed_pos = nn.Embedding(config.total_seq_len, config.hidden_size)
        self.puzzle_embedding = (PuzzleEmbedding(config.num_puzzle_identifiers, config.puzzle_emb_ndim)
                                 if config.puzzle_emb_ndim > 0 else None)
        self._rotary_cache: dict = {}

    def add_states_and_heads(self):
        """Initial states and output heads; subclasses call this after adding their reasoning modules (module
        order fixes the order of initialisation draws, kept as in the first release)."""
        self.register_buffer("H_init", torch.empty(self.config.hidden_size), persistent=True)
        self.register_buffer("L_init", torch.empty(self.config.hidden_size), persistent=True)
        self.lm_head = nn.Linear(self.config.hidden_size, self.config.vocab_size, bias=False)
        self.q_head = nn.Linear(self.config.hidden_size, 2, bias=True)

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
    def _rotary(self, device):
        if self.config.pos_encodings != "rope":
            return None
        key = (str(device), self.config.total_seq_len)
        if key not in self._rotary_cache:
            self._rotary_cache[key] = rotary_cos_sin(self.config.total_seq_len, self.config.head_dim,
                                                     self.config.rope_theta, device)
        return self._rotary_cache[key]

    def input_embeddings(self, input_ids: torch.Tensor, puzzle_identifiers: torch.Tensor) -> torch.Tensor:
        """The input network: sqrt(hidden) · [puzzle-embedding positions; token embeddings] (+ positions)."""
        embedding = self.embed_tokens(input_ids)
        if self.config.puzzle_emb_ndim > 0:
            puzzle = self.puzzle_embedding(puzzle_identifiers).to(embedding.dtype)
            padding = self.config.puzzle_emb_len * self.config.hidden_size - puzzle.shape[-1]
            if padding:
                puzzle = F.pad(puzzle, (0, padding))
            embedding = torch.cat((puzzle.view(-1, self.config.puzzle_emb_len, self.config.hidden_size), embedding),
                                  dim=1)
        if self.config.pos_encodings == "learned":
            embedding = 0.707106781 * (embedding + self.embed_pos.weight.to(embedding.dtype))
        return self.embed_scale * embedding

    def initial_states(self, batch_size: int, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """(z_H, z_L) at the start of a puzzle: H_init / L_init broadcast to every position."""
        shape = (batch_size, self.config.total_seq_len, self.config.hidden_size)
        return (self.H_init.to(device, dtype).expand(shape).clone(),
                self.L_init.to(device, dtype).expand(shape).clone())

    def heads(self, z_H: torch.Tensor):
        """Output network and Q head: (token logits, q_halt, q_continue)."""
        logits = self.lm_head(z_H[:, self.config.puzzle_emb_len:])
        q = _at_least_fp32(self.q_head(z_H[:, 0]))
        return logits, q[..., 0], q[..., 1]

    def halts(self, q_halt: torch.Tensor, q_continue: torch.Tensor) -> torch.Tensor:
        """The Q head's halting decision: q_halt > 0 with halt-only ACT, else q_halt > q_continue."""
        return q_halt > 0 if self.config.no_ACT_continue else q_halt > q_continue

    # ---- one ACT segment ----
    def initial_carry(self, input_ids: torch.Tensor, puzzle_identifiers: torch.Tensor | None = None,
                      labels: torch.Tensor | None = None) -> HRMCarry:
        """A carry in which every row counts as halted, so the next call starts every row on its batch row."""
        batch = input_ids.shape[0]
        device = input_ids.device
        dtype = self.embed_tokens.weight.dtype
        z_H, z_L = self.initial_states(batch, device, dtype)
        return HRMCarry(z_H=z_H, z_L=z_L, steps=torch.zeros(batch, dtype=torch.long, device=device),
                        halted=torch.ones(batch, dtype=torch.bool, device=device), inputs=input_ids,
                        labels=labels, puzzle_identifiers=puzzle_identifiers)

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

        # Rows that halted restart: fresh states, step 0, and the example at their row of the new batch.
        reset = carry.halted
        dtype = self.embed_tokens.weight.dtype
        init_H, init_L = self.H_init.to(dtype), self.L_init.to(dtype)
        z_H = torch.where(reset[:, None, None], init_H, carry.z_H.to(dtype))
        z_L = torch.where(reset[:, None, None], init_L, carry.z_L.to(dtype))
        steps = torch.where(reset, 0, carry.steps)
        inputs = torch.where(reset[:, None], input_ids, carry.inputs)
        ids = torch.where(reset, puzzle_identifiers, carry.puzzle_identifiers)
        current_labels = None if labels is None else torch.where(reset[:, None], labels, carry.labels)

        x = self.input_embeddings(inputs, ids)
        z_H, z_L = self.reasoning_segment(z_H, z_L, x)
        logits, q_halt, q_continue = self.heads(z_H)

        steps = steps + 1
        target_q_continue = None
        with torch.no_grad():
            is_last_step = steps >= cfg.halt_max_steps
            halted = is_last_step
            # As the originals, the Q head decides halting only in training; in eval mode every row runs
            # halt_max_steps segments (`solve(early_exit=True)` is the way to halt early at inference).
            if self.training and cfg.halt_max_steps > 1:
                halted = halted | self.halts(q_halt, q_continue)
                # Exploration: some rows must run at least a random number of steps in 2..halt_max_steps.
                explore = torch.rand_like(q_halt) < cfg.halt_exploration_prob
                min_steps = explore * torch.randint_like(steps, low=2, high=cfg.halt_max_steps + 1)
                halted = halted & (steps >= min_steps)
                if not cfg.no_ACT_continue:
                    # Q-learning target for "continue": the Q values one segment later (no replay, no target net).
                    next_z_H, _ = self.reasoning_segment(z_H, z_L, x)
                    _, next_halt, next_continue = self.heads(next_z_H)
                    target_q_continue = torch.sigmoid(
                        torch.where(is_last_step, next_halt, torch.maximum(next_halt, next_continue)))

        new_carry = HRMCarry(z_H=z_H.detach(), z_L=z_L.detach(), steps=steps, halted=halted, inputs=inputs,
                             labels=current_labels, puzzle_identifiers=ids)
        output = HRMOutput(logits=logits, q_halt_logits=q_halt, q_continue_logits=q_continue, carry=new_carry,
                           target_q_continue=target_q_continue)
        if current_labels is not None:
            self._add_losses(output, current_labels)
        return output

    def _add_losses(self, output: HRMOutput, labels: torch.Tensor) -> None:
        """lm loss (per-sequence mean of token losses), Q-halt BCE vs exact correctness, Q-continue BCE vs target."""
        valid = labels != IGNORE_LABEL_ID
        counts = valid.sum(-1)
        token_loss = (stablemax_cross_entropy if self.config.loss_type == "stablemax"
                      else softmax_cross_entropy)(output.logits, labels)
        lm_loss = (token_loss.sum(-1) / counts.clamp_min(1)).float()
        with torch.no_grad():
            correct = valid & (output.logits.argmax(-1) == labels)
            seq_correct = correct.sum(-1) == counts
        q_halt_loss = F.binary_cross_entropy_with_logits(output.q_halt_logits, seq_correct.float(), reduction="none")
        q_loss = q_halt_loss
        if output.target_q_continue is not None:
            q_continue_loss = F.binary_cross_entropy_with_logits(output.q_continue_logits, output.target_q_continue,
                                                                 reduction="none")
            q_loss = q_loss + q_continue_loss
            output.q_continue_loss = q_continue_loss.mean()
        output.loss = (lm_loss + self.config.q_loss_weight * q_loss).mean()
        output.lm_loss = lm_loss.mean()
        output.q_halt_loss = q_halt_loss.mean()

    # ---- inference ----
    @torch.no_grad()
    def solve(self, input_ids: torch.Tensor, puzzle_identifiers: torch.Tensor | None = None,
              max_steps: int | None = None, early_exit: bool = True, return_trace: bool = False) -> HRMSolveOutput:
        """Run segments until every row halts (the Q head, see `halts`) or `max_steps` is reached.

        Args:
            input_ids: puzzles, (batch, seq_len).
            puzzle_identifiers: puzzle-embedding rows, (batch,); defaults to 0.
            max_steps: segment budget; defaults to `config.halt_max_steps`. A larger value is inference-time scaling.
            early_exit: stop rows whose Q head halts (they leave the batch and cost nothing more). With
                `False` every row runs exactly `max_steps` segments (the original's evaluation).
            return_trace: also return the predictions after every segment.
        """
        puzzle_identifiers = self._check_inputs(input_ids, puzzle_identifiers, None, allow_empty=True)
        max_steps = self.config.halt_max_steps if max_steps is None else int(max_steps)
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        batch, device = input_ids.shape[0], input_ids.device
        dtype = self.embed_tokens.weight.dtype

        predictions = torch.zeros_like(input_ids, dtype=torch.long)
        steps = torch.zeros(batch, dtype=torch.long, device=device)
        q_halt_out = torch.zeros(batch, dtype=torch.float32, device=device)
        q_continue_out = torch.zeros(batch, dtype=torch.float32, device=device)
        trace = []

        # Only the rows still running are kept (compacted) in z_H, z_L, x and `active`.
        active = torch.arange(batch, device=device)
        x = self.input_embeddings(input_ids.long(), puzzle_identifiers)
        z_H, z_L = self.initial_states(batch, device, dtype)
        for step in range(1, max_steps + 1):
            z_H, z_L = self.reasoning_segment(z_H, z_L, x)
            logits, q_halt, q_continue = self.heads(z_H)
            predictions[active] = logits.argmax(-1)
            steps[active] = step
            q_halt_out[active] = q_halt
            q_continue_out[active] = q_continue
            if return_trace:
                trace.append(predictions.clone())
            if early_exit and step < max_steps:
                keep = ~self.halts(q_halt, q_continue)
                if not bool(keep.all()):
                    active, z_H, z_L, x = active[keep], z_H[keep], z_L[keep], x[keep]
                if active.numel() == 0:
                    break
        return HRMSolveOutput(predictions=predictions, steps=steps, q_halt_logits=q_halt_out,
                              q_continue_logits=q_continue_out,
                              trace=torch.stack(trace) if return_trace else None)

    # ---- fine-tuning helpers ----
    def resize_puzzle_embeddings(self, num_puzzle_identifiers: int) -> None:
        """Change the number of puzzle identifiers; kept rows are copied, new rows start at zero."""
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


__all__ = ["RecursiveReasoningModel", "HRMOutput", "HRMCarry", "HRMSolveOutput", "ReasoningBlock",
           "ReasoningModule", "Attention", "SwiGLU", "PuzzleEmbedding", "IGNORE_LABEL_ID"]
