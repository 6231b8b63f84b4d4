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

The package reads as the method (``core.finetune``): ``setup`` (the processes, the model loaded onto each
process's device, a GPU job without GPUs stopped at once), ``data`` (examples, tokens, the loader),
``schedule`` (steps and learning rates), ``loop`` (epochs, steps, saved states), ``save`` (the checkpoint,
written by the main process), ``state`` (resuming), ``cli`` (``python -m gift.train``).
"""

from .cli import die_with_parent, main
from .core import finetune
from .data import build_examples, tokenize_examples
from .schedule import accumulation_steps, lr_at, lr_of_step, schedule_length, total_steps
from .state import fingerprint

__all__ = [
    "accumulation_steps",
    "build_examples",
    "die_with_parent",
    "finetune",
    "fingerprint",
    "lr_at",
    "lr_of_step",
    "main",
    "tokenize_examples",
    "schedule_length",
    "total_steps",
]
