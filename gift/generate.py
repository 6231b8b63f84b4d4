"""Generation and scoring backends behind one interface.

Every rule that generates text or scores it goes through ``make_backend(cfg)``:

    backend.generate(prompts, n=3, temperature=1.0, top_p=1.0, max_new_tokens=512, seed=0, stop=None)
        -> list (per prompt) of n completions (str, without the prompt)
    backend.score(prompts, completions) -> list of (sum of token NLL, number of completion tokens)

``transformers`` (here) runs in-process on CPU or GPU with left-padded batches over all prompts x samples
and a KV cache; greedy decoding when temperature == 0. Other backends are chosen by ``generation.backend``.
"""

from __future__ import annotations

from typing import Sequence

from tqdm import tqdm

from .prompts import truncate
from .ppl import token_nll
from .tokens import Tokenization


class _Stopper:
    """Decides per sequence when to stop: once its completion holds a closed fenced code block (chat
    answers), or contains one of the stop strings. Incremental: each step appends the text of the newest
    token (from a table built once per tokenizer) and looks only at the tail, so it costs almost nothing."""

    _tables: dict = {}

    def __init__(self, tokenizer, batch: int, stop: Sequence[str] | None, fence_stop: bool):
        key = id(tokenizer)
        if key not in self._tables:
            self._tables[key] = tokenizer.batch_decode([[i] for i in range(len(tokenizer))], skip_special_tokens=True)
        self.table = self._tables[key]
        self.stop = list(stop or [])
        self.fence_stop = fence_stop
        self.text = [""] * batch
        self.fences = [0] * batch
        self.keep = max([len(s) for s in self.stop] + [3]) + 8

    @property
    def active(self) -> bool:
        return bool(self.stop) or self.fence_stop

    def hit(self, row: int, tok_id: int) -> bool:
        piece = self.table[tok_id] if tok_id < len(self.table) else ""
        old = self.text[row][-self.keep :]
        tail = old + piece
        if self.fence_stop:
            self.fences[row] += tail.count("```") - old.count("```")
        self.text[row] = tail
        return (self.fence_stop and self.fences[row] >= 2) or any(s in tail for s in self.stop)


class _HFStop:
    """The same rule as a transformers StoppingCriteria (for ``model.generate``)."""

    def __init__(self, stopper: _Stopper):
        self.stopper = stopper

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        done = [self.stopper.hit(i, t) for i, t in enumerate(input_ids[:, -1].tolist())]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def sample_next(logits, temperature: float, top_p: float, generator, candidates: int = 512, top_k: int = 0):
    """Next token per row: argmax when temperature == 0, else sampling from softmax(logits / T) restricted,
    in transformers' order, to the ``top_k`` most likely tokens (0: all) and then to the nucleus (the
    smallest set of most likely tokens whose mass reaches ``top_p``, renormalised).

    The nucleus is found among the ``candidates`` (or ``top_k``) most likely tokens; rows whose nucleus is
    larger fall back to a full sort, so the distribution is exactly that of top-k / top-p sampling without
    sorting the whole vocabulary every step."""
    import torch

    if temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_k and top_k < probs.shape[-1]:
        top, idx = probs.topk(top_k, dim=-1)
        top = top / top.sum(-1, keepdim=True)
        if top_p >= 1.0:
            return idx.gather(-1, torch.multinomial(top, 1, generator=generator)).squeeze(-1)
        return _nucleus(top, idx, top_p, generator)
    if top_p >= 1.0:
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
    k = min(candidates, probs.shape[-1])
    top, idx = probs.topk(k, dim=-1)
    short = top.sum(-1) < top_p
    if short.any():  # rare: a flat distribution; sort those rows fully
        full, full_idx = probs[short].sort(dim=-1, descending=True)
        out = torch.empty(probs.shape[0], dtype=torch.long, device=probs.device)
        out[~short] = _nucleus(top[~short], idx[~short], top_p, generator)
        out[short] = _nucleus(full, full_idx, top_p, generator)
        return out
    return _nucleus(top, idx, top_p, generator)


def _nucleus(sorted_probs, sorted_idx, top_p, generator):
    import torch

    before = sorted_probs.cumsum(-1) - sorted_probs  # mass of the strictly more likely tokens
    kept = torch.where(before < top_p, sorted_probs, torch.zeros_like(sorted_probs))
    choice = torch.multinomial(kept, 1, generator=generator)
    return sorted_idx.gather(-1, choice).squeeze(-1)


class TransformersBackend:
    name = "transformers"

    def __init__(self, model_path: str, dtype: str = "float32", device: str = "auto", batch_size: int = 24, progress: bool = True,
                 tokenization: Tokenization | None = None, top_k: int = 0):
        from . import model as model_mod

        self.model, self.tok = model_mod.load(model_path, dtype=dtype, device=device)
        self.tok.padding_side = "left"
        self.batch_size = batch_size
        self.progress = progress
        self.tokenization = tokenization or Tokenization()
        self.top_k = int(top_k or 0)

    def encode_batch(self, texts: Sequence[str]):
        """Left-padded ``input_ids`` and ``attention_mask`` of prompts, each tokenised by the policy."""
        import torch

        ids = [self.tokenization.encode(self.tok, t) for t in texts]
        width = max(len(x) for x in ids)
        pad = self.tok.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in ids], device=self.device)
        attn = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids], device=self.device)
        return input_ids, attn

    @property
    def device(self):
        return self.model.device

    def generate(self, prompts: Sequence[str], n: int = 1, temperature: float = 1.0, top_p: float = 1.0,
                 max_new_tokens: int = 256, seed: int = 0, stop: Sequence[str] | None = None,
                 fence_stop: bool = False, desc: str = "generate") -> list[list[str]]:
        """``n`` completions per prompt (one when greedy, temperature == 0).

        All prompts x samples are decoded in left-padded batches of ``batch_size`` sequences (prompts sorted
        by length so that padding stays small) with a KV cache; a sequence that ends (end-of-sequence, a
        closed code fence with ``fence_stop``, or a ``stop`` string) leaves the batch at once, so the batch
        shrinks instead of running on for its longest member. Seeded: the same call gives the same text."""
        import torch

        greedy = temperature == 0
        if greedy:
            n = 1
        jobs = [(i, j) for i in range(len(prompts)) for j in range(n)]
        jobs.sort(key=lambda ij: -len(prompts[ij[0]]))
        out: list[list[str]] = [[""] * n for _ in prompts]
        gen = torch.Generator(device=self.device).manual_seed(int(seed))
        bar = tqdm(total=len(jobs), desc=desc, unit="seq", disable=not self.progress, mininterval=5)
        for start in range(0, len(jobs), self.batch_size):
            batch = jobs[start : start + self.batch_size]
            input_ids, attn = self.encode_batch([prompts[i] for i, _ in batch])
            stopper = _Stopper(self.tok, len(batch), stop, fence_stop)
            tokens = self._decode(input_ids, attn, max_new_tokens, temperature, top_p, gen, stopper)
            texts = self.tok.batch_decode(tokens, skip_special_tokens=True)
            for (i, j), text in zip(batch, texts):
                out[i][j] = truncate(text, stop) if stop else text
            bar.update(len(batch))
        bar.close()
        return out

    def _eos_ids(self) -> set[int]:
        ids = {self.tok.eos_token_id}
        cfg = getattr(self.model, "generation_config", None)
        extra = getattr(cfg, "eos_token_id", None)
        if isinstance(extra, int):
            ids.add(extra)
        elif extra:
            ids.update(extra)
        return {i for i in ids if i is not None}

    def _decode(self, input_ids, attention_mask, max_new_tokens, temperature, top_p, gen, stopper) -> list[list[int]]:
        """The decoding loop: one forward pass per new token over the still-active rows."""
        import torch
        from transformers import DynamicCache

        eos = self._eos_ids()
        rows = input_ids.shape[0]
        generated: list[list[int]] = [[] for _ in range(rows)]
        active = list(range(rows))
        attn = attention_mask.long()
        pos = (attn.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=self.model.config)
        with torch.no_grad():
            logits = self.model(input_ids=input_ids, attention_mask=attn, position_ids=pos, past_key_values=cache, use_cache=True).logits[:, -1, :]
            next_pos = pos[:, -1:] + 1
            for step in range(max_new_tokens):
                nxt = sample_next(logits, temperature, top_p, gen, top_k=self.top_k)
                keep = []
                for k, (row, t) in enumerate(zip(active, nxt.tolist())):
                    if t in eos:
                        continue
                    generated[row].append(t)
                    if not (stopper.active and stopper.hit(row, t)):
                        keep.append(k)
                if not keep or step == max_new_tokens - 1:
                    break
                if len(keep) < len(active):
                    sel = torch.tensor(keep, device=input_ids.device)
                    cache.reorder_cache(sel)
                    attn, nxt, next_pos = attn[sel], nxt[sel], next_pos[sel]
                    active = [active[k] for k in keep]
                attn = torch.cat([attn, attn.new_ones(len(active), 1)], dim=1)
                logits = self.model(input_ids=nxt[:, None], attention_mask=attn, position_ids=next_pos, past_key_values=cache,
                                    use_cache=True).logits[:, -1, :]
                next_pos = next_pos + 1
        return generated

    def generate_hf(self, prompts: Sequence[str], n: int = 1, temperature: float = 1.0, top_p: float = 1.0,
                    max_new_tokens: int = 256, seed: int = 0, stop: Sequence[str] | None = None, fence_stop: bool = False,
                    per_prompt: bool = False) -> list[list[str]]:
        """``model.generate`` as most code does it. ``per_prompt=True`` is the paper's way: one prompt at a
        time with ``num_return_sequences=n``; else batches of ``batch_size`` sequences. Kept for comparison
        (benchmarks/bench_generate.py) and as a reference implementation."""
        import torch
        from transformers import StoppingCriteriaList

        greedy = temperature == 0
        n = 1 if greedy else n
        torch.manual_seed(seed)
        out: list[list[str]] = [[] for _ in prompts]
        groups = [[(i, None)] for i in range(len(prompts))] if per_prompt else None
        jobs = [(i, j) for i in range(len(prompts)) for j in range(n)]
        batches = groups if per_prompt else [jobs[s : s + self.batch_size] for s in range(0, len(jobs), self.batch_size)]
        for batch in batches:
            input_ids, attn = self.encode_batch([prompts[i] for i, _ in batch])
            enc = {"input_ids": input_ids, "attention_mask": attn}
            reps = n if per_prompt else 1
            kwargs = dict(max_new_tokens=max_new_tokens, pad_token_id=self.tok.pad_token_id, use_cache=True, num_return_sequences=reps)
            kwargs.update(do_sample=False) if greedy else kwargs.update(do_sample=True, temperature=temperature, top_p=top_p,
                                                                        top_k=self.top_k)
            if stop or fence_stop:
                kwargs["stopping_criteria"] = StoppingCriteriaList([_HFStop(_Stopper(self.tok, len(batch) * reps, stop, fence_stop))])
            with torch.no_grad():
                seqs = self.model.generate(**enc, **kwargs)
            texts = self.tok.batch_decode(seqs[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
            owners = [i for i, _ in batch for _ in range(reps)]
            for i, text in zip(owners, texts):
                out[i].append(truncate(text, stop) if stop else text)
        return out

    def score(self, prompts: Sequence[str], completions: Sequence[str], desc: str = "score") -> list[tuple[float, int]]:
        """Sum of negative log-likelihood of each completion's tokens given its prompt, and their count.
        Prompt tokens are masked (label -100); padding is masked by the attention mask."""
        import torch

        results: list[tuple[float, int]] = [(0.0, 0)] * len(prompts)
        order = sorted(range(len(prompts)), key=lambda i: -(len(prompts[i]) + len(completions[i])))
        bs = max(1, self.batch_size // 2)
        for start in tqdm(range(0, len(order), bs), desc=desc, disable=not self.progress, mininterval=5):
            idx = order[start : start + bs]
            ids, labels = [], []
            for i in idx:
                p, c = self.tokenization.pair_ids(self.tok, prompts[i], completions[i])
                ids.append(p + c)
                labels.append([-100] * len(p) + c)
            width = max(len(x) for x in ids)
            pad = self.tok.pad_token_id
            input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in ids], device=self.device)
            attn = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids], device=self.device)
            lab = torch.tensor([[-100] * (width - len(x)) + x for x in labels], device=self.device)
            with torch.no_grad():
                logits = self.model(input_ids=input_ids, attention_mask=attn).logits.float()
            nll = token_nll(logits, lab)
            for k, i in enumerate(idx):
                mask = lab[k, 1:] != -100
                results[i] = (float(nll[k][mask].sum()), int(mask.sum()))
        return results


def cut_after_fence(text: str) -> str:
    """A chat answer up to the end of its first closed code fence (servers cannot stop on 'the second ```')."""
    first = text.find("```")
    if first == -1:
        return text
    second = text.find("```", first + 3)
    return text if second == -1 else text[: second + 3]


class VLLMBackend:
    """In-process vLLM (GPU): ``LLM.generate`` with ``SamplingParams``; tensor parallelism from the config;
    scoring from prompt log-probs of prompt + completion token ids, the prompt's positions masked."""

    name = "vllm"

    def __init__(self, model_path: str, dtype: str = "bfloat16", tensor_parallel_size: int = 1, gpu_memory_utilization: float = 0.9,
                 max_model_len: int | None = None, seed: int = 0, progress: bool = True, tokenization: Tokenization | None = None,
                 top_k: int = 0):
        try:
            from vllm import LLM
        except ImportError as e:  # CPU machines: say what to do instead of a traceback
            raise RuntimeError("generation.backend 'vllm' needs a CUDA machine with vllm installed (envs/gpu.yaml); "
                               "use 'transformers' or 'openai' elsewhere") from e
        from .model import resolve

        kwargs = dict(model=resolve(model_path), dtype=dtype, tensor_parallel_size=tensor_parallel_size,
                      gpu_memory_utilization=gpu_memory_utilization, seed=seed)
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

    def generate(self, prompts, n=1, temperature=1.0, top_p=1.0, max_new_tokens=256, seed=0, stop=None, fence_stop=False, desc="generate"):
        from vllm import SamplingParams

        greedy = temperature == 0
        sp = SamplingParams(n=1 if greedy else n, temperature=temperature, top_p=1.0 if greedy else top_p, max_tokens=max_new_tokens,
                            top_k=-1 if greedy or not self.top_k else self.top_k, stop=list(stop or []) or None, seed=seed)
        outs = self.llm.generate(self.requests(prompts), sp, use_tqdm=self.progress)
        post = cut_after_fence if fence_stop else (lambda t: t)
        return [[post(o.text) for o in out.outputs] for out in outs]

    def score(self, prompts, completions, desc="score"):
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        pairs = [self.tokenization.pair_ids(self.tok, p, c) for p, c in zip(prompts, completions)]
        reqs = [TokensPrompt(prompt_token_ids=p + c) for p, c in pairs]
        outs = self.llm.generate(reqs, SamplingParams(max_tokens=1, prompt_logprobs=0), use_tqdm=self.progress)
        res = []
        for (p, c), out in zip(pairs, outs):
            lps = out.prompt_logprobs  # one dict per prompt position (None for the first)
            nll = -sum(lps[len(p) + j][t].logprob for j, t in enumerate(c))
            res.append((float(nll), len(c)))
        return res


class OpenAIBackend:
    """Any OpenAI-compatible completions server (``vllm serve``, SGLang, llama.cpp's server).

    Prompts are rendered locally (the chat template comes from the model folder's tokenizer) and sent to
    ``/v1/completions``. Scoring asks for ``echo`` + ``logprobs`` of prompt + completion and sums the
    completion's tokens (found by ``text_offset``); the end-of-sequence token is not scored, unlike the
    in-process backends. Servers that ignore ``n`` are asked again until each prompt has n completions."""

    name = "openai"

    def __init__(self, model_path: str, base_url: str, served_model: str | None = None, api_key_env: str = "OPENAI_API_KEY",
                 concurrency: int = 4, timeout_s: float = 600, progress: bool = True, logprob_alignment: str = "standard",
                 top_logprobs: int = 100, top_k: int = 0):
        import os

        from transformers import AutoTokenizer

        from .model import resolve

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
        req = urllib.request.Request(f"{self.base_url}/v1/completions", data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {self.api_key}"} if self.api_key else {})})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"{self.base_url}/v1/completions answered {e.code}: {e.read()[:300]!r}") from None

    def _map(self, fn, items):
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(fn, items))

    def generate(self, prompts, n=1, temperature=1.0, top_p=1.0, max_new_tokens=256, seed=0, stop=None, fence_stop=False, desc="generate"):
        greedy = temperature == 0
        n = 1 if greedy else n
        post = cut_after_fence if fence_stop else (lambda t: t)

        def one(ip):
            i, prompt = ip
            texts, attempt = [], 0
            while len(texts) < n and attempt < 4 * n:
                payload = {"prompt": prompt, "n": n - len(texts), "temperature": temperature, "top_p": 1.0 if greedy else top_p,
                           "max_tokens": max_new_tokens, "seed": seed + 7919 * i + attempt}
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
            payload = {"prompt": prompt + completion, "max_tokens": 1, "temperature": 0, "echo": True,
                       "logprobs": self.top_logprobs if shifted else 1}
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

        out = self._map(one, list(zip(prompts, completions)))
        self.approximated = sum(a for _, _, a in out)
        return [(nll, n) for nll, n, _ in out]


def make_backend(model_path: str, gen_cfg: dict, progress: bool = True):
    """The generation backend named by ``generation.backend`` (imported lazily: a CPU machine never imports vllm)."""
    backend = gen_cfg.get("backend", "transformers")
    tokenization = Tokenization(**{k: v for k, v in (gen_cfg.get("tokenize") or {}).items() if k in ("bos", "pair")})
    top_k = gen_cfg.get("top_k", 0)
    if backend == "transformers":
        return TransformersBackend(model_path, dtype=gen_cfg.get("dtype", "float32"), device=gen_cfg.get("device", "auto"),
                                   batch_size=gen_cfg.get("batch_size", 24), progress=progress, tokenization=tokenization, top_k=top_k)
    if backend == "vllm":
        return VLLMBackend(model_path, dtype=gen_cfg.get("dtype", "bfloat16"), tensor_parallel_size=gen_cfg.get("tensor_parallel_size", 1),
                           gpu_memory_utilization=gen_cfg.get("gpu_memory_utilization", 0.9), max_model_len=gen_cfg.get("max_model_len"),
                           seed=gen_cfg.get("seed", 0), progress=progress, tokenization=tokenization, top_k=top_k)
    if backend == "openai":
        if not gen_cfg.get("base_url"):
            raise ValueError("generation.base_url is required with backend 'openai'")
        return OpenAIBackend(model_path, gen_cfg["base_url"], served_model=gen_cfg.get("served_model"),
                             api_key_env=gen_cfg.get("api_key_env", "OPENAI_API_KEY"), concurrency=gen_cfg.get("concurrency", 4),
                             progress=progress, logprob_alignment=gen_cfg.get("logprob_alignment", "standard"),
                             top_logprobs=gen_cfg.get("top_logprobs", 100), top_k=top_k)
    raise ValueError(f"generation.backend: unknown backend '{backend}' (transformers | vllm | openai)")
