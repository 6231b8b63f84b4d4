"""Fetch once, then offline: everything a run needs from the network, downloaded by one step before any job.

Three kinds of remote inputs: Hugging Face hub models (``model.base`` / ``model.sampler.base`` given as
``owner/name``, pinned with ``model.revision`` / ``model.sampler.revision``), hub datasets (data paths
``hf:<repo>[:<config>][@<revision>]``) and release URLs (``https://...``). The workflow's ``fetch`` rule is a
local rule: it runs where Snakemake runs (a workstation, a cluster's login node: the machine that reaches the
internet) and downloads each item once into the config's ``cache`` folder, with huggingface_hub's own
``snapshot_download`` (hub repositories) or :func:`gift.datasets.sources.fetch` (release URLs). Every other
job runs with ``HF_HUB_OFFLINE=1`` and ``HF_DATASETS_OFFLINE=1`` and the cache variables below pointed at that
folder (``rules/common.smk`` puts them into the environment of every Snakemake process), so it reads the cache
and never the network: a compute node without internet runs the whole workflow, and a 13 GB model is
downloaded once, not by each GPU job.

The cache folder (``cache`` in the config, default ``cache/`` beside ``results/``)::

    huggingface/hub/       HF_HUB_CACHE: models--<owner>--<name>/, datasets--<owner>--<name>/ (the hub's layout)
    huggingface/datasets/  HF_DATASETS_CACHE: the Arrow files ``datasets`` prepares from a dataset's files
    huggingface/xet/       HF_XET_CACHE
    urls/                  GIFT_DATA_CACHE: release files by URL (gift.datasets.sources.fetch)
    fetched/<item>.json    one record per fetched item (what, which commit, where): the fetch jobs' outputs

``HF_HOME`` is left alone, so that a token saved by ``hf auth login`` still authorises the fetch of a gated
model. The layout is huggingface_hub's, so a cache filled by hand (``hf download ... --cache-dir
cache/huggingface/hub``, docs/paper-scale.md) is the same cache.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from pathlib import Path

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
# set by the workflow when the user's own environment said HF_HUB_OFFLINE=1: the fetch step then only checks
# that the cache holds every item (an air-gapped cluster whose cache was filled by hand) and never goes online
USER_OFFLINE = "GIFT_FETCH_OFFLINE"
# the file formats of model weights other than safetensors: not fetched when the repository has safetensors
# (many repositories hold the same weights in several formats; loaders prefer safetensors, as vLLM does)
OTHER_WEIGHTS = ["*.bin", "*.pt", "*.pth", "*.h5", "*.msgpack", "*.ot", "*.onnx", "*.tflite", "*.gguf"]


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def cache_env(cache: str | os.PathLike) -> dict[str, str]:
    """The environment variables that point huggingface_hub, datasets and gift at the cache folder."""
    root = Path(cache).absolute()
    return {
        "HF_HUB_CACHE": str(root / "huggingface" / "hub"),
        "HF_DATASETS_CACHE": str(root / "huggingface" / "datasets"),
        "HF_XET_CACHE": str(root / "huggingface" / "xet"),
        "GIFT_DATA_CACHE": str(root / "urls"),
    }


def describe_env(environ=os.environ) -> str:
    """One line for a job's log: whether this process may reach the hub, and which cache it reads."""
    state = ", ".join(f"{k}={environ.get(k, '')}" for k in OFFLINE)
    return f"hub: {state}; cache {environ.get('HF_HUB_CACHE', '(the default)')}"


_LOGGED = []


def log_env_once() -> None:
    """``describe_env()`` on stderr (the job's log), once per process: every job's log says whether it ran
    offline and from which cache (gift.rule.setup for the scripts, gift.train.main for fine-tuning)."""
    if not _LOGGED:
        _LOGGED.append(True)
        print(describe_env(), file=sys.stderr)


# ----------------------------------------------------------------------------------------- what to fetch
def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text)


def item_name(spec: dict) -> str:
    """The file name of an item's record: ``model--<owner>--<name>@<revision>``, ``dataset--...``,
    ``url--<hash>--<file name>``."""
    if spec["kind"] == "url":
        key = hashlib.sha256(spec["url"].encode()).hexdigest()[:16]
        return f"url--{key}--{_safe(spec['url'].rsplit('/', 1)[-1])}"
    rev = spec.get("revision") or "main"
    return f"{spec['kind']}--{spec['repo'].replace('/', '--')}@{_safe(rev)}"


MODEL_KEYS = {"base": "model.base", "sampler": "model.sampler.base"}


def model_specs(config: dict) -> dict[str, dict]:
    """``model`` (``base``) and ``model.sampler`` (``sampler``, when set) of a config."""
    model = config["model"]
    return {"base": model, **({"sampler": model["sampler"]} if model.get("sampler") else {})}


def hub_model(spec: dict) -> dict:
    """The fetch item of a hub model spec (``model`` or ``model.sampler``)."""
    return {"repo": spec["base"], "revision": spec.get("revision"), "gguf_file": spec.get("gguf_file") or None}


def plan(config: dict) -> tuple[dict[str, str], dict[str, dict]]:
    """(how each model is got, by ``base`` / ``sampler``: gift.model.source_kind; every item the fetch step
    fetches, by record name). A local model path that does not exist raises gift.model.ModelSpecError."""
    from .model import source_kind

    specs = model_specs(config)
    sources = {w: source_kind(s["base"], s.get("gguf_file", ""), MODEL_KEYS[w]) for w, s in specs.items()}
    splits = [(config["data"][s]["dataset"], config["data"][s]["path"]) for s in ("seed", "test")]
    return sources, items([hub_model(specs[w]) for w, kind in sources.items() if kind == "hub"], splits)


def items(models: list[dict], data_paths: list[tuple[str, str]]) -> dict[str, dict]:
    """Every item a run fetches, by record name: ``models`` are the hub models ({repo, revision, gguf_file}),
    ``data_paths`` the (dataset, path) of each split (hub specs and URLs are fetched, local paths are not)."""
    from .datasets import DATASETS
    from .datasets.sources import is_hub, is_url, parse_hub

    specs = [dict(kind="model", **m) for m in models]
    for dataset, path in data_paths:
        if is_hub(path):
            default = (DATASETS[dataset].hub or "").split(":")[0] or None
            repo, _config, revision = parse_hub(path, default)
            specs.append({"kind": "dataset", "repo": repo, "revision": revision})
        elif is_url(path):
            specs.append({"kind": "url", "url": path})
    return {item_name(s): s for s in specs}


# ----------------------------------------------------------------------------------------- fetching
def _relative(path: str | os.PathLike) -> str:
    """``path`` relative to the working directory when it lies inside it (results and cache then move
    together), else absolute."""
    p = Path(path).absolute()
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(p)


def model_patterns(spec: dict, files: list[str]) -> dict:
    """What to download of a model repository (``files``: its file names): the named GGUF file and the
    small files beside it when the repository holds ``gguf_file``; else the checkpoint, in safetensors only
    when it has safetensors."""
    gguf = spec.get("gguf_file")
    if gguf and gguf in files:
        return {"allow_patterns": [gguf, "*.json", "*.txt", "*.model"]}
    if any(f.endswith(".safetensors") for f in files):
        return {"ignore_patterns": OTHER_WEIGHTS}
    return {"ignore_patterns": ["*.gguf"]}


def fetch(spec: dict, offline: bool = False) -> dict:
    """Download one item into the cache (the environment's HF_HUB_CACHE / GIFT_DATA_CACHE) and return its
    record. ``offline``: only find it in the cache (an error naming the item when it is not there)."""
    if spec["kind"] == "url":
        from .datasets.sources import fetch as fetch_url

        if offline:
            raise RuntimeError(f"{spec['url']}: release URLs cannot be checked offline; download it once online")
        return dict(spec, path=_relative(fetch_url(spec["url"])))

    from huggingface_hub import HfApi, snapshot_download

    repo_type = spec["kind"]
    revision = spec.get("revision") or "main"
    where = dict(repo_id=spec["repo"], repo_type=repo_type, revision=revision)
    patterns: dict = {}
    if repo_type == "model" and offline:
        # the snapshot's folder (every file ignored: nothing to check yet), then what it should hold, judged
        # from the files it has (safetensors present: the other weight formats are not expected)
        located = Path(snapshot_download(**where, local_files_only=True, ignore_patterns=["*"]))
        patterns = model_patterns(spec, [str(p.relative_to(located)) for p in located.rglob("*")])
    elif repo_type == "model":
        info = HfApi().model_info(spec["repo"], revision=revision)
        patterns = model_patterns(spec, [s.rfilename for s in info.siblings or []])
    # offline: huggingface_hub checks the cached snapshot against the repository's cached file listing
    path = snapshot_download(**where, local_files_only=offline, **patterns)
    return dict(spec, revision=revision, commit=Path(path).name, path=_relative(path), patterns=patterns)


def offline_hint(spec: dict, cache: str) -> str:
    """The command that fills the cache by hand with an item (docs/paper-scale.md)."""
    if spec["kind"] == "url":
        return f"download {spec['url']} on a machine with internet access and point the data path at the file"
    kind = " --repo-type dataset" if spec["kind"] == "dataset" else ""
    rev = spec.get("revision") or "main"
    return f"hf download {spec['repo']}{kind} --revision {rev} --cache-dir {cache}/huggingface/hub"


def main_fetch(spec: dict, out: str, cache: str) -> dict:
    """The fetch step: download ``spec`` (or, with USER_OFFLINE set, find it in the cache) and write its
    record to ``out``."""
    from .io import write_json

    offline = truthy(os.environ.get(USER_OFFLINE))
    label = spec.get("url") or f"{spec['kind']} {spec['repo']}@{spec.get('revision') or 'main'}"
    print(f"fetch {label}: {'cache only (HF_HUB_OFFLINE=1)' if offline else 'online'}", file=sys.stderr)
    try:
        record = fetch(spec, offline=offline)
    except Exception as e:  # one line: what, why, and how to fill the cache by hand
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        sys.exit(f"fetch {label}: {type(e).__name__}: {msg} (by hand: {offline_hint(spec, cache)})")
    write_json(out, record)
    print(f"fetched {label} -> {record['path']}", file=sys.stderr)
    return record
