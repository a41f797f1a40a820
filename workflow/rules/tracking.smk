# MLflow: the store is created once, before any job writes to it (each job logs itself, see jobs.smk);
# the tables are attached to their experiments.


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
