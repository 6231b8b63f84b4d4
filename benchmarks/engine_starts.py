"""Model engine starts of a workflow's DAG: one per generating job (generation.engine: per_job) against one
per distinct model (served), counted from a Snakemake dry run, and optionally from a finished run's logs.

    python benchmarks/engine_starts.py --configfile config/paper/deepseek-coder-6.7b--mbpp.yaml \\
        [--configfile config/ablations/authors-examples.yaml ...] [--directory DIR]
    python benchmarks/engine_starts.py --logs results/default-vllm       # count the starts a run logged

A job of `sample_codes`, `describe`, `rewrite` uses the sampler, `score_ppl` the base model and
`evaluate_generate` the model named by its `model` wildcard (an epoch checkpoint is a model of its own).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAIN = ("sample_codes", "describe", "rewrite")
GENERATING = (*CHAIN, "score_ppl", "evaluate_generate")


def jobs_from_dry_run(text: str) -> list[tuple[str, str]]:
    """(rule, model) of every generating job in a dry run's output."""
    out = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", text):
        m = re.match(r"(?:local)?rule (\w+):", block.strip())
        if not m or m.group(1) not in GENERATING:
            continue
        rule = m.group(1)
        if rule == "evaluate_generate":
            model = re.search(r"wildcards:.*?\bmodel=([^,\s]+)", block).group(1)
        elif rule == "score_ppl":
            model = "base"
        else:
            model = "sampler" if re.search(r"input:.*?/model/sampler\b", block) else "base"
        out.append((rule, model))
    return out


def starts(jobs: list[tuple[str, str]]) -> dict:
    """Engine starts both ways: one per job, or one per distinct model (no server stopped and restarted)."""
    return {
        "per_job": len(jobs),
        "served": len({m for _, m in jobs}),
        "jobs_per_rule": dict(Counter(r for r, _ in jobs)),
        "models": sorted({m for _, m in jobs}),
    }


def dry_run(configfiles: list[str], directory: str | None) -> str:
    import tempfile

    work = directory or tempfile.mkdtemp(prefix="gift-engine-starts-")
    cmd = [sys.executable, "-m", "snakemake", "-n", "--cores", "8", "--snakefile", str(ROOT / "Snakefile")]
    cmd += ["--directory", work, "--configfile", *configfiles]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        sys.exit(f"dry run failed:\n{proc.stderr[-3000:]}")
    return proc.stdout + proc.stderr


def logged_starts(results: Path) -> dict:
    """Engine starts a finished run logged: in-process engines in the jobs' logs, servers in events.log."""
    per_job = sum(p.read_text(errors="replace").count("vllm engine start") for p in results.rglob("logs/**/*.log"))
    events = results.parent.parent / ".snakemake" / "gift-serve" / "events.log"
    # events.log is shared by the working directory's experiments: only this one's models count
    mine = f"model={results.resolve()}/"
    lines = events.read_text().splitlines() if events.exists() else []
    starts = [x.split(" model=")[1].split()[0] for x in lines if " start " in x and mine in x]
    return {"in_process_engine_starts": per_job, "server_starts": len(starts), "served_models": len(set(starts))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configfile", action="append", default=[])
    ap.add_argument("--directory", default=None, help="working directory of the dry run (default: a temporary one)")
    ap.add_argument("--logs", default=None, help="a finished run's results/<experiment> folder")
    a = ap.parse_args(argv)
    if a.logs:
        print(logged_starts(Path(a.logs)))
        return 0
    s = starts(jobs_from_dry_run(dry_run(a.configfile or [str(ROOT / "config.yaml")], a.directory)))
    print(f"generating jobs per rule: {s['jobs_per_rule']}")
    print(f"engine starts: per_job {s['per_job']}, served {s['served']} ({', '.join(s['models'])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
