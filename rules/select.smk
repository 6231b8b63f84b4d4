rule select:
    """Per problem, k training codes drawn from the method's pool (uniform or PPL-weighted)."""
    input:
        lambda wc: f"{_r(wc)}/ppl/{config['methods'][wc.method]['pool']}.jsonl",
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
