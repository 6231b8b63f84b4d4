"""Any OpenAI-compatible completions server (``vllm serve``, SGLang, llama.cpp's server)."""

from __future__ import annotations

from ..prompts import cut_after_fence


class OpenAIBackend:
    """Any OpenAI-compatible completions server (``vllm serve``, SGLang, llama.cpp's server).

    Prompts are rendered locally (the chat template comes from the model folder's tokenizer) and sent to
    ``/v1/completions``. Scoring asks for ``echo`` + ``logprobs`` of prompt + completion and sums the
    completion's tokens (found by ``text_offset``); the end-of-sequence token is not scored, unlike the
    in-process backends. Servers that ignore ``n`` are asked again until each prompt has n completions."""

    name = "openai"

    def __init__(
        self,
        model_path: str,
        base_url: str,
        served_model: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 4,
        timeout_s: float = 600,
        progress: bool = True,
        logprob_alignment: str = "standard",
        top_logprobs: int = 100,
        top_k: int = 0,
    ):
        import os

        from transformers import AutoTokenizer

        from ..model import resolve

        self.tok = AutoTokenizer.from_pretrained(resolve(model_path))
        self.base_url = base_url.rstrip("/")
        self.model = served_model
        self.api_key = os.environ.get(api_key_env, "")
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.progress = progress
        if logprob_alignment not in ("standard", "llama_cpp_python"):
            raise ValueError(f"generation.logprob_alignment: '{logprob_alignment}' (standard | llama_cpp_python)")
        self.alignment = logprob_alignment
        self.top_logprobs = top_logprobs
        self.top_k = int(top_k or 0)

    def _post(self, payload: dict) -> dict:
        import json
        import urllib.error
        import urllib.request

        if self.model:
            payload = dict(payload, model=self.model)
        req = urllib.request.Request(
            f"{self.base_url}/v1/completions",
            data=json.dumps(payload).encode(),
            headers={
                "Content-Type": "application/json",
                **({"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}),
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"{self.base_url}/v1/completions answered {e.code}: {e.read()[:300]!r}") from None

    def _map(self, fn, items):
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(fn, items))

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
        greedy = temperature == 0
        n = 1 if greedy else n
        post = cut_after_fence if fence_stop else (lambda t: t)

        def one(ip):
            i, prompt = ip
            texts, attempt = [], 0
            while len(texts) < n and attempt < 4 * n:
                payload = {
                    "prompt": prompt,
                    "n": n - len(texts),
                    "temperature": temperature,
                    "top_p": 1.0 if greedy else top_p,
                    "max_tokens": max_new_tokens,
                    "seed": seed + 7919 * i + attempt,
                }
                if stop:
                    payload["stop"] = list(stop)
                if self.top_k and not greedy:
                    payload["top_k"] = self.top_k  # vLLM, SGLang and llama.cpp servers take it beside OpenAI's keys
                choices = sorted(self._post(payload)["choices"], key=lambda c: c.get("index", 0))
                texts += [post(c["text"]) for c in choices][: n - len(texts)]
                attempt += 1
            if len(texts) < n:
                raise RuntimeError(f"{self.base_url}: got {len(texts)} of {n} completions for prompt {i}")
            return texts

        return self._map(one, list(enumerate(prompts)))

    def score(self, prompts, completions, desc="score"):
        """(NLL sum, token count) of each completion after its prompt from the server's echoed log-probs.

        ``standard`` alignment (vLLM, SGLang, OpenAI): ``token_logprobs[i]`` is log p(token i | tokens < i).
        ``llama_cpp_python``: that server (0.3.x) returns, for token i, the log-prob under the distribution
        that *follows* token i (measured here against the in-process model); the right value for token i is
        then looked up in ``top_logprobs[i - 1]`` (the ``top_logprobs`` most likely tokens; a token outside
        them gets the smallest listed log-prob, an upper bound, and is counted in ``self.approximated``)."""
        shifted = self.alignment == "llama_cpp_python"
        self.approximated = 0

        def one(pc):
            prompt, completion = pc
            payload = {
                "prompt": prompt + completion,
                "max_tokens": 1,
                "temperature": 0,
                "echo": True,
                "logprobs": self.top_logprobs if shifted else 1,
            }
            lp = self._post(payload)["choices"][0]["logprobs"]
            nll, count, approx = 0.0, 0, 0
            offsets, values = lp["text_offset"], lp["token_logprobs"]
            for i, off in enumerate(offsets):
                if not (len(prompt) <= off < len(prompt) + len(completion)):
                    continue
                if shifted:
                    top = (lp["top_logprobs"][i - 1] or {}) if i > 0 else {}
                    v = top.get(lp["tokens"][i])
                    if v is None:
                        v, approx = (min(top.values()) if top else float("-inf")), approx + 1
                else:
                    v = values[i]
                if v is None:
                    continue
                nll -= v
                count += 1
            return nll, count, approx

        out = self._map(one, list(zip(prompts, completions, strict=True)))
        self.approximated = sum(a for _, _, a in out)
        return [(nll, n) for nll, n, _ in out]
