"""The optimizer steps and the learning rate of each: the number of steps the schedule spans, the
learning rate of step ``s`` and the micro-batches each process accumulates per step."""

from __future__ import annotations

import math


def lr_at(step: int, total: int, lr: float, warmup: int, warmup_start: float, floor: float = 0.0) -> float:
    """The learning rate of optimizer step ``step`` (0-based) of ``total``: linear warm-up from
    ``warmup_start`` to ``lr`` over ``warmup`` steps, then linear decay that reaches ``floor`` at ``total``
    (DeepSpeed's WarmupDecayLR with ``warmup_type: linear``, ``warmup_min_lr = warmup_start``)."""
    if warmup and step < warmup:
        return warmup_start + (lr - warmup_start) * step / warmup
    rest = max(1, total - warmup)
    return floor + (lr - floor) * max(0.0, (total - step) / rest)


def lr_of_step(step: int, total: int, cfg: dict) -> float:
    """The learning rate optimizer step ``step`` runs at. ``lr_timing: current``: ``lr_at(step)``;
    ``lagged``: as the authors' DeepSpeed 0.15.1 ran, whose WarmupDecayLR sets nothing at creation and steps
    after each optimizer step: step 0 at the optimizer's own ``lr``, step k at ``lr_at(k - 1)``."""
    lr, warmup = float(cfg["lr"]), int(cfg.get("warmup_steps", 0))
    start, floor = float(cfg.get("warmup_start_lr", 0.0)), float(cfg.get("lr_floor", 0.0))
    timing = cfg.get("lr_timing", "current")
    if timing == "lagged":
        return lr if step == 0 else lr_at(step - 1, total, lr, warmup, start, floor)
    if timing != "current":
        raise ValueError(f"train.lr_timing: {timing!r} (current | lagged)")
    return lr_at(step, total, lr, warmup, start, floor)


def schedule_stats(cfg: dict, total: int) -> dict:
    """The schedule as ``train_stats.json`` records it."""
    return {
        "lr": float(cfg["lr"]),
        "warmup_steps": int(cfg.get("warmup_steps", 0)),
        "warmup_start_lr": float(cfg.get("warmup_start_lr", 0.0)),
        "lr_floor": float(cfg.get("lr_floor", 0.0)),
        "lr_timing": cfg.get("lr_timing", "current"),
        "total_steps": total,
    }


def accumulation_steps(batch: int, micro: int, world: int) -> int:
    """Micro-batches each process accumulates per optimizer step, so that the effective batch is ``batch``
    whatever the number of processes."""
    if batch % (micro * world):
        raise ValueError(
            f"train.batch_size {batch} is not a multiple of micro_batch_size {micro} x {world} processes: "
            "the effective batch would change with the number of processes"
        )
    return batch // (micro * world)


def steps_per_epoch(examples: int, batch: int) -> int:
    """Optimizer steps one epoch takes: the last effective batch of an epoch may be short."""
    return math.ceil(examples / batch)


def schedule_length(n: int, batch: int, epochs: int, how: str) -> int:
    """The LR schedule's total steps. ``ceil``: the optimizer steps taken, ceil(n / batch) per epoch;
    ``authors``: ``n // batch * epochs`` (their run_gen.py's total_num_steps), shorter by one step per epoch
    when batch does not divide n: the steps past it run at the floor (DeepSpeed's WarmupDecayLR does so)."""
    if how not in ("ceil", "authors"):
        raise ValueError(f"train.total_steps: {how!r} (ceil | authors)")
    return (math.ceil(n / batch) if how == "ceil" else n // batch) * epochs


def total_steps(examples: int, batch: int, epochs: int, cfg: dict) -> int:
    """The number of optimizer steps the learning-rate schedule spans (``lr_at``'s ``total``),
    ``batch`` being the effective batch: ``train.total_steps`` (``schedule_length``) says how it is counted;
    the run itself always takes ``steps_per_epoch(examples, batch) * epochs`` steps."""
    return schedule_length(examples, batch, epochs, cfg.get("total_steps", "ceil"))
