"""Support vector machine, linear or RBF kernel, on standardised features.

The default follows the MFCC study: a linear kernel on the per-coefficient mean and standard
deviation of the MFCCs over time (``features="stats"``).

Probabilities (for soft voting and stacking) come from one-vs-rest Platt scaling of out-of-fold
decision values: ``CalibratedClassifierCV(SVC(), ensemble=False)``. ``SVC(probability=True)`` also
relies on 5-fold Platt scaling (pairwise, inside libsvm), but scikit-learn 1.9 deprecates it and
recommends this replacement; and here ``predict`` is the argmax of ``predict_proba``, whereas
``SVC(probability=True)``'s predictions can disagree with its probabilities. The final SVC is
fitted on all the training data; the calibration costs five more SVC fits on four fifths of it.
"""

from sklearn.calibration import CalibratedClassifierCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from estimators._classical import ClassicalClassifier, FeatureReshaper

SPEC = {
    "class": "SVMClassifier",
    "input": "flat",
    "feature": "mfcc",
    "feature_params": {},
    "param_grid": {"kernel": ["linear", "rbf"], "C": [0.1, 1.0, 10.0]},
    "test_params": {},
    "test_shape": (4, 10),
    "description": "SVM, linear (default) or RBF kernel, Platt-scaled, on MFCC mean and std",
}


class SVMClassifier(ClassicalClassifier):
    """An SVC on standardised feature vectors, with Platt-scaled probabilities.

    Fits ``FeatureReshaper(mode=features) -> StandardScaler -> CalibratedClassifierCV(SVC(C=C,
    kernel=kernel, gamma=gamma), method="sigmoid", cv=5, ensemble=False)``.

    Parameters
    ----------
    C : float > 0, default=1.0
        SVC's regularisation parameter (larger: less regularised).
    kernel : {"linear", "rbf", "poly", "sigmoid"}, default="linear"
    gamma : {"scale", "auto"} or float, default="scale"
        SVC's kernel coefficient (not used by the linear kernel).
    features : {"stats", "flatten"}, default="stats"
        How a sample becomes a feature vector (:class:`~estimators._classical.FeatureReshaper`):
        mean and standard deviation over its last axis (time), or all its values.

    Attributes
    ----------
    pipeline_, classes_, n_features_in_ :
        See :class:`~estimators._classical.ClassicalClassifier`.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((40, 4, 10)).astype(np.float32)
    >>> y = np.repeat(["dog", "rain"], 20)
    >>> X[y == "rain"] += 1.0
    >>> SVMClassifier(C=10).fit(X, y).predict_proba(X[:2]).shape
    (2, 2)
    """

    def __init__(self, *, C=1.0, kernel="linear", gamma="scale", features="stats"):
        self.C = C
        self.kernel = kernel
        self.gamma = gamma
        self.features = features

    def _make_pipeline(self):
        svm = SVC(C=self.C, kernel=self.kernel, gamma=self.gamma)
        return Pipeline([
            ("reshape", FeatureReshaper(mode=self.features)),
            ("scale", StandardScaler()),
            ("clf", CalibratedClassifierCV(svm, method="sigmoid", cv=5, ensemble=False)),
        ])
