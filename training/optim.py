"""Optimisers and learning-rate schedule of the HRM recipe (spec §4).

* `AdamATan2`: Adam with `atan2` in place of the epsilon division, as the original trains HRM:

      p ← p · (1 − lr · wd)
      m ← β1 m + (1 − β1) g,   v ← β2 v + (1 − β2) g²
      p ← p − lr / (1 − β1^t) · atan2(m, sqrt(v / (1 − β2^t)))

  Why not `adam-atan2-pytorch`? Its `AdamAtan2` steps by `lr · a · atan2(m / (1 − β1^t), b · sqrt(v̂))`: the
  first bias correction sits *inside* the atan2 (and `a = 1.27`, `b = 1` by default). atan2 is not linear in its
  first argument, so even with `a = b = 1` the two differ whenever |m| is not small against sqrt(v̂) — exactly
  the first steps, where 1/(1 − β1^t) is largest (t = 1: 10×). `tests/test_training_optim.py` shows the
  difference numerically and checks ours against the formula above.
* `sign_sgd_puzzle_embedding_step`: the sparse sign-SGD update of the puzzle-embedding table on the rows used
  by the batch, with ids and gradients gathered from every process so all ranks apply the same update.
* `lr_at_step`: linear warm-up, then cosine decay to `lr · lr_min_ratio`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch.optim import Optimizer

from modeling_hrm.adaptation import sign_sgd_rows


class AdamATan2(Optimizer):
    """Adam-atan2 exactly as the original HRM code (no epsilon; decoupled weight decay scaled by lr).

    Args:
        params: parameters or parameter groups.
        lr: learning rate.
        betas: (β1, β2); the HRM recipe uses (0.9, 0.95).
        weight_decay: decoupled decay, applied as `p *= 1 - lr * weight_decay` before the update.
    """

    def __init__(self, params: Iterable, lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.95),
                 weight_decay: float = 0.0):
        if not lr >= 0.0:
            raise ValueError(f"AdamATan2 lr must be >= 0, got {lr}")
        if not all(0.0 <= b < 1.0 for b in betas) or len(betas) != 2:
            raise ValueError(f"AdamATan2 betas must be two values in [0, 1), got {betas}")
        if not weight_decay >= 0.0:
            raise ValueError(f"AdamATan2 weight_decay must be >= 0, got {weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            lr, wd = group["lr"], group["weight_decay"]
            beta1, beta2 = group["betas"]
            for p in params:
                if p.grad.is_sparse:
                    raise ValueError("AdamATan2 does not support sparse gradients")
                state = self.state[p]
                if not state:
                    # `step` as a float tensor like torch's Adam, so optimizer state dicts save/load uniformly.
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                t = float(state["step"])
                grad, exp_avg, exp_avg_sq = p.grad, state["exp_avg"], state["exp_avg_sq"]
                if wd != 0:
                    p.mul_(1.0 - lr * wd)
                exp_avg.lerp_(grad, 1.0 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
                bias_correction1 = 1.0 - beta1 ** t
                bias_correction2 = 1.0 - beta2 ** t
                denom = (exp_avg_sq / bias_correction2).sqrt_()
                p.add_(torch.atan2(exp_avg, denom), alpha=-lr / bias_correction1)
        return loss


@torch.no_grad()
def sign_sgd_puzzle_embedding_step(weight: torch.Tensor, ids: torch.Tensor, grads: torch.Tensor, lr: float,
                                   weight_decay: float) -> torch.Tensor:
    """Sparse sign-SGD on the rows of `weight` named by `ids` (in place); returns the updated row ids.

    `ids` (n,) and `grads` (n, dim) are the (already gathered) rows of every process; gradients of a repeated
    id are summed first, then `w[id] = w[id] · (1 − lr · wd) − lr · sign(Σ g)`. Rows not in `ids` do not move
    (weight decay included), as in the original. If any gradient is inf or NaN (an overflowed fp16 loss scale),
    the whole update is skipped, as the loss scaler skips the optimizer step: `sign(NaN)` would otherwise write
    NaN into the table. The check stays on the device (no host synchronisation).
    """
    if ids.dim() != 1 or grads.dim() != 2 or grads.shape[0] != ids.shape[0] or grads.shape[1] != weight.shape[1]:
        raise ValueError(f"puzzle-embedding update: ids {tuple(ids.shape)} and grads {tuple(grads.shape)} do not "
                         f"match the table {tuple(weight.shape)}")
    return sign_sgd_rows(weight, ids, grads, lr, weight_decay)


def lr_at_step(step: int, base_lr: float, warmup_steps: int, total_steps: int, min_ratio: float = 1.0) -> float:
    """Learning rate of optimizer step `step`, counted from 1 as the original does (its first update uses step 1):
    linear warm-up over `warmup_steps`, then cosine from `base_lr` down to `base_lr · min_ratio` at `total_steps`
    (min_ratio 1.0 = constant after warm-up, the original's default).
    """
    if step < warmup_steps:
        return base_lr * step / max(1, warmup_steps)
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    progress = min(max(progress, 0.0), 1.0)
    return base_lr * (min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress)))


def build_optimizer(name: str, params, lr: float, betas: tuple[float, float], weight_decay: float) -> Optimizer:
    """`adam_atan2` (the HRM recipe) or `adamw` (torch's, eps 1e-8) over `params`, weight decay on all of them."""
    if name == "adam_atan2":
        return AdamATan2(params, lr=lr, betas=betas, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay)
    raise ValueError(f"training.optimizer must be 'adam_atan2' or 'adamw', got {name!r}")


__all__ = ["AdamATan2", "sign_sgd_puzzle_embedding_step", "lr_at_step", "build_optimizer"]
