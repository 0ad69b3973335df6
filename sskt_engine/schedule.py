"""Learning-rate schedules as a pure function of the step: nothing to checkpoint, and a
resumed run gets exactly the rate an uninterrupted one would have had."""

from __future__ import annotations

import bisect
import math

from .config import TrainConfig


def lr_factor(cfg: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """Multiplier of ``cfg.lr`` at optimizer step ``step`` (0-based), updated every step."""
    steps_per_epoch = max(steps_per_epoch, 1)
    warmup = cfg.warmup_epochs * steps_per_epoch
    if step < warmup:
        return (step + 1) / warmup
    epoch = step / steps_per_epoch
    if cfg.schedule == "multistep":
        return cfg.gamma ** bisect.bisect_right(list(cfg.milestones), int(epoch))
    if cfg.schedule == "cosine":
        total = max(cfg.epochs * steps_per_epoch - warmup, 1)
        progress = min((step - warmup) / total, 1.0)
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0
