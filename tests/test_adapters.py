"""Dataset adapters (gift.datasets): every loader on a fixture in its public release format, the
references run through the real execution engine, malformed rows, hub specs and release URLs
(both exercised offline)."""

import gzip
import json
import sys
import tarfile
from pathlib import Path

import pytest

import gift.datasets.sources as sources
from gift.datasets import DATASETS, LOADERS, DataError, execution_formats, load_split
from gift.datasets._common import PROBLEM_KEYS
from gift.datasets.apps import APPS_PRELUDE
from gift.datasets.humaneval import differential_check
from gift.execute import FORMATS, execute

FX = Path(__file__).parent / "fixtures" / "datasets"

# (dataset, path, split, task ids the fixture yields)
CASES = [
    ("mbpp", FX / "mbpp/mbpp.jsonl", "train", ["mbpp/601", "mbpp/602", "mbpp/603"]),
    ("mbpp", FX / "mbpp/mbpp.jsonl", "test", ["mbpp/11", "mbpp/12", "mbpp/367"]),
    ("mbpp", FX / "mbpp/sanitized-mbpp.json", None, ["mbpp/11", "mbpp/601"]),
    ("mbppplus", FX / "mbppplus/MbppPlus.jsonl", "test", ["Mbpp/2", "Mbpp/3", "Mbpp/82", "Mbpp/120", "Mbpp/793"]),
    ("mbppplus", FX / "mbppplus/hf_test.jsonl", "test", ["Mbpp/2", "Mbpp/3"]),
    (
        "humaneval",
        FX / "humaneval/HumanEval.jsonl.gz",
        "test",
        ["HumanEval/0", "HumanEval/2", "HumanEval/10", "HumanEval/32", "HumanEval/53"],
    ),
    (
        "humanevalplus",
        FX / "humanevalplus/HumanEvalPlus.jsonl.gz",
        "test",
        ["HumanEval/0", "HumanEval/2", "HumanEval/53"],
    ),
    ("codeinsight", FX / "codeinsight", "train", [f"codeinsight/train/{i}" for i in (0, 1, 2, 4)]),
    ("codeinsight", FX / "codeinsight", "test", None),
    ("apps", FX / "apps", "train", [f"apps/train/{i}" for i in range(4)]),
    ("apps", FX / "apps_tree", "train", [f"apps/train/{i}" for i in range(4)]),
    ("appsplus", FX / "appsplus", "test", ["appsplus/test/10", "appsplus/test/11", "appsplus/test/12"]),
    ("appsplus", FX / "appsplus", "validation", ["appsplus/validation/20"]),
]


def exec_row(p, code=None, timeout_s=10):
    return {
        "id": p["task_id"],
        "code": p.get("prelude", "") + (p["reference"] if code is None else code),
        "tests": p["tests"],
        "format": p["format"],
        "entry_point": p["entry_point"],
        "fn_name": p.get("fn_name"),
        "setup": p["setup"],
        "timeout_s": timeout_s,
    }


@pytest.fixture(scope="module")
def loaded():
    return {i: load_split(ds, str(path), split) for i, (ds, path, split, _) in enumerate(CASES)}


@pytest.fixture(scope="module")
def verdicts(loaded):
    rows = [exec_row(p) | {"id": f"{i}:{p['task_id']}"} for i, probs in loaded.items() for p in probs]
    return {r["id"]: r for r in execute(rows)}


def test_registry_covers_every_dataset():
    assert set(DATASETS) == {"mbpp", "mbppplus", "humaneval", "humanevalplus", "codeinsight", "apps", "appsplus"}
    assert LOADERS == {n: d.loader for n, d in DATASETS.items()}
    for name, info in DATASETS.items():
        assert info.formats and set(info.formats) <= set(FORMATS), name
        assert execution_formats(name) == info.formats
    assert execution_formats("apps") == ("apps_call", "apps_stdio")
    assert execution_formats("humanevalplus") == ("humaneval",)
    with pytest.raises(DataError, match="unknown dataset 'nope'"):
        load_split("nope", "x", "test")


@pytest.mark.parametrize("case", range(len(CASES)), ids=[f"{c[0]}-{c[2]}-{Path(c[1]).name}" for c in CASES])
def test_fixture_loads_in_one_schema_and_references_pass(case, loaded, verdicts):
    ds, _, _, want_ids = CASES[case]
    probs = loaded[case]
    assert probs, "fixture yields problems"
    if want_ids is not None:
        assert [p["task_id"] for p in probs] == want_ids
    for p in probs:
        assert set(PROBLEM_KEYS) <= set(p)
        assert p["format"] in execution_formats(ds)
        assert isinstance(p["tests"], list) and p["tests"] and all(isinstance(t, str) for t in p["tests"])
        assert isinstance(p["description"], str) and p["description"].strip()
        assert p["reference"].strip() and isinstance(p["setup"], str) and isinstance(p["header"], str)
        json.dumps(p)  # problems are written as JSON lines
        v = verdicts[f"{case}:{p['task_id']}"]
        assert v["passed"], (p["task_id"], v)
        assert v["tests_passed"] == v["tests_total"] == (1 if p["format"] == "humaneval" else len(p["tests"]))


def test_mbppplus_keeps_plus_inputs_and_fixes_missing_imports():
    probs = {p["task_id"]: p for p in load_split("mbppplus", str(FX / "mbppplus/MbppPlus.jsonl"), "test")}
    raw = {r["task_id"]: r for r in map(json.loads, open(FX / "mbppplus/MbppPlus.jsonl"))}
    p = probs["Mbpp/2"]
    assert p["tests"] == [ln for ln in raw["Mbpp/2"]["assertion"].splitlines() if ln.startswith("assert")]
    assert p["entry_point"] == "similar_elements" and p["format"] == "assert" and p["setup"] == ""
    assert p["description"] == "Write a function to find the shared elements from the given two lists."
    assert p["base_input"] == raw["Mbpp/2"]["base_input"] and p["plus_input"] == raw["Mbpp/2"]["plus_input"]
    assert p["example"] == p["tests"][0] and p["header"] == "def similar_elements(test_tup1, test_tup2):\n"
    assert probs["Mbpp/82"]["setup"] == "import math" and probs["Mbpp/82"]["atol"] == 0.0001
    # the release's Mbpp/120 asserts use math.isclose without importing math
    assert "import math" not in raw["Mbpp/120"]["assertion"] and probs["Mbpp/120"]["setup"] == "import math"
    assert probs["Mbpp/793"]["plus_input"] == []  # written {} in the release
    hub = load_split("mbppplus", str(FX / "mbppplus/hf_test.jsonl"), "test")
    assert hub[0]["task_id"] == "Mbpp/2" and "plus_test" in hub[0]
    with pytest.raises(DataError, match="MBPP\\+ has only the 'test' split"):
        load_split("mbppplus", str(FX / "mbppplus/MbppPlus.jsonl"), "train")


def test_humaneval_problem_shape_and_plus_fields():
    he = {p["task_id"]: p for p in load_split("humaneval", str(FX / "humaneval/HumanEval.jsonl.gz"), "test")}
    p = he["HumanEval/10"]  # prompt defines a helper before the entry point
    assert p["format"] == "humaneval" and p["entry_point"] == "make_palindrome"
    assert p["reference"].startswith(p["prompt"]) and "def is_palindrome" in p["reference"]
    assert p["description"].startswith("Find the shortest palindrome") and '"""' not in p["description"]
    assert p["header"] == "def make_palindrome(string: str) -> str:\n"
    assert "base_input" not in p
    plus = {
        p["task_id"]: p for p in load_split("humanevalplus", str(FX / "humanevalplus/HumanEvalPlus.jsonl.gz"), "test")
    }
    assert plus["HumanEval/2"]["atol"] == 1e-6 and plus["HumanEval/2"]["plus_input"] == [[0.25], [1e-3], [999.999]]
    assert plus["HumanEval/0"]["tests"] == he["HumanEval/0"]["tests"]
    with pytest.raises(DataError, match="HumanEval has only the 'test' split"):
        load_split("humaneval", str(FX / "humaneval/HumanEval.jsonl.gz"), "train")


def test_humanevalplus_row_without_test_gets_a_differential_check(tmp_path):
    rows = [json.loads(ln) for ln in gzip.open(FX / "humanevalplus/HumanEvalPlus.jsonl.gz", "rt")]
    f = tmp_path / "HumanEvalPlus.jsonl"
    f.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "test"}) + "\n" for r in rows))
    probs = load_split("humanevalplus", str(f), "test")
    assert all("def check(candidate)" in p["tests"][0] for p in probs)
    p = {p["task_id"]: p for p in probs}["HumanEval/2"]
    good = p["prompt"] + "    return number - int(number) + 1e-9\n"  # within atol 1e-6
    bad = p["prompt"] + "    return round(number - int(number), 1)\n"
    res = execute([exec_row(q) for q in probs] + [exec_row(p, good) | {"id": "good"}, exec_row(p, bad) | {"id": "bad"}])
    assert [r["passed"] for r in res] == [True] * len(probs) + [True, False]
    assert differential_check("def f(x):\n    return x\n", "f", [[1]]).lstrip().startswith("def check(candidate):")


def test_apps_formats_tests_and_prelude():
    probs = {p["task_id"]: p for p in load_split("apps", str(FX / "apps"), "train")}
    assert "apps/train/4" not in probs  # released without test cases: skipped
    mean, root, rng, med = (probs[f"apps/train/{i}"] for i in range(4))
    assert mean["format"] == rng["format"] == "apps_stdio" and mean["entry_point"] == "" and "fn_name" not in mean
    assert json.loads(mean["tests"][0]) == {"input": "3\n1 2 4\n", "output": "2.3333333333\n"}
    assert root["format"] == med["format"] == "apps_call" and root["fn_name"] == root["entry_point"] == "digital_root"
    assert json.loads(root["tests"][1]) == {"input": [942], "output": [6]}
    assert json.loads(med["tests"][1]) == {"input": [[1, 2], [3, 4]], "output": 2.5}
    assert med["header"] == med["starter_code"] and med["header"].startswith("class Solution:")
    assert (mean["difficulty"], rng["difficulty"]) == ("introductory", "interview") and mean["n_tests"] == 4
    assert mean["prelude"] == APPS_PRELUDE and mean["description"].startswith("You are given $n$ integers")
    # the released LeetCode-style solution relies on the harness's imports (List), like real APPS ones
    no_prelude = exec_row(med) | {"code": med["reference"], "id": "no-prelude"}
    wrong_stdio = exec_row(mean, "n = int(input())\na = list(map(int, input().split()))\nprint(sum(a) // n)\n")
    wrong_call = exec_row(root, "def digital_root(n):\n    return sum(map(int, str(n)))\n")  # one step only
    r = {x["id"]: x for x in execute([no_prelude, wrong_stdio, wrong_call])}
    assert r["no-prelude"]["status"] == "error" and "List" in r["no-prelude"]["detail"]
    assert not r["apps/train/0"]["passed"] and r["apps/train/0"]["tests_passed"] == 2  # -7 and 2e9/2 are exact
    assert not r["apps/train/1"]["passed"] and r["apps/train/1"]["tests_passed"] == 2  # 16 and 0 only


def test_apps_tree_equals_hub_rows_and_options():
    rows = load_split("apps", str(FX / "apps"), "train")
    assert load_split("apps", str(FX / "apps_tree"), "train") == rows
    assert load_split("apps", str(FX / "apps_tree/train"), "train") == rows
    assert load_split("apps", str(FX / "apps/train.jsonl"), "train") == rows
    intro = load_split("apps", str(FX / "apps"), "train", difficulty="introductory")
    assert [p["task_id"] for p in intro] == ["apps/train/0", "apps/train/1"]
    both = load_split("apps", str(FX / "apps"), "train", difficulty=["introductory", "interview"], max_tests=2)
    assert len(both) == 4 and all(len(p["tests"]) <= 2 for p in both) and both[1]["n_tests"] == 5
    picked = load_split("appsplus", str(FX / "appsplus"), "test", ids=[12, "appsplus/test/10"], max_tests=10)
    assert [p["task_id"] for p in picked] == ["appsplus/test/12", "appsplus/test/10"]
    short = load_split("apps", str(FX / "apps"), "train", order="shortest", limit=2)
    assert [p["task_id"] for p in short] == ["apps/train/0", "apps/train/1"]
    with pytest.raises(DataError, match="APPS difficulty \\['easy'\\]"):
        load_split("apps", str(FX / "apps"), "train", difficulty="easy")
    with pytest.raises(DataError, match="max_tests must be a positive integer"):
        load_split("apps", str(FX / "apps"), "train", max_tests=0)
    with pytest.raises(DataError, match="dataset 'mbpp' takes no option\\(s\\) \\['difficulty'\\]"):
        load_split("mbpp", str(FX / "mbpp/mbpp.jsonl"), "train", difficulty="interview")
    with pytest.raises(DataError, match="no APPS split 'test'"):
        load_split("apps", str(FX / "apps"), "test")


def test_apps_stdio_lines_lists_are_joined(tmp_path):
    row = json.loads((FX / "apps/train.jsonl").read_text().splitlines()[2])
    row["input_output"] = json.dumps({"inputs": [["1 1", "42", "1 1"]], "outputs": [["42"]]})
    (tmp_path / "train.jsonl").write_text(json.dumps(row) + "\n")
    (p,) = load_split("apps", str(tmp_path), "train")
    assert json.loads(p["tests"][0]) == {"input": "1 1\n42\n1 1", "output": "42"}
    assert execute([exec_row(p)])[0]["passed"]


CORRUPT = [
    ("apps", "corrupt/apps_bad_io.jsonl", r"apps_bad_io\.jsonl: row 2: 'input_output' is not valid JSON"),
    ("apps", "corrupt/apps_mismatch.jsonl", r"apps_mismatch\.jsonl: row 1: 'input_output' has 1 inputs but 0 outputs"),
    ("apps", "corrupt/apps_no_question.jsonl", r"apps_no_question\.jsonl: row 1: missing key 'question'"),
    ("apps", "corrupt/apps_bad_solutions.jsonl", r"apps_bad_solutions\.jsonl: row 1: 'solutions' is not valid JSON"),
    ("apps", "corrupt/apps_tree_bad", r"apps_tree_bad/train/0000/input_output\.json:1: not valid JSON"),
    (
        "mbppplus",
        "corrupt/mbppplus_no_assertion.jsonl",
        r"mbppplus_no_assertion\.jsonl: row 2: missing key 'assertion'",
    ),
    (
        "mbppplus",
        "corrupt/mbppplus_bad_input.jsonl",
        r"mbppplus_bad_input\.jsonl: row 1: 'base_input' must be list, got str",
    ),
    (
        "humaneval",
        "corrupt/humaneval_no_entry.jsonl.gz",
        r"humaneval_no_entry\.jsonl\.gz: row 1: missing key 'entry_point'",
    ),
    (
        "codeinsight",
        "corrupt/codeinsight_tests_str.jsonl",
        r"codeinsight_tests_str\.jsonl: row 1: 'tests' must be a non-empty list",
    ),
    ("mbpp", "nowhere.jsonl", r"nowhere\.jsonl: no such data file or folder"),
]


@pytest.mark.parametrize("ds,rel,msg", CORRUPT, ids=[c[1] for c in CORRUPT])
def test_corrupt_rows_fail_with_one_line_naming_file_and_row(ds, rel, msg):
    with pytest.raises(DataError, match=msg) as e:
        load_split(ds, str(FX / rel), "train" if ds in ("apps", "codeinsight", "mbpp") else "test")
    assert "\n" not in str(e.value)


def test_bad_json_line_names_file_and_line(tmp_path):
    f = tmp_path / "test.jsonl"
    f.write_text((FX / "appsplus/valid.jsonl").read_text() + "{oops\n")
    with pytest.raises(DataError, match=r"test\.jsonl:2: not valid JSON"):
        load_split("appsplus", str(tmp_path), "test")


# --------------------------------------------------------------------------- hub specs, offline
def _fake_datasets(monkeypatch, files):
    """A stand-in ``HUB_LOADER``: records what each hub spec asks for, serves rows from local files (the real
    loader, huggingface_hub's snapshot + ``datasets``: tests/test_hub.py, against a stand-in hub server)."""
    calls = []

    def load(path, name=None, *, split=None, revision=None):
        calls.append((path, name, split, {"revision": revision} if revision else {}))
        return (
            [json.loads(ln) for ln in gzip.open(files[path], "rt")]
            if str(files[path]).endswith(".gz")
            else [json.loads(ln) for ln in open(files[path])]
        )

    monkeypatch.setattr(sources, "HUB_LOADER", load)
    return calls


def test_hub_specs_call_load_dataset_with_the_right_arguments(monkeypatch):
    calls = _fake_datasets(
        monkeypatch,
        {
            "codeparrot/apps": FX / "apps/train.jsonl",
            "evalplus/mbppplus": FX / "mbppplus/hf_test.jsonl",
            "google-research-datasets/mbpp": FX / "mbpp/mbpp.jsonl",
            "evalplus/humanevalplus": FX / "humaneval/HumanEval.jsonl.gz",
        },
    )
    assert load_split("apps", "hf:codeparrot/apps", "train") == load_split("apps", str(FX / "apps"), "train")
    assert calls[-1] == ("codeparrot/apps", None, "train", {})
    assert load_split("mbppplus", "hf:", "test") == load_split("mbppplus", str(FX / "mbppplus/hf_test.jsonl"), "test")
    assert calls[-1] == ("evalplus/mbppplus", None, "test", {})
    train = load_split("mbpp", "hf:google-research-datasets/mbpp:full@abc123", "train")
    assert calls[-1] == ("google-research-datasets/mbpp", "full", "train", {"revision": "abc123"})
    assert [p["task_id"] for p in train] == ["mbpp/601", "mbpp/602", "mbpp/603"]
    load_split("mbpp", "hf:", "test")
    assert calls[-1] == ("google-research-datasets/mbpp", "full", "test", {})
    load_split("humanevalplus", "hf:", "test", ids=["HumanEval/53"])
    assert calls[-1] == ("evalplus/humanevalplus", None, "test", {})
    with pytest.raises(DataError, match="no default hub repository"):
        load_split("appsplus", "hf:", "test")


def test_hub_without_datasets_package_is_one_clear_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets -> ImportError
    with pytest.raises(DataError) as e:
        load_split("apps", "hf:codeparrot/apps", "train")
    assert "pip install datasets" in str(e.value) and "\n" not in str(e.value)


def test_hub_failure_is_a_data_error(monkeypatch):
    def offline(repo, config=None, *, split=None, revision=None):
        raise ConnectionError("Couldn't reach 'codeparrot/apps' on the Hub (LocalEntryNotFoundError)\nmore")

    monkeypatch.setattr(sources, "HUB_LOADER", offline)
    with pytest.raises(
        DataError, match=r"^hf:codeparrot/apps\[test\]: cannot load \(ConnectionError: Couldn't reach"
    ) as e:
        load_split("apps", "hf:codeparrot/apps", "test")
    assert "\n" not in str(e.value)


def test_hub_through_the_real_datasets_library_on_a_local_file(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    datasets = pytest.importorskip("datasets")
    seen = []

    def local(repo, config=None, *, split=None, revision=None):
        seen.append((repo, config, split))
        return datasets.load_dataset(
            "json", data_files={split: str(FX / "appsplus/valid.jsonl")}, split=split, cache_dir=str(tmp_path / "cache")
        )

    monkeypatch.setattr(sources, "HUB_LOADER", local)
    probs = load_split("appsplus", "hf:someone/apps-plus", "validation")
    assert seen == [("someone/apps-plus", None, "validation")]
    assert probs == load_split("appsplus", str(FX / "appsplus"), "validation")


# --------------------------------------------------------------------------- release URLs, offline (file://)
def test_release_url_is_downloaded_once_and_archives_unpacked(monkeypatch, tmp_path):
    monkeypatch.setenv("GIFT_DATA_CACHE", str(tmp_path / "cache"))
    url = (FX / "humaneval/HumanEval.jsonl.gz").resolve().as_uri()
    assert len(load_split("humaneval", url, "test")) == 5
    tgz = tmp_path / "APPS.tar.gz"
    with tarfile.open(tgz, "w:gz") as t:
        t.add(FX / "apps_tree", arcname="APPS")
    probs = load_split("apps", tgz.as_uri(), "train")
    assert probs == load_split("apps", str(FX / "apps"), "train")

    def no_network(url):
        raise AssertionError("fetched again")

    monkeypatch.setattr(sources, "URL_OPENER", no_network)
    assert load_split("apps", tgz.as_uri(), "train") == probs  # served from the cache
    with pytest.raises(DataError, match="download failed"):
        load_split("mbpp", (tmp_path / "missing.jsonl").as_uri(), "train")
