"""The training loop: epochs of micro-batches, one optimizer step per effective batch at the learning rate
of that step, the loss history, and the saved states and epoch checkpoints along the way."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..ppl import token_nll
from .save import save_checkpoint
from .schedule import lr_of_step, schedule_stats
from .state import save_state

log = logging.getLogger("gift.train")


@dataclass
class Run:
    """One fine-tuning's moving parts and progress (what ``progress.json`` saves and ``train_stats.json``
    reports)."""

    accelerator: object
    model: object
    opt: object
    loader: object
    order: object
    tok: object
    cfg: dict
    total: int
    fingerprint: str
    state_dir: Path
    stage: Path | None
    info: dict  # examples, dropped, original, selected, processes, accumulation, effective batch
    history: list = field(default_factory=list)
    step: int = 0
    start_epoch: int = 0
    skip: int = 0
    resumed: list = field(default_factory=list)
    t0: float = 0.0
    taken: int = 0  # optimizer steps this fine-tuning takes in all

    @property
    def every(self) -> int:
        return int(self.cfg.get("checkpoint_every") or 0)

    def progress(self, next_epoch: int, batches: int) -> dict:
        keys = ("fingerprint", "step", "history", "resumed")
        return {
            **{k: getattr(self, k) for k in keys},
            "epoch": next_epoch,
            "batches": batches,
            "seconds": time.time() - self.t0,
        }

    def stats(self, epochs_done: int) -> dict:
        m = self.model
        return {
            **{k: self.info[k] for k in ("examples", "dropped_too_long", "original", "selected")},
            "steps": self.step,
            "epochs": epochs_done,
            "processes": self.info["processes"],
            "distributed_type": str(self.accelerator.distributed_type),
            "zero_stage": m.zero_optimization_stage() if hasattr(m, "zero_optimization_stage") else None,
            "gradient_accumulation": self.info["gradient_accumulation"],
            "effective_batch": self.info["effective_batch"],
            "lora": bool(self.cfg.get("lora")),
            "seconds": round(time.time() - self.t0, 1),
            "resumed_at_steps": self.resumed,
            "first_loss": self.history[0]["loss"] if self.history else None,
            "last_loss": self.history[-1]["loss"] if self.history else None,
            "lr_schedule": schedule_stats(self.cfg, self.total),
            "history": self.history,
        }

    def save(self, folder: Path | None, epochs_done: int) -> dict:
        stats = self.stats(epochs_done)
        target = folder if self.stage else Path(os.devnull)
        save_checkpoint(self.accelerator, self.model, self.tok, target, stats, bool(self.cfg.get("lora")))
        return stats


def rebuilds_buckets(ddp) -> bool:
    """Whether DDP rebuilds its buckets at the next forward (once, after the first backward that reduced;
    never with ``find_unused_parameters`` but a static graph, nor on its Python reducer or delayed all-reduce)."""
    unused = ddp.find_unused_parameters and not ddp.static_graph
    other = getattr(ddp, "_use_python_reducer", False) or getattr(ddp, "_delay_all_reduce_all_params", False)
    return not (getattr(ddp, "_has_rebuilt_buckets", True) or unused or other)


def free_first_bucket(model) -> None:
    """DDP reduces the first optimizer step's gradients in one bucket as large as the model, and at the next
    forward rebuilds its buckets in the order the backward produced them: with the gradients as views into the
    first bucket, it stays until every gradient has been copied into the new ones, a whole copy of the
    gradients beside them. Once that step's gradients are zeroed, each one becomes a zero without storage
    (an expanded scalar): the rebuild frees the first bucket before it fills the new ones with the same zeros,
    and the gradients are views into the new buckets again."""
    import torch

    if not isinstance(model, torch.nn.parallel.DistributedDataParallel) or not rebuilds_buckets(model):
        return
    for p in model.parameters():
        if p.grad is not None:
            p.grad = torch.zeros((), dtype=p.grad.dtype, device=p.grad.device).expand_as(p)


def micro_step(run: Run, ids, attn, lab, lr: float, running: list):
    """Forward and backward of one micro-batch at ``lr``; the optimizer steps when the accumulation is full.
    Returns the gradient norm when it did."""
    acc, model, opt = run.accelerator, run.model, run.opt
    for group in opt.param_groups:  # before backward: DeepSpeed steps inside accelerator.backward
        group["lr"] = lr
    gnorm = None
    with acc.accumulate(model):
        logits = model(input_ids=ids, attention_mask=attn).logits.float()
        nll = token_nll(logits, lab)
        loss = nll.sum() / (lab[:, 1:] != -100).sum().clamp(min=1)  # mean over the code tokens
        acc.backward(loss)
        running.append(float(loss.detach()))
        if acc.sync_gradients:
            gnorm = acc.clip_grad_norm_(model.parameters(), float(run.cfg.get("max_grad_norm", 1.0)))
        opt.step()
        opt.zero_grad(set_to_none=False)  # DDP: the gradients stay views into its buckets (no second copy)
        if acc.sync_gradients:
            free_first_bucket(model)
    return gnorm


def record_step(run: Run, epoch: int, lr: float, running: list, gnorm) -> None:
    """The optimizer step's row of the history: the mean loss over every process's micro-batches."""
    import torch

    acc = run.accelerator
    mean = torch.tensor(sum(running) / len(running), dtype=torch.float64, device=acc.device)
    row = {
        "step": run.step,
        "epoch": epoch,
        "loss": float(acc.reduce(mean, "mean")),  # over the processes' micro-batches
        "lr": lr,
        "grad_norm": float(gnorm) if gnorm is not None else None,
    }
    run.history.append(row)
    if run.cfg.get("report_to", "none") == "tensorboard":
        acc.log({f"train/{k}": row[k] for k in ("loss", "lr", "grad_norm")}, step=run.step)
    if acc.is_main_process:  # the steps taken (the LR schedule's length may differ: train.total_steps)
        log.info("step %d/%d epoch %d loss %.4f lr %.3e", run.step + 1, run.taken, epoch, row["loss"], lr)
    run.step += 1


def train_epoch(run: Run, epoch: int, bar) -> None:
    """One epoch; a resumed run skips the batches before its saved step."""
    run.order.epoch = epoch
    batches, running, gnorm = 0, [], None
    for ids, attn, lab in run.loader:
        batches += 1
        if batches <= run.skip:
            continue
        lr = lr_of_step(run.step, run.total, run.cfg)
        gnorm = micro_step(run, ids, attn, lab, lr, running)
        if run.accelerator.sync_gradients:
            record_step(run, epoch, lr, running, gnorm)
            running = []
            bar.update(1)
            if run.every and run.step % run.every == 0 and batches < len(run.loader):
                save_state(run.accelerator, run.state_dir, run.progress(epoch, batches))
    run.skip = 0


def train(run: Run, epochs: int, bar) -> None:
    """Every epoch from where the run stands, with the epoch checkpoints (``save_every_epoch``) and the
    saved states at epoch ends."""
    for epoch in range(run.start_epoch, epochs):
        train_epoch(run, epoch, bar)
        if run.cfg.get("save_every_epoch") and epoch < epochs - 1:
            run.save(run.stage / f"epoch{epoch + 1}" if run.stage else None, epoch + 1)
        if run.every and run.step % run.every == 0 and epoch < epochs - 1:  # after the epoch's checkpoint
            save_state(run.accelerator, run.state_dir, run.progress(epoch + 1, 0))
