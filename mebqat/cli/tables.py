"""Build the paper's tables and figures from the runs' metrics.json files, and check the paper's claims.

`build` reads every metrics.json under the given run directories (or the files given), validates each
against the metrics schema, and writes, for each requested table:

  <out>/table{2,4,5}.{csv,md,tex}   ours beside the paper's (long CSV; tables laid out like the paper's)
  <out>/table3.{csv,md,tex}         cost formulas with the real N, M, r, T beside the measured counts
  <figures>/accuracy_table{2,4,5}_<setup>.png and <figures>/costs_table3.png   (with --figures)

A cell without a run is empty ("–"), never zero; stand-in runs are marked and not compared with the paper.

Each table is also written as <out>/table{N}.html, one self-contained page that the workflow's report shows
inline.

`claims` checks every claim of mebqat/resources/claims.yaml on the runs and writes <out>/claims.{csv,md,html}.

`report` writes the workflow report's own pages: <out>/summary.rst (its start page: what was run, how many
claims hold, where to look) and <out>/jobs.html (every job by name: table, setup, method, task, seed, times,
state).

Examples:
  mebqat tables build --runs results/runs --out results/tables --figures results/figures
  mebqat tables build --runs results/runs/mini --out /tmp/t --tables 2 3 --scale mini
  mebqat tables claims --runs results/runs --out results
  mebqat tables readme --claims results --snapshot docs/results/mini   # the README's verdict section
  mebqat tables report --runs results/runs --claims results/claims.csv --out results/report
"""

from __future__ import annotations

import argparse

from ..core.fidelity import PRESETS
from ..core.scales import scale_names

NAME = "tables"
HELP = "build the paper's tables (2–5) and figures from the runs' metrics.json files"


def add_runs_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runs",
        nargs="+",
        required=True,
        metavar="PATH",
        help="run directories (searched recursively for metrics.json) or metrics.json files",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = actions.add_parser(
        "build",
        help="write table{N}.{csv,md,tex} and the figures",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_runs_argument(build)
    build.add_argument("--out", required=True, help="directory for table{N}.{csv,md,tex,html}")
    build.add_argument("--figures", help="directory for the figures (none drawn without it)")
    build.add_argument(
        "--tables", nargs="+", default=["2", "3", "4", "5"], metavar="N", help="which tables (default: 2 3 4 5)"
    )
    build.add_argument(
        "--scale", choices=scale_names(), help="use only runs of this scale (needed when the runs mix scales)"
    )
    build.add_argument(
        "--fidelity", choices=PRESETS, help="use only runs of this fidelity (needed when the runs mix fidelities)"
    )
    build.add_argument(
        "--figure-formats",
        nargs="+",
        default=["png"],
        choices=["png", "svg", "pdf"],
        metavar="FMT",
        help="figure file formats: png svg pdf (default: png)",
    )
    claims = actions.add_parser(
        "claims",
        help="check the paper's claims on the runs: claims.csv, claims.md and claims.html",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Check every claim of mebqat/resources/claims.yaml (its statistic, threshold and cells) on the "
        "runs' per-item outcomes and write <out>/claims.csv, <out>/claims.md and <out>/claims.html: "
        "ours with a 95% interval, "
        "the paper's value, the threshold and the verdict (holds, fails, not measured) with its reason.",
    )
    add_runs_argument(claims)
    claims.add_argument("--out", required=True, help="directory for claims.csv, claims.md and claims.html")
    claims.add_argument("--scale", choices=scale_names(), help="use only runs of this scale")
    claims.add_argument("--fidelity", choices=PRESETS, help="use only runs of this fidelity")
    claims.set_defaults(action_run=run_claims)
    readme = actions.add_parser(
        "readme",
        help="rewrite the README's 'What the default run shows' from a claims report",
        description="Rewrite the section between <!-- claims:begin --> and <!-- claims:end --> of the README from "
        "DIR/claims.csv (no number typed by hand), after copying claims.{csv,md} to --snapshot, which the "
        "section links.",
    )
    readme.add_argument("--claims", required=True, metavar="DIR", help="directory holding claims.csv and claims.md")
    readme.add_argument("--readme", default="README.md", help="the README to rewrite (default README.md)")
    readme.add_argument(
        "--snapshot", metavar="DIR", help="copy claims.{csv,md} here first and link them (e.g. docs/results/mini)"
    )
    readme.set_defaults(action_run=run_readme)
    build.set_defaults(action_run=run_build)
    report = actions.add_parser(
        "report",
        help="the workflow report's start-page summary (summary.rst) and per-job table (jobs.html)",
        description="Write <out>/summary.rst (the workflow report's start page: scale, fidelity, data, the jobs and "
        "their states, how many claims hold / fail / were not measured, where the tables, claims, figures "
        "and the MLflow store are) and <out>/jobs.html (one row per job: name, table, setup, method, task, "
        "seed, wall times, state), from the runs' metrics.json, train_summary.json and job_status.json and "
        "from claims.csv.",
    )
    add_runs_argument(report)
    report.add_argument("--out", required=True, help="directory for summary.rst and jobs.html")
    report.add_argument("--claims", metavar="CSV", help="the claims.csv of `mebqat tables claims`")
    report.add_argument(
        "--runs-root", metavar="DIR", help="the runs directory: job names are run directories relative to it"
    )
    report.add_argument(
        "--tables",
        nargs="*",
        default=[],
        metavar="N",
        help="the tables the report shows (2 3 4 5), linked from the summary",
    )
    report.add_argument("--mlflow-uri", metavar="URI", help="the MLflow store, named in the summary")
    report.add_argument(
        "--results", metavar="DIR", help="the results directory, named in the summary (default: the parent of --out)"
    )
    report.set_defaults(action_run=run_report)
    rehearsal = actions.add_parser(
        "rehearsal",
        help="the rehearsal's report: memory, time per update, load/step, checkpoint size and resume per job",
        description="Write <out>/rehearsal.md, rehearsal.html and rehearsal.csv from the rehearsal/summary.json that "
        "`mebqat rehearse` leaves in each run directory (docs/rehearsal.md), naming every job that exceeds its "
        "memory request, does not resume to the same state, or waits longer for data than it computes.",
    )
    add_runs_argument(rehearsal)
    rehearsal.add_argument("--out", required=True, help="directory for rehearsal.{md,html,csv}")
    rehearsal.add_argument(
        "--runs-root", metavar="DIR", help="the runs directory: job names are run directories relative to it"
    )
    rehearsal.set_defaults(action_run=run_rehearsal)


def run_build(args: argparse.Namespace) -> int:
    from ..tables import build

    written = build(
        args.runs,
        args.out,
        figures=args.figures,
        tables=args.tables,
        scale=args.scale,
        fidelity=args.fidelity,
        figure_formats=args.figure_formats,
    )
    for path in written:
        print(path)
    return 0


def run_claims(args: argparse.Namespace) -> int:
    from ..tables.build import build_claims

    for path in build_claims(args.runs, args.out, scale=args.scale, fidelity=args.fidelity):
        print(path)
    return 0


def run_readme(args: argparse.Namespace) -> int:
    from ..tables.readme import update_readme

    for path in update_readme(args.claims, args.readme, args.snapshot):
        print(path)
    return 0


def run_report(args: argparse.Namespace) -> int:
    from ..tables.collect import find_metrics
    from ..tables.layout import normalize_table
    from ..tables.report import write_report_pages

    for path in write_report_pages(
        find_metrics(args.runs),
        args.out,
        claims=args.claims,
        tables=[normalize_table(t) for t in args.tables],
        mlflow_uri=args.mlflow_uri,
        runs_root=args.runs_root,
        results=args.results,
    ):
        print(path)
    return 0


def run_rehearsal(args: argparse.Namespace) -> int:
    from ..tables.collect import find_metrics
    from ..tables.rehearsal import write_rehearsal_report

    for path in write_rehearsal_report(find_metrics(args.runs), args.out, runs_root=args.runs_root):
        print(path)
    return 0


def run(args: argparse.Namespace) -> int:
    return args.action_run(args)
