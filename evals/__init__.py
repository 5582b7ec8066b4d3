"""Evaluation: benchmarks and reports over corpora and checkpoints."""
