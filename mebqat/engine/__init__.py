"""The engines: job configuration, run directories, checkpoints, pass counting, provenance, and the
training/evaluation loops of the supervised (Table 2) methods."""
