"""GRU classifier: :class:`~estimators.rnn.RecurrentNet` with ``cell="gru"``.

See :mod:`estimators.rnn` for the input (MFCC/mel frames or raw-waveform frames) and options.
"""

from estimators._torch import TorchClassifier
from estimators.rnn import RECURRENT_DEFAULTS, RecurrentNet

SPEC = {
    "input": "sequence",
    "feature": "mfcc",
    "feature_params": {},
    "param_grid": {"module__hidden_size": [50, 150], "module__pooling": ["last", "mean"]},
    "test_params": {"max_epochs": 2, "module__hidden_size": 8, "module__dense_size": 8},
    "test_shape": (20, 13),
    "description": "GRU over MFCC frames or raw-waveform frames",
}


def build(**params):
    """A new unfitted TorchClassifier over a GRU :class:`~estimators.rnn.RecurrentNet`."""
    return TorchClassifier(RecurrentNet, **{**RECURRENT_DEFAULTS, "module__cell": "gru", **params})
