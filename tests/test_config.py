import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gift.config import ConfigError, check, errors

ROOT = Path(__file__).resolve().parent.parent


def default():
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def test_shipped_configs_are_valid():
    assert errors(default()) == []
    assert errors(yaml.safe_load((ROOT / "tests/configs/tiny.yaml").read_text())) == []


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda c: c["gibbs"].update(iteration=3), "gibbs.iteration: unknown key (allowed: description, iterations,"),
        (lambda c: c["gibbs"].update(iterations="twenty"), "gibbs.iterations: 'twenty' is not of type 'integer'"),
        (lambda c: c["data"]["seed"].update(limit=0), "data.seed.limit: 0 is less than the minimum of 1"),
        (lambda c: c["prompt"].update(layout="fancy"), "prompt.layout: 'fancy' is not one of ['chat', 'authors']"),
        (lambda c: c["model"].update(prompt_style="completion"), "model.prompt_style: renamed, use prompt.layout"),
        (lambda c: c["tokenize"].update(bos="yes"), "tokenize.bos: 'yes' is not one of ['auto', True, False]"),
        (
            lambda c: c["gibbs"].update(on_no_pass="skip"),
            "gibbs.on_no_pass: 'skip' is not one of ['last_kept', 'reference']",
        ),
        (
            lambda c: c["generation"].update(backend="openai", base_url="http://x"),
            "tokenize.bos: false with generation.backend openai",
        ),
        (lambda c: c.update(typo_key=1), "typo_key: unknown key (allowed:"),
        (lambda c: c.update(replicates=[]), "replicates: [] should be non-empty"),
        (lambda c: c.update(replicates=[1234, 1234]), "replicates: [1234, 1234] has non-unique elements"),
        (lambda c: c.update(replicates=[1234, "x"]), "replicates.1: 'x' is not of type 'integer'"),
        (lambda c: c["methods"].update(base={"pool": "rft", "weighting": "uniform"}), "methods: 'base' does not match"),
        (lambda c: c["methods"]["gift"].update(weighting="magic"), "methods.gift.weighting: 'magic' is not one of"),
        (lambda c: c.pop("data"), "<top level>: 'data' is a required property"),
    ],
)
def test_config_errors_name_the_key(mutate, message):
    cfg = copy.deepcopy(default())
    mutate(cfg)
    with pytest.raises(ConfigError) as e:
        check(cfg)
    text = str(e.value)
    assert "\n" not in text
    assert message in text


def config_error_lines(tmp_path, mutate) -> list[str]:
    """The 'config error' lines of a Snakemake dry run on the default config changed by ``mutate``."""
    cfg = default()
    mutate(cfg)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile", str(bad)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    return [ln for ln in proc.stderr.splitlines() if "config error" in ln] or [proc.stderr[-2000:]]


@pytest.mark.slow
def test_snakemake_stops_at_once_with_a_one_line_message(tmp_path):
    lines = config_error_lines(tmp_path, lambda c: c["train"].update(epochs="two"))
    assert lines == ["config error: train.epochs: 'two' is not of type 'integer'"]


@pytest.mark.parametrize(
    "text, message",
    [
        (None, "no such file"),
        ("{not json", "not valid JSON"),
        ('{"a": 1}', "expected a non-empty JSON list of [problem index, code summary] pairs, got dict"),
        (
            '["The code returns one.", "The code adds."]',
            "entry 0 is a string, not a [problem index, code summary] pair",
        ),
        ('[[0, "ok"], [1]]', "entry 1 must be a [problem index, code summary] pair"),
        ('[[-1, "neg"]]', "entry 0: the problem index must be a non-negative integer, got -1"),
        ('[[0, ""]]', "entry 0: the code summary must be a non-empty string"),
    ],
)
def test_a_bad_example_file_is_a_one_line_config_error(tmp_path, text, message):
    from gift.config import check_files

    path = tmp_path / "ict.json"
    if text is not None:
        path.write_text(text)
    cfg = default()
    cfg["gibbs"]["description"]["examples"] = str(path)
    with pytest.raises(ConfigError) as e:
        check_files(cfg)
    assert "\n" not in str(e.value)
    assert str(e.value).startswith(f"config error: gibbs.description.examples: {path}: ") and message in str(e.value)


@pytest.mark.slow
def test_snakemake_names_a_missing_example_file_before_running(tmp_path):
    lines = config_error_lines(tmp_path, lambda c: c["gibbs"]["description"].update(examples="nowhere/ict_data.json"))
    assert len(lines) == 1 and "gibbs.description.examples: nowhere/ict_data.json: no such file" in lines[0], lines
