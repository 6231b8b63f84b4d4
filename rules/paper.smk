# The paper's main results in one place: `snakemake -s rules/paper.smk` (docs/paper-scale.md, "All eight").
# Every experiment that `experiments` lists (config/paper.yaml: the eight config/paper/*.yaml) is a Snakemake
# module of the main workflow, its rules prefixed with its name, so one run (or dry run) plans them all as one
# DAG: a step they share, the fetch of a hub model or dataset into the common cache, is one job. Rule
# paper_tables then assembles their own tables into results/paper/. With `assemble_only: true` no module is
# loaded: the tables are assembled from the results that exist now (a missing experiment is a gap with its
# name, a stale one is flagged).
import copy
import hashlib
import json
import os
import re
import sys

import yaml
from snakemake.utils import update_config, validate
from snakemake_interface_executor_plugins.settings import ExecMode

from gift import locks, serve
from gift.paper import parse_name


configfile: "config/paper.yaml"


ROOT = os.path.dirname(os.path.abspath(str(workflow.current_basedir)))
OUT = config.get("output", "results/paper")
ASSEMBLE_ONLY = bool(config.get("assemble_only", False))


def _file(path):
    """A config file named relative to the working directory, else to the checkout (as shipped)."""
    return path if os.path.exists(path) else os.path.join(ROOT, path)


def _load(path, key):
    try:
        with open(_file(path)) as f:
            return yaml.safe_load(f) or {}
    except OSError as e:
        sys.exit(f"config error: {key}: cannot read {path} ({e.strerror})")


def _experiment(path, extra):
    """One experiment's config as `snakemake --configfile <path> <extra...>` from the working directory sees it:
    config.yaml there (the Snakefile's configfile) when present, the experiment's file and the extras on top.
    """
    try:
        model, dataset = parse_name(path)
    except ValueError as e:
        sys.exit(f"config error: experiments: {e}")
    cfg = _load("config.yaml", "config.yaml") if os.path.exists("config.yaml") else {}
    for f in [path, *extra]:
        update_config(cfg, _load(f, "experiments"))
    full = copy.deepcopy(cfg)
    validate(full, schema=os.path.join(ROOT, "schemas/config.schema.yaml"))
    name = full["experiment"]
    return dict(
        prefix=re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0]),
        config_file=path,
        configs=[path, *extra],
        config=cfg,
        name=name,
        model=model,
        dataset=dataset,
        dir=f"results/{name}",
        b=int(full["statistics"]["bootstrap"]),
        seed=int(full["seed"]),
        fingerprint=hashlib.sha256(
            json.dumps(full, sort_keys=True, default=str).encode()
        ).hexdigest()[:16],
    )


EXTRA = list(config.get("extra_configfiles") or [])
EXPERIMENTS = [_experiment(p, EXTRA) for p in config["experiments"]]
_names = [e["name"] for e in EXPERIMENTS]
if len(set(_names)) < len(_names) or len({e["prefix"] for e in EXPERIMENTS}) < len(
    EXPERIMENTS
):
    sys.exit(
        f"config error: experiments: two entries name the same experiment ({_names})"
    )

# One module per experiment, as `module <m>: snakefile: "../Snakefile", config: ...` followed by
# `use rule * from <m> as <m>_*` would declare it (a loop over the listed configs, the calls these statements
# compile to). The shared fetch records: the first module's fetch rule makes each (ruleorder); fetch is a
# local rule by its own `localrule` flag.
if not ASSEMBLE_ONLY:
    for e in EXPERIMENTS:
        workflow.module(
            e["prefix"], snakefile=os.path.join(ROOT, "Snakefile"), config=e["config"]
        )
        workflow.userule(
            rules=["*"],
            from_module=e["prefix"],
            exclude_rules=[],
            name_modifier=f"{e['prefix']}_*",
            lineno=1,
        )(lambda: None)
    _fetch = [f"{e['prefix']}_fetch" for e in EXPERIMENTS]
    if len(_fetch) > 1:
        workflow.ruleorder(*_fetch)


onstart:
    if workflow.exec_mode == ExecMode.DEFAULT:
        locks.record_owner(
            ".", getattr(workflow.persistence, "_lockfile", {}).values()
        )


onsuccess:
    if not ASSEMBLE_ONLY and os.environ.get(serve.OWNER_ENV):
        serve.stop_all(os.environ[serve.OWNER_ENV])


onerror:
    if not ASSEMBLE_ONLY and os.environ.get(serve.OWNER_ENV):
        serve.stop_all(os.environ[serve.OWNER_ENV])


def experiment_files(e):
    """The result files of one experiment that the assembly reads (with assemble_only: those that exist)."""
    files = [f"{e['dir']}/tables/main.csv", f"{e['dir']}/tables/comparison_paired.csv"]
    files += [
        f"{e['dir']}/eval/{m}/{f}"
        for m in ("gift", "rft_rd")
        if m in e["config"].get("methods", {})
        for f in ("scores.json", "per_problem.jsonl")
    ]
    if ASSEMBLE_ONLY and not os.path.exists(files[0]):
        return []
    return files


PAPER_OUT = {
    "csv": f"{OUT}/tables/main.csv",
    "md": f"{OUT}/tables/main.md",
    "tex": f"{OUT}/tables/main.tex",
    "experiments": f"{OUT}/tables/experiments.csv",
    "claim": f"{OUT}/tables/claim.csv",
    "comparison_csv": f"{OUT}/tables/comparison.csv",
    "comparison_md": f"{OUT}/tables/comparison.md",
    "comparison_tex": f"{OUT}/tables/comparison.tex",
    "figure": f"{OUT}/figures/claim.png",
    "figure_pdf": f"{OUT}/figures/claim.pdf",
}


rule paper:
    """Every listed experiment, whole (unless assemble_only), and the assembled tables and claim figure."""
    default_target: True
    input:
        []
        if ASSEMBLE_ONLY
        else [getattr(rules, f"{e['prefix']}_all").input for e in EXPERIMENTS],
        list(PAPER_OUT.values()),


rule paper_tables:
    """The paper's main table (methods x model / dataset, greedy pass@1 with 95 % intervals and the paired
    difference to RFT), the claim figure and the published-vs-run comparison, from the experiments' own tables.
    """
    input:
        tables=[f for e in EXPERIMENTS for f in experiment_files(e)],
        published=_file("data/published/results.csv"),
    output:
        **PAPER_OUT,
    log:
        f"{OUT}/logs/paper_tables.log",
    localrule: True
    conda:
        "../envs/cpu.yaml"
    params:
        experiments=[
            {
                k: e[k]
                for k in (
                    "name",
                    "config_file",
                    "model",
                    "dataset",
                    "dir",
                    "b",
                    "seed",
                    "fingerprint",
                )
            }
            for e in EXPERIMENTS
        ],
        configs={e["name"]: e["configs"] for e in EXPERIMENTS},
        check_stale=ASSEMBLE_ONLY,
    script:
        "../scripts/paper_tables.py"
