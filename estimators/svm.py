"""Support vector machine, linear or RBF kernel, on standardised features.

The default follows the MFCC study: a linear kernel on the per-coefficient mean and standard
deviation of the MFCCs over time (``reshape__mode="stats"``).

Probabilities (for soft voting and stacking) come from one-vs-rest Platt scaling of out-of-fold
decision values: ``CalibratedClassifierCV(SVC(), ensemble=False)``. ``SVC(probability=True)`` also
relies on 5-fold Platt scaling (pairwise, inside libsvm), but scikit-learn 1.9 deprecates it and
recommends this replacement; and here ``predict`` is the argmax of ``predict_proba``, whereas
``SVC(probability=True)``'s predictions can disagree with its probabilities. The final SVC is
fitted on all the training data; the calibration costs five more SVC fits on four fifths of it.
"""

from sklearn.calibration import CalibratedClassifierCV
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from estimators._classical import ClassicalPipeline, FeatureReshaper

SPEC = {
    "input": "flat",
    "feature": "mfcc",
    "feature_params": {},
    "param_grid": {
        "clf__estimator__kernel": ["linear", "rbf"],
        "clf__estimator__C": [0.1, 1.0, 10.0],
    },
    "test_params": {},
    "test_shape": (4, 10),
    "description": "SVM, linear (default) or RBF kernel, Platt-scaled, on MFCC mean and std",
}


def build(**params):
    """A new unfitted ``reshape -> scale -> clf`` :class:`ClassicalPipeline`, with ``params`` set.

    ``params`` are pipeline parameters; the SVC's are ``clf__estimator__<name>``, e.g.
    ``clf__estimator__kernel="rbf"``, ``clf__estimator__C=10``.
    """
    svm = SVC(kernel="linear", C=1.0)
    pipeline = ClassicalPipeline([
        ("reshape", FeatureReshaper(mode="stats")),
        ("scale", StandardScaler()),
        ("clf", CalibratedClassifierCV(svm, method="sigmoid", cv=5, ensemble=False)),
    ])
    return pipeline.set_params(**params)
