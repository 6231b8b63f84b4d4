rule score_ppl:
    """Perplexity of every pooled code under the frozen base model (prompt tokens masked)."""
    input:
        problems=f"{R0}/data/seed.jsonl",
        pool=f"{R}/pools/{{pool}}.jsonl",
        model=f"{R0}/model/base",
    output:
        f"{R}/ppl/{{pool}}.jsonl",
    log:
        f"{R}/logs/score_ppl/{{pool}}.log",
    priority: BASE_MODEL_FIRST
    conda:
        ENV_GENERATE
    threads: threads_for("score_ppl")
    resources:
        **resources_for("score_ppl"),
    params:
        cfg=cfg_for("score_ppl"),
    script:
        "../scripts/score_ppl.py"
