"""A Transformer encoder over spectrogram frames, mean-pooled over time.

Each ``(T, F)`` sequence (e.g. 64 mel bands per frame) is projected to ``d_model``, given
sinusoidal positional encodings (Vaswani et al. 2017), passed through the encoder (3 layers,
8 heads, d_model 128, feed-forward 256, dropout 0.1 by default) and averaged over time before a
linear output layer.

It trains as the recurrent nets do (:mod:`estimators.rnn`, :mod:`estimators._recipe`): AdamW, 3
warm-up epochs and a cosine schedule to zero, label smoothing 0.1, all 60 epochs on every clip
given to ``fit``, the last epoch's weights; no masks or mixup. With a validation split
(``valid_fraction=0.2``) early stopping watches the validation accuracy from epoch 10 with a
patience of 10, as the spectrogram nets' does. Measured against the previous defaults (Adam at
1e-3, at most 20 epochs, a fifth of the clips held out for early stopping on the validation
loss), seed 0, the grouped folds of ``benchmarks/recipes.py``'s data sets, 1 torch thread, mean
accuracy over the folds: demo 0.709 against 0.584 (seeds 1, 2: 0.678, 0.744), drum kits 0.711
against 0.607 (seed 1: 0.717), spoken digits 0.794 against 0.644 (whose folds ranged from 0.276
to 0.866 as early stopping caught the validation loss). A fold's fit costs 3 to 11 times the
CPU (60 epochs on every clip against at most 20 on four fifths): 90-95 s against 20-28 s per
demo fold, 285-356 s against 31-84 s per drum-kit fold, 347-361 s against 33-79 s per
spoken-digit fold; a fold of 2,100 four-second clips takes about 25 minutes on 2 cores
(``benchmarks/fold_time.py``). A net a quarter the size (``d_model=64, n_heads=4,
dim_feedforward=128``) takes 43 % of the CPU and scored 0.672, 0.716 and 0.761 (seed 0; seed 1:
demo 0.697, spoken digits 0.742), lower on the spoken digits with both seeds, so the size stays.
"""

import math

import torch
from torch import nn

from estimators._recipe import SequenceNetClassifier

SPEC = {
    "class": "TransformerClassifier",
    "input": "sequence",
    "feature": "mel",
    "feature_params": {"n_mels": 64, "delta": False},
    "param_grid": {"n_layers": [2, 3], "lr": [1e-3, 3e-4]},
    "test_params": {"max_epochs": 2, "d_model": 16, "n_heads": 2,
                    "n_layers": 1, "dim_feedforward": 32},
    "test_shape": (20, 16),
    "description": "Transformer encoder (3 x 8 heads, d_model 128) over mel frames, mean-pooled",
}


def sinusoidal_encoding(n_positions, d_model):
    """Positional encodings ``(n_positions, d_model)``: sin on even, cos on odd dimensions."""
    position = torch.arange(n_positions, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32)
                          * (-math.log(10000.0) / d_model))
    encoding = torch.zeros(n_positions, d_model)
    encoding[:, 0::2] = torch.sin(position * frequency)
    encoding[:, 1::2] = torch.cos(position * frequency[: d_model // 2])
    return encoding


class TransformerNet(nn.Module):
    """Transformer-encoder classifier of ``(N, T, F)`` sequences; returns logits.

    Parameters
    ----------
    input_shape : tuple (T, F)
        ``T`` may differ at prediction: the encodings are computed for each batch's length.
    n_classes : int
    d_model : int, default=128
    n_heads : int, default=8
        Must divide ``d_model``.
    n_layers : int, default=3
    dim_feedforward : int, default=256
    dropout : float, default=0.1
    """

    input_kinds = ("sequence",)

    def __init__(self, input_shape, n_classes, *, d_model=128, n_heads=8, n_layers=3,
                 dim_feedforward=256, dropout=0.1):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"n_heads={n_heads} must divide d_model={d_model}")
        self.project = nn.Linear(input_shape[-1], d_model)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(d_model, n_heads, dim_feedforward, dropout,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, n_classes)
        self.register_buffer("encoding", sinusoidal_encoding(input_shape[0], d_model),
                             persistent=False)

    def forward(self, x):
        n_steps = x.shape[1]
        if n_steps > len(self.encoding):
            self.encoding = sinusoidal_encoding(n_steps, self.encoding.shape[1]).to(x.device)
        h = self.dropout(self.project(x) + self.encoding[:n_steps])
        return self.head(self.encoder(h).mean(dim=1))


class TransformerClassifier(SequenceNetClassifier):
    """:class:`TransformerNet` as a scikit-learn classifier of ``(n, T, F)`` sequences.

    Parameters
    ----------
    d_model : int, default=128
    n_heads : int, default=8
        Must divide ``d_model``.
    n_layers : int, default=3
    dim_feedforward : int, default=256
    dropout : float, default=0.1
    monitor : default="valid_acc"
        With a validation split only (``valid_fraction=0.2``, say), as are the two below.
    min_epochs : int, default=10
    patience : int, default=10

    Other Parameters
    ----------------
    optimizer, max_epochs, lr_schedule, warmup_epochs, label_smoothing, valid_fraction, ... :
        The sequence nets' training (:class:`~estimators._recipe.SequenceNetClassifier`: AdamW,
        warm-up + cosine, label smoothing 0.1, all 60 epochs on every clip, no validation split;
        see the module), every other parameter of :class:`~estimators._torch.TorchClassifier`
        (``lr``, ``batch_size``, ``device``, ``random_state``, ...) and skorch's
        ``optimizer__*``, ``callbacks__*``, ...
    """

    module_params = ("d_model", "n_heads", "n_layers", "dim_feedforward", "dropout")

    def __init__(self, module=TransformerNet, *, d_model=128, n_heads=8, n_layers=3, dim_feedforward=256,
                 dropout=0.1, monitor="valid_acc", min_epochs=10, patience=10, **kwargs):
        super().__init__(module, monitor=monitor, min_epochs=min_epochs, patience=patience, **kwargs)
        self.d_model = d_model
        self.n_heads = n_heads
        self.n_layers = n_layers
        self.dim_feedforward = dim_feedforward
        self.dropout = dropout
