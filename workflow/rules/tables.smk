# The paper's tables and figures from every job's metrics.json, and the HTML report.

TABLE_FILES = [f"{RESULTS}/tables/{table}.{ext}" for table in TABLES for ext in ("csv", "md", "tex")]


rule build_tables:
    input:
        metrics_files(),
    output:
        tables=[report(path, category="Tables", labels={"table": os.path.basename(path)}) for path in TABLE_FILES],
        figures=report(directory(f"{RESULTS}/figures"), patterns=["{name}.png"], category="Figures"),
    params:
        mebqat=MEBQAT,
        out=lambda wildcards, output: os.path.dirname(output.tables[0]),
        tables=" ".join(t.removeprefix("table") for t in TABLES),
    log:
        f"{RESULTS}/logs/build_tables.log",
    conda:
        "../envs/mebqat.yaml"
    shell:
        "{params.mebqat} tables build --runs {input:q} --out {params.out:q} --figures {output.figures:q}"
        " --tables {params.tables} > {log:q} 2>&1"


rule claims:
    input:
        metrics_files(),
    output:
        csv=f"{RESULTS}/claims.csv",
        md=report(f"{RESULTS}/claims.md", category="Claims", labels={"file": "claims.md"}),
    params:
        mebqat=MEBQAT,
        out=lambda wildcards, output: os.path.dirname(output.csv),
    log:
        f"{RESULTS}/logs/claims.log",
    conda:
        "../envs/mebqat.yaml"
    shell:
        "{params.mebqat} tables claims --runs {input:q} --out {params.out:q} > {log:q} 2>&1"


rule tables:
    input:
        rules.build_tables.output.tables,
        rules.claims.output,
        rules.track_jobs.output,
        rules.track_tables.output,


rule figures:
    input:
        rules.build_tables.output.figures,


rule report:
    input:
        rules.tables.input,
        rules.figures.input,
    output:
        f"{RESULTS}/report.html",
    params:
        python=sys.executable,
        config=json.dumps(config),
        config_file=f"{RESULTS}/report-config.json",
        snakefile=workflow.main_snakefile,
        directory=workflow.basedir,
    log:
        f"{RESULTS}/logs/report.log",
    conda:
        "../envs/mebqat.yaml"
    shell:
        # the report of this very workflow, with this run's configuration (written beside the report)
        "printf '%s' {params.config:q} > {params.config_file:q} && "
        "{params.python} -m snakemake --snakefile {params.snakefile:q} --directory {params.directory:q} "
        "--configfile {params.config_file:q} --report {output:q} --nolock > {log:q} 2>&1"
