"""Experiments on stored features: pipelines from clip ids to predictions, the data set's folds,
segment voting, ensembles, evaluation and reports."""

from pipelines.build import make_ensemble, make_pipeline
from pipelines.evaluate import CVResult, cross_validate, grid_search
from pipelines.loader import ClipPipeline, FeatureLoader, adapt_input
from pipelines.segments import SegmentClassifier
from pipelines.splits import ClipSplitter, LeakageError, check_no_leakage

__all__ = [
    "CVResult", "ClipPipeline", "ClipSplitter", "FeatureLoader", "LeakageError", "SegmentClassifier", "adapt_input",
    "check_no_leakage", "cross_validate", "grid_search", "make_ensemble", "make_pipeline",
]
