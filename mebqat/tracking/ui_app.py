"""The MLflow server that ``mebqat track ui`` runs: MLflow's own app, whose page sets two browser
preferences before MLflow's UI starts, so that a researcher who opens any URL of it stays on the runs.

Why (MLflow 3.17.2, read from its bundle ``mlflow/server/js/build/static/js/main.c2f5f8d4.js``):

- which views the UI shows — GenAI (home "Welcome to MLflow" with trace/prompt cards, an experiment opening
  on its traces "Overview", runs listed under "Evaluations" typed "Eval") or model training (runs table,
  run pages with metrics and artifacts) — follows a per-browser "workflow type": the URL parameter
  ``workflowType`` when a page has it, else localStorage ``mlflow.workflowType_v1``, else ``"genai"``
  (the provider around ``key:"mlflow.workflowType",version:1,initialValue:c`` with ``c=l.GENAI``; the
  storage key is ``${key}_v${version}``). The parameter does not write the preference, and links inside
  the UI (the "Experiments" breadcrumb, the experiments list) drop it, so a fresh browser falls back to
  GenAI after one click. The experiment tag ``mlflow.experimentKind`` is not consulted: the hook that
  reads it returns the workflow type instead while the feature flag ``Z0`` (``R=()=>!0``) is on, as it is
  in this build. The server has no setting for it either.
- the runs table's columns are a per-browser, per-experiment view state (localStorage
  ``MLflowLocalStorage-1.1-ExperimentPage-["<id>"]-ReactComponentState``, key ``selectedColumns``), created
  on a first visit with Source, Models and Dataset only (``selectedColumns:l()`` in module 1395). A view
  state can also come from an experiment tag ``mlflow.sharedViewState.<key>`` opened with
  ``…/runs?viewStateShareKey=<key>`` (with a "shared view" banner).

So the page served here sets ``mlflow.workflowType_v1`` to ``machine_learning`` on every load (the UI's
own GenAI switch still works until the next reload) and, for each experiment that carries the
``describe.SHARED_VIEW_TAG`` view and has no view state in this browser yet, stores that view as its view
state (a view the user changed later is kept). It also keeps MLflow's assistant panel from opening itself
over the runs table on a first visit.
"""

from __future__ import annotations

import json
import os
from typing import Any

from .describe import SHARED_VIEW_TAG

WORKFLOW_KEY = "mlflow.workflowType_v1"
MODEL_TRAINING = "machine_learning"
VIEW_KEY = "MLflowLocalStorage-1.1-ExperimentPage-{ids}-ReactComponentState"
FIRST_VISIT = {"mlflow.assistant.panelOpen_v1": "false", "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": "true"}
"""Set only where the browser has no value yet."""


def view_states(experiments: Any) -> dict[str, dict[str, Any]]:
    """localStorage key → view state, for each experiment that carries the runs-table view."""
    states = {}
    for experiment in experiments:
        try:
            view = json.loads(experiment.tags.get(SHARED_VIEW_TAG, ""))
        except ValueError:
            continue
        if isinstance(view, dict):
            key = VIEW_KEY.format(ids=json.dumps([experiment.experiment_id], separators=(",", ":")))
            states[key] = view
    return states


def preferences_script(states: dict[str, dict[str, Any]]) -> str:
    """The inline script that sets the preferences (before MLflow's own script runs)."""
    always = {WORKFLOW_KEY: json.dumps(MODEL_TRAINING)}
    unless_set = {**FIRST_VISIT, **{key: json.dumps(state) for key, state in states.items()}}
    body = (
        f"(function(){{try{{var s=window.localStorage,a={json.dumps(always)},u={json.dumps(unless_set)},k;"
        "for(k in a)s.setItem(k,a[k]);for(k in u)if(s.getItem(k)===null)s.setItem(k,u[k]);}catch(e){}})();"
    )
    return "<script>" + body.replace("</", "<\\/") + "</script>"


def _experiments() -> list[Any]:
    from mlflow import MlflowClient
    from mlflow.server.constants import BACKEND_STORE_URI_ENV_VAR

    return MlflowClient(tracking_uri=os.environ[BACKEND_STORE_URI_ENV_VAR]).search_experiments(max_results=1000)


def index_page(static_folder: str) -> str:
    """MLflow's index.html with the preferences script first in its head."""
    with open(os.path.join(static_folder, "index.html"), encoding="utf-8") as handle:
        html = handle.read()
    try:
        states = view_states(_experiments())
    except Exception:  # the store unreachable: the page still sets the workflow type
        states = {}
    return html.replace("<head>", "<head>" + preferences_script(states), 1)


def create_app() -> Any:
    """MLflow's ASGI app (what ``mlflow ui`` serves) with the index page replaced; for ``uvicorn --factory``."""
    from flask import Response
    from mlflow.server import app as flask_app
    from mlflow.server.fastapi_app import create_fastapi_app

    static = flask_app.static_folder
    if "serve" not in flask_app.view_functions or static is None:
        raise RuntimeError(
            "this MLflow has no 'serve' view (its index page) in a static folder to replace: mebqat's UI server "
            "was written for MLflow 3.17; use `mlflow ui` and the links with viewStateShareKey"
        )

    def serve() -> Response:
        return Response(index_page(static), mimetype="text/html", headers={"Cache-Control": "no-store"})

    flask_app.view_functions["serve"] = serve  # the route of "/" (and of the static prefix)
    return create_fastapi_app(flask_app)
