"""Fine-tuning: the schedule, and LoRA on a tiny randomly initialised Llama (real gradient steps)."""

import json
from itertools import pairwise

import pytest
from conftest import return_problems

from gift.train import build_examples, lr_at


def test_lr_schedule_warms_up_then_decays():
    lrs = [lr_at(s, 10, 2e-5, 3, 5e-6) for s in range(11)]
    assert lrs[0] == pytest.approx(5e-6) and lrs[3] == pytest.approx(2e-5)
    assert lrs[1] < lrs[2] < lrs[3] and all(a > b for a, b in pairwise(lrs[3:]))
    assert lrs[10] == 0.0
    floored = [lr_at(s, 10, 2e-5, 3, 5e-6, floor=5e-6) for s in range(12)]
    assert floored[10] == pytest.approx(5e-6) and floored[11] == pytest.approx(5e-6)  # never below the floor


def test_training_set_pairs_selected_codes_with_the_seed_description():
    problems = [{"task_id": "a", "reference": "ref", "description": "seed"}]
    selected = [{"task_id": "a", "code": "c1"}, {"task_id": "a", "code": "c1"}, {"task_id": "zzz", "code": "x"}]
    ex = build_examples(problems, selected)
    assert [(e["origin"], e["code"]) for e in ex] == [("original", "ref"), ("selected", "c1"), ("selected", "c1")]
    assert [e["origin"] for e in build_examples(problems, selected, include_original=False)] == ["selected", "selected"]


@pytest.mark.slow
@pytest.mark.parametrize("lora", [None, {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}])
def test_finetune_changes_weights_and_saves_a_plain_checkpoint(tiny_llama, tmp_path, lora):
    from safetensors.torch import load_file

    from gift.train import finetune

    problems = return_problems(4)
    cfg = {
        "epochs": 2,
        "lr": 1e-2,
        "warmup_steps": 1,
        "warmup_start_lr": 1e-3,
        "batch_size": 4,
        "micro_batch_size": 2,
        "max_length": 256,
        "seed": 3,
        "lora": lora,
    }
    out = tmp_path / "ck"
    stats = finetune(str(tiny_llama), problems, [], str(out), cfg, "chat", device="cpu", progress=False)
    assert stats["steps"] == 2 and stats["examples"] == 4 and stats["effective_batch"] == 4
    assert stats["last_loss"] < stats["first_loss"]
    before, after = load_file(tiny_llama / "model.safetensors"), load_file(out / "model.safetensors")
    assert set(after) == set(before)  # LoRA adapters are merged: a plain checkpoint
    changed = {k for k in before if (before[k] - after[k]).abs().max() > 0}
    if lora:
        assert changed and all(("q_proj" in k or "v_proj" in k) for k in changed)
    else:
        assert "model.layers.0.mlp.down_proj.weight" in changed
    assert json.loads((out / "train_stats.json").read_text())["lora"] is bool(lora)


@pytest.mark.parametrize(
    "args, cfg, env, expected",
    [
        (["--device", "cuda"], {}, {}, "model.device cuda"),
        ([], {"mixed_precision": "bf16"}, {"GIFT_TRAIN_GPUS": "8"}, "train.mixed_precision bf16 with resources gpu 8"),
        ([], {}, {"GIFT_TRAIN_GPUS": "8", "ACCELERATE_USE_DEEPSPEED": "true"}, "a DeepSpeed launcher with resources"),
    ],
)
def test_a_job_sent_to_gpus_that_sees_none_stops_at_once_with_one_line(tmp_path, args, cfg, env, expected):
    """The finetune rule's command on this CPU-only machine: it stops before loading anything (the model
    folder does not even exist), with one line naming what it expected and what it found."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    (tmp_path / "p.jsonl").write_text(json.dumps(return_problems(1)[0]) + "\n")
    (tmp_path / "s.jsonl").write_text("")
    train = {"epochs": 1, "lr": 1e-3, "batch_size": 1, "micro_batch_size": 1, "max_length": 64, **cfg}
    cmd = [sys.executable, "-m", "gift.train", "--model", str(tmp_path / "no-model"), "--problems"]
    cmd += [str(tmp_path / "p.jsonl"), "--selected", str(tmp_path / "s.jsonl"), "--out", str(tmp_path / "ck")]
    cmd += ["--config", json.dumps(train), *args]
    environ = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("GIFT_", "ACCELERATE_"))}
    environ |= {"PYTHONPATH": str(root), "CUDA_VISIBLE_DEVICES": "", **env}
    proc = subprocess.run(cmd, env=environ, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("fine-tuning: expected CUDA GPUs (" + expected), proc.stderr[-2000:]
    assert "CUDA_VISIBLE_DEVICES=''" in last and "torch.cuda.device_count()=0" in last
    assert "Traceback" not in proc.stderr and not (tmp_path / "ck").exists()
    # and the same configs without GPUs asked of them are not stopped
    from gift.train.setup import gpu_expectation

    assert gpu_expectation("cpu", dict(cfg, mixed_precision="bf16"), 0, True) is None
    assert gpu_expectation("auto", {"mixed_precision": "no"}, 8, False) is None


def test_the_launcher_needs_nothing_on_path_and_reads_its_configs_from_the_workflow(tmp_path):
    from pathlib import Path

    from gift.launcher import PYTHON, launcher_command

    root = str(Path(__file__).resolve().parent.parent)
    paper = launcher_command("accelerate launch --config_file config/accelerate/deepspeed_zero2.yaml", root)
    assert paper.startswith(f'{PYTHON} -m accelerate.commands.launch --config_file "$GIFT_ROOT"/config/accelerate/')
    assert " --main_process_port " in paper and "accelerate launch" not in paper
    assert launcher_command("python", root) == PYTHON
    own = launcher_command("accelerate launch --config_file=mine.yaml --main_process_port 29600", root)
    assert own == f"{PYTHON} -m accelerate.commands.launch --config_file=mine.yaml --main_process_port 29600"
    assert (
        launcher_command("torchrun --nproc-per-node 2", root) == f"{PYTHON} -m torch.distributed.run --nproc-per-node 2"
    )
    assert launcher_command("srun python", root) == "srun python"


def test_ddp_rebuilds_its_buckets_without_a_second_copy_of_the_gradients(tmp_path):
    """After the first optimizer step the zeroed gradients hold no storage until DDP's rebuild at the next
    forward makes them views into its new buckets: the same gradients as the model without DDP."""
    import copy

    import torch
    import torch.distributed as dist

    from gift.train.loop import free_first_bucket, rebuilds_buckets

    dist.init_process_group("gloo", store=dist.FileStore(str(tmp_path / "store"), 1), rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        plain = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
        ddp = torch.nn.parallel.DistributedDataParallel(copy.deepcopy(plain), gradient_as_bucket_view=True)
        x = torch.randn(4, 8)
        for model in (plain, ddp):
            model(x).sum().backward()
            for p in model.parameters():
                p.grad.zero_()
        free_first_bucket(ddp)
        assert all(p.grad.stride() == (0,) * p.dim() for p in ddp.parameters())  # no storage of their own
        assert rebuilds_buckets(ddp)
        for model in (plain, ddp):
            model(2 * x).sum().backward()
        assert not rebuilds_buckets(ddp)
        for a, b in zip(plain.parameters(), ddp.parameters(), strict=True):
            assert b.grad.stride() == a.grad.stride() and torch.equal(a.grad, b.grad)
    finally:
        dist.destroy_process_group()


def test_more_processes_than_gpus_on_a_node_is_named_in_one_line():
    """A launcher for 8 GPUs on a node with 4 (torch's device count as a GPU node reports it)."""
    from gift.train.setup import too_few

    why = too_few(4, 8, "a DeepSpeed launcher with resources gpu 8")
    assert why and "\n" not in why and "8 processes" in why and "4 CUDA devices" in why and "num_processes" in why
    assert too_few(8, 8, "x") is None and too_few(4, 2, "x") is None
    assert too_few(0, 1, "model.device cuda").startswith("fine-tuning: expected CUDA GPUs (model.device cuda)")
