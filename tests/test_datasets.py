import json

import pytest

from gift.datasets import DataError, load_codeinsight, load_mbpp, load_split


def test_mbpp_splits_follow_task_ids():
    train = load_mbpp("data/mbpp/mbpp.jsonl", "train")
    test = load_mbpp("data/mbpp/mbpp.jsonl", "test")
    assert len(train) == 374 and len(test) == 500
    assert train[0]["task_id"] == "mbpp/601" and test[0]["task_id"] == "mbpp/11"
    assert all(p["format"] == "assert" and p["tests"] for p in train)


def test_mbpp_keeps_test_setup_code():
    with_setup = [p for p in load_mbpp("data/mbpp/mbpp.jsonl") if p["setup"]]
    assert with_setup, "MBPP has problems with test_setup_code"
    assert all(isinstance(p["setup"], str) for p in with_setup)


def test_subset_by_ids_and_order():
    picked = load_split("mbpp", "data/mbpp/mbpp.jsonl", "test", ids=[12, 11])
    assert [p["task_id"] for p in picked] == ["mbpp/12", "mbpp/11"]
    short = load_split("mbpp", "data/mbpp/mbpp.jsonl", "train", order="shortest", limit=5)
    lens = [len(p["reference"].strip()) for p in short]
    assert lens == sorted(lens) and len(short) == 5
    with pytest.raises(DataError, match="no task ids \\[9999\\]"):
        load_split("mbpp", "data/mbpp/mbpp.jsonl", "test", ids=[9999])


def test_codeinsight_bare_comparisons_become_asserts():
    probs = load_codeinsight("data/codeinsight", "train")
    assert probs[0]["tests"] == ["assert test(1,2) == 3"]
    assert probs[0]["entry_point"] == "test" and probs[0]["header"].startswith("def test(")
    assert all(any("assert" in t for t in p["tests"]) for p in probs)


def test_malformed_rows_name_file_and_row(tmp_path):
    f = tmp_path / "mbpp.jsonl"
    good = {
        "task_id": 601,
        "text": "t",
        "code": "def f(): pass",
        "test_list": ["assert f() is None"],
        "test_setup_code": "",
    }
    f.write_text(json.dumps(good) + "\n" + json.dumps({"task_id": 602, "text": "t"}) + "\n")
    with pytest.raises(DataError, match=r"mbpp.jsonl: row 2: missing key 'code'"):
        load_mbpp(f)
    f.write_text(json.dumps(good) + "\n{not json\n")
    with pytest.raises(ValueError, match=r"mbpp.jsonl:2: not valid JSON"):
        load_mbpp(f)
