"""A multilayer perceptron with one hidden layer on flattened features.

The spectrogram study this follows found 50 hidden units best on 32 x 32 spectrograms, hence the
default feature (``stft`` resized to 32 x 32) and ``hidden_layer_sizes=(50,)``.
"""

from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from estimators._classical import ClassicalPipeline, FeatureReshaper

SPEC = {
    "input": "flat",
    "feature": "stft",
    "feature_params": {"size": [32, 32]},
    "param_grid": {"clf__hidden_layer_sizes": [(25,), (50,), (100,)], "clf__alpha": [1e-4, 1e-2]},
    "test_params": {"clf__hidden_layer_sizes": (8,), "clf__max_iter": 300},
    "test_shape": (4, 10),
    "description": "one-hidden-layer perceptron (50 ReLU units) on standardised, flat features",
}


def build(**params):
    """A new unfitted ``reshape -> scale -> clf`` :class:`ClassicalPipeline`, with ``params`` set.

    ``params`` are pipeline parameters, e.g. ``clf__hidden_layer_sizes=(100,)``.
    """
    pipeline = ClassicalPipeline([
        ("reshape", FeatureReshaper(mode="flatten")),
        ("scale", StandardScaler()),
        ("clf", MLPClassifier(hidden_layer_sizes=(50,), max_iter=500, random_state=0)),
    ])
    return pipeline.set_params(**params)
