# The paper's tables and figures from every job's metrics.json, and the HTML report.
#
# The report shows text/html results inline (other text files only download), so each table and the claims
# are also written as one self-contained HTML page, registered with a caption from workflow/report/; the
# csv/md/tex files stay outputs. Its start page is the run's summary (report_pages, made the workflow's
# `report:` description in the Snakefile), and jobs.html names every job, which Snakemake's per-rule
# statistics do not.

TABLE_FILES = [f"{RESULTS}/tables/{table}.{ext}" for table in TABLES for ext in ("csv", "md", "tex")]
TABLE_CAPTIONS = {"table2": "table2.rst", "table3": "table3.rst", "table4": "fewshot_table.rst",
                  "table5": "fewshot_table.rst"}
# one label per entry: the report turns a second label with two values into a toggle, which with two tables
# (table2 and table3 only) would hide one of them
TABLE_LABELS = {
    "table2": "bitwidth adaptation",
    "table3": "cost and storage",
    "table4": "few-shot, MAML",
    "table5": "few-shot, ProtoNets",
}
TABLE_PAGES = [report(f"{RESULTS}/tables/{table}.html", category="Tables", caption=f"../report/{TABLE_CAPTIONS[table]}",
                      labels={"table": f"Table {table.removeprefix('table')}: {TABLE_LABELS[table]}"})
               for table in TABLES]


rule build_tables:
    input:
        metrics_files(),
    output:
        tables=TABLE_FILES,
        pages=TABLE_PAGES,
        figures=report(directory(f"{RESULTS}/figures"), patterns=["{name}.png"], category="Figures",
                       caption="../report/figures.rst", labels={"figure": "{name}"}),
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
        md=f"{RESULTS}/claims.md",
        html=report(f"{RESULTS}/claims.html", category="Claims", caption="../report/claims.rst",
                    labels={"page": "Do the paper's claims hold?"}),
    params:
        mebqat=MEBQAT,
        out=lambda wildcards, output: os.path.dirname(output.csv),
    log:
        f"{RESULTS}/logs/claims.log",
    conda:
        "../envs/mebqat.yaml"
    shell:
        "{params.mebqat} tables claims --runs {input:q} --out {params.out:q} > {log:q} 2>&1"


rule report_pages:
    input:
        metrics=metrics_files(),
        claims=rules.claims.output.csv,
        pages=rules.build_tables.output.pages,
    output:
        summary=f"{RESULTS}/report/summary.rst",
        jobs=report(f"{RESULTS}/report/jobs.html", category="Jobs", caption="../report/jobs.rst",
                    labels={"page": "every training job, its time and state"}),
    params:
        mebqat=MEBQAT,
        out=lambda wildcards, output: os.path.dirname(output.summary),
        runs=lambda wildcards, output: os.path.join(os.path.dirname(os.path.dirname(output.summary)), "runs"),
        results=lambda wildcards, output: os.path.dirname(os.path.dirname(output.summary)),
        tables=" ".join(t.removeprefix("table") for t in TABLES),
        uri=MLFLOW_URI,
    log:
        f"{RESULTS}/logs/report_pages.log",
    conda:
        "../envs/mebqat.yaml"
    shell:
        "{params.mebqat} tables report --runs {input.metrics:q} --claims {input.claims:q} --runs-root {params.runs:q}"
        " --tables {params.tables} --mlflow-uri {params.uri:q} --results {params.results:q} --out {params.out:q}"
        " > {log:q} 2>&1"


rule rehearsal_report:
    input:
        metrics_files(),
    output:
        md=f"{RESULTS}/rehearsal.md",
        csv=f"{RESULTS}/rehearsal.csv",
        html=report(f"{RESULTS}/rehearsal.html", category="Rehearsal", caption="../report/rehearsal.rst",
                    labels={"page": "memory, time, data loading and resume of every job"}),
    params:
        mebqat=MEBQAT,
        out=lambda wildcards, output: os.path.dirname(output.md),
        runs=lambda wildcards, output: os.path.join(os.path.dirname(output.md), "runs"),
    log:
        f"{RESULTS}/logs/rehearsal_report.log",
    conda:
        "../envs/mebqat.yaml"
    shell:
        "{params.mebqat} tables rehearsal --runs {input:q} --runs-root {params.runs:q} --out {params.out:q}"
        " > {log:q} 2>&1"


rule tables:
    input:
        rules.build_tables.output.tables,
        rules.build_tables.output.pages,
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
        rules.report_pages.output,
        rules.rehearsal_report.output if REHEARSAL else [],
        stylesheet=workflow.source_path("../report/style.css"),
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
        "--configfile {params.config_file:q} --report {output:q} --report-stylesheet {input.stylesheet:q} --nolock"
        " > {log:q} 2>&1"


# `snakemake rehearsal --configfile config/rehearsal.yaml` (make rehearse): every job, the tables, the MLflow
# runs, the rehearsal's report and the HTML report
rule rehearsal:
    input:
        rules.report.output,
        rules.rehearsal_report.output,
