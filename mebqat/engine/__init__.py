"""The engine: the one resumable training-and-evaluation loop of every method (``loop``), the problem data
it feeds them (``data``), one job in one process with live MLflow logging (``job``), optimizers and
schedules, run directories, checkpoints and progress, metrics.json and provenance."""
