"""Softmax regression: multinomial logistic regression on flattened features.

The simplest model of the spectrogram study that the ``mlp`` estimator follows: a 32 x 32
spectrogram, flattened and standardised, fed to one linear layer with a softmax.
"""

from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from estimators._classical import ClassicalClassifier, FeatureReshaper

SPEC = {
    "class": "SoftmaxClassifier",
    "input": "flat",
    "feature": "stft",
    "feature_params": {"size": [32, 32]},
    "param_grid": {"C": [0.01, 0.1, 1.0, 10.0]},
    "test_params": {"max_iter": 200},
    "test_shape": (4, 10),
    "description": "multinomial logistic regression on standardised, flattened features",
}


class SoftmaxClassifier(ClassicalClassifier):
    """Multinomial logistic regression on standardised feature vectors.

    Fits ``FeatureReshaper(mode=features) -> StandardScaler -> LogisticRegression(C=C,
    max_iter=max_iter)``; the lbfgs solver minimises the multinomial (softmax) loss.

    Parameters
    ----------
    C : float > 0, default=1.0
        Inverse of the L2 regularisation strength.
    max_iter : int, default=1000
        Iterations of the lbfgs solver.
    features : {"flatten", "stats"}, default="flatten"
        How a sample becomes a feature vector (:class:`~estimators._classical.FeatureReshaper`).

    Attributes
    ----------
    pipeline_, classes_, n_features_in_ :
        See :class:`~estimators._classical.ClassicalClassifier`.
    n_iter_ : int or np.ndarray
        The solver's iterations (LogisticRegression's ``n_iter_``).
    """

    def __init__(self, *, C=1.0, max_iter=1000, features="flatten"):
        self.C = C
        self.max_iter = max_iter
        self.features = features

    def fit(self, X, y):
        """Fit the pipeline (see :class:`~estimators._classical.ClassicalClassifier`)."""
        super().fit(X, y)
        self.n_iter_ = self.pipeline_[-1].n_iter_
        return self

    def _make_pipeline(self):
        return Pipeline([
            ("reshape", FeatureReshaper(mode=self.features)),
            ("scale", StandardScaler()),
            ("clf", LogisticRegression(C=self.C, max_iter=self.max_iter)),
        ])
