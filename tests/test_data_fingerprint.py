"""The data a job read, by content (mebqat/core/data_fingerprint.py): recorded in the run directory, in
metrics.json and in MLflow; a changed file under an unchanged configuration is refused by name, replaced with
--replace-stale, and reruns exactly the workflow jobs that read it; the hash cache spares a second read."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mebqat.cli import main
from mebqat.core.data_fingerprint import DataFiles, FileHashCache, read_fingerprint, rerun_note
from mebqat.core.schemas import validator
from mebqat.data.storage import load_arrays, save_arrays

ROOT = Path(__file__).resolve().parents[1]
SVHN = ["--setup", "svhn_cnn8", "--method", "mebqat", "--scale", "smoke", "--threads", "1"]
STANDIN = "standins/digits-3x40x40-v1.npz"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def shift_labels(npz: Path) -> None:
    """The hostile edit: every label moved to the next class, saved again in the loader's own format."""
    meta, arrays = load_arrays(npz)
    arrays["labels"] = (arrays["labels"] + 1) % 10
    save_arrays(npz, meta, **arrays)


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): sha256(p) for p in sorted(root.rglob("*")) if p.is_file()}


def run_svhn(out: Path, root: Path, *extra: str) -> int:
    return main(["run", *SVHN, "--out", str(out), "--set", f"data.root={root}", *extra])


@pytest.fixture(scope="module")
def tracked(tmp_path_factory) -> tuple[Path, Path, str]:
    """A finished smoke-scale Table 2 job on its own data root, logged in-process to a local sqlite store:
    (run directory, data root, store URI)."""
    base = tmp_path_factory.mktemp("tracked")
    uri = f"sqlite:///{base / 'mlflow.db'}"
    assert run_svhn(base / "run", base / "data", "--uri", uri) == 0
    return base / "run", base / "data", uri


def test_a_job_records_every_file_it_read_by_content(tracked):
    run, data, _ = tracked
    recorded = read_fingerprint(run / "data_fingerprint.json")
    assert recorded is not None
    assert [(e.path, e.bytes, e.sha256) for e in recorded.files] == [
        (STANDIN, (data / STANDIN).stat().st_size, sha256(data / STANDIN))
    ]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["provenance"]["data_fingerprint"] == {
        "digest": recorded.digest,
        "files": [{"path": STANDIN, "bytes": (data / STANDIN).stat().st_size, "sha256": sha256(data / STANDIN)}],
    }
    assert not list(validator("metrics").iter_errors(metrics))


def test_mlflow_holds_the_data_fingerprint_as_a_param_and_a_tag(tracked):
    from mlflow import MlflowClient
    from tracking_runs import find_runs, leaves

    run, _, uri = tracked
    client = MlflowClient(uri)
    (logged,) = find_runs(client, run)
    digest = json.loads((run / "metrics.json").read_text())["provenance"]["data_fingerprint"]["digest"]
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert set(logged.data.params) == {key for key, _ in leaves(config)} | {"data_fingerprint"}
    assert logged.data.params["data_fingerprint"] == digest
    assert logged.data.tags["mebqat.data_fingerprint"] == digest
    assert "data_fingerprint.json" in {a.path for a in client.list_artifacts(logged.info.run_id)}


def test_a_changed_stand_in_is_refused_by_name_and_replaced_with_replace_stale(tmp_path, capsys):
    run, data = tmp_path / "run", tmp_path / "data"
    assert run_svhn(run, data, "--no-track") == 0
    recorded = sha256(data / STANDIN)
    shift_labels(data / STANDIN)
    before = snapshot(run)
    capsys.readouterr()
    for command in (["run", *SVHN, "--no-track"], ["train", *SVHN], ["evaluate", "--threads", "1"]):
        place = [str(run)] if command[0] == "evaluate" else ["--out", str(run), "--set", f"data.root={data}"]
        assert main([command[0], *place, *command[1:]]) == 2
        lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith(f"mebqat {command[0]}: error: "), lines
        assert f"{STANDIN} (sha256 {recorded[:12]}… recorded, {sha256(data / STANDIN)[:12]}… now)" in lines[0]
        assert "restore the data" in lines[0] and "--replace-stale" in lines[0]
        assert snapshot(run) == before  # nothing written, nothing removed

    assert run_svhn(run, data, "--no-track", "--replace-stale") == 0
    now = read_fingerprint(run / "data_fingerprint.json")
    assert now is not None and [e.sha256 for e in now.files] == [sha256(data / STANDIN)]
    assert now.note.startswith(f"data changed: {STANDIN} (")
    assert f"replaced the previous run (--replace-stale): {run}: the data changed" in (run / "train.log").read_text()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["provenance"]["data_fingerprint"]["digest"] == now.digest


def test_a_changed_fixed_task_file_is_refused_by_name(data_root, tmp_path, capsys):
    """A few-shot job records its stand-in and both fixed task files; the meta-test tasks re-drawn by hand
    (consistently: the loader's own checks pass) are refused by the next run and evaluation."""
    from mebqat.data import build_standin
    from mebqat.data.storage import digest

    build_standin("glyphs28", data_root)
    data, run = tmp_path / "data", tmp_path / "run"
    shutil.copytree(data_root / "standins", data / "standins", ignore=shutil.ignore_patterns("digits*"))
    job = ["--setup", "pn_omniglot_20w1s", "--method", "mebqat_pn", "--scale", "smoke", "--threads", "1"]
    job += ["--out", str(run), "--set", f"data.root={data}", "--no-track"]
    assert main(["run", *job]) == 0
    recorded = read_fingerprint(run / "data_fingerprint.json")
    assert recorded is not None
    names = sorted(e.path for e in recorded.files)
    assert names[0] == "standins/glyphs28-seed0-v1.npz" and [n.split("-")[2] for n in names[1:]] == ["test", "val"]
    test_file = data / names[1]
    meta, arrays = load_arrays(test_file)
    arrays["labels"] = arrays["labels"][:, ::-1].copy()
    meta["fingerprint"] = digest(meta["identity"], arrays["indices"], arrays["labels"])
    save_arrays(test_file, meta, **arrays)
    capsys.readouterr()
    for command in (["run", *job], ["evaluate", str(run), "--threads", "1"]):
        assert main(command) == 2
        assert f"the data changed since this run read them: {names[1]} (sha256 " in capsys.readouterr().err


def test_metrics_of_other_data_are_not_current(tracked, tmp_path):
    from mebqat.engine.job import metrics_current
    from mebqat.engine.rundir import RunDir

    run = tmp_path / "run"
    shutil.copytree(tracked[0], run)
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert metrics_current(RunDir(run), config)
    record = json.loads((run / "data_fingerprint.json").read_text())
    record["files"][0]["sha256"] = "0" * 64
    pairs = sorted((e["path"], e["sha256"]) for e in record["files"])
    record["digest"] = hashlib.sha256(json.dumps(pairs).encode()).hexdigest()
    (run / "data_fingerprint.json").write_text(json.dumps(record))
    assert not metrics_current(RunDir(run), config)


def test_the_hash_cache_spares_reading_an_unchanged_file_again(tmp_path, monkeypatch):
    root = tmp_path / "data"
    (root / "images" / "a").mkdir(parents=True)
    (root / "big.bin").write_bytes(os.urandom(1 << 16))
    for name in ("x.png", "y.png"):
        (root / "images" / "a" / name).write_bytes(os.urandom(256))
    sources = [root / "big.bin", root / "images"]
    reads: list[str] = []
    real = hashlib.file_digest
    monkeypatch.setattr(hashlib, "file_digest", lambda f, d: reads.append(f.name) or real(f, d))
    cache_file = tmp_path / "cache" / "hashes.json"

    first = DataFiles(root, sources, FileHashCache(cache_file))
    assert len(reads) == 3 and cache_file.is_file()
    recorded = first.record(None, "")
    assert [(e.path, e.files) for e in sorted(recorded.files, key=lambda e: e.path)] == [("big.bin", 1), ("images", 2)]

    reads.clear()
    again = DataFiles(root, sources, FileHashCache(cache_file))  # the next job: a new process reads the cache
    assert reads == [] and again.cache.hashed == []
    assert again.record(None, "").digest == recorded.digest

    changed = root / "images" / "a" / "y.png"
    changed.write_bytes(os.urandom(256))  # same size: the mtime tells
    third = DataFiles(root, sources, FileHashCache(cache_file))
    assert reads == [str(changed)]
    assert [c.path for c in third.changes_since(recorded)] == ["images"]


def test_the_rerun_note_names_files_whose_size_or_mtime_changed(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "a.npz").write_bytes(b"one")
    (root / "b.npz").write_bytes(b"two")
    recorded = DataFiles(root, [root / "a.npz", root / "b.npz"], FileHashCache(tmp_path / "h.json")).record(None, "")
    assert rerun_note(None, root) == "" and rerun_note(recorded, root) == ""
    (root / "b.npz").write_bytes(b"three")
    assert rerun_note(recorded, root) == f"data changed: b.npz ({5}:{(root / 'b.npz').stat().st_mtime_ns})"
    (root / "b.npz").unlink()  # absent: the loader rebuilds or refuses it, not a change to rerun for
    assert rerun_note(recorded, root) == ""
    assert rerun_note(recorded, tmp_path / "moved") == ""


def snakemake(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**env, "OMP_NUM_THREADS": "1"},
    )


def test_the_workflow_reruns_exactly_the_jobs_whose_data_changed(tmp_path, monkeypatch):
    """Two finished Table 2 jobs on different stand-in caches; one cache is altered: Snakemake reruns that job
    only (its rerun key names the file), and once the job has run again (--replace-stale, as the workflow runs
    it), nothing more. Snakemake records each job (--touch: its params as it computes them before running it),
    then the job runs in-process with the workflow's command line."""
    results, data = tmp_path / "results", tmp_path / "data"
    jobs = ["svhn_cnn8/mebqat", "cifar10_preact_resnet20/mebqat"]
    targets = [f"{results}/runs/smoke-official/table2/{job}/seed0/metrics.json" for job in jobs]
    common = ["--configfile", "config/smoke.yaml", "--config", f"results={results}", f"data_root={data}"]
    listed = snakemake("-n", "-p", *targets, *common)
    assert listed.returncode == 0, listed.stderr
    commands = dict(re.findall(r"--spec '(.+?)' --out (\S+)", listed.stdout))
    assert len(commands) == 2
    monkeypatch.setenv("MEBQAT_DATA", str(data))  # what the workflow's shell sets

    def run_job(spec: str, out: str) -> None:
        assert main(["run", "--spec", spec, "--out", out, "--threads", "1", "--no-track", "--replace-stale"]) == 0

    results.mkdir()
    (results / ".mlflow-store-ready").touch()  # the store the jobs' rule asks for (they run without tracking)
    assert snakemake("--touch", *targets, *common).returncode == 0  # Snakemake records the jobs, then runs them
    for spec, out in commands.items():
        run_job(spec, out)
    assert "Nothing to be done" in snakemake("-n", *targets, *common).stdout

    shift_labels(data / STANDIN)  # svhn_cnn8's stand-in (3x40x40); cifar10's is digits-3x32x32
    changed = snakemake("-n", *targets, *common)
    rerun = re.findall(r"running job (\S+)", changed.stdout)
    assert rerun == ["smoke-official/table2/svhn_cnn8/mebqat/seed0"], changed.stdout
    assert f"data changed: {STANDIN}" in changed.stdout

    assert snakemake("--touch", *targets, *common).returncode == 0  # Snakemake records the job as it runs it
    spec, out = next((s, o) for s, o in commands.items() if "svhn_cnn8" in o)
    run_job(spec, out)
    assert sha256(data / STANDIN) in (Path(out) / "data_fingerprint.json").read_text()
    assert "Nothing to be done" in snakemake("-n", *targets, *common).stdout
