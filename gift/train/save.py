"""Saving the fine-tuned weights: gathered and written by the main process only."""

from __future__ import annotations

import json
from pathlib import Path

SHARD = "2GB"


def full_state(accelerator, model):
    """The full weights on the main process (None elsewhere). Under ZeRO-3 they are gathered from every
    process (a collective); otherwise each process holds them whole, and the main process writes its own
    tensors as they are: no other process makes a copy (Accelerate's ``get_state_dict`` clones them to the
    CPU on every process under DeepSpeed)."""
    from accelerate.utils import DistributedType

    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        zero = accelerator.state.deepspeed_plugin.deepspeed_config.get("zero_optimization", {})
        if int(zero.get("stage", 0)) == 3:
            return accelerator.get_state_dict(model)
    if not accelerator.is_main_process:
        return None
    return accelerator.unwrap_model(model).state_dict()


def save_checkpoint(accelerator, model, tok, folder: Path, stats: dict, lora: bool) -> None:
    """The full weights (LoRA merged) as a plain safetensors checkpoint, with the tokenizer and the stats."""
    state = full_state(accelerator, model)
    if accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(model)
        if lora:
            import copy

            merged = copy.deepcopy(unwrapped)
            merged.load_state_dict(state)
            unwrapped = merged.merge_and_unload()
            state = unwrapped.state_dict()
        unwrapped.config.use_cache = True
        folder.mkdir(parents=True, exist_ok=True)
        # shards of at most SHARD: a GPU's tensors pass through host memory one shard at a time
        unwrapped.save_pretrained(folder, state_dict=state, safe_serialization=True, max_shard_size=SHARD)
        unwrapped.config.use_cache = False
        tok.save_pretrained(folder)
        (folder / "train_stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    del state
    accelerator.wait_for_everyone()
