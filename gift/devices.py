"""How many GPUs the workflow's Snakemake may hand out here: the count reaches Snakemake's scheduler as the
``gpu`` resource (rules/common.smk), so that GPU jobs (a fine-tuning, a generation) never share the devices
without the user typing ``--resources gpu=N``."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess


def visible_gpus(env: dict | None = None) -> int:
    """The GPUs this process may use: ``CUDA_VISIBLE_DEVICES`` when set (SLURM sets it in an allocation
    with GPUs), else ``SLURM_GPUS_ON_NODE``, else the GPUs ``nvidia-smi -L`` lists, else 0."""
    env = os.environ if env is None else env
    cvd = env.get("CUDA_VISIBLE_DEVICES")
    if cvd is not None:
        ids = [x.strip() for x in cvd.split(",") if x.strip()]
        return 0 if ids[:1] in (["-1"], ["NoDevFiles"]) else len(ids)
    if (env.get("SLURM_GPUS_ON_NODE") or "").isdigit():
        return int(env["SLURM_GPUS_ON_NODE"])
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            return 0
        return sum(line.startswith("GPU ") for line in out.splitlines())
    return 0


def seen_devices() -> str:
    """The GPUs this process sees, as logs name them: ``CUDA_VISIBLE_DEVICES`` (as SLURM or the user set it)."""
    return os.environ.get("CUDA_VISIBLE_DEVICES", "(unset)")


def log_devices(gpus: int) -> None:
    """One line for a job with a ``gpu`` resource: how many GPUs it asked for and which it sees, so that a
    cluster run's logs show each GPU job's devices."""
    if gpus:
        logging.getLogger("gift.devices").info("gpu resource %d, CUDA_VISIBLE_DEVICES=%s", gpus, seen_devices())
