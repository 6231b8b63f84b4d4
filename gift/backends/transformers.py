"""In-process generation and scoring with transformers (CPU or GPU): left-padded batches over all
prompts x samples with a KV cache; a sequence that ends leaves the batch at once."""

from __future__ import annotations

from collections.abc import Sequence

from tqdm import tqdm

from ..ppl import token_nll
from ..prompts import truncate
from ..tokens import Tokenization


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

    def __init__(
        self,
        model_path: str,
        dtype: str = "float32",
        device: str = "auto",
        batch_size: int = 24,
        progress: bool = True,
        tokenization: Tokenization | None = None,
        top_k: int = 0,
    ):
        from .. import model as model_mod

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

    def generate(
        self,
        prompts: Sequence[str],
        n: int = 1,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_new_tokens: int = 256,
        seed: int = 0,
        stop: Sequence[str] | None = None,
        fence_stop: bool = False,
        desc: str = "generate",
    ) -> list[list[str]]:
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
            for (i, j), text in zip(batch, texts, strict=True):
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
            logits = self.model(
                input_ids=input_ids, attention_mask=attn, position_ids=pos, past_key_values=cache, use_cache=True
            ).logits[:, -1, :]
            next_pos = pos[:, -1:] + 1
            for step in range(max_new_tokens):
                nxt = sample_next(logits, temperature, top_p, gen, top_k=self.top_k)
                keep = []
                for k, (row, t) in enumerate(zip(active, nxt.tolist(), strict=True)):
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
                logits = self.model(
                    input_ids=nxt[:, None],
                    attention_mask=attn,
                    position_ids=next_pos,
                    past_key_values=cache,
                    use_cache=True,
                ).logits[:, -1, :]
                next_pos = next_pos + 1
        return generated

    def generate_hf(
        self,
        prompts: Sequence[str],
        n: int = 1,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_new_tokens: int = 256,
        seed: int = 0,
        stop: Sequence[str] | None = None,
        fence_stop: bool = False,
        per_prompt: bool = False,
    ) -> list[list[str]]:
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
        batches = (
            groups if per_prompt else [jobs[s : s + self.batch_size] for s in range(0, len(jobs), self.batch_size)]
        )
        for batch in batches:
            input_ids, attn = self.encode_batch([prompts[i] for i, _ in batch])
            enc = {"input_ids": input_ids, "attention_mask": attn}
            reps = n if per_prompt else 1
            kwargs = dict(
                max_new_tokens=max_new_tokens,
                pad_token_id=self.tok.pad_token_id,
                use_cache=True,
                num_return_sequences=reps,
            )
            kwargs.update(do_sample=False) if greedy else kwargs.update(
                do_sample=True, temperature=temperature, top_p=top_p, top_k=self.top_k
            )
            if stop or fence_stop:
                kwargs["stopping_criteria"] = StoppingCriteriaList(
                    [_HFStop(_Stopper(self.tok, len(batch) * reps, stop, fence_stop))]
                )
            with torch.no_grad():
                seqs = self.model.generate(**enc, **kwargs)
            texts = self.tok.batch_decode(seqs[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
            owners = [i for i, _ in batch for _ in range(reps)]
            for i, text in zip(owners, texts, strict=True):
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
