"""The fine-tuning's launcher (``train.launcher``) as the finetune rule's shell command spells it.

Nothing is taken from ``PATH``: ``python`` is the workflow's own interpreter (``$GIFT_PYTHON``: Snakemake's, or
the env's under ``--sdm conda``/``apptainer``), ``accelerate launch`` runs as ``$GIFT_PYTHON -m
accelerate.commands.launch`` and ``torchrun`` as ``$GIFT_PYTHON -m torch.distributed.run``. A relative
``--config_file`` (or ``--deepspeed_config_file``) that exists in the workflow's folder is read from there
(``$GIFT_ROOT``), not from the working directory, so ``--directory elsewhere`` finds it; the DeepSpeed file an
Accelerate config names is resolved the same way by the job (``gift.train.setup``). Every Accelerate launch gets
a rendezvous port of its own, picked free by the kernel when the job starts (``--main_process_port``), so two
fine-tunings on one node never share one. Other launchers pass unchanged.
"""

from __future__ import annotations

import os
import shlex

PYTHON = '"$GIFT_PYTHON"'
ROOT = '"$GIFT_ROOT"'
FREE_PORT = '"$("$GIFT_PYTHON" -c \'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])\')"'
FILE_OPTIONS = ("--config_file", "--deepspeed_config_file")


def _path(value: str, root: str) -> str:
    if not os.path.isabs(value) and os.path.isfile(os.path.join(root, value)):
        return f"{ROOT}/{shlex.quote(value)}"
    return shlex.quote(value)


def launcher_command(launcher: str, root: str) -> str:
    """The shell text that starts ``-m gift.train`` for ``train.launcher`` (``root``: the workflow's folder,
    where relative config files are looked up)."""
    words = shlex.split(launcher)
    if words == ["python"]:
        return PYTHON
    if words[:2] == ["accelerate", "launch"]:
        head, rest = [PYTHON, "-m", "accelerate.commands.launch"], words[2:]
    elif words[:1] == ["torchrun"]:
        head, rest = [PYTHON, "-m", "torch.distributed.run"], words[1:]
    else:
        return launcher
    out, after_option = [], None
    for w in rest:
        name, eq, value = w.partition("=")
        if after_option:
            out.append(_path(w, root))
        elif eq and name in FILE_OPTIONS:
            out.append(f"{name}={_path(value, root)}")
        else:
            out.append(shlex.quote(w))
        after_option = w in FILE_OPTIONS
    if head[-1] == "accelerate.commands.launch" and not any(w.startswith("--main_process_port") for w in rest):
        out += ["--main_process_port", FREE_PORT]
    return " ".join(head + out)
