rule select:
    """Per problem, k training codes drawn from the method's pool (uniform or PPL-weighted)."""
    input:
        # the method's scored pool; with the authors' single stream, the seed problems too (their order)
        pool=lambda wc: f"{_r(wc)}/ppl/{config['methods'][wc.method]['pool']}.jsonl",
        seed=(
            [f"{R0}/data/seed.jsonl"]
            if config["selection"]["stream"] == "single"
            else []
        ),
    output:
        f"{R}/selected/{{method}}.jsonl",
    log:
        f"{R}/logs/select/{{method}}.log",
    conda:
        ENV_CPU
    resources:
        **resources_for("select"),
    params:
        cfg=cfg_for("select"),
        spec=lambda wc: config["methods"][wc.method],
    script:
        "../scripts/select.py"
