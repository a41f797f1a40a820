# One job per table cell that needs its own model: training, evaluation and MLflow logging in one
# process (`mebqat run`), so that each job pays the start-up cost (imports, store) once.


rule job:
    input:
        store=rules.mlflow_store.output,
    output:
        metrics=f"{RESULTS}/runs/{{job}}/metrics.json",
        logged=touch(f"{RESULTS}/runs/{{job}}/.mlflow-logged"),
    params:
        mebqat=MEBQAT,
        spec=job_spec,
        config_hash=job_hash,
        out=run_dir,
        device=DEVICE,
        uri=MLFLOW_URI,
    log:
        f"{RESULTS}/logs/jobs/{{job}}.log",
    threads: config["threads_per_job"]
    resources:
        **JOB_RESOURCES,
    conda:
        "../envs/mebqat.yaml"
    message:
        "running job {wildcards.job}"
    shell:
        "{params.mebqat} run --spec {params.spec:q} --out {params.out:q} --threads {threads} --device {params.device}"
        " --uri {params.uri:q} --replace-stale > {log:q} 2>&1"
