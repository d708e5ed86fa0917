"""Gradient-boosted trees (XGBoost, histogram method) on the mean and std over time of MFCCs
and their first and second deltas (``mfcc`` with ``deltas=2``, as the other classical defaults).

No scaling step: trees are invariant to monotone transformations of each feature. XGBoost wants
labels ``0 .. n_classes - 1``; :class:`~estimators._classical.LabelEncodedClassifier` encodes any
labels for it and keeps the originals in ``classes_``.

XGBoost's own ``device`` is not a parameter here: the booster runs on the CPU, and an
experiment's torch ``--device`` never reaches it.
"""

from sklearn.pipeline import Pipeline
from xgboost import XGBClassifier

from estimators._classical import ClassicalClassifier, FeatureReshaper, LabelEncodedClassifier

SPEC = {
    "class": "XGBoostClassifier",
    "input": "flat",
    "feature": "mfcc",
    "feature_params": {"deltas": 2},
    "param_grid": {"max_depth": [3, 6], "n_estimators": [100, 300]},
    "test_params": {"n_estimators": 10, "max_depth": 2},
    "test_shape": (4, 10),
    "description": "gradient-boosted trees (XGBoost, hist) on MFCC + delta mean and std",
}


class XGBoostClassifier(ClassicalClassifier):
    """XGBoost's gradient-boosted trees (``tree_method="hist"``) on feature vectors.

    Fits ``FeatureReshaper(mode=features) -> LabelEncodedClassifier(XGBClassifier(...))``.

    Parameters
    ----------
    n_estimators : int, default=200
        Boosting rounds.
    max_depth : int, default=4
    learning_rate : float, default=0.1
    n_jobs : int, default=1
        XGBoost's thread count: 1 so that parallel cross-validation workers
        (``GridSearchCV(n_jobs=...)``) do not oversubscribe the cores; raise it when fitting one
        model at a time.
    random_state : int, default=0
        XGBoost's seed (a run setting: an experiment sets it to its seed).
    features : {"stats", "summary", "flatten"}, default="stats"
        How a sample becomes a feature vector (:class:`~estimators._classical.FeatureReshaper`).

    Attributes
    ----------
    pipeline_, classes_, n_features_in_ :
        See :class:`~estimators._classical.ClassicalClassifier`.
    """

    run_params = ("random_state",)

    def __init__(self, *, n_estimators=200, max_depth=4, learning_rate=0.1, n_jobs=1, random_state=0,
                 features="stats"):
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.features = features

    def _make_pipeline(self):
        booster = XGBClassifier(tree_method="hist", n_estimators=self.n_estimators, max_depth=self.max_depth,
                                learning_rate=self.learning_rate, n_jobs=self.n_jobs,
                                random_state=self.random_state)
        return Pipeline([
            ("reshape", FeatureReshaper(mode=self.features)),
            ("clf", LabelEncodedClassifier(booster)),
        ])
