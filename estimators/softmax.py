"""Softmax regression: multinomial logistic regression on MFCC + delta summaries.

The simplest model: standardised features fed to one linear layer with a softmax. The spectrogram
study's input (the ``stft`` kind resized to 32 x 32, ``features="flatten"``) lost to the mean and
standard deviation over time of 40 MFCCs and their deltas (``mfcc`` with ``deltas=2``), measured
on real recordings (``benchmarks/recipes.py``). The regularisation ``C`` is selected in ``fit`` by
a grouped inner cross-validation on the training clips (``C=None``), as the SVM's is.
"""

from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from estimators._classical import ClassicalClassifier, FeatureReshaper, inner_splits, select_params

SPEC = {
    "class": "SoftmaxClassifier",
    "input": "flat",
    "feature": "mfcc",
    "feature_params": {"deltas": 2},
    "param_grid": {"C": [None, 0.1, 1.0], "features": ["stats", "summary"]},
    "test_params": {"max_iter": 200},
    "test_shape": (4, 10),
    "description": "multinomial logistic regression on MFCC + delta mean and std, C selected by inner CV",
}


class SoftmaxClassifier(ClassicalClassifier):
    """Multinomial logistic regression on standardised feature vectors.

    Fits ``FeatureReshaper(mode=features) -> StandardScaler -> LogisticRegression(C=C_,
    max_iter=max_iter)``; the lbfgs solver minimises the multinomial (softmax) loss.

    Parameters
    ----------
    C : float > 0 or None, default=None
        Inverse of the L2 regularisation strength. None selects it from ``C_grid`` by inner
        cross-validation on the training clips, grouped by the ``groups`` given to ``fit`` (see
        :func:`~estimators._classical.inner_splits`).
    C_grid : sequence of float, default=(0.01, 0.1, 1.0)
        Candidates for ``C`` when ``C`` is None; on a tie the first (most regularised) wins.
    max_iter : int, default=1000
        Iterations of the lbfgs solver.
    n_splits : int >= 2, default=3
        Inner splits of the selection (fewer when a class is smaller).
    random_state : int, default=0
        Seed of the inner splits' shuffling (a run setting: an experiment sets it to its seed).
    features : {"stats", "summary", "flatten"}, default="stats"
        How a sample becomes a feature vector (:class:`~estimators._classical.FeatureReshaper`).

    Attributes
    ----------
    C_ : float
        The ``C`` used: ``C``, or the one selected.
    cv_results_ : dict or None
        The inner search's ``GridSearchCV.cv_results_``; None when nothing was selected.
    inner_grouped_ : bool or None
        Whether the inner splits kept the groups apart; None when nothing was selected.
    pipeline_, classes_, n_features_in_ :
        See :class:`~estimators._classical.ClassicalClassifier`.
    n_iter_ : int or np.ndarray
        The solver's iterations (LogisticRegression's ``n_iter_``).
    """

    run_params = ("random_state",)

    def __init__(self, *, C=None, C_grid=(0.01, 0.1, 1.0), max_iter=1000, n_splits=3, random_state=0,
                 features="stats"):
        self.C = C
        self.C_grid = C_grid
        self.max_iter = max_iter
        self.n_splits = n_splits
        self.random_state = random_state
        self.features = features

    def fit(self, X, y, groups=None):
        """Select ``C`` if it is None, then fit the pipeline (see
        :class:`~estimators._classical.ClassicalClassifier`)."""
        super().fit(X, y, groups=groups)
        self.n_iter_ = self.pipeline_[-1].n_iter_
        return self

    def _fit(self, X, y, groups):
        self.C_, self.cv_results_, self.inner_grouped_ = self.C, None, None
        if self.C is None:
            splits, self.inner_grouped_ = inner_splits(
                y, groups, n_splits=self.n_splits, random_state=self.random_state, name=type(self).__name__)
            best, self.cv_results_ = select_params(
                self._pipeline(self.C_grid[0]), {"clf__C": list(self.C_grid)}, X, y, splits)
            self.C_ = best["clf__C"]
        return self._pipeline(self.C_).fit(X, y)

    def _pipeline(self, C):
        """A new unfitted pipeline with regularisation ``C``."""
        return Pipeline([
            ("reshape", FeatureReshaper(mode=self.features)),
            ("scale", StandardScaler()),
            ("clf", LogisticRegression(C=C, max_iter=self.max_iter)),
        ])
