"""What a GPU engine is started with, read from the paper configs as the workflow composes them (config.yaml,
then the paper config, then the schema's defaults): a bounded context length, in-flight requests that
scale with the engine replicas, the CPU thread settings only for CPU engines (fast: no engine starts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from snakemake.utils import update_config, validate

from gift.backends.vllm import VLLMBackend, engine_args, engine_env
from gift.config import max_model_len, train_max_length
from gift.rule import generation_settings
from gift.serve import in_flight, server_argv

ROOT = Path(__file__).resolve().parent.parent
PAPER = sorted((ROOT / "config/paper").glob("*.yaml"))


def composed(*overrides: Path) -> dict:
    """config.yaml updated by each override, the schema's defaults filled in (Snakefile, rules/common.smk)."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    for path in overrides:
        update_config(config, yaml.safe_load(path.read_text()))
    validate(config, str(ROOT / "schemas/config.schema.yaml"))
    return config


@pytest.mark.parametrize("path", PAPER, ids=lambda p: p.stem)
def test_every_paper_config_starts_its_engine_with_a_bounded_context(path):
    config = composed(path)
    assert config["generation"]["max_model_len"] is None  # not set: derived
    gen = generation_settings(config, config)
    args = engine_args(config["model"]["base"], gen, cpu=False)
    print(path.stem, args)  # the engine arguments of a paper config's GPU engine
    # two codes of at most 1024 + 512 tokens and a description in the prompt, a description generated
    assert args["max_model_len"] == 2 * (1024 + 512) + 2 * 512 == 4096
    argv = server_argv(gen, config["model"]["base"], 8000, cpu=False)
    assert argv[argv.index("--max-model-len") + 1] == "4096" and "--data-parallel-size" in argv
    assert train_max_length(config) == config["train"]["max_length"] == 1536  # as set: the authors' length
    assert train_max_length(dict(config, train=dict(config["train"], max_length=None))) == 1536  # and derived


def test_the_context_length_follows_the_config_and_a_set_value_wins(tmp_path):
    config = composed(PAPER[0])
    longer = dict(config, prompt=dict(config["prompt"], max_tokens=2048))
    assert max_model_len(longer) == 2 * (2048 + 512) + 2 * 512 and train_max_length(
        dict(longer, train=dict(longer["train"], max_length=None))
    ) == (2048 + 512)
    fixed = dict(config, generation=dict(config["generation"], max_model_len=3000))
    assert engine_args("m", generation_settings(fixed, fixed), cpu=False)["max_model_len"] == 3000
    # a model with fewer positions than the derived bound gets its own (vLLM refuses a longer one)
    (tmp_path / "config.json").write_text(json.dumps({"max_position_embeddings": 2048}))
    assert engine_args(str(tmp_path), generation_settings(config, config), cpu=False)["max_model_len"] == 2048
    assert engine_args(str(tmp_path), generation_settings(fixed, fixed), cpu=False)["max_model_len"] == 3000
    v = VLLMBackend.__new__(VLLMBackend)
    v.args = {"max_model_len": 10}
    v.check_fits([9, 3])  # 9 prompt tokens and one to generate fit 10
    with pytest.raises(ValueError, match=r"^generation.max_model_len: a sequence of 11 tokens does not fit"):
        v.check_fits([10])


def test_requests_in_flight_scale_with_the_replicas():
    for path in PAPER:
        gen = composed(path)["generation"]
        assert gen["data_parallel_size"] == 8 and in_flight(gen) == 64 * 8, path.stem
    assert in_flight(composed()["generation"]) == 64  # one replica: the per-replica figure
    assert in_flight({"data_parallel_size": 2, "serve": {"concurrency": 3}}) == 6
    assert in_flight({"data_parallel_size": None}) == 64


def test_cpu_thread_settings_only_for_cpu_engines():
    import torch  # cpu_thread_env takes the job's thread count from torch (gift.rule sets it)

    user = {"PATH": "/bin"}
    gpu, cpu = engine_env(False, user), engine_env(True, user)
    # a GPU server's processes: the environment as it is, with room for the authors' 6 stop strings
    assert gpu == {**user, "VLLM_MAX_STOP_STRINGS": "16"}
    assert cpu["VLLM_CPU_OMP_THREADS_BIND"] == "nobind" and cpu["OMP_NUM_THREADS"] == str(torch.get_num_threads())
    mine = {"OMP_NUM_THREADS": "3", "VLLM_CPU_OMP_THREADS_BIND": "0-2", "VLLM_MAX_STOP_STRINGS": "8"}
    assert engine_env(True, mine) == mine == engine_env(False, mine)  # what the user set wins


def test_a_gpu_server_needing_more_gpus_than_the_job_sees_is_named_in_one_line():
    from gift.serve.manager import too_few_gpus

    paper = {"data_parallel_size": 8, "tensor_parallel_size": 1}
    why = too_few_gpus(paper, visible=4)
    assert why and "\n" not in why and "data_parallel_size 8" in why and "sees 4" in why
    assert too_few_gpus(paper, visible=8) is None and too_few_gpus(paper, visible=0) is None  # 0: unknown
    assert too_few_gpus({"data_parallel_size": 4, "tensor_parallel_size": 2}, visible=4)
