"""Any OpenAI-compatible completions server (``vllm serve``, SGLang, OpenAI), and the model servers the
workflow starts itself (``generation.engine: served``, ``gift.serve``)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from ..prompts import cut_after_fence, truncate
from ..tokens import Tokenization
from .vllm import nll_from_prompt_logprobs, request_seed


class ServerGone(RuntimeError):
    """The server stopped answering (refused or dropped connections) while a job was using it."""


class OpenAIBackend:
    """``/v1/completions`` of an OpenAI-compatible server; prompts are rendered locally (the chat template
    comes from the model folder's tokenizer).

    ``token_ids=False`` (any server): prompts are sent as text, so the server's tokenizer decides the BOS
    token (``tokenize.bos`` must be ``auto``); scoring asks for ``echo`` + ``logprobs`` of prompt +
    completion and sums the completion's tokens (found by ``text_offset``; the end-of-sequence token is not
    scored, unlike the in-process backends).

    ``token_ids=True`` (vLLM and SGLang servers, and always in the served mode): prompts are sent as the
    tokenisation policy's token ids, exactly what the in-process backends feed the model, and scoring reads
    vLLM's ``prompt_logprobs`` of prompt + completion ids (end-of-sequence included): the in-process
    backends' numbers.

    A request carries at most ``max_stops`` stop strings (4: the OpenAI API's limit, and vLLM's default
    ``VLLM_MAX_STOP_STRINGS``; a server answers 400 to more); the others cut each completion here, at the
    first of all stops, which gives the same text after a few more tokens generated.

    Every prompt's request carries its own seed (:func:`gift.backends.vllm.request_seed`), the in-process
    vLLM backend's. Servers that ignore ``n`` are asked again until each prompt has n completions."""

    name = "openai"

    def __init__(
        self,
        model_path: str,
        base_url: str,
        served_model: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 4,
        timeout_s: float = 1800,
        progress: bool = True,
        top_k: int = 0,
        token_ids: bool = False,
        tokenization: Tokenization | None = None,
        log_hint: str = "",
        max_stops: int = 4,
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
        self.top_k = int(top_k or 0)
        self.token_ids = bool(token_ids)
        self.tokenization = tokenization or Tokenization(bos="auto")
        self.max_stops = max_stops
        self.log_hint = log_hint  # where the server's own log is (served mode), for error messages

    def _post(self, payload: dict) -> dict:
        if self.model:
            payload = dict(payload, model=self.model)
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        url = f"{self.base_url}/v1/completions"
        for attempt in range(3):
            req = urllib.request.Request(url, data=json.dumps(payload).encode(), headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
                    return json.loads(r.read())
            except urllib.error.HTTPError as e:
                raise RuntimeError(f"{url} answered {e.code}: {e.read()[:300]!r}") from None
            except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
                if attempt == 2:
                    where = f"; its log: {self.log_hint}" if self.log_hint else ""
                    raise ServerGone(f"model server {self.base_url} is not answering ({e}){where}") from None
                time.sleep(1.0 + attempt)
        raise AssertionError("unreachable")

    def _map(self, fn, items, desc):
        from concurrent.futures import ThreadPoolExecutor

        from tqdm import tqdm

        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(
                tqdm(pool.map(fn, items), total=len(items), desc=desc, disable=not self.progress, mininterval=5)
            )

    def _prompt(self, text: str):
        return self.tokenization.encode(self.tok, text) if self.token_ids else text

    def generate(self, prompts, n=1, temperature=1.0, top_p=1.0, max_new_tokens=256, seed=0, stop=None,
                 fence_stop=False, desc="generate"):  # fmt: skip
        greedy = temperature == 0
        n = 1 if greedy else n
        stop = list(stop or [])
        sent, rest = stop[: self.max_stops], stop[self.max_stops :]
        fence = cut_after_fence if fence_stop else (lambda t: t)
        post = (lambda t: fence(truncate(t, stop))) if rest else fence

        def one(ip):
            i, prompt = ip
            texts, attempt = [], 0
            while len(texts) < n and attempt < 4 * n:
                payload = {
                    "prompt": self._prompt(prompt),
                    "n": n - len(texts),
                    "temperature": temperature,
                    "top_p": 1.0 if greedy else top_p,
                    "max_tokens": max_new_tokens,
                    "seed": request_seed(seed, i) + attempt,
                }
                if sent:
                    payload["stop"] = sent
                if self.top_k and not greedy:
                    payload["top_k"] = self.top_k  # vLLM and SGLang servers take it beside OpenAI's keys
                choices = sorted(self._post(payload)["choices"], key=lambda c: c.get("index", 0))
                texts += [post(c["text"]) for c in choices][: n - len(texts)]
                attempt += 1
            if len(texts) < n:
                raise RuntimeError(f"{self.base_url}: got {len(texts)} of {n} completions for prompt {i}")
            return texts

        return self._map(one, list(enumerate(prompts)), desc)

    def score(self, prompts, completions, desc="score"):
        """(NLL sum, token count) of each completion after its prompt."""
        if self.token_ids:
            return self._map(self._score_ids, list(zip(prompts, completions, strict=True)), desc)
        return self._map(self._score_echo, list(zip(prompts, completions, strict=True)), desc)

    def _score_ids(self, pc):
        p, c = self.tokenization.pair_ids(self.tok, *pc)
        payload = {"prompt": p + c, "max_tokens": 1, "temperature": 0, "prompt_logprobs": 0}
        out = self._post(payload)["choices"][0]
        if out.get("prompt_logprobs") is None:
            raise RuntimeError(f"{self.base_url} returned no prompt_logprobs: token-id scoring needs a vLLM server")
        return nll_from_prompt_logprobs(out["prompt_logprobs"], len(p), c)

    def _score_echo(self, pc):
        """``token_logprobs[i]`` is log p(token i | tokens < i) (vLLM, SGLang, OpenAI)."""
        prompt, completion = pc
        payload = {"prompt": prompt + completion, "max_tokens": 1, "temperature": 0, "echo": True, "logprobs": 1}
        lp = self._post(payload)["choices"][0]["logprobs"]
        nll, count = 0.0, 0
        for off, v in zip(lp["text_offset"], lp["token_logprobs"], strict=True):
            if len(prompt) <= off < len(prompt) + len(completion) and v is not None:
                nll -= v
                count += 1
        return nll, count
