"""The training data: (seed description, code) pairs, tokenised with the prompt masked, and the loader
that visits them in an order computed from the seed and the epoch alone."""

from __future__ import annotations

from ..tokens import Tokenization


def build_examples(problems: list[dict], selected: list[dict], include_original: bool = True) -> list[dict]:
    by_id = {p["task_id"]: p for p in problems}
    ex = []
    if include_original:
        ex += [{"task_id": p["task_id"], "code": p["reference"], "origin": "original"} for p in problems]
    ex += [
        {"task_id": s["task_id"], "code": s["code"], "origin": "selected"} for s in selected if s["task_id"] in by_id
    ]
    return ex


def tokenize_examples(
    tok, problems: list[dict], examples: list[dict], layout, max_length: int, tokenization: Tokenization | None = None
):
    """(input ids, labels) per example: the seed prompt (masked, label -100) and the layout's target of the
    code; examples longer than ``max_length`` tokens are dropped (returned as a count)."""
    tokenization = tokenization or Tokenization()
    by_id = {p["task_id"]: p for p in problems}
    items, dropped = [], 0
    for e in examples:
        p = by_id[e["task_id"]]
        prompt = layout.code_prompt(tok, p["description"], p)
        pid, cid = tokenization.pair_ids(tok, prompt, layout.target(e["code"], p))
        if len(pid) + len(cid) > max_length:
            dropped += 1
            continue
        items.append((pid + cid, [-100] * len(pid) + cid))
    return items, dropped


def _epoch_order(torch):
    class EpochOrder(torch.utils.data.Sampler):
        """The order ``RandomSampler(generator=Generator().manual_seed(seed))`` gives epoch after epoch (epoch e
        is the generator's permutation 2e: it draws an empty remainder permutation after each), computed from
        ``epoch`` alone, so that every process and a resumed run see the same order."""

        def __init__(self, n: int, seed: int):
            self.n, self.seed, self.epoch = n, seed, 0

        def __len__(self):
            return self.n

        def __iter__(self):
            g = torch.Generator().manual_seed(self.seed)
            for _ in range(2 * self.epoch):
                torch.randperm(self.n, generator=g)
            return iter(torch.randperm(self.n, generator=g).tolist())

    return EpochOrder


def _collate(pad):
    import torch

    def collate(batch):
        width = max(len(ids) for ids, _ in batch)
        ids = torch.tensor([x + [pad] * (width - len(x)) for x, _ in batch])
        attn = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x, _ in batch])
        lab = torch.tensor([y + [-100] * (width - len(y)) for _, y in batch])
        return ids, attn, lab

    return collate


def training_data(tok, problems, selected, layout, cfg: dict, seed: int):
    """(examples, tokenised items, number dropped, epoch order, loader) of a fine-tuning."""
    import torch

    examples = build_examples(problems, selected, cfg.get("include_original", True))
    tokenization = Tokenization.from_config(cfg)
    items, dropped = tokenize_examples(tok, problems, examples, layout, int(cfg["max_length"]), tokenization)
    if not items:
        raise ValueError("fine-tuning: no training example left (all longer than train.max_length?)")
    order = _epoch_order(torch)(len(items), seed)
    # the loader's own generator: creating an iterator draws a seed from it, not from torch's global stream
    # (which dropout draws from, and which a resumed run restores)
    loader = torch.utils.data.DataLoader(
        items,
        batch_size=int(cfg["micro_batch_size"]),
        sampler=order,
        collate_fn=_collate(tok.pad_token_id),
        generator=torch.Generator().manual_seed(seed),
    )
    return examples, items, dropped, order, loader
