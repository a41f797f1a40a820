# MEBQAT reproduction: every paper table as a DAG of jobs.
#
#   snakemake --cores 2 tables                                   # default: mini scale, offline stand-ins
#   snakemake --cores 2 tables --configfile config/smoke.yaml    # plumbing check, ~10 minutes
#   snakemake -n tables --configfile config/paper.yaml           # list the paper's 115 training jobs
#   snakemake --profile workflow/profiles/slurm tables --configfile config/paper.yaml
#
# Targets: tables (Tables 2–5, the claims' verdicts, every job logged to MLflow), figures, report (HTML: opens on
# the run's summary, shows every table, the claims and jobs.html inline), all.
# Rules live in workflow/rules/, the config schema in workflow/schemas/, the table matrix in config/.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/tracking.smk"
include: "workflow/rules/jobs.smk"
include: "workflow/rules/tables.smk"


# The report's start page: this run's summary (what was run, how many claims hold, where to look), written by
# the report_pages rule before the report rule renders the report; before it exists, a static description.
REPORT_SUMMARY = os.path.abspath(f"{RESULTS}/report/summary.rst")


report: REPORT_SUMMARY if os.path.exists(REPORT_SUMMARY) else "workflow/report/workflow.rst"


# Everything but the jobs is bookkeeping: on a cluster it runs on the submitting host.
localrules:
    all,
    tables,
    figures,
    report,
    build_tables,
    claims,
    report_pages,
    rehearsal_report,
    rehearsal,
    track_jobs,
    track_tables,
    mlflow_store,


rule all:
    default_target: True
    input:
        rules.tables.input,
        rules.figures.input,
        rules.report.output,
