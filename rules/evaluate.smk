rule evaluate_generate:
    """Greedy and sampled completions of a model (base or fine-tuned) for every test problem."""
    input:
        problems=f"{R0}/data/test.jsonl",
        model=model_dir,
    output:
        f"{R}/eval/{{model}}/samples.jsonl",
    log:
        f"{R}/logs/evaluate_generate/{{model}}.log",
    priority: base_model_first
    conda:
        ENV_GENERATE
    threads: threads_for("evaluate_generate")
    resources:
        **resources_for("evaluate_generate"),
    params:
        cfg=cfg_for("evaluate_generate"),
        model_path=model_path,
    script:
        "../scripts/evaluate_generate.py"


rule expected_outputs:
    """MBPP+ / HumanEval+: the canonical solutions' outputs on every base and plus input, computed once
    per test set (all models' evaluations read this file)."""
    input:
        problems=f"{R0}/data/test.jsonl",
    output:
        f"{R0}/data/test_expected.json",
    log:
        f"{R0}/logs/expected_outputs.log",
    conda:
        ENV_CPU
    threads: threads_for("expected_outputs")
    resources:
        **resources_for("expected_outputs"),
    script:
        "../scripts/expected_outputs.py"


rule evaluate_score:
    """Execute every sample: per-sample verdicts, per-problem pass@k, and the model's score file
    (MBPP+ / HumanEval+ test sets: both benchmarks, EvalPlus's way)."""
    input:
        unpack(evaluate_score_inputs),
    output:
        results=f"{R}/eval/{{model}}/results.jsonl",
        per_problem=f"{R}/eval/{{model}}/per_problem.jsonl",
        scores=f"{R}/eval/{{model}}/scores.json",
    log:
        f"{R}/logs/evaluate_score/{{model}}.log",
    conda:
        ENV_CPU
    threads: threads_for("evaluate_score")
    resources:
        **resources_for("evaluate_score"),
    params:
        cfg=cfg_for("evaluate_score"),
        evaluator=EVALUATOR,
    script:
        "../scripts/evaluate_score.py"
