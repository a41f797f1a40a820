"""Baselines: dedicated QAT, AdaBits, Any-Precision DNN (Table 2); FOMAML and Prototypical Networks
with and without QAT (Tables 4/5). Each is a :class:`mebqat.methods.base.Method` subclass that its entry in
:mod:`mebqat.core.catalog` names."""
