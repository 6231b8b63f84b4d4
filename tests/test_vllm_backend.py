"""The `vllm` backend runs where CUDA and vllm are importable (a GPU machine with envs/gpu.yaml); elsewhere
these tests are skipped with the reason, and the CPU suite covers the same interface through the
transformers and openai backends."""

import importlib.util

import pytest


def _cuda():
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


needs_vllm = pytest.mark.skipif(
    importlib.util.find_spec("vllm") is None or not _cuda(),
    reason="vllm backend needs CUDA and the vllm package (GPU machines only)",
)


def test_vllm_backend_fails_with_a_clear_message_where_it_cannot_run():
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    from gift.backends import make_backend

    with pytest.raises(RuntimeError, match="needs a CUDA machine with vllm installed"):
        make_backend("unused", {"backend": "vllm"})


@needs_vllm
def test_vllm_generates_and_scores_like_transformers(base_model_dir):
    from gift.backends import make_backend

    v = make_backend(str(base_model_dir), {"backend": "vllm", "dtype": "float32", "gpu_memory_utilization": 0.3})
    t = make_backend(str(base_model_dir), {"backend": "transformers", "device": "cuda"})
    prompts = ["def add(a, b):\n", "# Sum a list\ndef total(xs):\n"]
    assert v.generate(prompts, n=1, temperature=0, max_new_tokens=16) == t.generate(
        prompts, n=1, temperature=0, max_new_tokens=16
    )
    sv = v.score(prompts, ["    return a + b\n", "    return sum(xs)\n"])
    st = t.score(prompts, ["    return a + b\n", "    return sum(xs)\n"])
    for (a, n), (b, m) in zip(sv, st, strict=True):
        assert n == m and abs(a - b) < 0.05 * max(1.0, abs(b))
