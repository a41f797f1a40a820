"""The MLflow UI that `mebqat track ui` serves, used in a real headless browser (Debian's chromium, driven
over the DevTools protocol by tests/browser.py) as a researcher would: from the bare server URL or a printed
link, clicking through the experiments list, a run, the breadcrumb and back, every page stays in the
model-training views (never MLflow's GenAI pages, never a training run typed "Eval"), and each runs table
shows, without touching the column picker, the method, the bitwidth task and the accuracy."""

from __future__ import annotations

import pytest
from browser import SKIP_REASON, Browser
from mebqat_cli import job_args, mebqat
from mlflow_server import track_ui
from tracking_runs import write_run

pytestmark = pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")
METHODS = ("fomaml", "mebqat_maml")
GENAI_SIDEBAR = {"Prompts", "AI Gateway", "MCP registry"}
"""Entries of the sidebar in MLflow's GenAI views only (the home page shows cards of the same names in both)."""
GENAI_PAGE = {"Evaluations", "Eval"}
"""Lines of a GenAI experiment page: its evaluations list, typing each (training) run "Eval"."""
DEFAULT_COLUMNS = ("mebqat.method", "mebqat.task", "test/acc_FP")


@pytest.fixture(scope="module")
def store(data_root, tmp_path_factory):
    """Two real smoke jobs of Table 4, two made-up finished Table 2 jobs (logged from their files)."""
    root = tmp_path_factory.mktemp("ui")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    for method in METHODS:
        done = mebqat(*job_args(data_root, root / method, "maml_omniglot_20w1s", method, "--uri", uri, command="run"))
        assert done.returncode == 0, done.stderr
    dirs = [write_run(root / "qat", method="qat", train_task="(2,2)"), write_run(root / "mebqat", method="mebqat")]
    done = mebqat("track", "log", *map(str, dirs), "--uri", uri, timeout=300)
    assert done.returncode == 0, done.stderr
    return root, uri


@pytest.fixture(scope="module")
def ui(store):
    root, uri = store
    with track_ui(uri) as (base, links):
        assert set(links) == {"table2", "table4"}, links
        yield links, base


def assert_model_training(browser, where: str) -> str:
    """The page is one of the model-training views; its text."""
    text = browser.text()
    sidebar = browser.evaluate("[...document.querySelectorAll('nav')].map(n => n.innerText).join('\\n')")
    genai = (GENAI_SIDEBAR & {line.strip() for line in sidebar.splitlines()}) | (
        GENAI_PAGE & {line.strip() for line in text.splitlines()}
    )
    assert not genai, f"{where}: GenAI view ({', '.join(sorted(genai))}) at {browser.url()}"
    assert "Model registry" in sidebar, f"{where}: no model-training sidebar at {browser.url()}"
    assert browser.evaluate("localStorage.getItem('mlflow.workflowType_v1')") == '"machine_learning"', where
    return text


def assert_runs_table(browser, where: str, runs: tuple[str, ...]) -> None:
    for run in runs:
        browser.wait_for_text(run, timeout=60)
    browser.wait_for_text(DEFAULT_COLUMNS[-1], timeout=30)
    text = assert_model_training(browser, where)
    missing = [c for c in DEFAULT_COLUMNS if c not in text]
    assert not missing, f"{where}: the runs table's default columns lack {missing}"


@pytest.mark.slow
def test_a_researcher_clicking_through_the_ui_stays_on_the_runs(ui, tmp_path):
    links, base = ui
    with Browser() as browser:
        try:
            browser.goto(base + "/")  # the bare server URL, in a browser that never chose anything
            browser.wait_for_text("Experiments")
            assert_model_training(browser, "the bare URL")
            browser.click_text("Experiments")
            browser.wait_for_text("table4")
            assert "Table 2 of the paper" in assert_model_training(browser, "the experiments list")  # descriptions
            browser.click_text("table2")
            assert_runs_table(
                browser, "table2's runs", ("svhn_cnn8 · qat · (2,2) · seed0", "svhn_cnn8 · mebqat · seed0")
            )
            browser.click_text("svhn_cnn8 · mebqat · seed0")
            browser.wait_for_text("Model metrics")
            text = assert_model_training(browser, "a run")
            assert text.index("curves/train_loss") < text.index("test/acc_FP"), "the curves come first"
            browser.click_text("Artifacts")
            browser.wait_for_text("metrics.json")  # the job's files
            browser.click_text("table2", within="[class*=breadcrumb]")  # the breadcrumb
            assert_runs_table(browser, "table2 from the breadcrumb", ("svhn_cnn8 · mebqat · seed0",))
            browser.click_text("Experiments")
            browser.wait_for_text("table4")
            browser.click_text("table4")
            assert_runs_table(
                browser,
                "table4 from the experiments list",
                tuple(f"maml_omniglot_20w1s · {m} · seed0" for m in METHODS),
            )
            assert "glyphs28 (stand-in for Omniglot)" in browser.text()  # the Dataset column
            browser.goto(links["table2"])  # the link `mebqat track ui` printed
            assert_runs_table(browser, "the printed link", ("svhn_cnn8 · qat · (2,2) · seed0",))
        except BaseException:
            browser.screenshot(tmp_path / "failed.png")  # what the page showed, kept with the test's tmp dir
            raise
