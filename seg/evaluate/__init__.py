"""Evaluation: one confusion matrix (`metrics`), one frame-scoring core (`scoring`) shared by the dataset
evaluation (`core.evaluate`) and the app's validation store, and the `python -m seg.evaluate` CLI (`cli`).

The package itself loads no model code: training imports `metrics`, the CLI brings in the Predictor.
"""
from seg.evaluate.core import evaluate  # noqa: F401
