"""Mistakes caught when the workflow loads, not when a job runs: every input the config names (data paths,
the container image file) is checked before anything is planned, and a dry run stops with one line naming
the key and the path. A user's MBPP-format file whose task ids miss the split gets one line saying so."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gift.config import input_errors
from gift.datasets import DataError, load_split

ROOT = Path(__file__).resolve().parent.parent


def default():
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def _resolved(cfg):
    """The config's splits with their dataset and path filled in, as rules/common.smk fills them."""
    keys = {}
    for name in ("seed", "test"):
        split = cfg["data"][name]
        split.setdefault("dataset", cfg["data"]["dataset"])
        keys[name] = f"data.{name}.path" if "path" in split else "data.path"
        split.setdefault("path", cfg["data"]["path"])
    return cfg, keys


def test_the_shipped_default_names_only_inputs_that_exist():
    cfg, keys = _resolved(default())
    assert input_errors(cfg, keys, exists=lambda p: (ROOT / p).exists()) == []


def test_a_typo_in_data_path_names_the_key_and_the_path():
    cfg = default()
    cfg["data"]["path"] = "data/mbpp/mbpp.jsnol"
    out = input_errors(*_resolved(cfg))
    assert len(out) == 1 and out[0].startswith("data.path: no such file or folder 'data/mbpp/mbpp.jsnol'"), out


def test_hub_specs_and_urls_are_not_local_paths():
    cfg = default()
    cfg["data"]["path"] = "hf:google-research-datasets/mbpp"
    cfg["data"]["test"]["path"] = "https://example.org/MbppPlus.jsonl"
    assert input_errors(*_resolved(cfg)) == []


def test_a_missing_container_image_file_is_named():
    cfg = default()
    cfg["container"] = "images/gift-missing.sif"
    cfg, keys = _resolved(cfg)
    out = input_errors(cfg, keys, exists=lambda p: p != "images/gift-missing.sif")
    assert out == [
        "container: no such image file 'images/gift-missing.sif' (an image file, or docker://<image>, "
        "docs/environments.md)"
    ]
    cfg["container"] = "docker://ghcr.io/gift-pipeline/gift-pipeline:0.1.0-cpu"
    assert input_errors(cfg, keys, exists=lambda p: True) == []


def _dry_run(tmp_path, cfg=None, configfiles=()):
    files = list(configfiles)
    if cfg is not None:
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump(cfg))
        files.append(str(path))
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # Snakemake's own notes (the profile it uses, the config files it merges) are not errors
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "error" in ln.lower()]
    return proc.returncode, lines


@pytest.mark.slow
def test_dry_run_stops_on_a_data_path_typo_with_one_line(tmp_path):
    cfg = default()
    cfg["data"]["path"] = "data/mbpp/mbpp.jsnol"
    rc, lines = _dry_run(tmp_path, cfg)
    assert rc != 0
    assert lines == [
        "config error: data.path: no such file or folder 'data/mbpp/mbpp.jsnol' "
        "(get it: docs/datasets.md says where each dataset comes from)"
    ], lines


@pytest.mark.slow
def test_dry_run_stops_on_a_test_path_typo_with_one_line_saying_how_to_get_it(tmp_path):
    cfg = default()
    cfg["data"]["test"]["path"] = "data/mbppplus/MbppPlus-v0.2.0.jsonl"
    rc, lines = _dry_run(tmp_path, cfg)
    assert rc != 0 and len(lines) == 1, lines
    assert lines[0].startswith("config error: data.test.path: no such file or folder 'data/mbppplus/MbppPlus")
    assert "EvalPlus's release MbppPlus-v0.2.0.jsonl" in lines[0]


@pytest.mark.slow
def test_dry_run_of_an_appsplus_paper_config_without_its_data_stops_with_one_line(tmp_path):
    paper = ROOT / "config/paper/deepseek-coder-6.7b--appsplus-interview.yaml"
    if (ROOT / "data/full/authors/APPS/data/apps+valid-interview.json").exists() and (
        ROOT / "data/full/appsplus"
    ).exists():
        pytest.skip("the APPS+ data is there in this checkout")
    rc, lines = _dry_run(tmp_path, configfiles=[str(paper)])
    assert rc != 0 and len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("config error: data.")
    # the seed file is the authors' (their repository), the test set StepCoder's APPS+ release
    assert "git clone https://github.com/Alex-HaochenLi/GiFT data/full/authors" in line or (
        "StepCoder's APPS+ release" in line
    ), line


def _mbpp_rows(path, ids):
    rows = [
        {
            "task_id": i,
            "text": f"Return {i}.",
            "code": f"def f():\n    return {i}\n",
            "test_list": [f"assert f() == {i}"],
        }
        for i in ids
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_an_own_mbpp_file_outside_the_split_gets_one_line_saying_what_splits_are(tmp_path):
    path = _mbpp_rows(tmp_path / "my_data.jsonl", [1001, 1002, 1003])
    with pytest.raises(DataError) as e:
        load_split("mbpp", path, "train")
    msg = str(e.value)
    assert "\n" not in msg
    assert "task ids 601-974" in msg and "set split: all" in msg, msg
    assert [p["task_id"] for p in load_split("mbpp", path, "all")] == ["mbpp/1001", "mbpp/1002", "mbpp/1003"]
    # the release's own ids still fall into their split
    assert [p["task_id"] for p in load_split("mbpp", _mbpp_rows(tmp_path / "r.jsonl", [5, 700]), "train")] == [
        "mbpp/700"
    ]
