rule data:
    """The seed (training) problems or the held-out test problems of the configured dataset (one job per
    split, so that changing the test set does not re-run the chain)."""
    input:
        data_inputs,
    output:
        f"{R}/data/{{split}}.jsonl",
    log:
        f"{R}/logs/data/{{split}}.log",
    conda:
        ENV_CPU
    params:
        split=lambda wildcards: config["data"][wildcards.split],
    script:
        "../scripts/data.py"


rule seed_descriptions:
    """Iteration 0 of the chain is driven by the seed descriptions."""
    input:
        f"{R}/data/seed.jsonl",
    output:
        f"{R}/gibbs/iter0/descriptions.jsonl",
    log:
        f"{R}/logs/seed_descriptions.log",
    conda:
        ENV_CPU
    script:
        "../scripts/seed_descriptions.py"
