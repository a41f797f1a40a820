"""Build the paper's tables and figures from the runs' metrics.json files, and check the paper's claims.

`build` reads every metrics.json under the given run directories (or the files given), validates each
against the metrics schema, and writes, for each requested table:

  <out>/table{2,4,5}.{csv,md,tex}   ours beside the paper's (long CSV; tables laid out like the paper's)
  <out>/table3.{csv,md,tex}         cost formulas with the real N, M, r, T beside the measured counts
  <figures>/accuracy_table{2,4,5}_<setup>.png and <figures>/costs_table3.png   (with --figures)

A cell without a run is empty ("–"), never zero; stand-in runs are marked and not compared with the paper.

`claims` checks every claim of mebqat/resources/claims.yaml on the runs and writes <out>/claims.{csv,md}.

Examples:
  mebqat tables build --runs results/runs --out results/tables --figures results/figures
  mebqat tables build --runs results/runs/mini --out /tmp/t --tables 2 3 --scale mini
  mebqat tables claims --runs results/runs --out results
  mebqat tables readme --claims results --snapshot docs/results/mini   # the README's verdict section
"""

from __future__ import annotations

import argparse

from ..core.fidelity import PRESETS
from ..core.scales import scale_names

NAME = "tables"
HELP = "build the paper's tables (2–5) and figures from the runs' metrics.json files"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = actions.add_parser("build", help="write table{N}.{csv,md,tex} and the figures",
                               description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    build.add_argument("--runs", nargs="+", required=True, metavar="PATH",
                       help="run directories (searched recursively for metrics.json) or metrics.json files")
    build.add_argument("--out", required=True, help="directory for table{N}.{csv,md,tex}")
    build.add_argument("--figures", help="directory for the figures (none drawn without it)")
    build.add_argument("--tables", nargs="+", default=["2", "3", "4", "5"], metavar="N",
                       help="which tables (default: 2 3 4 5)")
    build.add_argument("--scale", choices=scale_names(),
                       help="use only runs of this scale (needed when the runs mix scales)")
    build.add_argument("--fidelity", choices=PRESETS,
                       help="use only runs of this fidelity (needed when the runs mix fidelities)")
    build.add_argument("--figure-formats", nargs="+", default=["png"], choices=["png", "svg", "pdf"],
                       metavar="FMT", help="figure file formats: png svg pdf (default: png)")
    claims = actions.add_parser(
        "claims", help="check the paper's claims on the runs: claims.csv and claims.md",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Check every claim of mebqat/resources/claims.yaml (its statistic, threshold and cells) on the "
                    "runs' per-item outcomes and write <out>/claims.csv and <out>/claims.md: ours with a 95% interval, "
                    "the paper's value, the threshold and the verdict (holds, fails, not measured) with its reason.")
    claims.add_argument("--runs", nargs="+", required=True, metavar="PATH",
                        help="run directories (searched recursively for metrics.json) or metrics.json files")
    claims.add_argument("--out", required=True, help="directory for claims.csv and claims.md")
    claims.add_argument("--scale", choices=scale_names(), help="use only runs of this scale")
    claims.add_argument("--fidelity", choices=PRESETS, help="use only runs of this fidelity")
    claims.set_defaults(action_run=run_claims)
    readme = actions.add_parser(
        "readme", help="rewrite the README's 'What the default run shows' from a claims report",
        description="Rewrite the section between <!-- claims:begin --> and <!-- claims:end --> of the README from "
                    "DIR/claims.csv (no number typed by hand), after copying claims.{csv,md} to --snapshot, which the "
                    "section links.")
    readme.add_argument("--claims", required=True, metavar="DIR", help="directory holding claims.csv and claims.md")
    readme.add_argument("--readme", default="README.md", help="the README to rewrite (default README.md)")
    readme.add_argument("--snapshot", metavar="DIR", help="copy claims.{csv,md} here first and link them (e.g. "
                                                          "docs/results/mini)")
    readme.set_defaults(action_run=run_readme)
    build.set_defaults(action_run=run_build)


def run_build(args: argparse.Namespace) -> int:
    from ..tables import build

    written = build(args.runs, args.out, figures=args.figures, tables=args.tables, scale=args.scale,
                    fidelity=args.fidelity, figure_formats=args.figure_formats)
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


def run(args: argparse.Namespace) -> int:
    return args.action_run(args)
