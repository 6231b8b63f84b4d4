# Config validation, paths and input functions: no other rule file computes paths.
import json
import os
import shlex
import sys

from snakemake.utils import validate

from snakemake_interface_executor_plugins.settings import ExecMode

from gift import hub, locks, serve
from gift.analysis import ANALYSES
from gift.devices import visible_gpus
from gift.config import (
    TRAIN_HOW,
    ConfigError,
    check,
    check_files,
    evaluator,
    from_command_line,
    input_errors,
    placeholders,
    rule_settings,
)
from gift.model import ModelSpecError
from gift.published import has_published_numbers

# --config values typed as the schema says; a method set to null is left out (docs/configuration.md)
config.update(from_command_line(config))
try:
    check(config)
except ConfigError as e:
    sys.exit(str(e))
validate(config, schema="../schemas/config.schema.yaml")


def record_lock_owner():
    """onstart (inside Snakemake's locked section, real runs only): who holds this run's locks."""
    if workflow.exec_mode == ExecMode.DEFAULT:
        # Snakemake's own note of the lock files it wrote (persistence/file.py)
        locks.record_owner(".", getattr(workflow.persistence, "_lockfile", {}).values())


# The SLURM profile's placeholders stop any run, dry or real, before anything is planned
_unfilled = placeholders(
    workflow.resource_settings.default_resources,
    workflow.resource_settings.overwrite_resources,
)
if workflow.exec_mode == ExecMode.DEFAULT and _unfilled:
    sys.exit(
        f"profile error: placeholder resources {'; '.join(_unfilled)}: put your cluster's account and"
        " partitions into the profile, or override them on the command line (docs/slurm.md)"
    )

# Snakemake's locks of a run killed on this host are removed (a run on another host keeps its own, and a
# dry run touches none): the main process of a real run only, never a job's own Snakemake (gift.locks)
if workflow.exec_mode == ExecMode.DEFAULT and not workflow.output_settings.dryrun:
    locks.clear_stale_locks(".")


# generation.engine: served: the model servers a job starts belong to this Snakemake process (the main one,
# or a SLURM job's own), and stop when it ends, however it ends (gift.serve)
SERVED = config["generation"].get("engine") == "served"
if workflow.exec_mode in (ExecMode.DEFAULT, ExecMode.REMOTE):
    os.environ[serve.OWNER_ENV] = serve.me()
    # its state needs flock: a folder without it stops a served run with one line, before any job runs
    if SERVED and not workflow.output_settings.dryrun:
        if _no_flock := serve.flock_problem():
            sys.exit(_no_flock)


# the GPUs here (CUDA_VISIBLE_DEVICES, SLURM's allocation, nvidia-smi) are the `gpu` resource of the jobs this
# Snakemake runs itself, unless --resources names it: GPU jobs never share the devices (gift.devices)
if (
    workflow.local_exec
    and "gpu" not in workflow.global_resources
    and (_gpus := visible_gpus())
):
    workflow.register_resource("gpu", _gpus)


def stop_servers():
    """onsuccess / onerror: stop this run's model servers now, not when their watchdogs notice."""
    if SERVED:
        serve.stop_all(os.environ.get(serve.OWNER_ENV))


# results/<experiment>: the shared artifacts (data, models, expected outputs); with `replicates`, the
# whole method runs once per seed under results/<experiment>/seed<k>/ (R holds the wildcard `rseed`)
R0 = f"results/{config['experiment']}"
SEEDS = list(config.get("replicates") or [])
R = f"{R0}/seed{{rseed}}" if SEEDS else R0


def _r(wildcards):
    """R of one job (the replicate's folder)."""
    return R.format(rseed=wildcards.rseed) if SEEDS else R


def _seeded(wildcards):
    """The config as one job sees it: `seed` is the replicate's seed."""
    rseed = getattr(wildcards, "rseed", None) if SEEDS else None
    return dict(config, seed=int(rseed)) if rseed is not None else config


# The checkout and the interpreter reach shell rules through the environment (every Snakemake process that
# parses this file sets them, a cluster job's own included), never through params or the shell command:
# the provenance Snakemake records must not depend on where the checkout lives, so that results copied
# to another clone are up to date there (docs/relocating.md).
# GIFT_PYTHON: the env's `python` under --sdm conda/apptainer, else Snakemake's own interpreter.
# ROOT: the checkout (this file's parent folder), also when the workflow is a module of rules/paper.smk
ROOT = os.path.dirname(os.path.abspath(str(workflow.current_basedir)))
os.environ.update(
    GIFT_ROOT=ROOT,
    GIFT_PYTHON=(
        "python" if workflow.deployment_settings.deployment_method else sys.executable
    ),
)
# the interpreter of shell rules, as the shell command spells it
PYTHON = '"$GIFT_PYTHON"'


def _data_path(path):
    """A relative data path is taken from the working directory, else from the workflow's folder
    (so `--directory elsewhere` still finds the shipped data). Hub specs and URLs pass unchanged.
    """
    if ":" in path.split("/")[0] or os.path.isabs(path) or os.path.exists(path):
        return path
    shipped = os.path.join(ROOT, path)
    return shipped if os.path.exists(shipped) else path


# each split may name its own dataset and path (MBPP seeds, MBPP+ tests); a path that is not there stops
# the run (dry or real) with one line naming its key (gift.config.input_errors)
_path_keys = {}
for _name in ("seed", "test"):
    _split = config["data"][_name]
    _split.setdefault("dataset", config["data"]["dataset"])
    _path_keys[_name] = f"data.{_name}.path" if "path" in _split else "data.path"
    _split["path"] = _data_path(_split.get("path", config["data"]["path"]))
_missing = input_errors(config, _path_keys)
if workflow.exec_mode == ExecMode.DEFAULT and _missing:
    sys.exit(f"config error: {_missing[0]}")


# Fetch once, then offline (gift.hub): hub models, `hf:` datasets and release URLs are downloaded by the local
# `fetch` rule into the config's `cache` folder; every job (a SLURM job's own Snakemake and the container
# included: the variables pass into apptainer, and the folder lies in the working directory, which
# Snakemake's `--home <cwd>` mounts) reads that folder with HF_HUB_OFFLINE=1 and HF_DATASETS_OFFLINE=1.
CACHE = config["cache"]
if workflow.exec_mode == ExecMode.DEFAULT:
    # HF_HUB_OFFLINE=1 of the user's own environment: the fetch step only checks the cache (air-gapped)
    os.environ[hub.USER_OFFLINE] = (
        "1" if hub.truthy(os.environ.get("HF_HUB_OFFLINE")) else "0"
    )
os.environ.update(hub.cache_env(CACHE), **hub.OFFLINE)


def model_spec(which):
    """``model`` (the base model) or ``model.sampler`` (the model that samples the pools, when set)."""
    return config["model"] if which == "base" else config["model"]["sampler"]


# model.base / model.sampler.base classified now: a local path that does not exist is a one-line error
# naming the key, a hub id (owner/name) is fetched first, a path under results/ is another rule's output;
# FETCH: what the fetch rule fetches, by record name (rules/fetch.smk)
try:
    MODEL_SOURCE, FETCH = hub.plan(config)
except ModelSpecError as e:
    sys.exit(f"config error: {e}")


def fetched(name):
    """The fetch step's record of one item (in the cache: fetched once for every experiment)."""
    return f"{CACHE}/fetched/{name}.json"


# an in-context example file of the code -> description step (the authors' format), checked now:
# a missing or malformed file is a one-line config error naming it
_examples = config["gibbs"]["description"]["examples"]
if _examples != "seed":
    config["gibbs"]["description"]["examples"] = _data_path(_examples)
try:
    check_files(config)
except ConfigError as e:
    sys.exit(str(e))


def data_inputs(wildcards):
    """The local data file the data rule reads for one split, or the fetch step's record of a hub dataset or
    release URL (the data job then reads the cache, offline)."""
    path = config["data"][wildcards.split]["path"]
    if os.path.exists(path):
        return [path]
    split = config["data"][wildcards.split]
    return [fetched(name) for name in hub.items([], [(split["dataset"], path)])]


# evalplus: MBPP+ / HumanEval+ test sets scored EvalPlus's way (base and plus benchmark) against
# expected outputs computed once by the expected_outputs step, or the problems' own tests
EVALUATOR = evaluator(config)


def evaluate_score_inputs(wildcards):
    ins = {
        "problems": f"{R0}/data/test.jsonl",
        "samples": f"{_r(wildcards)}/eval/{wildcards.model}/samples.jsonl",
    }
    if EVALUATOR == "evalplus":
        ins["expected"] = f"{R0}/data/test_expected.json"
    return ins


T = config["gibbs"]["iterations"]
# samplers: the Gibbs chain and RFT always (the figures compare them); RFT+RD when a method uses it
POOLS = ["gibbs", "rft"] + (
    ["rft_rd"] if any(m["pool"] == "rft_rd" for m in config["methods"].values()) else []
)
METHODS = list(config["methods"])
MODELS = ["base"] + METHODS
# evaluation.every_epoch: the checkpoint after each epoch but the last is evaluated too, as "<method>@epoch<k>"
EPOCH_MODELS = (
    [f"{m}@epoch{k}" for m in METHODS for k in range(1, config["train"]["epochs"])]
    if config["evaluation"]["every_epoch"]
    else []
)


# The config keys each rule's output depends on. Each rule passes its subset as `cfg=cfg_for(<name>)` in params,
# so editing one of these keys reruns that rule and everything downstream of it (Snakemake's `params`
# rerun trigger), and its script reads its settings from that subset only (gift.rule.setup returns it:
# a key missing here is a KeyError in the script, not a silently stale result).
_BASE_MODEL = [
    "seed",
    "model.base",
    "model.revision",
    "model.gguf_file",
    "model.dtype",
    "model.device",
    "generation",
    "tokenize",
    "prompt",
]
_SAMPLER_MODEL = ["seed", "model", "generation", "tokenize", "prompt"]
CFG_KEYS = {
    "describe_examples": ["gibbs.description.examples"],
    "sample_codes": _SAMPLER_MODEL
    + [
        "gibbs.samples_per_step",
        "gibbs.temperature",
        "gibbs.top_p",
        "gibbs.max_new_tokens",
    ],
    "run_tests": ["seed", "execution.timeout_s", "rft.keep", "codeinsight"],
    "describe": _SAMPLER_MODEL + ["gibbs.description", "gibbs.on_no_pass"],
    "rewrite": _SAMPLER_MODEL + ["gibbs.description"],
    "score_ppl": _BASE_MODEL + ["ppl", "train.target"],
    "select": ["seed", "selection"],
    "finetune": _BASE_MODEL + ["train", "evaluation.every_epoch"],
    "evaluate_generate": _BASE_MODEL
    + [
        "evaluation.n_samples",
        "evaluation.temperature",
        "evaluation.top_p",
        "evaluation.max_new_tokens",
    ],
    "evaluate_score": [
        "execution.timeout_s",
        "evaluation.ks",
        "evaluation.evaluator",
        "evaluation.min_time_limit",
        "evaluation.gt_time_limit_factor",
        "codeinsight",
    ],
    "table": ["experiment", "seed", "data.dataset", "data.test.dataset", "statistics"],
    "figures": ["ppl.condition"],
    "epochs_table": ["experiment", "train.epochs"],
    "replicates_table": ["experiment", "seed", "replicates", "statistics"],
    "compare_published": ["experiment", "data.dataset"],
    "selection_ablation": [
        "methods",
        "gibbs.iterations",
        "seed",
        "statistics",
        "ppl.condition",
    ],
    "analysis": ["analysis.embedding"],
}


def cfg_for(rule):
    """The part of the config that `rule`'s outputs depend on (see CFG_KEYS), per job: a replicate's
    jobs see their own seed."""
    return lambda wildcards: rule_settings(_seeded(wildcards), CFG_KEYS[rule])


def threads_for(rule):
    """`resources.<rule>.threads` (else `resources.default.threads`); Snakemake caps it at --cores."""
    res = config["resources"]
    return int(res.get(rule, {}).get("threads", res["default"]["threads"]))


def resources_for(rule):
    """Scheduler resources from the config: `resources.default` updated by `resources.<name>`.
    One config line sends a step to a GPU partition, e.g. `finetune: {gpu: 1, slurm_partition: gpu}`
    under `resources`."""
    merged = {k: v for k, v in config["resources"]["default"].items() if k != "threads"}
    merged.update(
        {k: v for k, v in config["resources"].get(rule, {}).items() if k != "threads"}
    )
    return {
        k: v for k, v in merged.items() if v is not None and not (k == "gpu" and v == 0)
    }


wildcard_constraints:
    rseed=r"\d+",
    pool="gibbs|rft_rd|rft",
    split="seed|test",
    t=r"\d+",
    method="|".join(METHODS),
    model="|".join(MODELS + EPOCH_MODELS),


# Software environments (`--sdm conda`) and the container image (`--sdm apptainer`), one per group of
# steps: see docs/environments.md. Paths are relative to the rules/ files that use them.
ENV_CPU = "../envs/cpu.yaml"  # data, execution, selection, tables and figures
ENV_MODEL = "../envs/model.yaml"  # torch + transformers inference (CPU or GPU)
ENV_GPU = "../envs/gpu.yaml"  # vllm generation on CUDA GPUs
ENV_TRAIN = "../envs/train.yaml"  # fine-tuning: torch, transformers, accelerate, deepspeed, peft
# the steps that run the model for generation or scoring follow `generation.backend`
ENV_GENERATE = ENV_GPU if config["generation"]["backend"] == "vllm" else ENV_MODEL

IMAGE_CPU = "docker://ghcr.io/gift-pipeline/gift-pipeline:0.1.0-cpu"
IMAGE_CUDA = "docker://ghcr.io/gift-pipeline/gift-pipeline:0.1.0-cuda"
CONTAINER = config.get(
    "container",
    IMAGE_CUDA if config["generation"]["backend"] == "vllm" else IMAGE_CPU,
)


def descriptions_for(wildcards):
    """Iteration t of the chain is driven by the descriptions of t; RFT always by the seed descriptions."""
    if wildcards.pool == "rft":
        return f"{_r(wildcards)}/gibbs/iter0/descriptions.jsonl"
    # RFT+RD: a fresh rewrite of the seed description per step; the chain: its own descriptions
    return f"{_r(wildcards)}/{wildcards.pool}/iter{wildcards.t}/descriptions.jsonl"


def previous_kept(wildcards):
    t = int(wildcards.t)
    return [f"{_r(wildcards)}/{wildcards.pool}/iter{t - 1}/kept.jsonl"] if t > 0 else []


def model_inputs(which):
    """prepare_model's inputs: a local model folder (another run's checkpoint, e.g. round 1 of multi-round
    self-training: a path under results/ that another rule makes), or the fetch step's record of a hub model.
    """
    kind = MODEL_SOURCE[which]
    if kind == "hub":
        spec = dict(kind="model", **hub.hub_model(model_spec(which)))
        return {"fetched": fetched(hub.item_name(spec))}
    folder = os.path.expanduser(model_spec(which)["base"])
    return {"folder": folder} if kind in ("folder", "output") else {}


# the model that samples the chain / RFT / RFT+RD pools: the base model, or model.sampler when set
SAMPLER = (
    f"{R0}/model/sampler" if config["model"].get("sampler") else f"{R0}/model/base"
)


# Scheduling: the base model's jobs (the chain, PPL scoring, the base model's evaluation) and the jobs
# between them (running the tests, pooling: a priority does not pass to a job's inputs) go before any
# fine-tuned model's evaluation, so that in the served mode (one server at a time by default) the base
# model's server starts once, not again after a fine-tuned model's. Priorities change no output.
BASE_MODEL_FIRST = 1


def base_model_first(wildcards):
    return BASE_MODEL_FIRST if wildcards.model == "base" else 0


# served mode: every job of the base model comes before any fine-tuning, so that its server starts once and
# is not stopped by a fine-tuning's claim in the middle of the chain (RFT's set is ready after the chain's
# first step). Every method's selected set (its pool and PPL scores) and the base model's evaluation are the
# fine-tuning's inputs then, as ancient() ones: they order the jobs and never make a fine-tuning rerun.
def base_model_work(wildcards):
    if not SERVED:
        return []
    r = _r(wildcards)
    return [ancient(f"{r}/selected/{m}.jsonl") for m in METHODS] + [
        ancient(f"{r}/eval/base/samples.jsonl")
    ]


def model_dir(wildcards):
    """The model folder an evaluation depends on (an epoch checkpoint lives inside its method's folder)."""
    if wildcards.model == "base":
        return f"{R0}/model/base"
    return f"{_r(wildcards)}/checkpoints/{wildcards.model.split('@')[0]}"


def model_path(wildcards):
    """The model folder an evaluation loads: the base model, a method's checkpoint, or one of its epochs."""
    epoch = wildcards.model.partition("@")[2]
    return os.path.join(model_dir(wildcards), epoch) if epoch else model_dir(wildcards)


def examples_inputs(wildcards):
    """The in-context example file of the code -> description step, when it is a file."""
    source = config["gibbs"]["description"]["examples"]
    return [] if source == "seed" else [source]


def kept_files(wildcards):
    return [f"{_r(wildcards)}/{wildcards.pool}/iter{t}/kept.jsonl" for t in range(T)]


def final_outputs():
    """What `snakemake` builds by default: every output of the report rules (tables, figures, analyses,
    summary), taken from the rules themselves, for every replicate; the per-epoch table when
    evaluation.every_epoch is on; with replicates, the tables across them."""
    final = [
        "table",
        "compare_published",
        "selection_ablation",
        "figures",
        "analysis",
        "summary",
    ]
    final += ["epochs_table"] if EPOCH_MODELS else []
    files = [f for name in final for f in getattr(rules, name).output]
    if not SEEDS:
        return files
    return expand(files, rseed=SEEDS) + list(rules.replicates_table.output)
