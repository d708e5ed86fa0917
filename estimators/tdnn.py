"""A time-delay neural network (TDNN) over feature frames: x-vector style, in plain torch.

D. Snyder, D. Garcia-Romero, G. Sell, D. Povey, S. Khudanpur, "X-vectors: robust DNN embeddings
for speaker recognition", ICASSP 2018. Dilated 1-D convolutions over time, each followed by
batch norm and ReLU (kernels 5, 3, 3 and 1 frames at dilations 1, 2, 3 and 1: a context of 15
frames), then statistics pooling (the mean and the standard deviation of every channel over the
whole clip), a dense ReLU layer and the logits. The input is the recurrent nets' sequence, 40
MFCCs and their first and second deltas per frame (``mfcc`` with ``deltas=2``), batch-normalised
per coefficient (PANNs' ``bn0`` habit: raw coefficients differ in scale by two orders of
magnitude). It trains as the recurrent nets do (:class:`~estimators._recipe.SequenceNetClassifier`):
AdamW, warm-up and cosine, label smoothing 0.1, all 60 epochs on every clip, no augmentation.

Measured on the recipe benchmark's grouped folds (``benchmarks/recipes.py``: demo 5 folds, drum
kits 5 kit folds, spoken digits 6 speaker folds; 1 torch thread, seeds 0-4, accuracy as the mean
over the folds), against the recurrent nets on the same input and training:

=====================  =====  =========  =============
net (seeds 0-4)        demo   drum kits  spoken digits
=====================  =====  =========  =============
tdnn                   0.727  0.721      0.838
gru                    0.671  0.764      0.757
lstm                   0.668  0.759      0.726
=====================  =====  =========  =============

It costs 15-18 s of CPU per demo fold, 34-44 s per drum kit fold and 81-114 s per spoken-digit
fold (the lstm 6-7, 18-23 and 30-39 s; the gru 9-13, 26-35 and 52-61 s), and 175 s of wall time
(348 s of CPU) for a fold of 2,100 four-second clips on 2 cores (``benchmarks/fold_time.py``). It
is a member of the default ensemble in the lstm's place (:data:`pipelines.build.DEFAULT_ENSEMBLE`).
"""

import torch
from torch import nn

from estimators._recipe import SequenceNetClassifier

SPEC = {
    "class": "TDNNClassifier",
    "input": "sequence",
    "feature": "mfcc",
    "feature_params": {"deltas": 2},  # the recurrent nets' and the svm's feature set
    "param_grid": {"channels": [(64, 64, 64, 128), (128, 128, 128, 256)], "dropout": [0.0, 0.2]},
    "test_params": {"max_epochs": 2, "channels": (4, 4, 4, 8), "embedding_size": 8},
    "test_shape": (20, 13),
    "description": "TDNN (x-vector style): dilated 1-D convs over time, mean + std pooling",
}

#: (kernel size, dilation) of the four frame layers: x-vector's, a context of 15 frames.
FRAME_LAYERS = ((5, 1), (3, 2), (3, 3), (1, 1))


class TDNN(nn.Module):
    """A TDNN classifier of ``(N, T, F)`` frame sequences.

    Parameters
    ----------
    input_shape : tuple (T, F)
        Per-sample shape: T frames of F features.
    n_classes : int
    channels : tuple of 4 int, default=(128, 128, 128, 256)
        Output channels of the four frame layers (:data:`FRAME_LAYERS`).
    embedding_size : int, default=128
        Units of the dense ReLU layer after the statistics pooling.
    dropout : float, default=0.0
        Before the dense layer and before the output.
    """

    input_kinds = ("sequence",)

    def __init__(self, input_shape, n_classes, *, channels=(128, 128, 128, 256), embedding_size=128,
                 dropout=0.0):
        super().__init__()
        if len(channels) != len(FRAME_LAYERS):
            raise ValueError(f"channels={channels!r} must give {len(FRAME_LAYERS)} widths, one per frame layer")
        n_features = input_shape[-1]
        self.bn0 = nn.BatchNorm1d(n_features)
        layers, width = [], n_features
        for out, (kernel, dilation) in zip(channels, FRAME_LAYERS):
            # "same" padding keeps every frame, so a clip of any length gives T outputs
            layers += [nn.Conv1d(width, out, kernel, dilation=dilation, padding=dilation * (kernel // 2), bias=False),
                       nn.BatchNorm1d(out), nn.ReLU()]
            width = out
        self.frames = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * width, embedding_size), nn.ReLU(),
                                  nn.Dropout(dropout), nn.Linear(embedding_size, n_classes))

    def forward(self, x):
        if x.shape[1] < 2:  # the standard deviation of one frame is undefined (NaN), not 0
            raise ValueError(f"TDNN: clips of {x.shape[1]} frame(s) are too short: the statistics pooling "
                             "needs at least 2 frames")
        h = self.frames(self.bn0(x.transpose(1, 2)))  # (N, T, F) -> (N, C, T)
        stats = torch.cat([h.mean(dim=2), h.std(dim=2)], dim=1)  # statistics pooling over time
        return self.head(stats)


class TDNNClassifier(SequenceNetClassifier):
    """:class:`TDNN` as a scikit-learn classifier of ``(n, T, F)`` frame sequences.

    Parameters
    ----------
    channels : tuple of 4 int, default=(128, 128, 128, 256)
        Output channels of the four dilated frame layers.
    embedding_size : int, default=128
        Units of the dense layer after the mean + standard deviation pooling.
    dropout : float, default=0.0
    standardize : bool, default=False
        The module batch-normalises its input coefficients itself.

    Other Parameters
    ----------------
    optimizer, max_epochs, lr_schedule, warmup_epochs, label_smoothing, valid_fraction, ... :
        The sequence nets' training, as the recurrent nets'
        (:class:`~estimators._recipe.SequenceNetClassifier`), every other parameter of
        :class:`~estimators._torch.TorchClassifier` and skorch's ``optimizer__*``, ``callbacks__*``, ...

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).standard_normal((12, 20, 13)).astype(np.float32)
    >>> y = np.repeat(["dog", "rain", "siren"], 4)
    >>> net = TDNNClassifier(channels=(4, 4, 4, 8), embedding_size=8, max_epochs=2, random_state=0).fit(X, y)
    >>> net.predict_proba(X).shape
    (12, 3)
    """

    module_params = ("channels", "embedding_size", "dropout")

    def __init__(self, module=TDNN, *, channels=(128, 128, 128, 256), embedding_size=128, dropout=0.0,
                 standardize=False, **kwargs):
        super().__init__(module, standardize=standardize, **kwargs)
        self.channels = channels
        self.embedding_size = embedding_size
        self.dropout = dropout
