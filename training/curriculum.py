"""Depth curriculum: the recursion depth (H_cycles × L_cycles per segment) grown during training, shallow cycles
first, then the model's own depth.

`training.depth_curriculum: "1x2:0.25,2x4:0.5"` trains at 1 × 2 cycles for the first quarter of max_steps, at
2 × 4 until half, then at the model's config depth to the end. A stage ends at a fraction of max_steps (a number
with a decimal point, in (0, 1)) or at an optimizer step (an integer). Evaluation, checkpoints and the saved model
always use the model's own depth: the curriculum only changes the segments that training steps run
(`model.recursion_depth`). The depth of a step depends on the step alone, so a resumed run is bitwise the same.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_STAGE = re.compile(r"^\s*(\d+)\s*x\s*(\d+)\s*:\s*(\d+|\d*\.\d+)\s*$")


@dataclass(frozen=True)
class DepthStage:
    H_cycles: int
    L_cycles: int
    until: int | float  # the first step past the stage (int), or that fraction of max_steps (float)

    def end(self, max_steps: int) -> int:
        return self.until if isinstance(self.until, int) else round(self.until * max_steps)


def parse_depth_curriculum(text: str) -> list[DepthStage]:
    """Stages from `HxL:UNTIL,HxL:UNTIL,...` (see the module docstring). Raises ValueError naming the problem."""
    stages = []
    for part in text.split(","):
        match = _STAGE.match(part)
        if not match:
            raise ValueError(f"training.depth_curriculum: {part.strip()!r} is not a stage HxL:UNTIL (e.g. 1x2:0.25 "
                             f"or 1x2:500; UNTIL a fraction of max_steps or a step)")
        h, l, until = match.groups()
        until = float(until) if "." in until else int(until)
        if int(h) < 1 or int(l) < 1:
            raise ValueError(f"training.depth_curriculum: {part.strip()!r}: cycles must be >= 1")
        if isinstance(until, float) and not 0 < until < 1:
            raise ValueError(f"training.depth_curriculum: {part.strip()!r}: a fraction of max_steps must lie in (0, 1)")
        if isinstance(until, int) and until < 1:
            raise ValueError(f"training.depth_curriculum: {part.strip()!r}: the stage must end at step >= 1")
        stages.append(DepthStage(int(h), int(l), until))
    return stages


def check_depth_curriculum(stages: list[DepthStage], config, max_steps: int | None = None) -> None:
    """Every stage no deeper than the model's config (it grows toward that depth) and, when max_steps is known,
    stages that end in order and before the last step (so the run reaches the model's depth)."""
    for stage in stages:
        if stage.H_cycles > config.H_cycles or stage.L_cycles > config.L_cycles:
            raise ValueError(f"training.depth_curriculum: stage {stage.H_cycles}x{stage.L_cycles} is deeper than the "
                             f"model's {config.H_cycles}x{config.L_cycles} cycles (the curriculum grows toward them)")
    if max_steps is None:
        return
    ends = [stage.end(max_steps) for stage in stages]
    if any(b <= a for a, b in zip([0, *ends], ends)):
        raise ValueError(f"training.depth_curriculum: stages must end at increasing steps >= 1, got {ends} "
                         f"with max_steps {max_steps}")
    if ends[-1] >= max_steps:
        raise ValueError(f"training.depth_curriculum: the last stage ends at step {ends[-1]}, not before max_steps "
                         f"{max_steps}: training would never run at the model's depth")


def depth_at_step(stages: list[DepthStage], step: int, max_steps: int) -> tuple[int, int] | None:
    """(H_cycles, L_cycles) of optimizer step `step` (0-based), or None once past every stage (the model's depth)."""
    for stage in stages:
        if step < stage.end(max_steps):
            return stage.H_cycles, stage.L_cycles
    return None
