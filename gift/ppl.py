"""Perplexity of every pooled code under the frozen base model.

PPL = exp(mean NLL over the code's tokens and the end-of-sequence token), the prompt's tokens masked.
``condition`` chooses the description the prompt holds: ``chain`` (the description of the chain step
that produced the code, as the authors' script does: everything up to the end of that code's own
docstring) or ``seed`` (the seed description the code will be trained with). The prompt / target split
is the layout's (``prompts.*Layout.ppl_pair``); tokenisation is the backend's policy (``tokenize.*``).
``expand_tabs`` replaces each tab of the code with 4 spaces before it is split and tokenised, as the
authors' cal_ppl.py does; ``strip_cr`` removes each carriage return (``\r``) as well, as cal_ppl.py's
``.replace('\r', '')`` does (the rows keep the code as written: it is what selection hands to training).
"""

from __future__ import annotations

import math

CONDITIONS = ("chain", "seed")


def perplexity(nll_sum: float, n_tokens: int) -> float:
    """exp(mean token NLL); inf for an empty completion."""
    return math.exp(nll_sum / n_tokens) if n_tokens else float("inf")


def token_nll(logits, labels):
    """Per-position NLL of ``labels[:, 1:]`` under ``logits[:, :-1]``; masked positions (label -100) give 0."""
    import torch.nn.functional as F

    shift_logits = logits[:, :-1, :]
    shift_labels = labels[:, 1:]
    nll = F.cross_entropy(
        shift_logits.reshape(-1, shift_logits.size(-1)), shift_labels.reshape(-1), ignore_index=-100, reduction="none"
    )
    return nll.view(shift_labels.shape)


def scored_code(code: str, expand_tabs: bool, strip_cr: bool = False) -> str:
    """The code as the PPL step scores it: each tab replaced by 4 spaces when ``expand_tabs`` (cal_ppl.py's
    ``code.replace('\\t', '    ')``, not tab stops); each ``\\r`` removed when ``strip_cr``
    (``.replace('\\r', '')``)."""
    code = code.replace("\t", "    ") if expand_tabs else code
    return code.replace("\r", "") if strip_cr else code


def score_pool(
    backend,
    problems: list[dict],
    pool: list[dict],
    *,
    layout,
    condition: str = "chain",
    expand_tabs: bool = False,
    strip_cr: bool = False,
) -> list[dict]:
    if condition not in CONDITIONS:
        raise ValueError(f"ppl.condition: '{condition}' ({' | '.join(CONDITIONS)})")
    by_id = {p["task_id"]: p for p in problems}
    prompts, targets = [], []
    for row in pool:
        p = by_id[row["task_id"]]
        desc = p["description"] if condition == "seed" else row["description"]
        code = scored_code(row["code"], expand_tabs, strip_cr)
        prompt, target = layout.ppl_pair(backend.tok, code, p, desc, source_description=row["description"])
        prompts.append(prompt)
        targets.append(target)
    scores = backend.score(prompts, targets, desc="ppl") if pool else []
    out = []
    for row, (nll, ntok) in zip(pool, scores, strict=True):
        out.append(
            {
                **{k: row[k] for k in ("task_id", "iteration", "sample", "code")},
                "nll": nll,
                "n_tokens": ntok,
                "ppl": perplexity(nll, ntok),
                "condition": condition,
                "expand_tabs": expand_tabs,
                "strip_cr": strip_cr,
            }
        )
    return out
