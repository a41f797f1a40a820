"""The README's "What the default run shows" section, generated from a run's claims report, so that no number
in it is typed by hand.

``mebqat tables readme --claims results --snapshot docs/results/mini`` copies ``claims.csv`` and ``claims.md``
of a finished run to the snapshot folder (committed: the README links the full report there) and rewrites
the README between ``<!-- claims:begin -->`` and ``<!-- claims:end -->``: the summary line, then one row
per claim saying on which setups it holds, fails (with the measured reason) or was not measured.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from ..atomic import atomic_write
from ..core.files import InputError
from ..core.registry import METHODS
from .claims import FAILS, HOLDS, NOT_MEASURED, format_statistic, summary_line

BEGIN, END = "<!-- claims:begin -->", "<!-- claims:end -->"
REQUIRED = (
    "claim",
    "setup",
    "method",
    "statement",
    "statistic",
    "verdict",
    "reason",
    "worst_row",
    "ours",
    "ci95_low",
    "ci95_high",
    "scale",
    "fidelity",
    "is_standin",
)


def read_verdicts(path: Path) -> pd.DataFrame:
    try:
        verdicts = pd.read_csv(path, dtype={"worst_row": str, "reason": str})
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: not a readable claims.csv ({err}); run `mebqat tables claims` first") from None
    missing = [c for c in REQUIRED if c not in verdicts.columns]
    if missing:
        raise InputError(f"{path}: not a claims.csv of `mebqat tables claims` (missing columns {missing})")
    return verdicts


def _where(row: pd.Series, with_method: bool) -> str:
    """The setup (and method) and, for a verdict with a value, the deciding row and what was measured."""
    name = f"{row['setup']} ({METHODS.get(row['method']).title})" if with_method else row["setup"]
    if pd.isna(row["ours"]):
        return name

    def value(column: str) -> str:
        return format_statistic(float(row[column]), row["statistic"])

    measured = value("ours")
    if not pd.isna(row["ci95_low"]) and row["ci95_low"] != row["ci95_high"]:
        measured += f" [{value('ci95_low')}, {value('ci95_high')}]"
    at = f" at {row['worst_row']}" if isinstance(row["worst_row"], str) and row["worst_row"] else ""
    return f"{name}{at}: {measured}"


def claims_section(verdicts: pd.DataFrame, report_link: str) -> str:
    """The Markdown between the markers."""
    scales = ", ".join(sorted(set(verdicts["scale"].dropna())))
    fidelities = ", ".join(sorted(set(verdicts["fidelity"].dropna())))
    standin = bool(verdicts["is_standin"].fillna(False).astype(bool).any())
    kind = "Stand-in verdicts (offline stand-in data, not the paper's datasets)" if standin else "Verdicts"
    lines = [
        f"{kind} of the default run (scale {scales or '–'}, fidelity {fidelities or '–'}), generated from its "
        f"[claims report]({report_link}) by `mebqat tables readme`: **{summary_line(verdicts)}**. "
        f"Each verdict names the setup, the deciding bitwidth row and the claim's statistic there (accuracy or "
        f"difference in points, saving in %) with its 95% interval; the thresholds were written from the paper "
        f"before any budget was tuned, and the report gives each threshold's source and each failure's reason.",
        "",
        "| claim | holds | fails | not measured |",
        "|---|---|---|---|",
    ]
    for claim, rows in verdicts.groupby("claim", sort=False):
        with_method = rows["setup"].duplicated().any()
        cells = []
        for verdict in (HOLDS, FAILS, NOT_MEASURED):
            chosen = rows[rows["verdict"] == verdict]
            if verdict == NOT_MEASURED:
                chosen = chosen.assign(ours=float("nan"))
            cells.append("; ".join(_where(row, with_method) for _, row in chosen.iterrows()) or "–")
        lines.append(f"| {rows['statement'].iloc[0]} (`{claim}`) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def replace_section(text: str, section: str, where: str = "README.md") -> str:
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise InputError(f"{where}: needs exactly one {BEGIN} followed by one {END}")
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n{section}\n{END}{tail}"


def update_readme(claims_dir: str | Path, readme: str | Path, snapshot: str | Path | None = None) -> list[Path]:
    """Rewrite the README's claims section from ``claims_dir``/claims.csv (first copied, with claims.md, to
    ``snapshot``, which the section then links). Returns the files written."""
    claims_dir, readme = Path(claims_dir), Path(readme)
    for name in ("claims.csv", "claims.md"):
        if not (claims_dir / name).is_file():
            raise InputError(f"{claims_dir / name} does not exist; run `mebqat tables claims` (or `make tables`) first")
    verdicts = read_verdicts(claims_dir / "claims.csv")
    text = readme.read_text(encoding="utf-8")
    written = []
    source = claims_dir
    if snapshot is not None:
        source = Path(snapshot)
        source.mkdir(parents=True, exist_ok=True)
        for name in ("claims.csv", "claims.md"):
            if (claims_dir / name).resolve() != (source / name).resolve():
                shutil.copyfile(claims_dir / name, source / name)
            written.append(source / name)
    link = source / "claims.md"
    try:
        link = (source / "claims.md").resolve().relative_to(readme.resolve().parent)
    except ValueError:
        pass
    updated = replace_section(text, claims_section(verdicts, link.as_posix()), str(readme))
    atomic_write(readme, lambda f: f.write(updated.encode("utf-8")))
    written.append(readme)
    return written
