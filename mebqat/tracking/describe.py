"""What a table experiment says about itself in the MLflow UI, as experiment tags the store carries (so a
plain ``mlflow ui`` on the store shows them too):

- ``mlflow.note.content``: the experiment's description (which paper table, which setups and methods, the
  scale, how to read the runs), shown above its runs table;
- ``mlflow.experimentKind = custom_model_development``: a model-training experiment (MLflow 3.17's UI
  ignores it and follows the browser's GenAI / Model training switch instead, see ``ui_app.py``; other
  versions and tools read it);
- ``mlflow.sharedViewState.mebqat-runs``: the runs table's view (which columns, how wide) as a view the
  UI's "share" feature stores: ``…/#/experiments/<id>/runs?viewStateShareKey=mebqat-runs`` opens it in
  plain ``mlflow ui``, and ``mebqat track ui`` makes it the default view of every experiment.
"""

from __future__ import annotations

import json
from typing import Any

KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"
NOTE_TAG = "mlflow.note.content"
SHARE_KEY = "mebqat-runs"
SHARED_VIEW_TAG = f"mlflow.sharedViewState.{SHARE_KEY}"

RUNS_COLUMNS = (
    "metrics.`test/acc_trained_task`",
    "metrics.`test/acc_FP`",
    "metrics.`test/acc_2bit`",
    "tags.`mebqat.setup`",
    "tags.`mebqat.method`",
    "tags.`mebqat.task`",
    "tags.`mebqat.seed`",
    "attributes.`Dataset`",
)
"""The runs table's columns besides Run Name, Created and Duration (which it always shows): MLflow's
column ids, ``<metrics|tags|attributes>.`<name>```."""
COLUMN_WIDTHS = {
    "attributes.`Run Name`": 330,
    "metrics.`test/acc_trained_task`": 170,
    "metrics.`test/acc_FP`": 110,
    "metrics.`test/acc_2bit`": 120,
    "tags.`mebqat.setup`": 190,
    "tags.`mebqat.method`": 120,
    "tags.`mebqat.task`": 100,
    "tags.`mebqat.seed`": 100,
    "attributes.`Dataset`": 260,
}

PAPER_TABLES = {
    "table2": "Table 2 of the paper: supervised classification, MEBQAT's one bitwidth-adaptive model against a "
    "dedicated QAT model per bitwidth and against the bitwidth-adaptive baselines (AdaBits, "
    "Any-Precision DNN).",
    "table3": "Table 3 of the paper: the cost model (stored parameters, back-propagations per update). It has no "
    "training jobs of its own: it is computed from Table 2's runs (their costs are metrics of those "
    "runs).",
    "table4": "Table 4 of the paper: few-shot classification with (FO)MAML: the FP-trained baseline, a dedicated "
    "FOMAML+QAT model per bitwidth, and MEBQAT-MAML's one model for every bitwidth.",
    "table5": "Table 5 of the paper: few-shot classification with Prototypical Networks: the FP-trained baseline, "
    "a dedicated PN+QAT model per bitwidth, and MEBQAT-PN's one model for every bitwidth.",
}


def _setups(table: str) -> dict[str, Any]:
    from ..core.config import available_tables, load_table_setups

    return load_table_setups(table)["setups"] if table in available_tables() else {}


def description(table: str) -> str:
    """The experiment's description (markdown)."""
    lines = [PAPER_TABLES.get(table, f"Experiment {table}."), ""]
    setups = _setups(table)
    if setups:
        lines.append("Setups and methods:")
        lines += [f"- `{name}` ({setup['title']}): {', '.join(setup['methods'])}" for name, setup in setups.items()]
        lines += [
            "",
            "**How to read the runs table.** One run per training job, named `setup · method · task · "
            "seed`; task is the bitwidth (W,A) a dedicated model was trained for, or `all` for one model "
            "used at every bitwidth. `test/acc_trained_task` is a dedicated model's test accuracy (%) at "
            "its own bitwidth; `test/acc_FP` and `test/acc_2bit` are the accuracies at full precision and "
            "at (2,2) wherever the run was evaluated there (rounded; every bitwidth, with its 95% interval, "
            "is the run's `accuracy.csv` artifact). A run's page draws its training curves first "
            "(`curves/`).",
        ]
    lines += [
        "",
        "Scale: tag `mebqat.scale` of each run (`smoke` and `mini` train on offline stand-in data, named "
        "so in the Dataset column; their numbers are not the paper's). The run named `tables` holds the "
        "built tables, figures and the claims' verdicts (tags `claims.*`, counts as metrics).",
    ]
    return "\n".join(lines)


def runs_view() -> dict[str, Any]:
    """The runs table's view state, in the form MLflow's UI persists it (widths apply only to the columns
    that ``columnOrder`` lists)."""
    order = ["attributes.`Run Name`", *RUNS_COLUMNS[:-1], "runDateAndNestInfo", "duration", RUNS_COLUMNS[-1]]
    return {"selectedColumns": list(RUNS_COLUMNS), "columnOrder": order, "columnWidths": dict(COLUMN_WIDTHS)}


def experiment_tags(table: str) -> dict[str, str]:
    return {
        KIND_TAG: MODEL_TRAINING,
        NOTE_TAG: description(table),
        SHARED_VIEW_TAG: json.dumps(runs_view(), sort_keys=True),
    }
