"""Baselines: dedicated QAT, AdaBits, Any-Precision DNN (Table 2); FOMAML and Prototypical Networks
with and without QAT (Tables 4/5). Each registers itself in :mod:`mebqat.methods.registry`."""
