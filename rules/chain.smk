# The Gibbs chain (pool "gibbs") and the RFT pool (pool "rft"): the same sampling, testing and keep
# steps; the chain's iteration t+1 is driven by descriptions of the code kept at t.


rule sample_codes:
    """n codes per problem ~ p(code | description of iteration t)."""
    input:
        problems=f"{R0}/data/seed.jsonl",
        descriptions=descriptions_for,
        model=SAMPLER,
    output:
        f"{R}/{{pool}}/iter{{t}}/codes.jsonl",
    log:
        f"{R}/logs/sample_codes/{{pool}}_iter{{t}}.log",
    priority: BASE_MODEL_FIRST
    conda:
        ENV_GENERATE
    threads: threads_for("sample_codes")
    resources:
        **resources_for("sample_codes"),
    params:
        cfg=cfg_for("sample_codes"),
    script:
        "../scripts/sample_codes.py"


rule run_tests:
    """Run every sampled code against its problem's tests; keep one passing code per problem."""
    input:
        problems=f"{R0}/data/seed.jsonl",
        codes=f"{R}/{{pool}}/iter{{t}}/codes.jsonl",
        previous=previous_kept,
    output:
        tests=f"{R}/{{pool}}/iter{{t}}/tests.jsonl",
        kept=f"{R}/{{pool}}/iter{{t}}/kept.jsonl",
    log:
        f"{R}/logs/run_tests/{{pool}}_iter{{t}}.log",
    priority: BASE_MODEL_FIRST
    conda:
        ENV_CPU
    threads: threads_for("run_tests")
    resources:
        **resources_for("run_tests"),
    params:
        cfg=cfg_for("run_tests"),
    script:
        "../scripts/run_tests.py"


rule describe:
    """Descriptions of iteration t+1 ~ p(description | code kept at t), one in-context example each."""
    input:
        problems=f"{R0}/data/seed.jsonl",
        kept=lambda wc: f"{_r(wc)}/gibbs/iter{int(wc.next) - 1}/kept.jsonl",
        examples=f"{R0}/data/describe_examples.jsonl",
        model=SAMPLER,
    output:
        f"{R}/gibbs/iter{{next}}/descriptions.jsonl",
    log:
        f"{R}/logs/describe/iter{{next}}.log",
    wildcard_constraints:
        next=r"[1-9]\d*",
    priority: BASE_MODEL_FIRST
    conda:
        ENV_GENERATE
    threads: threads_for("describe")
    resources:
        **resources_for("describe"),
    params:
        cfg=cfg_for("describe"),
    script:
        "../scripts/describe.py"


rule pool:
    """Every kept code of every iteration: the pool of a sampler."""
    input:
        kept_files,
    output:
        f"{R}/pools/{{pool}}.jsonl",
    log:
        f"{R}/logs/pool/{{pool}}.log",
    priority: BASE_MODEL_FIRST
    conda:
        ENV_CPU
    resources:
        **resources_for("pool"),
    script:
        "../scripts/pool.py"


rule rewrite:
    """RFT+RD: the seed description rewritten by the model, afresh at every step t."""
    input:
        problems=f"{R0}/data/seed.jsonl",
        model=SAMPLER,
    output:
        f"{R}/rft_rd/iter{{t}}/descriptions.jsonl",
    log:
        f"{R}/logs/rewrite/iter{{t}}.log",
    priority: BASE_MODEL_FIRST
    conda:
        ENV_GENERATE
    threads: threads_for("rewrite")
    resources:
        **resources_for("rewrite"),
    params:
        cfg=cfg_for("rewrite"),
    script:
        "../scripts/rewrite.py"
