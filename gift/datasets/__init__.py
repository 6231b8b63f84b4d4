"""Dataset adapters: each turns a release (local file or folder, ``hf:<repo>`` hub spec, or release
URL) into a list of *problems* with one schema.

A problem is a dict with:
  task_id      str, unique in the dataset
  description  the seed natural-language description
  reference    a reference solution (str; "" only for APPS problems released without one)
  tests        list of tests (str) in the execution engine's ``format``
  setup        code run before the tests (MBPP's ``test_setup_code``), may be ""
  format       the execution engine's test format: ``assert`` | ``humaneval`` | ``apps_call`` | ``apps_stdio``
  entry_point  the function the tests call ("" for stdin/stdout programs)
  example      one test shown in the prompt as a usage example (MBPP shows its first assert), may be ""
  header       the reference's imports and ``def`` line (APPS: the starter code), for completion-style prompts
Adapters add dataset-specific keys: ``fn_name`` (apps_call), ``difficulty``/``url``/``starter_code``/
``n_tests`` (APPS), ``base_input``/``plus_input``/``atol``/``contract`` (MBPP+, HumanEval+),
``plus_test`` (MBPP+ from the hub), ``prompt`` (HumanEval).

One entry point for every dataset: ``load_split(dataset, path, split, ids=None, limit=None,
order="first", **options)``; ``DATASETS`` describes each dataset (execution formats, splits, hub
repository). See docs/datasets.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ._common import DataError, function_header
from .apps import load_apps, load_appsplus
from .codeinsight import load_codeinsight
from .humaneval import load_humaneval, load_humanevalplus
from .mbpp import MBPP_SPLITS, load_mbpp
from .mbppplus import load_mbppplus

__all__ = [
    "DATASETS",
    "DataError",
    "DatasetInfo",
    "LOADERS",
    "MBPP_SPLITS",
    "execution_formats",
    "function_header",
    "load_apps",
    "load_appsplus",
    "load_codeinsight",
    "load_humaneval",
    "load_humanevalplus",
    "load_mbpp",
    "load_configured",
    "load_mbppplus",
    "load_split",
]


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    loader: Callable[..., list]
    formats: tuple[str, ...]  # execution-engine formats its problems use
    splits: tuple[str, ...]  # split names the loader accepts
    hub: str | None  # default repository for a bare ``hf:`` path
    options: tuple[str, ...] = ()  # extra keyword options of the loader
    shipped: str | None = None  # data in this repository, if any


DATASETS: dict[str, DatasetInfo] = {
    d.name: d
    for d in (
        DatasetInfo(
            "mbpp",
            load_mbpp,
            ("assert",),
            (*MBPP_SPLITS, "all"),
            "google-research-datasets/mbpp:full",
            shipped="data/mbpp/mbpp.jsonl",
        ),
        DatasetInfo("mbppplus", load_mbppplus, ("assert",), ("test",), "evalplus/mbppplus"),
        DatasetInfo("humaneval", load_humaneval, ("humaneval",), ("test",), "openai/openai_humaneval"),
        DatasetInfo("humanevalplus", load_humanevalplus, ("humaneval",), ("test",), "evalplus/humanevalplus"),
        DatasetInfo("codeinsight", load_codeinsight, ("assert",), ("train", "test"), None, shipped="data/codeinsight"),
        DatasetInfo(
            "apps",
            load_apps,
            ("apps_call", "apps_stdio"),
            ("train", "test"),
            "codeparrot/apps",
            options=("difficulty", "max_tests"),
        ),
        DatasetInfo(
            "appsplus",
            load_appsplus,
            ("apps_call", "apps_stdio"),
            ("train", "validation", "test"),
            None,
            options=("difficulty", "max_tests"),
        ),
    )
}

LOADERS: dict[str, Callable[..., list]] = {name: d.loader for name, d in DATASETS.items()}


def execution_formats(dataset: str) -> tuple[str, ...]:
    """The execution-engine formats ``dataset``'s problems use."""
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset '{dataset}' (known: {', '.join(sorted(DATASETS))})")
    return DATASETS[dataset].formats


def load_split(
    dataset: str, path: str | Path, split: str, ids=None, limit: int | None = None, order: str = "first", **options
) -> list[dict]:
    """Load one split, then keep the listed ``ids`` (task ids as in the release - the last ``/`` part
    of ``task_id``, or the whole ``task_id`` - in that order) or the first ``limit`` problems in
    ``order``: ``first`` (release order) or ``shortest`` (shortest reference solution first, ties by
    release order; a model-independent proxy for easy problems; problems without a reference last).
    ``options`` go to the loader (APPS/APPS+: ``difficulty``, ``max_tests``)."""
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset '{dataset}' (known: {', '.join(sorted(DATASETS))})")
    info = DATASETS[dataset]
    bad = sorted(k for k, v in options.items() if k not in info.options and v is not None)
    if bad:
        raise DataError(
            f"dataset '{dataset}' takes no option(s) {bad}"
            + (f" (it takes: {', '.join(info.options)})" if info.options else "")
        )
    options = {k: v for k, v in options.items() if k in info.options}
    if order not in ("first", "shortest"):
        raise DataError(f"data order '{order}' (first | shortest)")
    problems = info.loader(path, split, **options)
    if ids:
        by_raw = {p["task_id"].rsplit("/", 1)[-1]: p for p in problems}
        by_full = {p["task_id"]: p for p in problems}
        missing = [i for i in ids if str(i) not in by_raw and str(i) not in by_full]
        if missing:
            raise DataError(f"{path}: split '{split}' has no task ids {missing}")
        problems = [by_full.get(str(i)) or by_raw[str(i)] for i in ids]
    elif order == "shortest":
        problems = sorted(problems, key=lambda p: (not p["reference"].strip(), len(p["reference"].strip())))
    if limit is not None:
        problems = problems[:limit]
    return problems


def load_configured(spec: dict, *, full: bool = False) -> list[dict]:
    """One split as the config describes it (``data.seed`` / ``data.test``: ``dataset``, ``path``, ``split``
    (a name, or a list of names concatenated, as the paper's MBPP seeds: sanitized train + prompt +
    validation), ``ids``, ``limit``, ``order``, and the dataset's options). ``full=True``: every problem of
    the split(s) in release order (``ids`` / ``limit`` / ``order`` ignored), the order the authors'
    in-context example files index."""
    options = {k: spec[k] for k in ("difficulty", "max_tests") if spec.get(k) is not None}
    splits = spec["split"] if isinstance(spec["split"], list) else [spec["split"]]
    ids, limit, order = (
        (None, None, "first") if full else (spec.get("ids"), spec.get("limit"), spec.get("order", "first"))
    )
    if len(splits) == 1:
        return load_split(spec["dataset"], spec["path"], splits[0], ids=ids, limit=limit, order=order, **options)
    problems = [p for sp in splits for p in load_split(spec["dataset"], spec["path"], sp, order=order, **options)]
    if ids:
        wanted = {str(i) for i in ids}
        problems = [p for p in problems if p["task_id"].rsplit("/", 1)[-1] in wanted or p["task_id"] in wanted]
    return problems[:limit] if limit else problems
