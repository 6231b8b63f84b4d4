rule table:
    """The main results table (one row per model, one column per metric, 95 % bootstrap intervals over
    problems), the paired comparisons with the base model and RFT, and the scores figure.
    """
    input:
        scores=expand(
            f"{R}/eval/{{model}}/scores.json", model=MODELS, allow_missing=True
        ),
        per_problem=expand(
            f"{R}/eval/{{model}}/per_problem.jsonl", model=MODELS, allow_missing=True
        ),
        checkpoints=expand(
            f"{R}/checkpoints/{{method}}", method=METHODS, allow_missing=True
        ),
    output:
        csv=report(
            f"{R}/tables/main.csv",
            caption="../report/main_table.rst",
            category="Main results",
            subcategory="Pass rates",
        ),
        md=f"{R}/tables/main.md",
        tex=f"{R}/tables/main.tex",
        paired_csv=report(
            f"{R}/tables/comparison_paired.csv",
            caption="../report/comparison_paired.rst",
            category="Main results",
            subcategory="Paired comparisons",
        ),
        paired_md=f"{R}/tables/comparison_paired.md",
        paired_tex=f"{R}/tables/comparison_paired.tex",
        figure=report(
            f"{R}/figures/scores.png",
            caption="../report/scores.rst",
            category="Main results",
            subcategory="Pass rates",
        ),
        figure_pdf=f"{R}/figures/scores.pdf",
        training_loss=report(
            f"{R}/figures/training_loss.png",
            caption="../report/training_loss.rst",
            category="Training",
            subcategory="Loss",
        ),
        training_loss_pdf=f"{R}/figures/training_loss.pdf",
    log:
        f"{R}/logs/table.log",
    conda:
        ENV_CPU
    resources:
        **resources_for("table"),
    params:
        cfg=cfg_for("table"),
    script:
        "../scripts/table.py"


rule epochs_table:
    """Scores after every epoch (evaluation.every_epoch: the authors evaluate each epoch's checkpoint)."""
    input:
        expand(
            f"{R}/eval/{{model}}/scores.json",
            model=METHODS + EPOCH_MODELS,
            allow_missing=True,
        ),
    output:
        csv=report(
            f"{R}/tables/epochs.csv",
            caption="../report/epochs_table.rst",
            category="Training",
            subcategory="Per epoch",
        ),
        md=f"{R}/tables/epochs.md",
        tex=f"{R}/tables/epochs.tex",
    log:
        f"{R}/logs/epochs_table.log",
    conda:
        ENV_CPU
    resources:
        **resources_for("epochs_table"),
    params:
        cfg=cfg_for("epochs_table"),
    script:
        "../scripts/epochs_table.py"


rule replicates_table:
    """Across replicate seeds (config key `replicates`): mean and standard deviation of every cell, and
    the paired comparisons pooled over seeds."""
    input:
        scores=expand(f"{R}/eval/{{model}}/scores.json", rseed=SEEDS, model=MODELS),
        per_problem=expand(
            f"{R}/eval/{{model}}/per_problem.jsonl", rseed=SEEDS, model=MODELS
        ),
    output:
        csv=report(
            f"{R0}/tables/replicates.csv",
            caption="../report/replicates_table.rst",
            category="Main results",
            subcategory="Replicate seeds",
        ),
        md=f"{R0}/tables/replicates.md",
        tex=f"{R0}/tables/replicates.tex",
        paired_csv=f"{R0}/tables/replicates_paired.csv",
        paired_md=f"{R0}/tables/replicates_paired.md",
        paired_tex=f"{R0}/tables/replicates_paired.tex",
    log:
        f"{R0}/logs/replicates_table.log",
    conda:
        ENV_CPU
    resources:
        **resources_for("replicates_table"),
    params:
        cfg=cfg_for("replicates_table"),
    script:
        "../scripts/replicates_table.py"


rule figures:
    """Pass rate per Gibbs iteration; PPL distribution of the RFT and GiFT pools."""
    input:
        tests=expand(
            f"{R}/{{pool}}/iter{{t}}/tests.jsonl",
            pool=POOLS,
            t=range(T),
            allow_missing=True,
        ),
        ppl=expand(f"{R}/ppl/{{pool}}.jsonl", pool=POOLS, allow_missing=True),
    output:
        iterations=report(
            f"{R}/figures/pass_rate_per_iteration.png",
            caption="../report/pass_rate.rst",
            category="Chain",
            subcategory="Pass rate",
        ),
        ppl=report(
            f"{R}/figures/ppl_distribution.png",
            caption="../report/ppl.rst",
            category="Chain",
            subcategory="Perplexity",
        ),
        pdf=[
            f"{R}/figures/pass_rate_per_iteration.pdf",
            f"{R}/figures/ppl_distribution.pdf",
        ],
    log:
        f"{R}/logs/figures.log",
    conda:
        ENV_CPU
    resources:
        **resources_for("figures"),
    params:
        cfg=cfg_for("figures"),
    script:
        "../scripts/figures.py"


rule summary:
    """Counts for the record: passing samples per iteration, pool sizes, selected set sizes, scores."""
    input:
        tests=expand(
            f"{R}/{{pool}}/iter{{t}}/tests.jsonl",
            pool=POOLS,
            t=range(T),
            allow_missing=True,
        ),
        pools=expand(f"{R}/pools/{{pool}}.jsonl", pool=POOLS, allow_missing=True),
        selected=expand(
            f"{R}/selected/{{method}}.jsonl", method=METHODS, allow_missing=True
        ),
        scores=expand(
            f"{R}/eval/{{model}}/scores.json", model=MODELS, allow_missing=True
        ),
    output:
        f"{R}/summary.json",
    log:
        f"{R}/logs/summary.log",
    conda:
        ENV_CPU
    resources:
        **resources_for("summary"),
    script:
        "../scripts/summary.py"


rule analysis:
    """Diversity, pool growth, description drift and PPL summaries of the sample pools."""
    input:
        seed=f"{R0}/data/seed.jsonl",
        pools=expand(f"{R}/pools/{{pool}}.jsonl", pool=POOLS, allow_missing=True),
        codes=expand(
            f"{R}/{{pool}}/iter{{t}}/codes.jsonl",
            pool=POOLS,
            t=range(T),
            allow_missing=True,
        ),
        tests=expand(
            f"{R}/{{pool}}/iter{{t}}/tests.jsonl",
            pool=POOLS,
            t=range(T),
            allow_missing=True,
        ),
        kept=expand(
            f"{R}/{{pool}}/iter{{t}}/kept.jsonl",
            pool=POOLS,
            t=range(T),
            allow_missing=True,
        ),
        descriptions=expand(
            f"{R}/gibbs/iter{{t}}/descriptions.jsonl", t=range(T), allow_missing=True
        ),
        ppl=expand(f"{R}/ppl/{{pool}}.jsonl", pool=POOLS, allow_missing=True),
    output:
        **{
            f"{a}_csv": report(
                f"{R}/analysis/{a}.csv",
                caption="../report/analysis_table.rst",
                category="Analysis",
                subcategory=a.replace("_", " "),
            )
            for a in ANALYSES
        },
        **{f"{a}_md": f"{R}/analysis/{a}.md" for a in ANALYSES},
        figure=report(
            f"{R}/figures/analysis.png",
            caption="../report/analysis.rst",
            category="Analysis",
            subcategory="Figure",
        ),
        figure_pdf=f"{R}/figures/analysis.pdf",
    log:
        f"{R}/logs/analysis.log",
    conda:
        ENV_CPU
    resources:
        **resources_for("analysis"),
    params:
        cfg=cfg_for("analysis"),
        pools=POOLS,
    script:
        "../scripts/analysis.py"


rule compare_published:
    """The paper's published numbers next to this run's (cells without a run say so)."""
    input:
        published=_data_path("data/published/results.csv"),
        scores=expand(
            f"{R}/eval/{{model}}/scores.json", model=MODELS, allow_missing=True
        ),
    output:
        # in the report only where the paper's numbers are recorded (else the table is one line)
        csv=(
            report(
                f"{R}/tables/comparison.csv",
                caption="../report/comparison.rst",
                category="Main results",
                subcategory="Published numbers",
            )
            if has_published_numbers(_data_path("data/published/results.csv"))
            else f"{R}/tables/comparison.csv"
        ),
        md=f"{R}/tables/comparison.md",
        tex=f"{R}/tables/comparison.tex",
    log:
        f"{R}/logs/compare_published.log",
    conda:
        ENV_CPU
    resources:
        **resources_for("compare_published"),
    params:
        cfg=cfg_for("compare_published"),
    script:
        "../scripts/compare_published.py"


rule selection_ablation:
    """How each method drew its training codes (weighting, temperature, Gibbs iterations used), what it
    drew, and its score: the selection ablation and the effect of the number of iterations.
    """
    input:
        scores=expand(
            f"{R}/eval/{{method}}/scores.json", method=METHODS, allow_missing=True
        ),
        per_problem=expand(
            f"{R}/eval/{{method}}/per_problem.jsonl",
            method=METHODS,
            allow_missing=True,
        ),
        selected=expand(
            f"{R}/selected/{{method}}.jsonl", method=METHODS, allow_missing=True
        ),
        ppl=expand(f"{R}/ppl/{{pool}}.jsonl", pool=POOLS, allow_missing=True),
    output:
        csv=report(
            f"{R}/tables/selection.csv",
            caption="../report/selection_table.rst",
            category="Selection",
            subcategory="Selection ablation",
        ),
        md=f"{R}/tables/selection.md",
        tex=f"{R}/tables/selection.tex",
        figure=report(
            f"{R}/figures/selection.png",
            caption="../report/selection.rst",
            category="Selection",
            subcategory="Selection ablation",
        ),
        figure_pdf=f"{R}/figures/selection.pdf",
    log:
        f"{R}/logs/selection_ablation.log",
    conda:
        ENV_CPU
    resources:
        **resources_for("selection_ablation"),
    params:
        cfg=cfg_for("selection_ablation"),
    script:
        "../scripts/selection_ablation.py"
