"""Softmax regression: multinomial logistic regression on flattened features.

The simplest model of the spectrogram study that the ``mlp`` estimator follows: a 32 x 32
spectrogram, flattened and standardised, fed to one linear layer with a softmax.
"""

from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from estimators._classical import ClassicalPipeline, FeatureReshaper

SPEC = {
    "input": "flat",
    "feature": "stft",
    "feature_params": {"size": [32, 32]},
    "param_grid": {"clf__C": [0.01, 0.1, 1.0, 10.0]},
    "test_params": {"clf__max_iter": 200},
    "test_shape": (4, 10),
    "description": "multinomial logistic regression on standardised, flattened features",
}


def build(**params):
    """A new unfitted ``reshape -> scale -> clf`` :class:`ClassicalPipeline`, with ``params`` set.

    ``params`` are pipeline parameters, e.g. ``clf__C=0.1`` or ``reshape__mode="stats"``.
    ``LogisticRegression`` with the lbfgs solver minimises the multinomial (softmax) loss.
    """
    pipeline = ClassicalPipeline([
        ("reshape", FeatureReshaper(mode="flatten")),
        ("scale", StandardScaler()),
        ("clf", LogisticRegression(C=1.0, max_iter=1000)),
    ])
    return pipeline.set_params(**params)
