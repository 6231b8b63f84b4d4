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
