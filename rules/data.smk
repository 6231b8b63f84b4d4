rule data:
    """The seed (training) problems or the held-out test problems of the configured dataset (one job per
    split, so that changing the test set does not re-run the chain)."""
    input:
        data_inputs,
    output:
        f"{R0}/data/{{split}}.jsonl",
    log:
        f"{R0}/logs/data/{{split}}.log",
    conda:
        ENV_CPU
    resources:
        **resources_for("data"),
    params:
        split=lambda wildcards: config["data"][wildcards.split],
    script:
        "../scripts/data.py"


rule describe_examples:
    """The one-shot examples of the code -> description step: the seed problems' own (reference,
    description) pairs, or an example file in the authors' format resolved against the seed split.
    """
    input:
        seed=f"{R0}/data/seed.jsonl",
        file=examples_inputs,
    output:
        f"{R0}/data/describe_examples.jsonl",
    log:
        f"{R0}/logs/describe_examples.log",
    conda:
        ENV_CPU
    resources:
        **resources_for("describe_examples"),
    params:
        cfg=cfg_for("describe_examples"),
        seed_split=lambda wc: (
            config["data"]["seed"]
            if config["gibbs"]["description"]["examples"] != "seed"
            else {}
        ),
    script:
        "../scripts/describe_examples.py"


rule seed_descriptions:
    """Iteration 0 of the chain is driven by the seed descriptions."""
    input:
        f"{R0}/data/seed.jsonl",
    output:
        f"{R}/gibbs/iter0/descriptions.jsonl",
    log:
        f"{R}/logs/seed_descriptions.log",
    conda:
        ENV_CPU
    resources:
        **resources_for("seed_descriptions"),
    script:
        "../scripts/seed_descriptions.py"
