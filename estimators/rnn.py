"""Recurrent networks over feature frames or raw-waveform frames (shared by rnn, lstm, gru, blstm).

One module, :class:`RecurrentNet`, covers all four estimators (one registry entry and one class
each: :class:`RNNClassifier`, :class:`LSTMClassifier`, :class:`GRUClassifier`,
:class:`BLSTMClassifier`); they differ in ``cell`` and ``bidirectional`` only. The input is a
sequence of frames: ``(T, F)`` MFCC or mel frames, or a raw waveform cut into
``T = n_samples // frame_length`` consecutive frames of ``frame_length`` samples (a comparison of
recurrent models on raw audio used 100 and 300). An optional dense ReLU layer sits between the
recurrent layers and the output (it improved every recurrent model in that comparison). The clip
is classified from the mean of the outputs over time (``pooling="mean"``, the default) or from the
last step (``pooling="last"``: the final hidden state of each direction). The mean is the default
because it scored better on every real data set measured (an LSTM over MFCC frames, the 5-6
grouped folds of ``benchmarks/recipes.py``'s data sets, mean accuracy over seeds 0-2 against
seeds 0-1 of the last step: demo 0.628 against 0.567, drum kits 0.710 against 0.647, spoken
digits 0.586 against 0.478): the last step of a clip padded to a fixed length is often silence.

The default input is a frame of 40 MFCCs and their first and second deltas (``mfcc`` with
``deltas=2``: 120 values per frame), the feature set of the classical defaults, so that the
default ensemble's svm, tdnn and gru extract it once. The deltas lifted the LSTM on every real
data set measured (same folds, mean pooling, mean accuracy over seeds 0-2 against the 40 MFCCs
alone): demo 0.658 against 0.628, drum kits 0.756 against 0.710, spoken digits 0.666 against
0.586. With seed 0, the bidirectional LSTM scored 0.637 against 0.631 (demo) and 0.785 against
0.692 (drum kits), the GRU 0.644 against 0.656 and 0.766 against 0.748.

They train as the spectrogram nets do (:mod:`estimators._recipe`), less the masks and mixup: AdamW,
3 warm-up epochs and a cosine schedule to zero, label smoothing 0.1, all 60 epochs on every clip
given to ``fit``, the last epoch's weights. With a fifth of the clips held out (grouped) for early
stopping, as before, the epoch was chosen, and the temperature of an ensemble member fitted, on
one or two speakers or kits: the lstm's validation accuracy read 0.91-0.99 on the drum kits and
the spoken digits where its test folds gave 0.56-0.88, and its probabilities came out
overconfident (a mean top probability of 0.83-0.88 at accuracies of 0.62-0.75). Measured (the
lstm, 5-6 grouped folds, 1 torch thread; seeds 0-2 unless said): demo 0.675 against 0.658, drum
kits 0.767 against 0.756, spoken digits 0.722 (seed 0) against 0.666; the negative log-likelihood
of its out-of-fold probabilities 0.99-1.02 against 0.99-1.12 (demo), 0.77-0.84 against 0.81-0.92
(drum kits), 1.00 against 1.14-1.66 (spoken digits). 40 epochs gave 0.651, 0.754 and 0.731 (seed 0); 40
without label smoothing 0.644, 0.752 and 0.707 (seed 0).

Mixup on the frames (``batch_augment__mixup_alpha=0.2``) was measured too (same folds; seeds 0-2,
spoken digits 0-1): the lstm alone 0.680 against 0.675 (demo), 0.768 against 0.767 (drum kits),
0.738 against 0.719 (spoken digits), but the default ensemble's vote with it no better: 0.816
against 0.818, 0.799 against 0.804, 0.852 against 0.855. Two time masks of up to 8 frames on top
of it lowered the drum kits to 0.745. So the recurrent nets keep no augmentation by default;
``batch_augment`` switches it on.

The GRU, with the same input and training, scores about what the LSTM does (seeds 0-2: 0.669
against 0.675 on the demo, 0.761 against 0.767 on the drum kits, 0.752 against 0.724 on the
spoken digits) but errs on other clips (those both get wrong are 61-64 % of those either gets
wrong on the demo and the drum kits, 41-49 % on the spoken digits): the vote of svm + cnn + cnn6
with the gru beside the lstm was 2.1 points higher on the drum kits and 0.7 on the spoken digits,
0.2 lower on the demo. Torch's CPU GRU takes more time than its LSTM (52-61 s against 30-39 s of
CPU per spoken-digit fold, 1 thread). The default ensemble (:data:`pipelines.build.DEFAULT_ENSEMBLE`)
now has the gru beside a TDNN over the same frames (:mod:`estimators.tdnn`), which replaced the lstm.
"""

import torch
from torch import nn

from estimators._recipe import SequenceNetClassifier

SPEC_DEFAULTS = {  # what the four entries below share
    "input": "sequence",
    "feature": "mfcc",
    "feature_params": {"deltas": 2},  # 40 MFCCs + deltas + second deltas per frame (see the module)
    "param_grid": {"hidden_size": [50, 150], "pooling": ["mean", "last"]},
    "test_params": {"max_epochs": 2, "hidden_size": 8, "dense_size": 8},
    "test_shape": (20, 13),
}
SPECS = {
    "rnn": {"class": "RNNClassifier", "description": "Elman RNN (tanh) over MFCC frames or raw-waveform frames"},
    "lstm": {"class": "LSTMClassifier", "description": "LSTM over MFCC frames or raw-waveform frames"},
    "gru": {"class": "GRUClassifier", "description": "GRU over MFCC frames or raw-waveform frames"},
    "blstm": {"class": "BLSTMClassifier",
              "description": "Bidirectional LSTM over MFCC frames or raw-waveform frames"},
}

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class RecurrentNet(nn.Module):
    """An RNN, LSTM or GRU classifier of ``(N, T, F)`` sequences or ``(N, n_samples)`` waveforms.

    Parameters
    ----------
    input_shape : tuple (T, F) or (n_samples,)
        Per-sample shape: frames of F features, or a waveform (cut into frames).
    n_classes : int
    cell : {"rnn", "lstm", "gru"}, default="lstm"
    hidden_size : int, default=100
    num_layers : int, default=1
    bidirectional : bool, default=False
    dense_size : int, default=0
        Units of a dense ReLU layer before the output; 0 for none.
    pooling : {"mean", "last"}, default="mean"
        Classify from the mean output over time or the last step (final hidden state of each
        direction).
    frame_length : int, default=100
        Samples per frame when the input is a waveform (a trailing partial frame is dropped).
    dropout : float, default=0.0
        Between recurrent layers (when ``num_layers > 1``) and before the output layers.
    """

    input_kinds = ("sequence", "waveform")

    def __init__(self, input_shape, n_classes, *, cell="lstm", hidden_size=100, num_layers=1,
                 bidirectional=False, dense_size=0, pooling="mean", frame_length=100,
                 dropout=0.0):
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell={cell!r} must be one of {sorted(CELLS)}")
        if pooling not in ("last", "mean"):
            raise ValueError(f"pooling={pooling!r} must be 'last' or 'mean'")
        if len(input_shape) == 1:  # a waveform, cut into frames
            if input_shape[0] < frame_length:
                raise ValueError(f"frame_length={frame_length} is longer than the waveforms "
                                 f"({input_shape[0]} samples)")
            n_features = frame_length
        else:
            n_features = input_shape[-1]
        self.frame_length = frame_length
        self.pooling = pooling
        self.rnn = CELLS[cell](n_features, hidden_size, num_layers=num_layers, batch_first=True,
                               bidirectional=bidirectional,
                               dropout=dropout if num_layers > 1 else 0.0)
        n_out = hidden_size * (2 if bidirectional else 1)
        head = [nn.Dropout(dropout)]
        if dense_size:
            head += [nn.Linear(n_out, dense_size), nn.ReLU(), nn.Dropout(dropout)]
            n_out = dense_size
        self.head = nn.Sequential(*head, nn.Linear(n_out, n_classes))

    def forward(self, x):
        if x.dim() == 2:  # (N, n_samples) -> (N, T, frame_length)
            n_frames = x.shape[1] // self.frame_length
            x = x[:, : n_frames * self.frame_length].reshape(len(x), n_frames, self.frame_length)
        output, state = self.rnn(x)
        if self.pooling == "mean":
            summary = output.mean(dim=1)
        else:
            hidden = state[0] if isinstance(state, tuple) else state  # LSTM: (h, c)
            n_directions = 2 if self.rnn.bidirectional else 1
            summary = torch.cat(list(hidden[-n_directions:]), dim=1)  # last layer's directions
        return self.head(summary)



class RecurrentClassifier(SequenceNetClassifier):
    """Base of the four recurrent estimators: :class:`RecurrentNet` as a scikit-learn classifier.

    A subclass fixes the cell (class attribute ``cell``) and ``bidirectional``. Inputs are
    ``(n, T, F)`` frames or ``(n, n_samples)`` waveforms (cut into frames of ``frame_length``).

    Parameters
    ----------
    hidden_size : int, default=100
        Units of each recurrent layer (per direction).
    num_layers : int, default=1
    dense_size : int, default=0
        Units of a dense ReLU layer before the output; 0 for none.
    pooling : {"mean", "last"}, default="mean"
        Classify from the mean output over time or the last step (final hidden state of each
        direction); see the module for the measurement behind the default.
    frame_length : int, default=100
        Samples per frame when the input is a waveform.
    dropout : float, default=0.0
        Between recurrent layers (when ``num_layers > 1``) and before the output layers.
    standardize : bool, default=False
        Inputs are not standardised: on the demo data's MFCC frames (fold 1 held out, mean
        pooling, 60 epochs) an LSTM reached 0.61 accuracy on raw coefficients and 0.30 on
        standardised ones, whose validation loss stalled at 1.55 against 0.95.

    Other Parameters
    ----------------
    optimizer, max_epochs, lr_schedule, warmup_epochs, label_smoothing, valid_fraction, ... :
        The sequence nets' training (:class:`~estimators._recipe.SequenceNetClassifier`: AdamW,
        warm-up + cosine, label smoothing 0.1, all 60 epochs on every clip; see the module for
        why no validation split), every other parameter of
        :class:`~estimators._torch.TorchClassifier` (``lr``, ``batch_size``, ``device``,
        ``random_state``, ...) and skorch's ``optimizer__*``, ``callbacks__*``, ...

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).standard_normal((12, 20, 13)).astype(np.float32)
    >>> y = np.repeat(["dog", "rain", "siren"], 4)
    >>> net = LSTMClassifier(hidden_size=8, pooling="mean", max_epochs=2, random_state=0).fit(X, y)
    >>> net.predict(X).shape, net.module_.rnn.hidden_size
    ((12,), 8)
    """

    cell = "lstm"
    bidirectional = False
    module_params = ("hidden_size", "num_layers", "dense_size", "pooling", "frame_length", "dropout")

    def __init__(self, module=RecurrentNet, *, hidden_size=100, num_layers=1, dense_size=0, pooling="mean",
                 frame_length=100, dropout=0.0, standardize=False, **kwargs):
        super().__init__(module, standardize=standardize, **kwargs)
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dense_size = dense_size
        self.pooling = pooling
        self.frame_length = frame_length
        self.dropout = dropout

    def get_params_for(self, prefix):
        """TorchClassifier's; the module also gets the class's ``cell`` and ``bidirectional``."""
        params = super().get_params_for(prefix)
        if prefix == "module":
            fixed = {"cell": self.cell, "bidirectional": self.bidirectional}
            for name in set(fixed) & set(params):
                raise ValueError(f"module__{name}={params[name]!r}: {type(self).__name__} fixes {name}={fixed[name]!r}; "
                                 "choose the class (RNN, LSTM, GRU or BLSTMClassifier) instead")
            params.update(fixed)
        return params


class RNNClassifier(RecurrentClassifier):
    """An Elman RNN (tanh) classifier; parameters as :class:`RecurrentClassifier`."""

    cell = "rnn"


class LSTMClassifier(RecurrentClassifier):
    """An LSTM classifier; parameters as :class:`RecurrentClassifier`."""

    cell = "lstm"


class GRUClassifier(RecurrentClassifier):
    """A GRU classifier; parameters as :class:`RecurrentClassifier`."""

    cell = "gru"


class BLSTMClassifier(RecurrentClassifier):
    """A bidirectional LSTM classifier; parameters as :class:`RecurrentClassifier`."""

    cell = "lstm"
    bidirectional = True
