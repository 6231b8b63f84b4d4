"""The saved training state of a resumable fine-tuning (``train.checkpoint_every``): written atomically into
``<out>.state/`` with a fingerprint of what it was saved for, found again by a rerun, removed at the end."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

from ..config import TRAIN_HOW

log = logging.getLogger("gift.train")


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


def rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def save_state(accelerator, state_dir: Path, progress: dict) -> None:
    """Every process writes its part into ``<state>.tmp``; the main process adds ``progress.json`` and swaps it
    in (``<state>`` -> ``<state>.old`` -> gone), so a kill at any moment leaves one complete state."""
    tmp, old = state_dir.with_name(state_dir.name + ".tmp"), state_dir.with_name(state_dir.name + ".old")
    if accelerator.is_main_process:
        rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        with open(tmp / "progress.json", "w") as f:
            json.dump(progress, f)
            f.flush()
            os.fsync(f.fileno())
        rmtree(old)
        if state_dir.exists():
            os.replace(state_dir, old)
        os.replace(tmp, state_dir)
        rmtree(old)
    accelerator.wait_for_everyone()


def saved_state(state_dir: Path) -> Path | None:
    """The complete saved state: ``<state>``, or ``<state>.old`` when a kill came in the middle of a swap."""
    for d in (state_dir, state_dir.with_name(state_dir.name + ".old")):
        if (d / "progress.json").is_file():
            return d
    return None


def remove_state(state_dir: Path) -> None:
    for suffix in ("", ".tmp", ".old"):
        rmtree(state_dir.with_name(state_dir.name + suffix))


def resume(accelerator, state_dir: Path, fp: str, every: int, total: int) -> dict | None:
    """The progress of the saved state this run resumes from (its weights, optimizer and random states loaded
    into ``accelerator``'s objects), or None: no state, or one saved for other settings (removed)."""
    saved = saved_state(state_dir) if every else None
    prog = None
    if saved is not None:
        prog = json.loads((saved / "progress.json").read_text())
        if prog.get("fingerprint") == fp:
            accelerator.load_state(str(saved))
            log.info("resuming from the saved state at optimizer step %d/%d (%s)", prog["step"], total, saved)
        else:
            log.warning("%s was saved for other settings or inputs: starting from step 0", saved)
            prog = None
        accelerator.wait_for_everyone()
    if accelerator.is_main_process and prog is None:
        remove_state(state_dir)
    return prog
