"""``finetune()``: the method, step by step: load, data, loop, save."""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import time
from pathlib import Path

from ..prompts import make_layout
from .data import training_data
from .loop import Run, train
from .schedule import accumulation_steps, steps_per_epoch, total_steps
from .setup import check_gpu, load_model, make_accelerator, prepare, resolve_deepspeed_config
from .state import fingerprint, remove_state, resume, rmtree


def optimizer(model, cfg: dict):
    """The authors' AdamW over the trainable parameters (the learning rate is set before every step)."""
    import torch

    return torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=float(cfg["lr"]),
        betas=tuple(cfg.get("betas", (0.9, 0.999))),
        eps=float(cfg.get("eps", 1e-6)),
        weight_decay=float(cfg.get("weight_decay", 0.05)),
    )


def staging_folder(accelerator, out: Path, every: int, resumed: bool) -> Path | None:
    """Where the main process writes the checkpoint before it is renamed ``out`` (None elsewhere): kept across
    a kill when the run is resumable (its epoch checkpoints), a fresh temporary folder otherwise."""
    if not accelerator.is_main_process:
        return None
    for old in out.parent.glob(f".{out.name}.*.tmp"):  # a killed run's staging folders
        rmtree(old)
    if not every:
        return Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    stage = out.with_name(f".{out.name}.partial")
    if not resumed:
        rmtree(stage)
    stage.mkdir(exist_ok=True)
    return stage


def publish(run: Run, out: Path) -> None:
    """The staged checkpoint becomes ``out``; the saved state goes."""
    os.chmod(run.stage, 0o755)
    if out.exists():
        shutil.rmtree(out)
    os.replace(run.stage, out)
    run.stage = None
    remove_state(run.state_dir)


def finetune(
    model_path: str,
    problems: list[dict],
    selected: list[dict],
    out_dir: str,
    cfg: dict,
    layout="chat",
    device: str = "auto",
    progress: bool = True,
    tensorboard_dir: str | None = None,
) -> dict:
    """Fine-tune through Hugging Face Accelerate: one process on a CPU or GPU when run directly, several
    (DDP, or DeepSpeed ZeRO) when started with ``accelerate launch``. ``cfg["lora"]`` switches to LoRA
    adapters (PEFT), merged into the saved checkpoint. ``layout`` is a layout object or name
    (``prompt.layout``); ``cfg["tokenize"]`` the tokenisation policy. ``cfg["checkpoint_every"]``: save the
    training state every that many optimizer steps in ``<out>.state/`` and resume from it (package doc).
    ``cfg["report_to"] == "tensorboard"``: per-step loss, learning rate and gradient norm to TensorBoard in
    ``tensorboard_dir`` (default ``<out>.tensorboard``)."""
    import torch
    from tqdm import tqdm

    check_gpu(device, cfg)
    resolve_deepspeed_config()
    if isinstance(layout, str):
        layout = make_layout(layout, target=cfg.get("target", "after_first_def"))
    seed = int(cfg.get("seed", 1234))
    random.seed(seed)
    torch.manual_seed(seed)
    out = Path(out_dir)
    world, micro, batch = int(os.environ.get("WORLD_SIZE", "1")), int(cfg["micro_batch_size"]), int(cfg["batch_size"])
    accum = accumulation_steps(batch, micro, world)
    tb_dir = Path(tensorboard_dir) if tensorboard_dir else out.with_name(out.name + ".tensorboard")
    accelerator = make_accelerator(cfg, device, accum, tb_dir if cfg.get("report_to") == "tensorboard" else None)
    # load
    model, tok = load_model(model_path, cfg, accelerator)
    # data
    examples, items, dropped, order, loader = training_data(tok, problems, selected, layout, cfg, seed)
    total = total_steps(len(items), micro * world * accum, int(cfg["epochs"]), cfg)
    opt = optimizer(model, cfg)
    model, opt, loader = prepare(accelerator, model, opt, loader)
    info = {
        "examples": len(items),
        "dropped_too_long": dropped,
        "original": sum(e["origin"] == "original" for e in examples),
        "selected": sum(e["origin"] == "selected" for e in examples),
        "processes": world,
        "gradient_accumulation": accum,
        "effective_batch": micro * world * accum,
    }
    fp = fingerprint(model_path, problems, selected, cfg, world, str(accelerator.distributed_type))
    run = Run(
        accelerator, model, opt, loader, order, tok, cfg, total, fp, out.with_name(out.name + ".state"), None, info
    )
    # loop, resumed where a saved state left off
    prog = resume(accelerator, run.state_dir, fp, run.every, total)
    if prog:
        run.history, run.step, run.start_epoch, run.skip = prog["history"], prog["step"], prog["epoch"], prog["batches"]
        run.resumed = prog.get("resumed", []) + [run.step]
    run.stage = staging_folder(accelerator, out, run.every, bool(prog))
    if cfg.get("report_to") == "tensorboard":
        accelerator.init_trackers(tb_dir.name)
    run.t0 = time.time() - (prog.get("seconds", 0.0) if prog else 0.0)
    show = progress and accelerator.is_main_process
    run.taken = steps_per_epoch(len(items), micro * world * accum) * int(cfg["epochs"])  # total: the schedule's
    bar = tqdm(total=run.taken, initial=run.step, desc="finetune", unit="step", disable=not show, mininterval=5)
    try:
        train(run, int(cfg["epochs"]), bar)
        bar.close()
        accelerator.wait_for_everyone()
        # save
        stats = run.save(run.stage, int(cfg["epochs"]))
        if run.stage is not None:
            publish(run, out)
    finally:
        if run.stage is not None and run.stage.exists() and not run.every:
            shutil.rmtree(run.stage, ignore_errors=True)
    accelerator.wait_for_everyone()
    for tracker in accelerator.trackers:  # (end_training() would also end the process group)
        tracker.finish()
    return stats
