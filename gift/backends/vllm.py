"""vLLM in-process (CUDA): prompts sent as the tokenisation policy's token ids."""

from __future__ import annotations

from ..prompts import cut_after_fence
from ..tokens import Tokenization


class VLLMBackend:
    """In-process vLLM (GPU): ``LLM.generate`` with ``SamplingParams``; tensor parallelism from the config;
    scoring from prompt log-probs of prompt + completion token ids, the prompt's positions masked."""

    name = "vllm"

    def __init__(
        self,
        model_path: str,
        dtype: str = "bfloat16",
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        seed: int = 0,
        progress: bool = True,
        tokenization: Tokenization | None = None,
        top_k: int = 0,
    ):
        try:
            from vllm import LLM
        except ImportError as e:  # CPU machines: say what to do instead of a traceback
            raise RuntimeError(
                "generation.backend 'vllm' needs a CUDA machine with vllm installed (envs/gpu.yaml); "
                "use 'transformers' or 'openai' elsewhere"
            ) from e
        from ..model import resolve

        kwargs = dict(
            model=resolve(model_path),
            dtype=dtype,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            seed=seed,
        )
        if max_model_len:
            kwargs["max_model_len"] = max_model_len
        self.llm = LLM(**kwargs)
        self.tok = self.llm.get_tokenizer()
        self.progress = progress
        self.tokenization = tokenization or Tokenization()
        self.top_k = int(top_k or 0)

    def requests(self, prompts):
        """The prompts as token ids, tokenised by the policy (vLLM would add its own BOS to a string)."""
        from vllm.inputs import TokensPrompt

        return [TokensPrompt(prompt_token_ids=self.tokenization.encode(self.tok, p)) for p in prompts]

    def generate(
        self,
        prompts,
        n=1,
        temperature=1.0,
        top_p=1.0,
        max_new_tokens=256,
        seed=0,
        stop=None,
        fence_stop=False,
        desc="generate",
    ):
        from vllm import SamplingParams

        greedy = temperature == 0
        sp = SamplingParams(
            n=1 if greedy else n,
            temperature=temperature,
            top_p=1.0 if greedy else top_p,
            max_tokens=max_new_tokens,
            top_k=-1 if greedy or not self.top_k else self.top_k,
            stop=list(stop or []) or None,
            seed=seed,
        )
        outs = self.llm.generate(self.requests(prompts), sp, use_tqdm=self.progress)
        post = cut_after_fence if fence_stop else (lambda t: t)
        return [[post(o.text) for o in out.outputs] for out in outs]

    def score(self, prompts, completions, desc="score"):
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        pairs = [self.tokenization.pair_ids(self.tok, p, c) for p, c in zip(prompts, completions, strict=True)]
        reqs = [TokensPrompt(prompt_token_ids=p + c) for p, c in pairs]
        outs = self.llm.generate(reqs, SamplingParams(max_tokens=1, prompt_logprobs=0), use_tqdm=self.progress)
        res = []
        for (p, c), out in zip(pairs, outs, strict=True):
            lps = out.prompt_logprobs  # one dict per prompt position (None for the first)
            nll = -sum(lps[len(p) + j][t].logprob for j, t in enumerate(c))
            res.append((float(nll), len(c)))
        return res
