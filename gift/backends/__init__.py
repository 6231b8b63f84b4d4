"""Generation and scoring backends behind one interface (one module per backend, as evalplus's ``provider/``).

Every rule that generates text or scores it goes through ``make_backend(cfg)``:

    backend.generate(prompts, n=3, temperature=1.0, top_p=1.0, max_new_tokens=512, seed=0, stop=None)
        -> list (per prompt) of n completions (str, without the prompt)
    backend.score(prompts, completions) -> list of (sum of token NLL, number of completion tokens)

``transformers`` (``gift.backends.transformers``) runs in-process on CPU or GPU; ``vllm`` on CUDA GPUs; ``openai``
against an OpenAI-compatible server. ``make_backend`` imports the chosen one lazily: a CPU machine never
imports vllm. Every backend tokenises by the config's policy (``gift.tokens.Tokenization``).
"""

from __future__ import annotations

__all__ = ["make_backend"]


def make_backend(model_path: str, gen_cfg: dict, progress: bool = True):
    """The generation backend named by ``generation.backend`` (imported lazily: a CPU machine never imports vllm)."""
    from ..tokens import Tokenization

    backend = gen_cfg.get("backend", "transformers")
    tokenization = Tokenization(**{k: v for k, v in (gen_cfg.get("tokenize") or {}).items() if k in ("bos", "pair")})
    top_k = gen_cfg.get("top_k", 0)
    if backend == "transformers":
        from .transformers import TransformersBackend

        return TransformersBackend(
            model_path,
            dtype=gen_cfg.get("dtype", "float32"),
            device=gen_cfg.get("device", "auto"),
            batch_size=gen_cfg.get("batch_size", 24),
            progress=progress,
            tokenization=tokenization,
            top_k=top_k,
        )
    if backend == "vllm":
        from .vllm import VLLMBackend

        return VLLMBackend(
            model_path,
            dtype=gen_cfg.get("dtype", "bfloat16"),
            tensor_parallel_size=gen_cfg.get("tensor_parallel_size", 1),
            gpu_memory_utilization=gen_cfg.get("gpu_memory_utilization", 0.9),
            max_model_len=gen_cfg.get("max_model_len"),
            seed=gen_cfg.get("seed", 0),
            progress=progress,
            tokenization=tokenization,
            top_k=top_k,
        )
    if backend == "openai":
        from .openai import OpenAIBackend

        if not gen_cfg.get("base_url"):
            raise ValueError("generation.base_url is required with backend 'openai'")
        return OpenAIBackend(
            model_path,
            gen_cfg["base_url"],
            served_model=gen_cfg.get("served_model"),
            api_key_env=gen_cfg.get("api_key_env", "OPENAI_API_KEY"),
            concurrency=gen_cfg.get("concurrency", 4),
            progress=progress,
            logprob_alignment=gen_cfg.get("logprob_alignment", "standard"),
            top_logprobs=gen_cfg.get("top_logprobs", 100),
            top_k=top_k,
        )
    raise ValueError(f"generation.backend: unknown backend '{backend}' (transformers | vllm | openai)")
