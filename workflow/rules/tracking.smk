# MLflow: the store is created once; a follower process keeps every job's run live while the workflow runs
# (onstart/onsuccess/onerror below), the track_jobs rule is the final pass that makes the store hold every
# finished job even when hooks are off, and the tables are attached to their experiments.

from mebqat.workflow.follower import start_follower, stop_follower  # noqa: E402

FOLLOWER = []
FOLLOWER_LOG = f"{RESULTS}/logs/mlflow_follow.log"


onstart:
    FOLLOWER.append(start_follower(f"{RESULTS}/runs", MLFLOW_URI, FOLLOWER_LOG))


onsuccess:
    stop_follower(FOLLOWER.pop() if FOLLOWER else None, FOLLOWER_LOG)


onerror:
    stop_follower(FOLLOWER.pop() if FOLLOWER else None, FOLLOWER_LOG)


rule mlflow_store:
    output:
        touch(f"{RESULTS}/.mlflow-store-ready"),
    params:
        mebqat=MEBQAT,
        uri=MLFLOW_URI,
    log:
        f"{RESULTS}/logs/mlflow_store.log",
    conda:
        "../envs/mebqat.yaml"
    shell:
        "{params.mebqat} track init --uri {params.uri:q} > {log:q} 2>&1"


rule track_jobs:
    input:
        metrics=metrics_files(),
        store=rules.mlflow_store.output,
    output:
        touch(f"{RESULTS}/runs/.mlflow-logged"),
    params:
        mebqat=MEBQAT,
        uri=MLFLOW_URI,
        runs=lambda wildcards, output: os.path.dirname(output[0]),
        dirs=lambda wildcards, input: " ".join(shlex.quote(os.path.dirname(m)) for m in input.metrics),
    log:
        f"{RESULTS}/logs/track_jobs.log",
    conda:
        "../envs/mebqat.yaml"
    shell:
        "{params.mebqat} track follow {params.runs:q} --uri {params.uri:q} --once {params.dirs} > {log:q} 2>&1"


rule track_tables:
    input:
        tables=lambda wildcards: rules.build_tables.output.tables,
        figures=lambda wildcards: rules.build_tables.output.figures,
        claims=lambda wildcards: rules.claims.output,
        store=rules.mlflow_store.output,
    output:
        touch(f"{RESULTS}/tables/.mlflow-logged"),
    params:
        mebqat=MEBQAT,
        uri=MLFLOW_URI,
        tables=lambda wildcards, output: os.path.dirname(output[0]),
        figures=lambda wildcards, input: input.figures,
    log:
        f"{RESULTS}/logs/track_tables.log",
    conda:
        "../envs/mebqat.yaml"
    shell:
        "{params.mebqat} track tables {params.tables:q} --figures {params.figures:q} --claims {input.claims:q}"
        " --uri {params.uri:q} > {log:q} 2>&1"
