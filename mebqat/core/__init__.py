"""The harness's vocabulary, free of torch: bitwidths and bitwidth tasks, the registries of quantizer
families, models, methods and datasets (with their metadata), scales, fidelity switches, job
configurations, config hashing, pass counting and the layout of a run directory. Everything else builds on
it; the tables, the tracking, the workflow and ``--help`` need nothing more (no torch import)."""
