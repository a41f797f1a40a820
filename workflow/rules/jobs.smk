# One training job per table cell that needs its own model, then its evaluation.


rule train:
    output:
        f"{RESULTS}/runs/{{job}}/train_summary.json",
    params:
        mebqat=MEBQAT,
        spec=job_spec,
        config_hash=job_hash,
        out=run_dir,
        device=DEVICE,
    log:
        f"{RESULTS}/logs/train/{{job}}.log",
    threads: config["threads_per_job"]
    resources:
        gpu=job_resources,
    conda:
        "../envs/mebqat.yaml"
    message:
        "training {wildcards.job}"
    shell:
        "{params.mebqat} train --spec {params.spec:q} --out {params.out:q} --threads {threads} --device {params.device}"
        " --replace-stale > {log:q} 2>&1"


rule evaluate:
    input:
        rules.train.output,
    output:
        f"{RESULTS}/runs/{{job}}/metrics.json",
    params:
        mebqat=MEBQAT,
        out=run_dir,
        device=DEVICE,
    log:
        f"{RESULTS}/logs/evaluate/{{job}}.log",
    threads: config["threads_per_job"]
    resources:
        gpu=job_resources,
    conda:
        "../envs/mebqat.yaml"
    message:
        "evaluating {wildcards.job}"
    shell:
        "{params.mebqat} evaluate {params.out:q} --threads {threads} --device {params.device} > {log:q} 2>&1"
