"""Evaluation: one confusion matrix (`metrics`) and the dataset scoring shared by the CLI and the app."""
from seg.evaluate.core import evaluate, format_table, main  # noqa: F401
