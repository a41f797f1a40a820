"""The README's "What the default run shows" is generated from a claims report, never typed: the generator
puts each verdict in its column with the measured value, and the committed README section is exactly what
the committed snapshot of the default run's report generates."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from mebqat.cli import main
from mebqat.tables.readme import BEGIN, END, claims_section, read_verdicts, replace_section

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = ROOT / "docs" / "results" / "mini"


def verdict(claim, setup, method, verdict, ours=math.nan, low=math.nan, high=math.nan, row="", statistic="accuracy"):
    return {
        "claim": claim,
        "table": "table2",
        "setup": setup,
        "method": method,
        "statement": f"statement of {claim}",
        "statistic": statistic,
        "rows": "",
        "worst_row": row,
        "ours": ours,
        "ci95_low": low,
        "ci95_high": high,
        "paper": math.nan,
        "threshold": "≥ 25.0",
        "verdict": verdict,
        "reason": "why",
        "n": 10,
        "scale": "mini",
        "fidelity": "official",
        "data": "digits",
        "is_standin": True,
    }


@pytest.fixture
def claims_dir(tmp_path):
    rows = [
        verdict("c1", "svhn_cnn8", "mebqat", "holds", 91.25, 89.5, 93.0, "(2,2)"),
        verdict("c1", "cifar10_mobilenetv2", "mebqat", "fails", 8.33, 5.5, 11.2, "(2,2)"),
        verdict("c1", "cifar10_preact_resnet20", "mebqat", "not measured"),
        verdict("c2", "svhn_cnn8", "mebqat", "fails", 0.9863, 0.9863, 0.9863, statistic="storage_saving"),
        verdict("c3", "svhn_cnn8", "qat", "holds", 98.0, 97.0, 99.0, "(FP,FP)"),
        verdict("c3", "svhn_cnn8", "mebqat", "holds", 97.0, 96.0, 98.0, "(FP,FP)"),
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "claims.csv", index=False)
    (tmp_path / "claims.md").write_text("# report\n")
    return tmp_path


def test_each_verdict_lands_in_its_column_with_the_measured_value(claims_dir):
    section = claims_section(read_verdicts(claims_dir / "claims.csv"), "report.md")
    assert "3 of 6 checks hold, 2 fail, 1 not measured" in section and "Stand-in verdicts" in section
    c1 = next(line for line in section.splitlines() if "(`c1`)" in line).split(" | ")
    assert c1[1] == "svhn_cnn8 at (2,2): 91.25 [89.50, 93.00]"
    assert c1[2] == "cifar10_mobilenetv2 at (2,2): 8.33 [5.50, 11.20]"
    assert c1[3].strip(" |") == "cifar10_preact_resnet20"
    assert "svhn_cnn8: 98.63%" in section  # a saving, shown as a percentage
    assert "svhn_cnn8 (QAT) at (FP,FP)" in section and "svhn_cnn8 (MEBQAT) at (FP,FP)" in section


def test_the_readme_section_is_replaced_and_nothing_else(claims_dir, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\n## What the default run shows\n\n{BEGIN}\nOLD SECTION\n{END}\n\n## next\ntext\n")
    assert (
        main(
            [
                "tables",
                "readme",
                "--claims",
                str(claims_dir),
                "--readme",
                str(readme),
                "--snapshot",
                str(tmp_path / "snap"),
            ]
        )
        == 0
    )
    text = readme.read_text()
    assert "OLD SECTION" not in text and text.startswith("# title\n") and text.endswith("\n\n## next\ntext\n")
    assert "[claims report](snap/claims.md)" in text and (tmp_path / "snap" / "claims.csv").is_file()
    again = text
    assert main(["tables", "readme", "--claims", str(tmp_path / "snap"), "--readme", str(readme)]) == 0
    assert readme.read_text() == again  # idempotent


def test_a_readme_without_markers_or_a_missing_report_is_refused(claims_dir, tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    assert main(["tables", "readme", "--claims", str(claims_dir), "--readme", str(readme)]) != 0
    assert "needs exactly one <!-- claims:begin -->" in capsys.readouterr().err
    assert readme.read_text() == "# no markers\n"
    assert main(["tables", "readme", "--claims", str(tmp_path / "none"), "--readme", str(readme)]) != 0
    assert "claims.csv does not exist" in capsys.readouterr().err
    with pytest.raises(Exception, match="needs exactly one"):
        replace_section(f"{END}{BEGIN}", "x")


def test_the_committed_readme_section_is_what_the_committed_report_generates():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split(BEGIN)[1].split(END)[0].strip("\n")
    expected = claims_section(read_verdicts(SNAPSHOT / "claims.csv"), "docs/results/mini/claims.md")
    assert section == expected, "regenerate it: mebqat tables readme --claims results --snapshot docs/results/mini"
    assert (SNAPSHOT / "claims.md").read_text(encoding="utf-8").startswith("# Do the paper's claims hold?")
