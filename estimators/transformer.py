"""A Transformer encoder over spectrogram frames, mean-pooled over time.

Each ``(T, F)`` sequence (e.g. 64 mel bands per frame) is projected to ``d_model``, given
sinusoidal positional encodings (Vaswani et al. 2017), passed through the encoder (3 layers,
8 heads, d_model 128, feed-forward 256, dropout 0.1 by default) and averaged over time before a
linear output layer.
"""

import math

import torch
from torch import nn

from estimators._torch import TorchClassifier

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


class TransformerClassifier(TorchClassifier):
    """:class:`TransformerNet` as a scikit-learn classifier of ``(n, T, F)`` sequences.

    Parameters
    ----------
    d_model : int, default=128
    n_heads : int, default=8
        Must divide ``d_model``.
    n_layers : int, default=3
    dim_feedforward : int, default=256
    dropout : float, default=0.1

    Other Parameters
    ----------------
    lr, max_epochs, batch_size, device, random_state, ... :
        Every parameter of :class:`~estimators._torch.TorchClassifier` (training, validation,
        seeding, device, batch augmentation) and skorch's ``optimizer__*``, ``callbacks__*``, ...
    """

    module_params = ("d_model", "n_heads", "n_layers", "dim_feedforward", "dropout")

    def __init__(self, module=TransformerNet, *, d_model=128, n_heads=8, n_layers=3, dim_feedforward=256,
                 dropout=0.1, **kwargs):
        super().__init__(module, **kwargs)
        self.d_model = d_model
        self.n_heads = n_heads
        self.n_layers = n_layers
        self.dim_feedforward = dim_feedforward
        self.dropout = dropout
