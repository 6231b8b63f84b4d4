def select_inputs(wildcards):
    """The method's scored pool; with the authors' single stream, the seed problems too (their order)."""
    pool = config["methods"][wildcards.method]["pool"]
    files = {"pool": f"{_r(wildcards)}/ppl/{pool}.jsonl"}
    if config["selection"]["stream"] == "single":
        files["seed"] = f"{R0}/data/seed.jsonl"
    return files


rule select:
    """Per problem, k training codes drawn from the method's pool (uniform or PPL-weighted)."""
    input:
        unpack(select_inputs),
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
