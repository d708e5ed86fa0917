"""A multilayer perceptron with one hidden layer on MFCC + delta summaries.

The spectrogram study this follows found 50 hidden units best on 32 x 32 spectrograms, hence
``hidden_layer_sizes=(50,)``; 256 units with ``alpha=1e-2`` did not do better on real recordings.
Its input, the flattened 32 x 32 spectrogram, lost to the mean and standard deviation over time of
40 MFCCs and their first and second deltas (``mfcc`` with ``deltas=2``), the classical default
(``benchmarks/recipes.py``); the study's setting is the ``stft`` kind resized to 32 x 32 with
``features="flatten"``.

The class is :class:`MLPNetClassifier`, so that it is not mistaken for scikit-learn's
:class:`~sklearn.neural_network.MLPClassifier`, which it wraps.
"""

from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from estimators._classical import ClassicalClassifier, FeatureReshaper

SPEC = {
    "class": "MLPNetClassifier",
    "input": "flat",
    "feature": "mfcc",
    "feature_params": {"deltas": 2},
    "param_grid": {"hidden_layer_sizes": [(25,), (50,), (100,)], "alpha": [1e-4, 1e-2]},
    "test_params": {"hidden_layer_sizes": (8,), "max_iter": 300},
    "test_shape": (4, 10),
    "description": "one-hidden-layer perceptron (50 ReLU units) on MFCC + delta mean and std",
}


class MLPNetClassifier(ClassicalClassifier):
    """scikit-learn's multilayer perceptron on standardised feature vectors.

    Fits ``FeatureReshaper(mode=features) -> StandardScaler -> MLPClassifier(hidden_layer_sizes,
    alpha=alpha, max_iter=max_iter, random_state=random_state)`` (ReLU units, Adam).

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(50,)
        Units of each hidden layer.
    alpha : float >= 0, default=1e-4
        L2 penalty.
    max_iter : int, default=500
        Epochs of Adam at most.
    random_state : int, RandomState instance or None, default=0
        Seeds the weights' initialisation and the shuffling (a run setting: an experiment sets it
        to its seed).
    features : {"stats", "summary", "flatten"}, default="stats"
        How a sample becomes a feature vector (:class:`~estimators._classical.FeatureReshaper`).

    Attributes
    ----------
    pipeline_, classes_, n_features_in_ :
        See :class:`~estimators._classical.ClassicalClassifier`.
    n_iter_ : int or np.ndarray
        The solver's iterations (MLPClassifier's ``n_iter_``).
    """

    run_params = ("random_state",)

    def __init__(self, *, hidden_layer_sizes=(50,), alpha=1e-4, max_iter=500, random_state=0,
                 features="stats"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.alpha = alpha
        self.max_iter = max_iter
        self.random_state = random_state
        self.features = features

    def fit(self, X, y, groups=None):
        """Fit the pipeline (see :class:`~estimators._classical.ClassicalClassifier`; ``groups``
        is not used)."""
        super().fit(X, y, groups=groups)
        self.n_iter_ = self.pipeline_[-1].n_iter_
        return self

    def _make_pipeline(self):
        mlp = MLPClassifier(hidden_layer_sizes=self.hidden_layer_sizes, alpha=self.alpha,
                            max_iter=self.max_iter, random_state=self.random_state)
        return Pipeline([
            ("reshape", FeatureReshaper(mode=self.features)),
            ("scale", StandardScaler()),
            ("clf", mlp),
        ])
