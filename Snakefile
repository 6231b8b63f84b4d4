# GiFT: Gibbs Fine-Tuning for code generation (Li et al., ACL 2025) as a Snakemake workflow.
# The table of contents: one rules/<stage>.smk per stage of the method, the logic in the `gift` package.
# Software: every rule names its conda environment (envs/*.yaml, `--sdm conda`); the container image
# below runs every rule with `--sdm apptainer` (docs/environments.md).
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"


# config key `container` (default: the CPU image, or the CUDA image when generation.backend is vllm)
container: CONTAINER


include: "rules/fetch.smk"
include: "rules/data.smk"
include: "rules/model.smk"
include: "rules/chain.smk"
include: "rules/ppl.smk"
include: "rules/select.smk"
include: "rules/finetune.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"


onstart:
    record_lock_owner()


onsuccess:
    stop_servers()


onerror:
    stop_servers()


rule all:
    default_target: True
    input:
        final_outputs(),
