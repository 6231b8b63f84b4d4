"""``python -m gift.train`` (or ``accelerate launch -m gift.train``): the finetune rule's command."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from .core import finetune
from .setup import NoGPU


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
    """The finetune rule's command: arguments, logging, threads, then ``finetune``."""
    import argparse
    import logging as _logging

    from ..devices import log_devices
    from ..hub import log_env_once
    from ..io import read_jsonl

    ap = argparse.ArgumentParser(description="Fine-tune a model (gift.train).")
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
    if os.environ.get("LOCAL_RANK", "0") == "0":
        log_devices(int(os.environ.get("GIFT_TRAIN_GPUS") or 0))
    if a.threads:
        import torch

        torch.set_num_threads(max(1, a.threads // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))
    cfg = dict(json.loads(a.config), **{k: v for k, v in json.loads(a.how).items() if v is not None})
    out = Path(a.out)
    tensorboard = a.tensorboard_dir or str(out.parent.parent / "logs" / "tensorboard" / out.name)
    try:
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
    except NoGPU as e:  # one line, no traceback: the job was sent to GPUs it does not have
        sys.exit(str(e))
