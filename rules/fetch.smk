# Fetch once, then offline (gift.hub): a local rule, run where Snakemake runs (the machine that reaches the
# internet: a workstation, a cluster's login node), never on a compute node.
import re


rule fetch:
    """One hub model, hub dataset (`hf:` data path) or release URL downloaded into the config's `cache`
    folder (huggingface_hub's snapshot_download; gift.datasets.sources.fetch for URLs) and its record
    written: which commit, where. Every other job reads the cache offline (rules/common.smk).
    """
    output:
        f"{CACHE}/fetched/{{item}}.json",
    log:
        f"{R0}/logs/fetch/{{item}}.log",
    wildcard_constraints:
        item="|".join(re.escape(name) for name in FETCH) or "(?!)",
    localrule: True  # the rule's own flag: it holds under a module's prefix too (rules/paper.smk)
    conda:
        ENV_CPU  # huggingface_hub (a dependency of datasets)
    params:
        spec=lambda wc: FETCH[wc.item],
    script:
        "../scripts/fetch.py"
