"""Fine-tuning on two processes (accelerate launch as the finetune rule runs it: no PATH, another working
directory; gloo on this CPU) against one, and resuming a SIGKILLed
fine-tuning from its saved state (docs/paper-scale.md, "Fine-tuning"): the finetune rule's command on a
tiny randomly initialised Llama."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import return_problems

from gift.launcher import launcher_command

ROOT = Path(__file__).resolve().parent.parent
CFG = {
    "epochs": 2,
    "lr": 1e-3,
    "warmup_steps": 2,
    "warmup_start_lr": 1e-4,
    "lr_floor": 1e-4,
    "batch_size": 4,
    "micro_batch_size": 1,
    "max_length": 256,
    "seed": 3,
}
LORA = {"r": 4, "alpha": 8, "dropout": 0.1, "target_modules": ["q_proj", "v_proj"]}


def rule_launcher(launcher: str) -> list[str]:
    """``train.launcher`` as the finetune rule runs it (gift.launcher): through this interpreter, config files
    from the checkout, a free port; run from another directory with a PATH that lacks this venv's bin."""
    text = launcher_command(launcher, str(ROOT))
    return ["bash", "-c", f'exec {text} "$@"', "launcher"]


TWO = rule_launcher("accelerate launch --multi_gpu --num_processes 2")
DS_TWO = rule_launcher("accelerate launch --config_file config/accelerate/deepspeed_zero2_cpu.yaml")
BARE_PATH = "/usr/bin:/bin"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("dist")
    problems = return_problems(8)
    (d / "problems.jsonl").write_text("".join(json.dumps(p) + "\n" for p in problems))
    sel = [{"task_id": f"t{i}", "code": f"def f():\n    return {i} + 0\n"} for i in range(8)]
    (d / "selected.jsonl").write_text("".join(json.dumps(s) + "\n" for s in sel))
    (d / "ck").mkdir()
    (d / "cwd").mkdir()  # the jobs' working directory: no config/ there
    return d


def start(launcher, model, data, name, cfg, how=None, env=None):
    """The finetune rule's command (16 examples, effective batch 4: 8 optimizer steps)."""
    cmd = launcher + ["-m", "gift.train", "--model", str(model), "--problems", str(data / "problems.jsonl")]
    cmd += ["--selected", str(data / "selected.jsonl"), "--out", str(data / "ck" / name), "--config", json.dumps(cfg)]
    cmd += ["--device", "cpu", "--threads", "2", "--how", json.dumps(how or {})]
    env = dict(os.environ, PYTHONPATH=str(ROOT), GIFT_PYTHON=sys.executable, GIFT_ROOT=str(ROOT), **(env or {}))
    env["PATH"] = BARE_PATH
    assert not (Path(BARE_PATH.split(":")[0]) / "accelerate").exists()
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=data / "cwd")


def run(*a, **k):
    p = start(*a, **k)
    out, _ = p.communicate(timeout=300)
    assert p.returncode == 0, out[-3000:]
    return out


def killed_then_rerun(launcher, model, data, name, cfg, at_step):
    """Start with a state saved at every step, SIGKILL the launcher alone once step ``at_step`` is saved,
    check that its workers die with it, rerun: the rerun resumes."""
    state = data / "ck" / f"{name}.state" / "progress.json"
    p = start(launcher, model, data, name, cfg, {"checkpoint_every": 1})
    deadline = time.time() + 240
    while not (state.exists() and json.loads(state.read_text())["step"] >= at_step):
        assert p.poll() is None and time.time() < deadline, p.stdout.read()[-3000:]
        time.sleep(0.1)
    children = Path(f"/proc/{p.pid}/task/{p.pid}/children").read_text().split()
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    deadline = time.time() + 20
    while any(Path(f"/proc/{c}").exists() for c in children) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(Path(f"/proc/{c}").exists() for c in children), "a worker outlived its launcher"
    out = run(launcher, model, data, name, cfg, {"checkpoint_every": 1})
    assert "resuming from the saved state at optimizer step" in out
    assert not (data / "ck" / f"{name}.state").exists()  # removed once the checkpoint is final
    return json.loads((data / "ck" / name / "train_stats.json").read_text())


def weights(folder):
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


def max_diff(a, b):
    return max(float((a[k] - b[k]).abs().max()) for k in a)


@pytest.mark.slow
def test_two_processes_match_one_and_a_killed_run_resumes_bit_for_bit(tiny_llama, data):
    from transformers import AutoModelForCausalLM

    one_py = [sys.executable]
    run(one_py, tiny_llama, data, "one", CFG)
    run(TWO, tiny_llama, data, "two", CFG, {"report_to": "tensorboard"})
    one = json.loads((data / "ck/one/train_stats.json").read_text())
    two = json.loads((data / "ck/two/train_stats.json").read_text())
    assert one["processes"] == 1 and two["processes"] == 2
    assert one["steps"] == two["steps"] == 8 and one["effective_batch"] == two["effective_batch"] == 4
    assert [h["lr"] for h in one["history"]] == [h["lr"] for h in two["history"]]
    # the same micro-batches per step, summed in another order (measured 2.4e-7 and 1.2e-7)
    assert max(abs(a["loss"] - b["loss"]) for a, b in zip(one["history"], two["history"], strict=True)) < 1e-5
    assert max_diff(weights(data / "ck/one"), weights(data / "ck/two")) < 1e-5
    assert list((data / "logs/tensorboard/two").rglob("events.out.tfevents.*"))
    AutoModelForCausalLM.from_pretrained(data / "ck/two")  # what the evaluation loads
    # one process, full fine-tuning, killed after step 3 (mid-epoch): resumed bit for bit
    resumed = killed_then_rerun(one_py, tiny_llama, data, "one_k", dict(CFG), 3)
    assert resumed["history"] == one["history"] and resumed["resumed_at_steps"][0] >= 3
    assert max_diff(weights(data / "ck/one"), weights(data / "ck/one_k")) == 0.0
    # two processes, LoRA with dropout (the random states are restored), killed at the epoch's end
    lora = dict(CFG, lora=LORA)
    run(TWO, tiny_llama, data, "two_lora", lora)
    resumed = killed_then_rerun(TWO, tiny_llama, data, "two_lora_k", lora, 4)
    assert resumed["history"] == json.loads((data / "ck/two_lora/train_stats.json").read_text())["history"]
    assert max_diff(weights(data / "ck/two_lora"), weights(data / "ck/two_lora_k")) == 0.0


@pytest.mark.slow
def test_deepspeed_zero2_on_two_cpu_processes_matches_one(tiny_llama, data):
    """config/accelerate/deepspeed_zero2_cpu.yaml: DeepSpeed ZeRO-2 on its CPU accelerator, 2 processes."""
    pytest.importorskip("deepspeed")
    from transformers import AutoModelForCausalLM

    if not (data / "ck/one/train_stats.json").exists():
        run([sys.executable], tiny_llama, data, "one", CFG)
    run(DS_TWO, tiny_llama, data, "ds", CFG, env={"DS_ACCELERATOR": "cpu"})
    one = json.loads((data / "ck/one/train_stats.json").read_text())
    ds = json.loads((data / "ck/ds/train_stats.json").read_text())
    assert ds["processes"] == 2 and ds["distributed_type"] == "DistributedType.DEEPSPEED"
    assert ds["zero_stage"] == 2 and one["zero_stage"] is None  # the DeepSpeed engine's ZeRO stage
    assert one["steps"] == ds["steps"] == 8 and one["effective_batch"] == ds["effective_batch"] == 4
    assert [h["lr"] for h in one["history"]] == [h["lr"] for h in ds["history"]]
    loss = max(abs(a["loss"] - b["loss"]) for a, b in zip(one["history"], ds["history"], strict=True))
    weight = max_diff(weights(data / "ck/one"), weights(data / "ck/ds"))
    print(f"deepspeed vs one process: loss {loss:.2e}, weights {weight:.2e}, {ds['seconds']} s vs {one['seconds']} s")
    assert loss < 1e-5 and weight < 1e-5
    AutoModelForCausalLM.from_pretrained(data / "ck/ds")  # what the evaluation loads
