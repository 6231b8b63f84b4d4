"""Fine-tuning on (seed description, code) pairs plus the original training pairs.

Loss on the code tokens only (prompt tokens masked). The optimiser follows the authors' recipe and every
number is a config knob: AdamW (betas, eps, weight decay), linear warm-up from ``warmup_start_lr`` to ``lr``
then linear decay to ``lr_floor`` (the authors' DeepSpeed WarmupDecayLR decays to its warm-up start,
5e-6), gradient clipping, gradient accumulation to an effective batch, a fixed seed. The learning rate of
optimizer step ``s`` is ``lr_at(s, ...)``, set on the optimizer before that step whatever the number of
processes (Accelerate's scheduler wrapper would advance a schedule once per process and step). Examples
longer than ``max_length`` tokens are dropped, as the authors do. With ``save_every_epoch`` the weights
after each epoch but the last are saved as ``<out>/epoch<k>/`` too (the authors evaluate every epoch).

Several processes (``accelerate launch --num_processes N``, DDP on GPUs or gloo on CPUs, or DeepSpeed
ZeRO-2): the gradient is accumulated over ``batch_size // (micro_batch_size * N)`` micro-batches per process,
so the effective batch, the data order, the number of optimizer steps and the learning rate of every step
are those of one process. With ``checkpoint_every: k`` the whole training state (weights, optimizer, step,
data position, random states) is saved every k optimizer steps in ``<out>.state/`` (atomically, with a
fingerprint of the config and inputs); a rerun resumes from it and deletes it once ``<out>`` is final.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from .config import TRAIN_HOW
from .ppl import token_nll
from .prompts import make_layout
from .tokens import Tokenization

log = logging.getLogger("gift.train")


def build_examples(problems: list[dict], selected: list[dict], include_original: bool = True) -> list[dict]:
    by_id = {p["task_id"]: p for p in problems}
    ex = []
    if include_original:
        ex += [{"task_id": p["task_id"], "code": p["reference"], "origin": "original"} for p in problems]
    ex += [
        {"task_id": s["task_id"], "code": s["code"], "origin": "selected"} for s in selected if s["task_id"] in by_id
    ]
    return ex


def tokenize_examples(
    tok, problems: list[dict], examples: list[dict], layout, max_length: int, tokenization: Tokenization | None = None
):
    """(input ids, labels) per example: the seed prompt (masked, label -100) and the layout's target of the
    code; examples longer than ``max_length`` tokens are dropped (returned as a count)."""
    tokenization = tokenization or Tokenization()
    by_id = {p["task_id"]: p for p in problems}
    items, dropped = [], 0
    for e in examples:
        p = by_id[e["task_id"]]
        prompt = layout.code_prompt(tok, p["description"], p)
        pid, cid = tokenization.pair_ids(tok, prompt, layout.target(e["code"], p))
        if len(pid) + len(cid) > max_length:
            dropped += 1
            continue
        items.append((pid + cid, [-100] * len(pid) + cid))
    return items, dropped


def lr_at(step: int, total: int, lr: float, warmup: int, warmup_start: float, floor: float = 0.0) -> float:
    """The learning rate of optimizer step ``step`` (0-based) of ``total``: linear warm-up from
    ``warmup_start`` to ``lr`` over ``warmup`` steps, then linear decay that reaches ``floor`` at ``total``
    (DeepSpeed's WarmupDecayLR with ``warmup_type: linear``, ``warmup_min_lr = warmup_start``)."""
    if warmup and step < warmup:
        return warmup_start + (lr - warmup_start) * step / warmup
    rest = max(1, total - warmup)
    return floor + (lr - floor) * max(0.0, (total - step) / rest)


def schedule_length(n: int, batch: int, epochs: int, how: str) -> int:
    """The LR schedule's total steps. ``ceil``: the optimizer steps taken, ceil(n / batch) per epoch;
    ``authors``: ``n // batch * epochs`` (their run_gen.py's total_num_steps), shorter by one step per epoch
    when batch does not divide n: the steps past it run at the floor (DeepSpeed's WarmupDecayLR does so)."""
    if how not in ("ceil", "authors"):
        raise ValueError(f"train.total_steps: {how!r} (ceil | authors)")
    return (math.ceil(n / batch) if how == "ceil" else n // batch) * epochs


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


def accumulation_steps(batch: int, micro: int, world: int) -> int:
    """Micro-batches each process accumulates per optimizer step, so that the effective batch is ``batch``
    whatever the number of processes."""
    if batch % (micro * world):
        raise ValueError(
            f"train.batch_size {batch} is not a multiple of micro_batch_size {micro} x {world} processes: "
            "the effective batch would change with the number of processes"
        )
    return batch // (micro * world)


def _epoch_order(torch):
    class EpochOrder(torch.utils.data.Sampler):
        """The order ``RandomSampler(generator=Generator().manual_seed(seed))`` gives epoch after epoch (epoch e
        is the generator's permutation 2e: it draws an empty remainder permutation after each), computed from
        ``epoch`` alone, so that every process and a resumed run see the same order."""

        def __init__(self, n: int, seed: int):
            self.n, self.seed, self.epoch = n, seed, 0

        def __len__(self):
            return self.n

        def __iter__(self):
            g = torch.Generator().manual_seed(self.seed)
            for _ in range(2 * self.epoch):
                torch.randperm(self.n, generator=g)
            return iter(torch.randperm(self.n, generator=g).tolist())

    return EpochOrder


def fingerprint(model_path: str, problems: list[dict], selected: list[dict], cfg: dict, world: int, kind: str) -> str:
    """What a saved training state must match to be resumed: the config (but the knobs that change how a run
    is watched, not what it computes), the training data, the base model's files and the process layout."""
    h = hashlib.sha256()
    ignore = {*TRAIN_HOW, "launcher"}
    h.update(json.dumps({k: v for k, v in cfg.items() if k not in ignore}, sort_keys=True, default=str).encode())
    h.update(json.dumps([problems, selected], sort_keys=True, default=str).encode())
    h.update(f"{world} {kind}".encode())
    model = Path(model_path)
    for f in sorted(model.rglob("*")) if model.is_dir() else []:
        if f.is_file():
            st = f.stat()
            h.update(f"{f.relative_to(model)} {st.st_size} {st.st_mtime_ns}".encode())
            if f.name == "config.json":
                h.update(f.read_bytes())
    return h.hexdigest()


def _rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _save_state(accelerator, state_dir: Path, progress: dict) -> None:
    """Every process writes its part into ``<state>.tmp``; the main process adds ``progress.json`` and swaps it
    in (``<state>`` -> ``<state>.old`` -> gone), so a kill at any moment leaves one complete state."""
    tmp, old = state_dir.with_name(state_dir.name + ".tmp"), state_dir.with_name(state_dir.name + ".old")
    if accelerator.is_main_process:
        _rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        with open(tmp / "progress.json", "w") as f:
            json.dump(progress, f)
            f.flush()
            os.fsync(f.fileno())
        _rmtree(old)
        if state_dir.exists():
            os.replace(state_dir, old)
        os.replace(tmp, state_dir)
        _rmtree(old)
    accelerator.wait_for_everyone()


def _saved_state(state_dir: Path) -> Path | None:
    """The complete saved state: ``<state>``, or ``<state>.old`` when a kill came in the middle of a swap."""
    for d in (state_dir, state_dir.with_name(state_dir.name + ".old")):
        if (d / "progress.json").is_file():
            return d
    return None


def _remove_state(state_dir: Path) -> None:
    for suffix in ("", ".tmp", ".old"):
        _rmtree(state_dir.with_name(state_dir.name + suffix))


def _collate(pad):
    import torch

    def collate(batch):
        width = max(len(ids) for ids, _ in batch)
        ids = torch.tensor([x + [pad] * (width - len(x)) for x, _ in batch])
        attn = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x, _ in batch])
        lab = torch.tensor([y + [-100] * (width - len(y)) for _, y in batch])
        return ids, attn, lab

    return collate


def _save(accelerator, model, tok, folder: Path, stats: dict, lora: bool) -> None:
    """The full weights (LoRA merged) as a plain safetensors checkpoint, with the tokenizer and the stats."""
    unwrapped = accelerator.unwrap_model(model)
    state = accelerator.get_state_dict(model)
    if accelerator.is_main_process:
        if lora:
            import copy

            merged = copy.deepcopy(unwrapped)
            merged.load_state_dict(state)
            unwrapped = merged.merge_and_unload()
            state = unwrapped.state_dict()
        unwrapped.config.use_cache = True
        folder.mkdir(parents=True, exist_ok=True)
        unwrapped.save_pretrained(folder, state_dict=state, safe_serialization=True)
        unwrapped.config.use_cache = False
        tok.save_pretrained(folder)
        (folder / "train_stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    accelerator.wait_for_everyone()


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
    training state every that many optimizer steps in ``<out>.state/`` and resume from it (module doc).
    ``cfg["report_to"] == "tensorboard"``: per-step loss, learning rate and gradient norm to TensorBoard in
    ``tensorboard_dir`` (default ``<out>.tensorboard``)."""
    import torch
    from accelerate import Accelerator, PartialState
    from tqdm import tqdm

    from . import model as model_mod

    if isinstance(layout, str):
        layout = make_layout(layout, target=cfg.get("target", "after_first_def"))
    tokenization = Tokenization.from_config(cfg)
    seed = int(cfg.get("seed", 1234))
    random.seed(seed)
    torch.manual_seed(seed)
    micro = int(cfg["micro_batch_size"])
    # DeepSpeed (ACCELERATE_USE_DEEPSPEED from the launcher's config) runs on its own accelerator: on CPUs
    # (DS_ACCELERATOR=cpu) Accelerate must not be told cpu=True (that is MULTI_CPU, DDP over gloo), and it
    # finds no backend of its own there, so deepspeed.comm would join the processes while Accelerate counted 1:
    # it is given DeepSpeed's CPU backend (gloo, or ccl with oneCCL)
    use_ds = os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"
    cpu = device == "cpu" and not use_ds
    backend = None
    if use_ds and int(os.environ.get("LOCAL_RANK", -1)) != -1 and not torch.cuda.is_available():
        import deepspeed.ops
        from deepspeed.accelerator import get_accelerator

        # DeepSpeed's CPU backend JIT-compiles its shared-memory all-reduce at start (minutes of C++ on a
        # fresh machine), which only its inference_all_reduce uses: training reduces through gloo/ccl
        deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
        backend = get_accelerator().communication_backend_name()
    PartialState(cpu=cpu, backend=backend)  # joins the process group (DDP; DeepSpeed's) before Accelerator()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    accum = accumulation_steps(int(cfg["batch_size"]), micro, world)
    report_to = cfg.get("report_to", "none")
    out = Path(out_dir)
    tb_dir = Path(tensorboard_dir) if tensorboard_dir else out.with_name(out.name + ".tensorboard")
    accelerator = Accelerator(
        cpu=cpu,
        mixed_precision=cfg.get("mixed_precision", "no"),
        gradient_accumulation_steps=accum,
        log_with="tensorboard" if report_to == "tensorboard" else None,
        project_dir=str(tb_dir.parent) if report_to == "tensorboard" else None,
    )
    if accelerator.num_processes != world:
        raise RuntimeError(
            f"fine-tuning: the launcher started {world} processes (WORLD_SIZE) but Accelerate sees "
            f"{accelerator.num_processes} ({accelerator.distributed_type}): is the launcher's distributed type "
            "right for this machine (DeepSpeed on CPUs: DS_ACCELERATOR=cpu)?"
        )
    model, tok = model_mod.load(model_path, dtype=cfg.get("dtype", "float32"), device="cpu")
    model.config.use_cache = False
    if cfg.get("gradient_checkpointing"):
        model.gradient_checkpointing_enable()
    lora = cfg.get("lora")
    if lora:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(
            model,
            LoraConfig(
                r=int(lora.get("r", 16)),
                lora_alpha=int(lora.get("alpha", 32)),
                lora_dropout=float(lora.get("dropout", 0.05)),
                target_modules=lora.get("target_modules"),
                task_type="CAUSAL_LM",
            ),
        )
    model.train()
    examples = build_examples(problems, selected, cfg.get("include_original", True))
    items, dropped = tokenize_examples(tok, problems, examples, layout, int(cfg["max_length"]), tokenization)
    if not items:
        raise ValueError("fine-tuning: no training example left (all longer than train.max_length?)")
    epochs = int(cfg["epochs"])
    order = _epoch_order(torch)(len(items), seed)
    # the loader's own generator: creating an iterator draws a seed from it, not from torch's global stream
    # (which dropout draws from, and which a resumed run restores)
    loader = torch.utils.data.DataLoader(
        items,
        batch_size=micro,
        sampler=order,
        collate_fn=_collate(tok.pad_token_id),
        generator=torch.Generator().manual_seed(seed),
    )
    steps_per_epoch = math.ceil(len(items) / (micro * world * accum))
    total = schedule_length(len(items), micro * world * accum, epochs, cfg.get("total_steps", "ceil"))
    lr, warmup, warm_start = float(cfg["lr"]), int(cfg.get("warmup_steps", 0)), float(cfg.get("warmup_start_lr", 0.0))
    floor = float(cfg.get("lr_floor", 0.0))
    opt = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=lr,
        betas=tuple(cfg.get("betas", (0.9, 0.999))),
        eps=float(cfg.get("eps", 1e-6)),
        weight_decay=float(cfg.get("weight_decay", 0.05)),
    )
    model, opt, loader = accelerator.prepare(model, opt, loader)
    every = int(cfg.get("checkpoint_every") or 0)
    state_dir = out.with_name(out.name + ".state")
    fp = fingerprint(model_path, problems, selected, cfg, world, str(accelerator.distributed_type))
    history, step, start_epoch, skip, resumed, elapsed = [], 0, 0, 0, [], 0.0
    if accelerator.is_main_process:  # a killed run's staging folders
        for old in out.parent.glob(f".{out.name}.*.tmp"):
            _rmtree(old)
    saved = _saved_state(state_dir) if every else None
    if saved is not None:
        prog = json.loads((saved / "progress.json").read_text())
        if prog.get("fingerprint") == fp:
            accelerator.load_state(str(saved))
            history, step, start_epoch, skip = prog["history"], prog["step"], prog["epoch"], prog["batches"]
            resumed, elapsed = prog.get("resumed", []) + [step], prog.get("seconds", 0.0)
            log.info("resuming from the saved state at optimizer step %d/%d (%s)", step, total, saved)
        else:
            log.warning("%s was saved for other settings or inputs: starting from step 0", saved)
        accelerator.wait_for_everyone()
    if accelerator.is_main_process and not resumed:
        _remove_state(state_dir)
    if report_to == "tensorboard":
        accelerator.init_trackers(tb_dir.name)
    stage = None
    if accelerator.is_main_process and every:  # kept across a kill: the epochs a resumed run has done
        stage = out.with_name(f".{out.name}.partial")
        if not resumed:
            _rmtree(stage)
        stage.mkdir(exist_ok=True)
    elif accelerator.is_main_process:
        stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    t0 = time.time() - elapsed
    bar = tqdm(
        total=steps_per_epoch * epochs,
        initial=step,
        desc="finetune",
        unit="step",
        disable=not (progress and accelerator.is_main_process),
        mininterval=5,
    )
    running, gnorm = [], None

    def stats_now(epochs_done):
        return {
            "examples": len(items),
            "dropped_too_long": dropped,
            "original": sum(e["origin"] == "original" for e in examples),
            "selected": sum(e["origin"] == "selected" for e in examples),
            "steps": step,
            "epochs": epochs_done,
            "processes": world,
            "distributed_type": str(accelerator.distributed_type),
            "zero_stage": model.zero_optimization_stage() if hasattr(model, "zero_optimization_stage") else None,
            "gradient_accumulation": accum,
            "effective_batch": micro * world * accum,
            "lora": bool(lora),
            "seconds": round(time.time() - t0, 1),
            "resumed_at_steps": resumed,
            "first_loss": history[0]["loss"] if history else None,
            "last_loss": history[-1]["loss"] if history else None,
            "lr_schedule": {
                "lr": lr,
                "warmup_steps": warmup,
                "warmup_start_lr": warm_start,
                "lr_floor": floor,
                "lr_timing": cfg.get("lr_timing", "current"),
                "total_steps": total,
            },
            "history": history,
        }

    def progress(next_epoch, batches):
        return {
            "fingerprint": fp,
            "step": step,
            "epoch": next_epoch,
            "batches": batches,
            "history": history,
            "resumed": resumed,
            "seconds": time.time() - t0,
        }

    try:
        for epoch in range(start_epoch, epochs):
            order.epoch = epoch
            batches = 0
            for ids, attn, lab in loader:
                batches += 1
                if batches <= skip:  # resumed: this epoch's batches before the saved step
                    continue
                cur_lr = lr_of_step(step, total, cfg)
                for group in opt.param_groups:  # before backward: DeepSpeed steps inside accelerator.backward
                    group["lr"] = cur_lr
                with accelerator.accumulate(model):
                    logits = model(input_ids=ids, attention_mask=attn).logits.float()
                    nll = token_nll(logits, lab)
                    loss = nll.sum() / (lab[:, 1:] != -100).sum().clamp(min=1)  # mean over the code tokens
                    accelerator.backward(loss)
                    running.append(float(loss.detach()))
                    if accelerator.sync_gradients:
                        gnorm = accelerator.clip_grad_norm_(model.parameters(), float(cfg.get("max_grad_norm", 1.0)))
                    opt.step()
                    opt.zero_grad(set_to_none=True)
                if accelerator.sync_gradients:
                    mean = torch.tensor(sum(running) / len(running), dtype=torch.float64, device=accelerator.device)
                    row = {
                        "step": step,
                        "epoch": epoch,
                        "loss": float(accelerator.reduce(mean, "mean")),  # over the processes' micro-batches
                        "lr": cur_lr,
                        "grad_norm": float(gnorm) if gnorm is not None else None,
                    }
                    history.append(row)
                    if report_to == "tensorboard":
                        accelerator.log({f"train/{k}": row[k] for k in ("loss", "lr", "grad_norm")}, step=step)
                    log.info("step %d/%d epoch %d loss %.4f lr %.3e", step + 1, total, epoch, row["loss"], cur_lr)
                    running = []
                    step += 1
                    bar.update(1)
                    if every and step % every == 0 and batches < len(loader):
                        _save_state(accelerator, state_dir, progress(epoch, batches))
            skip = 0
            if cfg.get("save_every_epoch") and epoch < epochs - 1:
                _save(
                    accelerator,
                    model,
                    tok,
                    (stage / f"epoch{epoch + 1}") if stage else Path(os.devnull),
                    stats_now(epoch + 1),
                    bool(lora),
                )
            if every and step % every == 0 and step < steps_per_epoch * epochs:  # after the epoch's checkpoint
                _save_state(accelerator, state_dir, progress(epoch + 1, 0))
        bar.close()
        accelerator.wait_for_everyone()
        stats = stats_now(epochs)
        _save(accelerator, model, tok, stage if stage else Path(os.devnull), stats, bool(lora))
        if stage is not None:
            os.chmod(stage, 0o755)
            if out.exists():
                shutil.rmtree(out)
            os.replace(stage, out)
            stage = None
            _remove_state(state_dir)
    finally:
        if stage is not None and stage.exists() and not every:
            shutil.rmtree(stage, ignore_errors=True)
    accelerator.wait_for_everyone()
    for tracker in accelerator.trackers:  # (end_training() would also end the process group)
        tracker.finish()
    return stats


def die_with_parent() -> None:
    """A worker of a launcher (``accelerate launch``, torchrun) gets SIGKILL when its launcher dies, however
    it dies (Linux ``PR_SET_PDEATHSIG``): a killed fine-tuning leaves no orphan worker holding memory."""
    if not sys.platform.startswith("linux") or "LOCAL_RANK" not in os.environ:
        return
    import ctypes
    import signal

    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the launcher died before the call
        os._exit(1)


def main(argv=None) -> None:
    """``python -m gift.train`` (or ``accelerate launch -m gift.train``): the finetune rule's command."""
    import argparse
    import logging as _logging

    from .hub import log_env_once
    from .io import read_jsonl

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--problems", required=True)
    ap.add_argument("--selected", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument(
        "--config", required=True, help="the train section of the config (+ seed, dtype, tokenize, layout), as JSON"
    )
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="the job's threads, shared among the processes")
    ap.add_argument(
        "--how", default="{}", help="train.checkpoint_every and train.report_to (JSON): how it runs, not what it writes"
    )
    ap.add_argument(
        "--tensorboard-dir", default=None, help="TensorBoard's events (default: <results>/logs/tensorboard/<name>)"
    )
    a = ap.parse_args(argv)
    die_with_parent()
    _logging.basicConfig(level=_logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    log_env_once()  # whether this fine-tuning may reach the hub, and which cache it reads
    if a.threads:
        import torch

        torch.set_num_threads(max(1, a.threads // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))
    cfg = dict(json.loads(a.config), **{k: v for k, v in json.loads(a.how).items() if v is not None})
    out = Path(a.out)
    tensorboard = a.tensorboard_dir or str(out.parent.parent / "logs" / "tensorboard" / out.name)
    finetune(
        a.model,
        read_jsonl(a.problems),
        read_jsonl(a.selected),
        a.out,
        cfg,
        cfg.get("layout", "chat"),
        device=a.device,
        tensorboard_dir=tensorboard,
    )


if __name__ == "__main__":
    main()
