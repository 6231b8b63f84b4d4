"""The real embedded default model: conversion, generation, and the masked perplexity."""

import json
import math

import pytest
import torch

from gift.ppl import perplexity
from gift.tokens import Tokenization

pytestmark = pytest.mark.slow  # the real model


def test_conversion_is_a_real_safetensors_checkpoint(base_model_dir):
    files = {p.name for p in base_model_dir.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= files
    cfg = json.loads((base_model_dir / "config.json").read_text())
    assert cfg["model_type"] == "llama" and "quantization_config" not in cfg
    from safetensors import safe_open

    with safe_open(base_model_dir / "model.safetensors", "pt") as f:
        n = sum(
            f.get_slice(k).get_shape().numel()
            if hasattr(f.get_slice(k).get_shape(), "numel")
            else math.prod(f.get_slice(k).get_shape())
            for k in f.keys()
        )
    assert 130e6 < n < 140e6


def test_generation_is_seeded_and_batched_like_single(backend):
    prompts = ["def add(a, b):\n    return", "# Python\nimport"]
    one = backend.generate(prompts, n=2, temperature=1.0, max_new_tokens=8, seed=11)
    two = backend.generate(prompts, n=2, temperature=1.0, max_new_tokens=8, seed=11)
    assert one == two
    assert len(one) == 2 and all(len(x) == 2 for x in one)
    greedy = backend.generate(prompts, n=3, temperature=0.0, max_new_tokens=8, seed=1)
    assert all(len(x) == 1 for x in greedy)  # greedy returns one completion per prompt
    assert greedy[0][0] == backend.generate(prompts[:1], n=1, temperature=0.0, max_new_tokens=8, seed=2)[0][0]


def test_chat_answers_contain_code(backend):
    from gift.prompts import ChatLayout

    problem = {"example": "assert add(1, 2) == 3", "header": "def add(a, b):\n"}
    layout = ChatLayout()
    prompt = layout.code_prompt(backend.tok, "Write a function that adds two numbers.", problem)
    out = backend.generate([prompt], n=1, temperature=0.0, max_new_tokens=96, seed=0, fence_stop=True)[0][0]
    code = layout.extract(out, problem, prompt)
    assert "def " in code, out


def manual_nll(model, tok, prompt, completion):
    p, c = Tokenization().pair_ids(tok, prompt, completion)
    ids = torch.tensor([p + c])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
    # token at position i is predicted by the logits at i-1; only completion tokens count
    return -sum(float(logp[len(p) + j - 1, t]) for j, t in enumerate(c)), len(c)


def test_perplexity_masks_the_prompt_and_ignores_padding(backend):
    prompts = [
        "Write a function that returns one.\n",
        "A much longer prompt, so that the other row of the batch is left-padded by many tokens.\n",
    ]
    completions = ["def one():\n    return 1\n", "def two():\n    return 2\n"]
    scored = backend.score(prompts, completions)
    for (nll, n), p, c in zip(scored, prompts, completions, strict=True):
        ref_nll, ref_n = manual_nll(backend.model, backend.tok, p, c)
        assert n == ref_n == len(backend.tok(c, add_special_tokens=False)["input_ids"]) + 1  # + end of sequence
        assert nll == pytest.approx(ref_nll, rel=1e-4, abs=1e-3)
    # the prompt conditions the score but its own tokens are not counted
    alone = backend.score([prompts[0] + "Extra words that are not scored.\n"], [completions[0]])[0]
    assert alone[1] == scored[0][1] and alone[0] != pytest.approx(scored[0][0])
    assert perplexity(*scored[0]) == pytest.approx(math.exp(scored[0][0] / scored[0][1]))
    assert perplexity(0.0, 0) == float("inf")


def test_a_checkpoint_folder_loads_as_a_checkpoint_whatever_gguf_file_says(base_model_dir, tmp_path):
    """model.base: a local Hugging Face checkpoint folder, with the embedded default's gguf_file left in the
    config: the folder has config.json and no such file, so it is loaded as the checkpoint it is."""
    from gift.model import load, prepare_base

    out = tmp_path / "model"
    prepare_base(str(base_model_dir), "SmolLM2-135M-Instruct.Q4_1.gguf", out)
    assert json.loads((out / "pointer.json").read_text())["path"] == str(base_model_dir)
    model, tok = load(out, device="cpu")
    assert model.config.model_type == "llama" and tok.eos_token is not None
