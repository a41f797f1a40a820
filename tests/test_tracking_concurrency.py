"""Many jobs logging at once into one SQLite store (docs/tracking.md, "Many jobs, clusters and servers"):
no run, param, metric or history point lost, no run duplicated, experiments created by whichever process
comes first."""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from mlflow import MlflowClient
from tracking_runs import assert_run_matches, write_run
from tracking_worker import init_worker, log_after_barrier

from mebqat.tracking import init_store

JOBS = [  # 8 distinct jobs over the three experiments; every experiment is created during the race
    ("svhn_cnn8", "mebqat", None),
    ("svhn_cnn8", "apdnn", None),
    ("svhn_cnn8", "qat", "(4,4)"),
    ("maml_omniglot_20w1s", "fomaml", None),
    ("maml_omniglot_20w1s", "mebqat_maml", None),
    ("maml_miniimagenet_5w1s", "fomaml_qat", "(3,3)"),
    ("pn_omniglot_20w1s", "mebqat_pn", None),
    ("pn_miniimagenet_5w5s", "pn_qat", "(4,4)"),
]
EPOCHS = 20


def log_concurrently(run_dirs: list[Path], uri: str) -> list[tuple[str, str, str, float]]:
    """``log_run`` of every directory, each in its own process, all released at the same moment."""
    # Separate processes forked from a clean server that imported mlflow and mebqat once: each has its own
    # connections, as jobs do, without every process spending seconds importing torch and mlflow.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tracking_worker", "mlflow", "mebqat.engine.provenance", "mebqat.tracking"])
    barrier = context.Barrier(len(run_dirs))
    started = time.perf_counter()
    with ProcessPoolExecutor(len(run_dirs), mp_context=context, initializer=init_worker, initargs=(barrier,)) as pool:
        results = list(pool.map(log_after_barrier, [str(d) for d in run_dirs], [uri] * len(run_dirs)))
    print(
        f"\n{len(run_dirs)} processes logged in {time.perf_counter() - started:.1f}s (slowest log_run "
        f"{max(r[3] for r in results):.1f}s after the barrier); {dict(Counter(r[1] for r in results))}"
    )
    return results


def runs_per_experiment(client: MlflowClient) -> Counter:
    experiments = {e.experiment_id: e.name for e in client.search_experiments()}
    return Counter(experiments[r.info.experiment_id] for r in client.search_runs(list(experiments), max_results=1000))


def test_concurrent_writers_lose_nothing(tmp_path):
    uri = f"sqlite:///{tmp_path}/results/mlflow.db"
    assert init_store(uri).created  # the workflow's `mebqat track init`, once, before the jobs
    run_dirs = [
        write_run(tmp_path / "runs" / f"job{i}", setup, method, train_task=task, epochs=EPOCHS, seed=i)
        for i, (setup, method, task) in enumerate(JOBS)
    ]
    results = log_concurrently(run_dirs + run_dirs[:1], uri)  # the first job twice at once: 9 processes

    client = MlflowClient(uri)
    assert sorted(e.name for e in client.search_experiments()) == ["Default", "table2", "table4", "table5"]
    assert runs_per_experiment(client) == Counter({"table2": 3, "table4": 3, "table5": 2})
    for run_dir in run_dirs:  # every param, final metric, history point, tag and file; exactly one run per job
        assert_run_matches(client, run_dir)
    assert Counter(r[1] for r in results[:-1])["created"] >= len(JOBS) - 1


def test_concurrent_first_use_of_an_uninitialised_store(tmp_path):
    """Without `init`, the flock around store creation makes the first process migrate and the others wait
    (unguarded, concurrent first-time creation fails: docs/tracking.md, "The store")."""
    uri = f"sqlite:///{tmp_path}/fresh/mlflow.db"
    run_dirs = [
        write_run(tmp_path / "runs" / f"job{i}", "svhn_cnn8", "qat", train_task=f"({b},{b})", epochs=3)
        for i, b in enumerate((2, 3, 4, 5, 6, 8))
    ]
    results = log_concurrently(run_dirs, uri)
    assert [r[1] for r in results] == ["created"] * len(run_dirs)
    client = MlflowClient(uri)
    assert runs_per_experiment(client) == Counter({"table2": len(run_dirs)})
    for run_dir in run_dirs:
        assert_run_matches(client, run_dir)
