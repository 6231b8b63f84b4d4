"""The processes and the model of a fine-tuning: a job meant for GPUs that sees none stops at once; the
Accelerator joins the launcher's processes; the model is loaded straight onto each process's device."""

from __future__ import annotations

import os
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]


class NoGPU(RuntimeError):
    """A job the config sends to GPUs sees no CUDA device (its message is one line)."""


def gpu_expectation(device: str, cfg: dict, gpus: int, deepspeed: bool) -> str | None:
    """Why this job must run on CUDA devices, or None: ``model.device: cuda``, mixed precision with GPUs in
    its resources, or a DeepSpeed launcher (not on DeepSpeed's CPU accelerator) with GPUs requested."""
    if device.startswith("cuda"):
        return f"model.device {device}"
    if gpus and cfg.get("mixed_precision", "no") in ("bf16", "fp16"):
        return f"train.mixed_precision {cfg['mixed_precision']} with resources gpu {gpus}"
    if gpus and deepspeed and os.environ.get("DS_ACCELERATOR", "cuda") == "cuda":
        return f"a DeepSpeed launcher with resources gpu {gpus}"
    return None


def check_gpu(device: str, cfg: dict) -> None:
    """Stop with one line when the job expects CUDA devices (``gpu_expectation``; the gpu resource reaches the
    job as ``GIFT_TRAIN_GPUS``) and torch sees none, before anything is loaded or launched onto the CPU."""
    gpus = int(os.environ.get("GIFT_TRAIN_GPUS") or 0)
    deepspeed = os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"
    why = gpu_expectation(device, cfg, gpus, deepspeed)
    if why is None:
        return
    import torch

    found = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if why := too_few(found, int(os.environ.get("LOCAL_WORLD_SIZE") or os.environ.get("WORLD_SIZE") or 1), why):
        raise NoGPU(why)


def too_few(found: int, processes: int, why: str) -> str | None:
    """One line when this node's processes of the fine-tuning see no CUDA device, or fewer than there are
    processes (each needs one: a config for 8 GPUs on a node with 4)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    seen = f"CUDA_VISIBLE_DEVICES={'(unset)' if visible is None else repr(visible)}, torch.cuda.device_count()={found}"
    if not found:
        return f"fine-tuning: expected CUDA GPUs ({why}) but found none: {seen}"
    if processes > found:
        return (
            f"fine-tuning: the launcher started {processes} processes on this node but it has {found} CUDA "
            f"devices ({seen}): set the launcher's num_processes (its Accelerate config, or --num_processes) "
            "to the GPU count"
        )
    return None


def resolve_deepspeed_config() -> None:
    """A relative DeepSpeed config file (``deepspeed_config_file`` in an Accelerate config, which the launcher
    hands on as ``ACCELERATE_DEEPSPEED_CONFIG_FILE``) is read from the workflow's folder, not the working
    directory (``--directory elsewhere``)."""
    path = os.environ.get("ACCELERATE_DEEPSPEED_CONFIG_FILE")
    if path and not os.path.isabs(path):
        root = Path(os.environ.get("GIFT_ROOT") or CHECKOUT)
        if (root / path).is_file():
            os.environ["ACCELERATE_DEEPSPEED_CONFIG_FILE"] = str(root / path)


def make_accelerator(cfg: dict, device: str, accum: int, tb_dir: Path | None):
    """The Accelerator of this process, its process group joined. DeepSpeed (ACCELERATE_USE_DEEPSPEED from the
    launcher's config) runs on its own accelerator: on CPUs (DS_ACCELERATOR=cpu) Accelerate must not be told
    cpu=True (that is MULTI_CPU, DDP over gloo), and it finds no backend of its own there, so deepspeed.comm
    would join the processes while Accelerate counted 1: it is given DeepSpeed's CPU backend (gloo, or ccl)."""
    import torch
    from accelerate import Accelerator, PartialState
    from accelerate.utils import DistributedDataParallelKwargs

    use_ds = os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"
    cpu = device == "cpu" and not use_ds
    backend = None
    if use_ds and int(os.environ.get("LOCAL_RANK", -1)) != -1 and not torch.cuda.is_available():
        import deepspeed.ops
        from deepspeed.accelerator import get_accelerator

        backend = get_accelerator().communication_backend_name()
        # no shared-memory all-reduce: DeepSpeed would compile it (C++, minutes on a small CPU, in every
        # fresh ~/.cache/torch_extensions) when its communication starts, and its peers hang on a CPU without
        # the kernel's instruction set; gloo does the all-reduce
        deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
    PartialState(cpu=cpu, backend=backend)  # joins the process group (DDP; DeepSpeed's) before Accelerator()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    # DDP's gradients as views into its all-reduce buckets: no second copy of every gradient per process
    ddp = DistributedDataParallelKwargs(gradient_as_bucket_view=True)
    accelerator = Accelerator(
        cpu=cpu,
        kwargs_handlers=[ddp],
        mixed_precision=cfg.get("mixed_precision", "no"),
        gradient_accumulation_steps=accum,
        log_with="tensorboard" if tb_dir else None,
        project_dir=str(tb_dir.parent) if tb_dir else None,
    )
    if accelerator.num_processes != world:
        raise RuntimeError(
            f"fine-tuning: the launcher started {world} processes (WORLD_SIZE) but Accelerate sees "
            f"{accelerator.num_processes} ({accelerator.distributed_type}): is the launcher's distributed type "
            "right for this machine (DeepSpeed on CPUs: DS_ACCELERATOR=cpu)?"
        )
    return accelerator


def prepare(accelerator, model, opt, loader):
    """``accelerator.prepare(model, opt, loader)`` without the import of Hugging Face ``datasets`` (pyarrow,
    pandas: ~85 MiB in every process) that Accelerate's ``prepare_data_loader`` does on more than one process
    only to ask whether the loader's dataset is a ``datasets.IterableDataset``: ours is a list."""
    import accelerate.data_loader as data_loader

    available = getattr(data_loader, "is_datasets_available", None)
    data_loader.is_datasets_available = lambda: False
    try:
        return accelerator.prepare(model, opt, loader)
    finally:
        if available is not None:
            data_loader.is_datasets_available = available


def load_model(model_path: str, cfg: dict, accelerator):
    """(model, tokenizer), the weights loaded straight onto this process's device (a GPU's: no full copy
    of the model in host memory beside it), ready to train (LoRA adapters added when configured)."""
    from .. import model as model_mod

    device = accelerator.device if accelerator.device.type == "cuda" else "cpu"
    model, tok = model_mod.load(model_path, dtype=cfg.get("dtype", "float32"), device=str(device))
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
    return model, tok
