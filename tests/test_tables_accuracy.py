"""Tables 2, 4, 5 from hand-made metrics files: which job fills which cell, empty cells, the paper join,
stand-in marking, seeds, and refusal of bad or contradictory files."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from scipy import stats
from tables_metrics import ramp, rows_of, write_metrics

from mebqat.tables import MetricsError, build, collect
from mebqat.tables.paper import PAPER_DIR

R20 = "cifar10_preact_resnet20"
OMNI_1S = "maml_omniglot_20w1s"
APDNN_TRAINED = ["(1,1)", "(2,2)", "(4,4)", "(8,8)", "(FP,FP)"]


def build_one(runs, out, table: str, **kw) -> tuple[pd.DataFrame, str]:
    build([runs], out, tables=[table], **kw)
    frame = pd.read_csv(out / f"table{table}.csv", dtype={"bits_w": str, "bits_a": str})
    return frame, (out / f"table{table}.md").read_text()


def cell(frame: pd.DataFrame, setup: str, method: str, w: str, a: str | None = None) -> pd.Series:
    match = frame[
        (frame["setup"] == setup) & (frame["method"] == method) & (frame["bits_w"] == w) & (frame["bits_a"] == (a or w))
    ]
    assert len(match) == 1, (setup, method, w)
    return match.iloc[0]


def paper_value(csv: str, **key: str) -> float:
    paper = pd.read_csv(PAPER_DIR / csv, dtype=str)
    match = paper[(paper[list(key)] == pd.Series(key)).all(axis=1)]
    assert len(match) == 1, key
    return float(match["accuracy"].iloc[0])


def md_row(markdown: str, label: str) -> list[str]:
    for line in markdown.splitlines():
        if line.startswith(f"| {label} |"):
            return [c.strip() for c in line.strip("|").split("|")][1:]
    raise AssertionError(f"no row {label} in the Markdown table")


def test_table2_column_kinds_fill_only_their_cells(tmp_path):
    runs = tmp_path / "runs"
    # Dedicated QAT: two jobs, each evaluated at every bitwidth; only its own row may show.
    write_metrics(runs, R20, "qat", ramp(R20, 10), train_task="(2,2)")
    write_metrics(runs, R20, "qat", ramp(R20, 40), train_task="(FP,FP)")
    # ApDNN: results only at its trained bitwidths (it has no BatchNorm for the others).
    write_metrics(
        runs,
        R20,
        "apdnn",
        {r: v for r, v in ramp(R20, 60).items() if f"({r[0]},{r[1]})" in APDNN_TRAINED},
        trained=APDNN_TRAINED,
    )
    write_metrics(runs, R20, "mebqat", ramp(R20, 80))
    frame, markdown = build_one(runs, tmp_path / "out", "2")

    qat = frame[(frame["setup"] == R20) & (frame["method"] == "QAT")].set_index("bits_w")["accuracy"]
    assert qat["2"] == ramp(R20, 10)[("2", "2")]  # the (2,2) model's own row
    assert qat["FP"] == ramp(R20, 40)[("FP", "FP")]  # the (FP,FP) model's own row
    assert qat.drop(["2", "FP"]).isna().all()  # not the other rows they were evaluated at
    apdnn = frame[(frame["setup"] == R20) & (frame["method"] == "ApDNN")].set_index("bits_w")["accuracy"]
    assert set(apdnn.dropna().index) == {"1", "2", "4", "8", "FP"}
    assert apdnn[["3", "5", "6", "7", "16"]].isna().all()
    mebqat = frame[(frame["setup"] == R20) & (frame["method"] == "MEBQAT")]
    assert mebqat["accuracy"].notna().all() and len(mebqat) == len(rows_of(R20))
    # Layout: 10 rows × 9 columns, every cell present; never a zero where nothing ran.
    assert len(frame) == 90 and not (frame["accuracy"] == 0).any()
    assert frame[frame["setup"] == "svhn_cnn8"]["accuracy"].isna().all()
    # Markdown: R20 columns are QAT, ApDNN, MEBQAT (4th–6th); (3,3) has "–" for QAT and ApDNN.
    row3 = md_row(markdown, "(3,3)")
    assert len(row3) == 9 and row3[3] == "–" and row3[4] == "–" and row3[5].startswith(f"{82.0:.2f}")
    assert md_row(markdown, "(2,2)")[3].startswith(f"{11.0:.2f}")
    header = next(line for line in markdown.splitlines() if line.startswith("| (b_w,b_a) |"))
    assert [h.strip() for h in header.strip("|").split("|")][4:7] == [
        "CIFAR-10, PreAct-ResNet-20: QAT",
        "CIFAR-10, PreAct-ResNet-20: ApDNN",
        "CIFAR-10, PreAct-ResNet-20: MEBQAT",
    ]
    # The raw CSV writes an empty field, not 0, for an empty cell.
    raw = (tmp_path / "out" / "table2.csv").read_text().splitlines()
    columns = raw[0].split(",")
    empty = next(line for line in raw if ",svhn_cnn8," in line).split(",")
    assert empty[columns.index("accuracy")] == ""


@pytest.mark.parametrize(
    "setup, plain, dedicated", [(OMNI_1S, "fomaml", "fomaml_qat"), ("pn_miniimagenet_5w1s", "pn", "pn_qat")]
)
def test_qat_column_fp_row_is_the_plain_model(tmp_path, setup, plain, dedicated):
    runs = tmp_path / "runs"
    write_metrics(runs, setup, plain, ramp(setup, 20))
    write_metrics(runs, setup, dedicated, ramp(setup, 50), train_task="(3,3)")
    table = "4" if plain == "fomaml" else "5"
    frame, markdown = build_one(runs, tmp_path / "out", table)
    plain_title = "FOMAML" if plain == "fomaml" else "PN"
    qat_title = f"{plain_title}+QAT"
    fp = cell(frame, setup, qat_title, "FP")
    assert fp["accuracy"] == cell(frame, setup, plain_title, "FP")["accuracy"] == ramp(setup, 20)[("FP", "FP")]
    assert fp["cell_source"] == f"plain {plain_title} model"
    assert cell(frame, setup, qat_title, "3")["accuracy"] == ramp(setup, 50)[("3", "3")]
    assert math.isnan(cell(frame, setup, qat_title, "2")["accuracy"])
    assert md_row(markdown, "(2,2)")[1].startswith("–")


def test_real_data_run_is_joined_with_the_paper_and_differenced(tmp_path):
    runs = tmp_path / "runs"
    ours = {("2", "2"): (90.25, 0.61), ("FP", "FP"): (92.0, 0.5)}
    write_metrics(runs, OMNI_1S, "mebqat_maml", ours, standin=False, scale="paper")
    frame, markdown = build_one(runs, tmp_path / "out", "4")
    expected = paper_value(
        "table4_fewshot_maml.csv", dataset="Omniglot", method="MEBQAT-MAML", bits_w="2", shots="1", ways="20"
    )
    row = cell(frame, OMNI_1S, "MEBQAT-MAML", "2")
    assert row["paper_accuracy"] == expected
    assert row["delta"] == pytest.approx(90.25 - expected, abs=1e-4)
    assert row["ci95"] == pytest.approx(0.61) and not row["is_standin"]
    # A cell with no run still shows the paper's value, with no delta.
    empty = cell(frame, OMNI_1S, "MEBQAT-MAML", "3")
    assert math.isnan(empty["accuracy"]) and math.isnan(empty["delta"]) and empty["paper_accuracy"] > 0
    assert "stand-in" not in markdown.splitlines()[0]
    assert f"90.25 ± 0.61 ({expected:.2f}, Δ {90.25 - expected:+.2f})" in markdown
    # The other setups' paper values are joined too (MiniImageNet 5-shot FOMAML (2,2)).
    mini = cell(frame, "maml_miniimagenet_5w5s", "FOMAML", "2")
    assert mini["paper_accuracy"] == paper_value(
        "table4_fewshot_maml.csv", dataset="MiniImageNet", method="FOMAML", bits_w="2", shots="5", ways="5"
    )


def test_standin_run_is_never_differenced_and_says_so(tmp_path):
    runs = tmp_path / "runs"
    write_metrics(runs, OMNI_1S, "mebqat_maml", {("2", "2"): 30.0, ("FP", "FP"): 31.0}, standin=True)
    frame, markdown = build_one(runs, tmp_path / "out", "4")
    row = cell(frame, OMNI_1S, "MEBQAT-MAML", "2")
    assert row["paper_accuracy"] > 0 and math.isnan(row["delta"]) and row["is_standin"]
    assert frame["delta"].isna().all()
    title = markdown.splitlines()[0]
    assert "stand-in data: glyphs28 in place of Omniglot" in title and "not comparable" in title
    assert "Δ" not in markdown.split("\n", 3)[3]
    assert "stand-in" in (tmp_path / "out" / "table4.tex").read_text().split("caption", 1)[1][:200]


def test_several_seeds_are_averaged_with_a_t_interval(tmp_path):
    runs = tmp_path / "runs"
    values = [70.0, 74.0, 75.0]
    for seed, value in enumerate(values):
        write_metrics(runs, R20, "mebqat", {("4", "4"): value, ("FP", "FP"): 80.0 + seed}, seed=seed)
    frame, markdown = build_one(runs, tmp_path / "out", "2")
    row = cell(frame, R20, "MEBQAT", "4")
    series = pd.Series(values)
    half = stats.t.ppf(0.975, 2) * series.std(ddof=1) / math.sqrt(3)
    assert row["accuracy"] == pytest.approx(series.mean(), abs=1e-4)
    assert row["ci95"] == pytest.approx(half, abs=1e-4)
    assert row["seeds"] == 3 and row["ci95_over"] == "seeds"
    assert "seeds per cell: 3" in markdown and "3 job(s)" in markdown


def test_table_without_runs_is_laid_out_empty(tmp_path):
    (tmp_path / "runs").mkdir()
    frame, markdown = build_one(tmp_path / "runs", tmp_path / "out", "5")
    assert len(frame) == 4 * 3 * 9 and frame["accuracy"].isna().all()
    assert frame["paper_accuracy"].notna().all()  # Table 5 survives whole in the paper text
    assert "No runs were found" in markdown
    assert md_row(markdown, "(2,2)")[0].startswith("– (")


def test_malformed_metrics_file_is_refused_with_its_path(tmp_path):
    runs = tmp_path / "runs"
    good = write_metrics(runs, R20, "mebqat", {("4", "4"): 50.0})
    bad = write_metrics(runs, "svhn_cnn8", "mebqat", {("4", "4"): 50.0})
    data = json.loads(bad.read_text())
    data["results"][0]["accuracy"] = 150.0
    bad.write_text(json.dumps(data))
    with pytest.raises(MetricsError, match=str(bad).replace("\\", "\\\\")) as err:
        collect([runs])
    assert "accuracy" in str(err.value) and str(good) not in str(err.value)
    bad.write_text("{not json")
    with pytest.raises(MetricsError, match="is not valid JSON"):
        collect([runs])
    bad.write_text(json.dumps({**data, "results": [{**data["results"][0], "accuracy": float("nan")}]}))
    with pytest.raises(MetricsError, match="at results.0.accuracy: nan is not a finite number"):
        collect([runs])  # NaN passes JSON Schema's type check; it is refused all the same


def test_stale_or_contradictory_jobs_are_refused(tmp_path):
    runs = tmp_path / "runs"
    first = write_metrics(runs, R20, "mebqat", {("4", "4"): 50.0}, name="a")
    second = write_metrics(runs, R20, "mebqat", {("4", "4"): 51.0}, name="b")
    with pytest.raises(MetricsError, match="more than one job for seed 0"):
        collect([runs])
    second.parent.rename(tmp_path / "b")
    write_metrics(runs, R20, "mebqat", {("4", "4"): 51.0}, seed=1, fidelity="corrected", name="c")
    with pytest.raises(MetricsError, match="disagree on fidelity") as err:
        collect([runs])
    assert str(first) in str(err.value)
    assert len(collect([runs], fidelity="official")) == 1  # choosing one configuration resolves it
    data = json.loads(first.read_text())
    data["identity"]["paper_model"] = "ResNet-18"
    first.write_text(json.dumps(data))
    with pytest.raises(MetricsError, match="paper_model"):
        collect([first])


def test_mixed_scales_need_a_choice(tmp_path):
    runs = tmp_path / "runs"
    write_metrics(runs, R20, "mebqat", {("4", "4"): 50.0}, scale="smoke")
    write_metrics(runs, "svhn_cnn8", "mebqat", {("4", "4"): 60.0}, scale="mini")
    with pytest.raises(MetricsError, match="--scale"):
        build([runs], tmp_path / "out", tables=["2"])
    frame, markdown = build_one(runs, tmp_path / "out", "2", scale="mini")
    assert frame["accuracy"].notna().sum() == 1 and "Scale: mini" in markdown


def test_table2_says_once_why_the_papers_column_reads_question_marks(tmp_path):
    """The paper's Table 2 lost all but the ApDNN numbers: the md/tex notes and the HTML page say so in one
    sentence; Tables 4/5 (complete in the paper) do not."""
    runs = tmp_path / "runs"
    write_metrics(runs, R20, "mebqat", {("4", "4"): 70.0, ("FP", "FP"): 80.0}, standin=True)
    write_metrics(runs, OMNI_1S, "mebqat_maml", {("2", "2"): 30.0, ("FP", "FP"): 31.0}, standin=True)
    build([runs], tmp_path / "out", tables=["2", "4"])
    out = tmp_path / "out"
    markdown, tex, page = ((out / f"table2.{ext}").read_text() for ext in ("md", "tex", "html"))
    sentence = "numbers did not survive the extraction of its text (only 8 survived, all in the ApDNN column)"
    assert markdown.count(sentence) == 1 and sentence in page
    assert "did not survive" in tex
    assert "did not survive" not in (out / "table4.md").read_text() + (out / "table4.html").read_text()
    # the HTML page: self-contained, the warnings above the table, every bitwidth row of the paper's table
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and "src=" not in page
    assert page.index('class="warning"') < page.index("<table>")
    for row in ("(1,1)", "(2,2)", "(4,4)", "(8,8)", "(FP,FP)"):
        assert f"<tr><th>{row}</th>" in page
