rule prepare_model:
    """A model as an artifact: a GGUF model converted once to safetensors, or a pointer to a checkpoint
    folder (a local one, or a hub model's snapshot in the cache, fetched first: rules/fetch.smk). ``base``
    is the model that is fine-tuned and evaluated; ``sampler`` (optional, model.sampler) samples the pools
    instead of it (distillation, multi-round self-training). A hub model's revision is in its fetch
    record's name: another revision is another input."""
    input:
        unpack(lambda wc: model_inputs(wc.which)),
    output:
        directory(f"{R0}/model/{{which}}"),
    log:
        f"{R0}/logs/prepare_model/{{which}}.log",
    wildcard_constraints:
        which="base|sampler",
    conda:
        ENV_MODEL
    threads: threads_for("prepare_model")
    resources:
        **resources_for("prepare_model"),
    params:
        base=lambda wc: model_spec(wc.which)["base"],
        gguf_file=lambda wc: model_spec(wc.which).get("gguf_file", ""),
    script:
        "../scripts/prepare_model.py"
