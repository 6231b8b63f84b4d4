"""Fine-tuning on (seed description, code) pairs plus the original training pairs.

Loss on the code tokens only (prompt tokens masked). The optimiser follows the authors' recipe and every
number is a config knob: AdamW (betas, eps, weight decay), linear warm-up from ``warmup_start_lr`` to ``lr``
then linear decay to ``lr_floor`` (the authors' DeepSpeed WarmupDecayLR decays to its warm-up start,
5e-6), gradient clipping, gradient accumulation to an effective batch, a fixed seed. The learning rate of
optimizer step ``s`` is ``lr_at(s, ...)``, set on the optimizer before that step whatever the number of
processes (Accelerate's scheduler wrapper would advance a schedule once per process and step). Examples
longer than ``max_length`` tokens are dropped, as the authors do. With ``save_every_epoch`` the weights
after each epoch but the last are saved as ``<out>/epoch<k>/`` too (the authors evaluate every epoch).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

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
) -> dict:
    """Fine-tune through Hugging Face Accelerate: one process on a CPU or GPU when run directly, many GPUs
    with DeepSpeed ZeRO when started with ``accelerate launch --config_file config/accelerate/...``.
    ``cfg["lora"]`` switches to LoRA adapters (PEFT), merged into the saved checkpoint. ``layout`` is a
    layout object or name (``prompt.layout``); ``cfg["tokenize"]`` the tokenisation policy."""
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
    world = PartialState(cpu=(device == "cpu")).num_processes
    accum = max(1, int(cfg["batch_size"]) // (micro * world))
    accelerator = Accelerator(
        cpu=(device == "cpu"), mixed_precision=cfg.get("mixed_precision", "no"), gradient_accumulation_steps=accum
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
    loader = torch.utils.data.DataLoader(
        items,
        batch_size=micro,
        shuffle=True,
        collate_fn=_collate(tok.pad_token_id),
        generator=torch.Generator().manual_seed(seed),
    )
    steps_per_epoch = math.ceil(len(items) / (micro * world * accum))
    total = steps_per_epoch * epochs
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
    out = Path(out_dir)
    stage = (
        Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
        if accelerator.is_main_process
        else None
    )
    history, step, t0 = [], 0, time.time()
    bar = tqdm(
        total=total, desc="finetune", unit="step", disable=not (progress and accelerator.is_main_process), mininterval=5
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
            "effective_batch": micro * world * accum,
            "lora": bool(lora),
            "seconds": round(time.time() - t0, 1),
            "first_loss": history[0]["loss"] if history else None,
            "last_loss": history[-1]["loss"] if history else None,
            "lr_schedule": {
                "lr": lr,
                "warmup_steps": warmup,
                "warmup_start_lr": warm_start,
                "lr_floor": floor,
                "total_steps": total,
            },
            "history": history,
        }

    try:
        for epoch in range(epochs):
            for ids, attn, lab in loader:
                cur_lr = lr_at(step, total, lr, warmup, warm_start, floor)
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
                    history.append(
                        {
                            "step": step,
                            "epoch": epoch,
                            "loss": sum(running) / len(running),
                            "lr": cur_lr,
                            "grad_norm": float(gnorm) if gnorm is not None else None,
                        }
                    )
                    log.info(
                        "step %d/%d epoch %d loss %.4f lr %.3e", step + 1, total, epoch, history[-1]["loss"], cur_lr
                    )
                    running = []
                    step += 1
                    bar.update(1)
            if cfg.get("save_every_epoch") and epoch < epochs - 1:
                _save(
                    accelerator,
                    model,
                    tok,
                    (stage / f"epoch{epoch + 1}") if stage else Path(os.devnull),
                    stats_now(epoch + 1),
                    bool(lora),
                )
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
    finally:
        if stage is not None and stage.exists():
            shutil.rmtree(stage, ignore_errors=True)
    accelerator.wait_for_everyone()
    return stats


def main(argv=None) -> None:
    """``python -m gift.train`` (or ``accelerate launch -m gift.train``): the finetune rule's command."""
    import argparse
    import logging as _logging

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
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args(argv)
    _logging.basicConfig(level=_logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    cfg = json.loads(a.config)
    finetune(
        a.model, read_jsonl(a.problems), read_jsonl(a.selected), a.out, cfg, cfg.get("layout", "chat"), device=a.device
    )


if __name__ == "__main__":
    main()
