"""Config validation with one-line errors that name the offending key.

The workflow calls ``check(config)`` before Snakemake's own ``validate`` (which fills the schema's
defaults), so a typo fails at once with e.g.
``config error: gibbs.iteration: unknown key (allowed: description, iterations, ...)``.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    pass


def load_schema(path: str | Path = SCHEMA) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


def _where(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


# keys that were renamed: a config that still uses one gets the new name in its error
RENAMED = {
    ("model", "prompt_style"): "prompt.layout (chat | authors; 'completion' is now 'authors', the authors' layout)",
}


def errors(config: dict, schema: dict | None = None) -> list[str]:
    import jsonschema

    schema = schema or load_schema()
    validator = jsonschema.Draft202012Validator(schema)
    msgs = []
    for (section, key), new in RENAMED.items():
        if isinstance(config.get(section), dict) and key in config[section]:
            msgs.append(f"{section}.{key}: renamed, use {new}")
        sampler = (config.get("model") or {}).get("sampler") if section == "model" else None
        if isinstance(sampler, dict) and key in sampler:
            msgs.append(f"model.sampler.{key}: renamed, use model.sampler.layout (chat | authors)")
    if msgs:
        return msgs
    for e in sorted(validator.iter_errors(config), key=lambda e: (len(e.path), list(map(str, e.path)))):
        where = _where(e.absolute_path)
        if e.validator == "additionalProperties" and isinstance(e.instance, dict):
            allowed = sorted((e.schema.get("properties") or {}).keys())
            extra = sorted(set(e.instance) - set(allowed)) if allowed else []
            for key in extra:
                loc = f"{where}.{key}" if e.absolute_path else key
                msgs.append(f"{loc}: unknown key (allowed: {', '.join(allowed)})")
            if extra:
                continue
        if e.validator == "required":
            msgs.append(f"{where}: {e.message}")
            continue
        msgs.append(f"{where}: {e.message}")
    if not msgs:
        msgs += _semantic_errors(config)
    return msgs


PLUS_DATASETS = ("mbppplus", "humanevalplus")


def _test_set(config: dict) -> tuple[str | None, str]:
    """(dataset, path) of the test split (a split's own keys override ``data.dataset`` / ``data.path``)."""
    data = config.get("data") or {}
    test = data.get("test") or {}
    return test.get("dataset", data.get("dataset")), str(test.get("path", data.get("path", "")))


def evaluator(config: dict) -> str:
    """The evaluator of the test set: ``evalplus`` (EvalPlus-style differential testing, both the base
    and the plus benchmark) when the test set is an MBPP+ / HumanEval+ release file, else ``tests``
    (the problems' own tests); ``evaluation.evaluator`` overrides ``auto``."""
    want = (config.get("evaluation") or {}).get("evaluator", "auto")
    if want != "auto":
        return want
    dataset, path = _test_set(config)
    return "evalplus" if dataset in PLUS_DATASETS and not path.startswith("hf:") else "tests"


def _semantic_errors(config: dict) -> list[str]:
    gen = config.get("generation") or {}
    bos = (config.get("tokenize") or {}).get("bos", False)
    if gen.get("backend") == "openai" and bos != "auto" and not gen.get("token_ids"):
        return [
            f"tokenize.bos: {str(bos).lower()} with generation.backend openai: the server tokenises the prompt "
            "text itself (its tokenizer's default BOS), so only 'auto' says what happens (or send token ids: "
            "generation.token_ids: true, with a vLLM or SGLang server)"
        ]
    if gen.get("engine") == "served" and gen.get("backend") != "vllm":
        return [
            f"generation.engine: served runs vLLM servers: it needs generation.backend vllm, not {gen.get('backend')}"
        ]
    if (gen.get("data_parallel_size") or 1) > 1 and gen.get("engine") != "served":
        return ["generation.data_parallel_size > 1 needs generation.engine: served (one server, one replica per GPU)"]
    if (config.get("evaluation") or {}).get("evaluator") != "evalplus":
        return []
    dataset, path = _test_set(config)
    if dataset not in PLUS_DATASETS:
        return [
            f"evaluation.evaluator: evalplus needs a test set with EvalPlus inputs (data.test.dataset "
            f"{' or '.join(PLUS_DATASETS)}), got {dataset}"
        ]
    if path.startswith("hf:"):
        return [
            "evaluation.evaluator: evalplus needs the EvalPlus release file (MbppPlus-<v>.jsonl[.gz] or its "
            "release URL) as data.test.path; the hub copy has no base_input/plus_input"
        ]
    return []


def _schema_at(schema: dict, node: dict | None) -> dict:
    """``node`` with a ``$ref`` into the schema's definitions followed."""
    node = node or {}
    ref = node.get("$ref", "")
    return schema["definitions"][ref.rsplit("/", 1)[-1]] if ref.startswith("#/definitions/") else node


def _scalar(text: str, types: list[str]):
    """``text`` (a value Snakemake's ``--config`` left as a string) as the schema's scalar type, or unchanged."""
    s = text.strip()
    for name in types:
        try:
            if name == "integer" and re.fullmatch(r"[+-]?\d+", s):
                return int(s)
            if name == "number":
                return float(s) if re.search(r"[.eE]", s) else int(s)
        except ValueError:
            continue
        if name == "boolean" and s.lower() in ("true", "false"):
            return s.lower() == "true"
        if name == "null" and s in ("null", "~", "None"):
            return None
    return text


def from_command_line(config: dict, schema: dict | None = None) -> dict:
    """What ``--config`` gives, made as a config file would give it: Snakemake parses a nested value
    (``--config "selection={k: 6}"``) without types, so a string where the schema wants a number, a
    boolean or null becomes one (``"6"`` -> 6, ``"null"`` -> None; other strings stay and fail the check);
    a method set to null (``methods: {rft_rd: null}``, in a file or on the command line) is left out."""
    schema = schema or load_schema()

    def walk(value, node):
        node = _schema_at(schema, node)
        if isinstance(value, dict):
            props = node.get("properties") or {}
            extra = node.get("additionalProperties")
            return {
                k: walk(v, props.get(k) if k in props else (extra if isinstance(extra, dict) else None))
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [walk(v, node.get("items") if isinstance(node.get("items"), dict) else None) for v in value]
        if isinstance(value, str) and node.get("type") not in (None, "string"):
            types = node["type"] if isinstance(node["type"], list) else [node["type"]]
            return _scalar(value, types) if "string" not in types else value
        return value

    out = walk(config, schema)
    methods = out.get("methods")
    if isinstance(methods, dict):
        out["methods"] = {k: v for k, v in methods.items() if v is not None and v != "null"}
    return out


def check(config: dict, source: str = "config") -> None:
    """Raise ConfigError with a one-line message for the first problem found."""
    errs = errors(config)
    if errs:
        more = f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
        raise ConfigError(f"{source} error: {errs[0]}{more}")


def check_files(config: dict) -> None:
    """Files the config names that no rule produces, checked before anything runs: the in-context example
    file of the code -> description step (a one-line ConfigError naming the file and what is wrong)."""
    from .examples import ExamplesError, read_examples_file

    path = ((config.get("gibbs") or {}).get("description") or {}).get("examples", "seed")
    if path != "seed":
        try:
            read_examples_file(path)
        except ExamplesError as e:
            raise ConfigError(f"config error: {e}") from None


# where each dataset's full release comes from, for the one-line error of a missing data path
HOW_TO_GET = {
    "appsplus": "StepCoder's APPS+ release (test.json) saved there, docs/datasets.md",
    "apps": "the APPS release unpacked there, or hf:codeparrot/apps, docs/datasets.md",
    "mbppplus": "EvalPlus's release MbppPlus-v0.2.0.jsonl saved there, or hf:evalplus/mbppplus, docs/datasets.md",
    "humaneval": "OpenAI's release HumanEval.jsonl.gz saved there, or hf:openai/openai_humaneval, docs/datasets.md",
    "humanevalplus": "EvalPlus's release HumanEvalPlus-<v>.jsonl saved there, or hf:evalplus/humanevalplus",
    "codeinsight": "the dataset's train.jsonl / test.jsonl in that folder, docs/datasets.md",
}
AUTHORS_REPO = "data/full/authors"
IMAGE_DOC = "docs/environments.md"


def _how_to_get(dataset: str, path: str) -> str:
    if path.startswith(AUTHORS_REPO):
        return f"the authors' repository: git clone https://github.com/Alex-HaochenLi/GiFT {AUTHORS_REPO}"
    return HOW_TO_GET.get(dataset, "docs/datasets.md says where each dataset comes from")


def input_errors(config: dict, keys: dict[str, str], exists=None) -> list[str]:
    """One line per input the config names that is not there, before anything is planned: each split's data
    path (``keys``: split -> the config key its path came from, ``data.path`` or ``data.<split>.path``) that
    is neither a hub spec, a URL nor an existing file or folder, and a ``container`` image given as a local
    file (not ``docker://...``). ``exists``: the test for a path (default ``os.path.exists``)."""
    import os

    from .datasets.sources import is_hub, is_url

    exists = exists or os.path.exists
    out = []
    seen = set()
    for split in ("seed", "test"):
        spec = config["data"][split]
        path = str(spec["path"])
        if path in seen or is_hub(path) or is_url(path) or exists(path):
            continue
        seen.add(path)
        out.append(f"{keys[split]}: no such file or folder '{path}' (get it: {_how_to_get(spec['dataset'], path)})")
    image = config.get("container")
    if image and "://" not in image and not exists(os.path.expanduser(image)):
        out.append(f"container: no such image file '{image}' (an image file, or docker://<image>, {IMAGE_DOC})")
    return out


# `generation` settings that change how a job runs, not what it writes: left out of the rules' params (a
# change reruns nothing); the jobs read them from the whole config (gift.rule.backend)
GENERATION_HOW = ("engine", "serve", "concurrency", "data_parallel_size", "kv_cache_gib", "gpu_memory_utilization")
# `train` settings of the same kind: how often the training state is saved, where the curves go (the
# finetune rule passes them to gift.train outside its params)
TRAIN_HOW = ("checkpoint_every", "report_to")


# `prompt.max_tokens` acts through the lengths derived from it (below): the fine-tuning's max_length, which
# the finetune rule passes as a number, and the engine's max_model_len, which changes how a job runs
PROMPT_HOW = ("max_tokens",)
PROMPT_TOKENS = 1024  # prompt.max_tokens when unset: with 512 new tokens, the authors' training max_length 1536


def _get(config: dict, dotted: str, default):
    for part in dotted.split("."):
        config = config.get(part) if isinstance(config, dict) else None
    return default if config is None else config


def train_max_length(config: dict) -> int:
    """``train.max_length``, else a prompt and the code sampled after it: ``prompt.max_tokens +
    gibbs.max_new_tokens`` (a training example is a seed prompt and a sampled code)."""
    return int(
        _get(config, "train.max_length", 0)
        or _get(config, "prompt.max_tokens", PROMPT_TOKENS) + _get(config, "gibbs.max_new_tokens", 512)
    )


def max_model_len(config: dict) -> int:
    """``generation.max_model_len``, else the longest sequence a step asks of the engine, with P =
    ``prompt.max_tokens``, G / D / E the new tokens of codes, descriptions and the evaluation: the code ->
    description prompt holds two codes (the example's and the chain's, each at most P + G) and the
    example's description, then a description is generated: 2 (P + G) + 2 D; sampling and PPL scoring
    (P + G) and the evaluation (P + E) stay under it unless E is larger. Bounded, so that vLLM does not
    reserve the model's own context (65,536 positions for DeepSeek-Coder: 32 GiB of KV cache at 6.7B)."""
    if _get(config, "generation.max_model_len", None):
        return int(config["generation"]["max_model_len"])
    p = _get(config, "prompt.max_tokens", PROMPT_TOKENS)
    g = _get(config, "gibbs.max_new_tokens", 512)
    d = _get(config, "gibbs.description.max_new_tokens", 512)
    e = _get(config, "evaluation.max_new_tokens", 512)
    return int(max(2 * (p + g) + 2 * d, p + e))


def rule_settings(config: dict, keys: list[str]) -> dict:
    """``subset(config, keys)`` without the ``GENERATION_HOW``, ``TRAIN_HOW`` and ``PROMPT_HOW`` settings: what
    a rule's outputs depend on."""
    out = subset(config, keys)
    if isinstance(out.get("prompt"), dict):
        out["prompt"] = {k: v for k, v in out["prompt"].items() if k not in PROMPT_HOW}
    if isinstance(out.get("generation"), dict):
        out["generation"] = {k: v for k, v in out["generation"].items() if k not in GENERATION_HOW}
    if isinstance(out.get("train"), dict):
        out["train"] = {k: v for k, v in out["train"].items() if k not in TRAIN_HOW}
    return out


def subset(config: dict, keys: list[str]) -> dict:
    """The part of ``config`` under the dotted ``keys`` (``gibbs.temperature``, ``tokenize``), nested as in
    the config; a key the config lacks is left out."""
    out: dict = {}
    for key in keys:
        parts = key.split(".")
        src, dst = config, out
        for part in parts[:-1]:
            if not isinstance(src, dict) or part not in src:
                src = None
                break
            src = src[part]
            dst = dst.setdefault(part, {})
        if isinstance(src, dict) and parts[-1] in src:
            dst[parts[-1]] = src[parts[-1]]
    return out


PLACEHOLDER = re.compile(r"<[^<>]+>")


def placeholders(default_resources, set_resources) -> list[str]:
    """Resources of a profile (or the command line) still holding a placeholder such as ``<your-account>``:
    ``name=<...> (where)``. ``default_resources``: name -> resource; ``set_resources``: rule -> name ->
    resource (Snakemake's parsed ``workflow.resource_settings``; a resource's text is its ``raw``)."""
    found: dict[str, list[str]] = {}
    for where, resources in [("default-resources", default_resources or {}), *(set_resources or {}).items()]:
        for name, res in resources.items():
            raw = getattr(res, "raw", res)
            if isinstance(raw, str) and PLACEHOLDER.fullmatch(raw.strip()):
                found.setdefault(f"{name}={raw.strip()}", []).append(where)
    return [
        f"{k} ({v[0] if v == ['default-resources'] else 'set-resources of ' + ', '.join(v)})" for k, v in found.items()
    ]
