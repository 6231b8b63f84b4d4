import os
import sys

# the repository root (snakemake.scriptdir is scripts/): `gift` imports without `pip install -e .`
sys.path.insert(0, os.path.dirname(os.path.abspath(snakemake.scriptdir)))

from gift.rule import setup
from gift.datasets import load_split
from gift.io import write_jsonl

cfg = setup(snakemake)
name = snakemake.wildcards.split
s = cfg["data"][name]
options = {k: s[k] for k in ("difficulty", "max_tests") if s.get(k) is not None}
splits = s["split"] if isinstance(s["split"], list) else [s["split"]]
if len(splits) == 1:
    problems = load_split(s["dataset"], s["path"], splits[0], ids=s.get("ids"), limit=s.get("limit"), order=s.get("order", "first"), **options)
else:  # several splits concatenated (the paper's MBPP seeds: sanitized train + prompt + validation)
    problems = [p for sp in splits for p in load_split(s["dataset"], s["path"], sp, order=s.get("order", "first"), **options)]
    if s.get("ids"):
        wanted = {str(i) for i in s["ids"]}
        problems = [p for p in problems if p["task_id"].rsplit("/", 1)[-1] in wanted or p["task_id"] in wanted]
    problems = problems[: s["limit"]] if s.get("limit") else problems
if not problems:
    sys.exit(f"data.{name}: no problems in {s['path']} (split {s['split']}, {options or 'no options'})")
write_jsonl(snakemake.output[0], problems)
print(f"{name}: {len(problems)} {s['dataset']} problems from {s['path']} ({s['split']})", file=sys.stderr)
