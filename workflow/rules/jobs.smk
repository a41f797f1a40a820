# One job per table cell that needs its own model: training and evaluation in one process (`mebqat run`),
# so that each job pays the start-up cost once. Its MLflow run is written from its run directory by the
# workflow's follower (tracking.smk), so no job imports MLflow or opens the store. At scale rehearsal the same
# job runs under `mebqat rehearse` (docs/rehearsal.md).


rule job:
    input:
        store=rules.mlflow_store.output,
    output:
        metrics=f"{RESULTS}/runs/{{job}}/{METRICS}",
    params:
        mebqat=MEBQAT,
        spec=job_spec,
        # the config hash, plus the recorded data files that changed: either reruns the job, which then
        # replaces its run directory (--replace-stale) instead of refusing it
        rerun_key=job_rerun_key,
        out=run_dir,
        device=DEVICE,
        # a rehearsal job is killed after its first epoch and resumed; it compares its peak with mem_mb
        command=lambda wildcards, resources: f"rehearse --mem-mb {resources.mem_mb}" if REHEARSAL else "run",
    log:
        f"{RESULTS}/logs/jobs/{{job}}.log",
    threads: config["threads_per_job"]
    resources:
        **JOB_RESOURCES,
    retries: JOB_RETRIES
    conda:
        "../envs/mebqat.yaml"
    message:
        "running job {wildcards.job}"
    shell:
        "{params.mebqat} {params.command} --spec {params.spec:q} --out {params.out:q} --threads {threads} --device {params.device}"
        " --tracking follower --replace-stale > {log:q} 2>&1"
