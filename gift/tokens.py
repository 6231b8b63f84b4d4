"""One tokenisation policy for every place that turns text into model input: sampling (every backend),
perplexity scoring and training sequences.

``tokenize.bos`` (config)
    ``auto``   the tokenizer's own default (``tokenizer(text)``): what the authors do; DeepSeek-Coder and
               CodeLlama add a BOS token, SmolLM2 does not;
    ``true``   a BOS token first, whatever the tokenizer's default;
    ``false``  no special tokens at all (a chat template writes its own).
``tokenize.pair`` (config): how a (prompt, target) pair becomes one training / scoring sequence
    ``separate`` prompt and target tokenised on their own and concatenated: the boundary is exact;
    ``joint``    the authors' way: ``prompt + target`` tokenised as one text, the first
                 ``len(tokens(prompt))`` positions masked (a token that straddles the boundary counts
                 as prompt).
Either way the target ends with the end-of-sequence token, and BOS (when present) is the first id.
"""

from __future__ import annotations

from dataclasses import dataclass

BOS_CHOICES = ("auto", True, False)
PAIR_CHOICES = ("separate", "joint")


@dataclass(frozen=True)
class Tokenization:
    bos: object = False  # "auto" | True | False
    pair: str = "separate"

    def __post_init__(self):
        if self.bos not in BOS_CHOICES:
            raise ValueError(f"tokenize.bos: {self.bos!r} (auto | true | false)")
        if self.pair not in PAIR_CHOICES:
            raise ValueError(f"tokenize.pair: {self.pair!r} (separate | joint)")

    @classmethod
    def from_config(cls, cfg: dict | None) -> Tokenization:
        t = (cfg or {}).get("tokenize") or {}
        return cls(bos=t.get("bos", False), pair=t.get("pair", "separate"))

    def encode(self, tok, text: str) -> list[int]:
        """Token ids of ``text`` as the model sees it (BOS first exactly when the policy says so)."""
        if self.bos == "auto":
            return list(tok(text)["input_ids"])
        ids = list(tok(text, add_special_tokens=False)["input_ids"])
        if self.bos is True:
            bos = tok.bos_token_id
            if bos is None:
                raise ValueError("tokenize.bos: true, but the tokenizer has no BOS token")
            if not ids or ids[0] != bos:
                ids = [bos] + ids
        return ids

    def pair_ids(self, tok, prompt: str, target: str) -> tuple[list[int], list[int]]:
        """(prompt ids, target ids): the sequence is their concatenation; the loss / NLL counts the target
        ids only. The target ends with the end-of-sequence token."""
        eos = [tok.eos_token_id] if tok.eos_token_id is not None else []
        p = self.encode(tok, prompt)
        if self.pair == "separate":
            return p, list(tok(target, add_special_tokens=False)["input_ids"]) + eos
        whole = self.encode(tok, prompt + target)
        return whole[: len(p)], whole[len(p) :] + eos
