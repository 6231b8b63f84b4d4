from gift.config import train_max_length
from gift.launcher import launcher_command

# train.checkpoint_every and train.report_to change how a fine-tuning runs, not what it writes: they reach
# the command through the environment, outside `params` and outside the shell command's text (which
# Snakemake records as the rule's code), so that changing them reruns nothing (TensorBoard events go to
# logs/tensorboard/<method>/ beside the job's log); set by the workflow itself, so no `envvars:` asks it of the user
# GIFT_TRAIN_GPUS: the GPUs the job asks for, so that one sent to GPUs that sees none stops at once
os.environ.update(
    GIFT_TRAIN_HOW=json.dumps({k: config["train"].get(k) for k in TRAIN_HOW}),
    GIFT_TRAIN_GPUS=str(resources_for("finetune").get("gpu", 0)),
    # served mode: a fine-tuning owns the devices; no model server runs beside it (gift.serve claim)
    GIFT_DEVICES_CLAIM="1" if SERVED else "",
)


rule finetune:
    """Fine-tune the base model on (seed description, selected code) pairs plus the original pairs.
    `train.launcher` is `python` (one process) or `accelerate launch ...` (several processes, DeepSpeed);
    with `train.checkpoint_every` a rerun after a kill resumes from `<output>.state/` (gift.train).
    """
    input:
        problems=f"{R0}/data/seed.jsonl",
        selected=f"{R}/selected/{{method}}.jsonl",
        model=f"{R0}/model/base",
        after=base_model_work,
    output:
        directory(f"{R}/checkpoints/{{method}}"),
    log:
        f"{R}/logs/finetune/{{method}}.log",
    conda:
        ENV_TRAIN
    threads: threads_for("finetune")
    resources:
        **resources_for("finetune"),
    params:
        # `python`: this Snakemake's interpreter (a venv need not be on PATH), or the env's with --sdm;
        # `accelerate launch ...` through that interpreter, its config files from the workflow's folder,
        # a free rendezvous port per job (gift.launcher)
        launcher=launcher_command(config["train"]["launcher"], workflow.basedir),
        cfg=cfg_for("finetune"),
        train=lambda wc: json.dumps(
            dict(
                {k: v for k, v in config["train"].items() if k not in TRAIN_HOW},
                seed=config["seed"],
                dtype=config["model"]["dtype"],
                tokenize=config["tokenize"],
                layout=config["prompt"]["layout"],
                save_every_epoch=config["evaluation"]["every_epoch"],
                # as set, or prompt.max_tokens + gibbs.max_new_tokens
                max_length=train_max_length(config),
            )
        ),
        device=config["model"]["device"],
    shell:
        # the `gift` package from this checkout ($GIFT_ROOT, rules/common.smk), whether or not it is
        # pip-installed in the env
        'PYTHONPATH="$GIFT_ROOT"${{PYTHONPATH:+:$PYTHONPATH}}'
        ' ${{GIFT_DEVICES_CLAIM:+"$GIFT_PYTHON" -m gift.serve claim --}}'
        " {params.launcher} -m gift.train --model {input.model:q} --problems {input.problems:q}"
        " --selected {input.selected:q} --out {output:q} --config {params.train:q}"
        ' --device {params.device} --threads {threads} --how "$GIFT_TRAIN_HOW" > {log:q} 2>&1'
