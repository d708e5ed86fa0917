"""Gradient-boosted trees (XGBoost, histogram method) on the mean and std of MFCCs over time.

No scaling step: trees are invariant to monotone transformations of each feature. XGBoost wants
labels ``0 .. n_classes - 1``; :class:`~estimators._classical.LabelEncodedClassifier` encodes any
labels for it and keeps the originals in ``classes_``.

``n_jobs`` (``clf__estimator__n_jobs``) is XGBoost's thread count. It defaults to 1 so that
parallel cross-validation workers (``GridSearchCV(n_jobs=...)``) do not oversubscribe the cores;
raise it when fitting one model at a time.
"""

from xgboost import XGBClassifier

from estimators._classical import ClassicalPipeline, FeatureReshaper, LabelEncodedClassifier

SPEC = {
    "input": "flat",
    "feature": "mfcc",
    "feature_params": {},
    "param_grid": {"clf__estimator__max_depth": [3, 6], "clf__estimator__n_estimators": [100, 300]},
    "test_params": {"clf__estimator__n_estimators": 10, "clf__estimator__max_depth": 2},
    "test_shape": (4, 10),
    "description": "gradient-boosted trees (XGBoost, hist) on MFCC mean and std",
}


def build(**params):
    """A new unfitted ``reshape -> clf`` :class:`ClassicalPipeline`, with ``params`` set.

    ``params`` are pipeline parameters; XGBoost's are ``clf__estimator__<name>``, e.g.
    ``clf__estimator__max_depth=3``, ``clf__estimator__n_jobs=4``.
    """
    booster = XGBClassifier(
        tree_method="hist", n_estimators=200, max_depth=4, learning_rate=0.1, n_jobs=1,
        random_state=0,
    )
    pipeline = ClassicalPipeline([
        ("reshape", FeatureReshaper(mode="stats")),
        ("clf", LabelEncodedClassifier(booster)),
    ])
    return pipeline.set_params(**params)
