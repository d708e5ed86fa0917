"""The one base class of every torch network here: :class:`TorchClassifier`, a skorch classifier.

Everything the networks share lives here: input validation and casting, label encoding, the
validation split (stratified, grouped when ``groups`` are given, always drawn from the data passed
to ``fit``; see ``estimators/_split.py``), early stopping that restores the best epoch, optimizer
choice, gradient clipping, class weights, learning-rate schedules, seeding, device and thread
control, mixed precision (``precision``; see ``estimators/_precision.py``) and, on CUDA, pinned
batches copied without blocking (``estimators/_transfer.py``). Nothing in it writes a parameter:
after ``fit``, ``get_params()`` returns exactly what was set. A network module
(``estimators/<name>.py``) defines an ``nn.Module`` and a registered subclass of
:class:`TorchClassifier` whose ``__init__`` lists the module's hyperparameters as its own flat
parameters (``CNNClassifier(channels=..., batch_norm=...)``), named in ``module_params``.

A network module's ``__init__`` takes ``input_shape`` (the per-sample shape, e.g. ``(C, H, W)``)
and ``n_classes``, both filled in from the data at fit, then its own keyword-only hyperparameters
(the estimator's ``module_params``, or ``module__<name>`` on a plain TorchClassifier). Its
``forward`` takes a float32 batch and returns logits. It may declare the layouts it accepts in a
class attribute ``input_kinds``, a tuple of ``"image"`` ``(N, C, H, W)``, ``"sequence"``
``(N, T, F)`` and ``"waveform"`` ``(N, n_samples)``, the first being its main one;
:class:`TorchClassifier` checks ``X`` against it.

Training batches can be augmented on the fly (waveform augmentation, SpecAugment masks, mixup) by
the one parameter ``batch_augment``, a :class:`~estimators._augment.BatchAugment`;
:meth:`TorchClassifier.train_step_single` applies it, to training batches only.
"""

import contextlib
import dataclasses
import inspect
import math
import numbers
import warnings

import numpy as np
import torch
from torch import nn
from sklearn.utils import check_random_state, compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_consistent_length, column_or_1d
from skorch import NeuralNetClassifier
from sklearn.metrics import balanced_accuracy_score
from skorch.callbacks import EarlyStopping, EpochScoring, GradientNormClipping, LRScheduler
from skorch.dataset import unpack_data
from skorch.utils import is_dataset, to_numpy, to_tensor
from torch.utils.data import Subset

from estimators._augment import WAVEFORM_BOUNDS, BatchAugment, mixup_loss
from estimators._calibrate import TemperatureScaling
from estimators._crops import TIME_AXES, covering_windows, mean_log_proba, random_crop
from estimators._phases import PhasedEarlyStopping
from estimators._precision import (autocast, check_device_support, check_module_support, check_precision,
                                   grad_scaler, to_float32)
from estimators._schedules import WarmupCosine
from estimators._sampling import balanced_sampler, dataset_targets
from estimators._split import validation_split
from estimators._stream_data import BatchStream, StreamDataset, check_stored, is_stored, unwrap
from estimators._transfer import is_cuda, pins_memory, to_device

#: Layouts of ``X`` a network can declare in ``input_kinds``: accepted ``X.ndim``, a description,
#: and the feature kinds of the store that give it (after the pipeline's transposition).
INPUT_KINDS = {
    "image": ((4, 3), "images of shape (n_samples, C, H, W) or (n_samples, H, W)",
              "stft, mel, mrp, stacked"),
    "sequence": ((3,), "sequences of shape (n_samples, T, F)", "mfcc, mel"),
    "waveform": ((2,), "waveforms of shape (n_samples, n_samples_per_clip)", "raw"),
}

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
LR_SCHEDULES = (None, "cosine", "warmup_cosine", "step", "plateau")
#: Validation scores that early stopping can monitor, and whether lower is better.
MONITORS = {"valid_loss": True, "valid_acc": False, "valid_balanced_acc": False}
#: The parameters of early stopping, which act only with a validation split.
STOPPING_PARAMS = ("monitor", "min_epochs", "patience")
#: The old flat parameters of training-batch augmentation, now fields of ``batch_augment``; still
#: accepted by ``set_params``, with a FutureWarning.
DEPRECATED_AUGMENT_PARAMS = (*WAVEFORM_BOUNDS, "freq_mask", "time_mask", "n_masks", "mixup_alpha")


def dense_head(n_inputs, hidden_sizes, n_classes, dropout):
    """A fully connected classifier head: ``Linear -> ReLU -> Dropout`` per hidden size, then the logits.

    Parameters
    ----------
    n_inputs : int
    hidden_sizes : sequence of int
    n_classes : int
    dropout : float

    Returns
    -------
    torch.nn.Sequential
        Maps ``(N, n_inputs)`` to logits ``(N, n_classes)``.
    """
    layers, width = [], n_inputs
    for hidden in hidden_sizes:
        layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
        width = hidden
    return nn.Sequential(*layers, nn.Linear(width, n_classes))


def output_shape(module, input_shape):
    """Per-sample shape of ``module``'s output for per-sample input shape ``input_shape``.

    Runs one forward pass on a zero batch of one sample (in eval mode, without gradients), so
    that networks size their dense layers from the actual input rather than a hard-coded size.

    Raises
    ------
    ValueError
        If the input is too small for the module (e.g. shorter than a kernel).
    """
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            return tuple(module(torch.zeros((1, *input_shape))).shape[1:])
    except RuntimeError as error:
        raise ValueError(
            f"input of per-sample shape {tuple(input_shape)} is too small for "
            f"{type(module).__name__}: {error}"
        ) from error
    finally:
        module.train(was_training)


def _valid_accuracy(net, X, y):
    """Accuracy on a validation dataset whose targets are class indices (not the labels).

    Of the clip-level predictions: with ``crop``, the validation pass already averages the
    windows' probabilities (see :meth:`TorchClassifier.evaluation_step`).
    """
    logits = net.forward(X)  # served from skorch's cache of the validation pass while training
    return float(np.mean(to_numpy(logits).argmax(axis=1) == to_numpy(y)))


def _valid_balanced_accuracy(net, X, y):
    """Balanced accuracy (mean recall over the classes present) of the validation pass."""
    logits = net.forward(X)
    with warnings.catch_warnings():  # a class absent from a small validation split: expected
        warnings.simplefilter("ignore", UserWarning)
        return float(balanced_accuracy_score(to_numpy(y), to_numpy(logits).argmax(axis=1)))


class TorchClassifier(NeuralNetClassifier):
    """A scikit-learn classifier training a torch network, built on skorch's ``NeuralNetClassifier``.

    A registered net is a subclass that lists its module's hyperparameters as its own parameters
    (class attribute ``module_params``; see :meth:`get_params_for`). All skorch parameters keep
    working: ``module__*`` (the network's hyperparameters, on a plain TorchClassifier),
    ``optimizer__*`` (e.g. ``optimizer__weight_decay``), ``callbacks``, ``callbacks__*``,
    ``iterator_train__*``, ``warm_start``; ``history``, ``partial_fit``, ``save_params`` too.

    ``X`` may also be :class:`~featurestore.streaming.StoredRows`, rows of the store read on demand
    (what an experiment's ``FeatureLoader`` gives past the memory budget): the net then validates
    and standardises it in one streamed pass and trains batch by batch, in a chunk-aware shuffled
    order read ahead by a background thread (``estimators/_stream_data.py``); the validation split,
    crops, augmentation and ``predict_proba`` work as with an array.

    Training-batch augmentation is one parameter, ``batch_augment`` (see
    :class:`~estimators._augment.BatchAugment`): every training batch is augmented anew as it is
    drawn; validation batches, ``predict``, ``predict_proba``, ``score`` and ``forward`` never are.
    A grid reaches its fields as ``batch_augment__time_mask`` (``model__batch_augment__time_mask``
    in a pipeline).

    Parameters
    ----------
    module : torch.nn.Module subclass
        The network. It is built at fit as ``module(input_shape=..., n_classes=..., **module__*)``
        with the per-sample shape of ``X`` and the number of classes; it must return logits.
    criterion : torch loss class, default=torch.nn.CrossEntropyLoss
        Applied to the logits; ``predict_proba`` applies the softmax.
    optimizer : {"adam", "adamw", "sgd"} or torch.optim.Optimizer subclass, default="adam"
        ``"sgd"`` is SGD with Nesterov momentum 0.9 (override with ``optimizer__momentum``);
        ``"adamw"`` is AdamW (decoupled weight decay, torch's default ``weight_decay=0.01``;
        set it with ``optimizer__weight_decay``). Strings let a JSON grid switch optimizers.
    lr : float, default=1e-3
    max_epochs : int, default=20
    batch_size : int, default=32
        Training batches are shuffled. A final batch of a single sample is dropped (it would
        break batch normalisation); set ``iterator_train__drop_last`` to decide yourself.
    valid_fraction : float in (0, 1) or None, default=0.2
        Fraction of the training data given to ``fit`` held out for validation, early stopping and
        the restoring of the best epoch: stratified, and grouped when ``fit`` gets ``groups``
        (see :func:`estimators._split.validation_split`). ``None`` or 0: no validation and no
        early stopping (``monitor``, ``min_epochs`` or ``patience`` set away from their defaults
        then warn at fit that they do nothing).
    patience : int, default=5
        Epochs without improvement of the ``monitor``-ed validation score before stopping; the
        weights of the best epoch by that score are restored at the end of training.
    monitor : {"valid_loss", "valid_acc", "valid_balanced_acc"}, default="valid_loss"
        The validation score that early stopping watches (and ``lr_schedule="plateau"``): the
        loss, the accuracy or the balanced accuracy of the validation split, all computed on
        clip-level predictions (window-averaged with ``crop``). The validation loss of a net
        often rises while its accuracy still improves (it grows confident on the clips it gets
        wrong): monitoring the accuracy keeps the epoch that classifies best.
    min_epochs : int >= 1, default=1
        Early stopping may stop only from this epoch on (1-based); before it, the best epoch is
        still tracked but epochs without improvement do not count towards ``patience``.
    clip_grad_norm : float or None, default=None
        Clip the gradients' global L2 norm to this value (skorch ``GradientNormClipping``).
    class_weight : None, "balanced" or dict, default=None
        Weights of the classes in the loss, as in scikit-learn (computed from ``y`` at fit; see
        ``class_weight_``).
    lr_schedule : {None, "cosine", "warmup_cosine", "step", "plateau"}, default=None
        Learning-rate schedule by epoch (skorch ``LRScheduler`` named ``"lr_scheduler"``, so its
        settings can be changed, e.g. ``callbacks__lr_scheduler__gamma=0.5``): cosine annealing
        over ``max_epochs``; a linear warm-up over ``warmup_epochs`` then cosine annealing over
        the rest of ``max_epochs`` (:class:`~estimators._schedules.WarmupCosine`); step decay by
        10 every ``max_epochs // 3`` epochs; or decay by 10 when the ``monitor``-ed score (the
        training loss without validation) stalls for ``max(1, patience // 2)`` epochs. The
        learning rate of each epoch is in ``history_[:, "event_lr"]``.
    warmup_epochs : int >= 0, default=0
        Epochs of linear warm-up of ``lr_schedule="warmup_cosine"`` (at most ``max_epochs - 1``
        are used); ignored by the other schedules.
    label_smoothing : float in [0, 1), default=0.0
        Label smoothing of the cross-entropy, passed to the criterion as ``label_smoothing``
        (``criterion__label_smoothing`` wins if set too). A criterion without that argument
        raises ValueError at fit when it is nonzero.
    crop : int >= 1 or None, default=None
        Train on random fixed-length crops, predict by window averaging (see
        ``estimators/_crops.py``). The length is along the time axis: frames of an image
        ``(n, C, H, W)`` (its last axis), steps of a sequence ``(n, T, F)``, samples of a
        waveform. Every sample of every training batch gets a new crop (drawn from torch's
        generator, so reproducible with ``random_state``); the network is built for inputs of
        ``crop`` steps. ``predict_proba``, ``score`` and the validation pass that early stopping
        scores give a clip the mean of the softmax over windows of ``crop`` steps covering it
        (50 % overlap, the last window ending at the clip's end: the rule of
        :func:`pipelines.segments.window_starts`), so clips of any length can be predicted.
        Clips shorter than ``crop`` are padded with zeros after standardisation (the training
        mean). Crops and windows are cut batch by batch: memory stays that of a batch. None:
        whole clips.
    calibrate : bool, default=False
        Temperature scaling (Guo et al., 2017): after training, one temperature ``T`` is fitted
        on the validation split (clip-level outputs, best epoch's weights) and ``predict_proba``
        returns ``softmax(output / T)``; predictions do not change, confidences do (see
        ``temperature_``). Needs a validation split (``valid_fraction`` or ``train_split``).
    random_state : int, RandomState instance or None, default=None
        Seeds the weights' initialisation, dropout, shuffling and the validation split. An int
        makes fits repeatable; torch's global random state is left as it was.
    device : "auto", "cpu", "cuda", ... default="auto"
        ``"auto"`` uses CUDA when available, else the CPU. It stays ``"auto"`` in
        ``get_params()``; the attribute ``device``, which skorch reads wherever it places tensors,
        is the resolved device (resolved at each read, so a net unpickled on a machine without
        CUDA runs on its CPU).
        On CUDA, batches are collated into pinned memory (the data loaders' ``pin_memory``,
        unless ``iterator_train__pin_memory`` or ``iterator_valid__pin_memory`` say otherwise)
        and copied to the GPU with ``non_blocking=True``; on the CPU nothing of this happens.
        Rows streamed from the store (past the memory budget) are not pinned: their copies
        are synchronous.
    precision : {"32", "bf16-mixed", "16-mixed"}, default="32"
        Arithmetic of the forward passes, named as in Lightning: float32; or
        :func:`torch.autocast` with bfloat16 or float16 (convolutions and matrix products in the
        lower precision, weights, gradients, optimizer state, losses and the softmax in float32).
        ``"16-mixed"`` also scales the loss (:class:`torch.amp.GradScaler`): gradients are
        unscaled before they are clipped (``clip_grad_norm``), and a step whose gradients are
        not finite is skipped. ``"bf16-mixed"`` needs a GPU of compute capability 8.0 or later
        (or the CPU, where it is the useful one); ``"16-mixed"`` is meant for GPUs (it runs on
        the CPU too, slowly; not with an LSTM, refused there). See ``estimators/_precision.py``.
    n_threads : int or None, default=None
        torch's intra-op threads while fitting and predicting (restored afterwards), so that
        parallel workers do not oversubscribe the cores; None leaves torch's setting.
    standardize : bool, default=True
        Scale inputs by the mean and standard deviation of the training data: per channel for
        images ``(n, C, H, W)``, per feature for sequences ``(n, T, F)``, one pair for waveforms.
        Log-mel features in dB span tens of units, which untuned nets train poorly on. The
        statistics come from the data given to ``fit`` only (no test data leaks in).
    verbose : int, default=0
    train_split : callable or None, default=None
        skorch's hook, for experts: a callable ``(dataset, y) -> (train, valid)`` replacing the
        split of ``valid_fraction`` (``groups`` are then not used). None uses ``valid_fraction``.
    sr : number > 0, default=22050
        Sampling rate of waveform inputs, in Hz (a run setting: the feature set's); used by
        ``batch_augment``'s ``pitch_shift`` and by front ends that need it.
    balanced_batches : bool, default=False
        Draw each epoch's training rows with every class about equally likely (with replacement;
        see :func:`estimators._sampling.balanced_sampler`) instead of shuffling them: for
        imbalanced classes. Validation rows are never resampled.
    batch_augment : BatchAugment or None, default=BatchAugment()
        Augmentation of the training batches (waveform augmentation, SpecAugment masks, mixup);
        the default (or None) augments nothing and draws no random number. An augmentation that
        does not apply to ``X`` (a waveform bound on a spectrogram net, a mask on waveforms or
        wider than its axis) raises ValueError at fit. The old flat parameters (``time_mask=8``,
        ...) are still accepted by ``set_params``, with a FutureWarning.
    **kwargs
        skorch's prefixed parameters: ``module__*``, ``optimizer__*``, ``criterion__*``,
        ``callbacks__*``, ``iterator_train__*``, ``iterator_valid__*``, ``dataset__*``, and
        skorch's other parameters (``callbacks``, ``warm_start``, ``classes``, ...).

    Attributes
    ----------
    classes_ : np.ndarray [shape=(n_classes,)]
        The labels (strings or integers), in the order of ``predict_proba``'s columns.
    input_shape_ : tuple of int
        Per-sample shape of ``X`` at fit (with the channel axis added to 3-D images): that of the
        module's input, but with ``crop`` steps along the time axis when ``crop`` is set.
    n_features_in_ : int
        ``X.shape[1]`` at fit, as in scikit-learn (the first axis of a sample).
    class_weight_ : np.ndarray [shape=(n_classes,)] or None
    temperature_ : float
        With ``calibrate=True`` only: the fitted temperature.
    grad_scaler_ : torch.amp.GradScaler or None
        The loss scaler of ``precision="16-mixed"`` (kept by ``partial_fit`` and ``warm_start``,
        new at a fresh ``fit``); None otherwise.
    module_, optimizer_, criterion_, history_ :
        skorch's: the trained network, its optimizer and loss, the per-epoch history.
    """

    #: Names of this class's own parameters that are the module's constructor arguments: a
    #: registered net lists its module's knobs in its ``__init__`` (``hidden_size=100``) and here,
    #: and they reach the module at fit (see :meth:`get_params_for`).
    module_params = ()
    #: Run settings an experiment sets (see :func:`estimators.run_params`): the seed, the torch
    #: device and its precision, the epoch limit, torch's threads and the sampling rate of the
    #: feature set.
    run_params = ("random_state", "device", "precision", "max_epochs", "n_threads", "sr")

    def __init__(
        self,
        module,
        *,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer="adam",
        lr=1e-3,
        max_epochs=20,
        batch_size=32,
        valid_fraction=0.2,
        patience=5,
        clip_grad_norm=None,
        class_weight=None,
        lr_schedule=None,
        warmup_epochs=0,
        label_smoothing=0.0,
        monitor="valid_loss",
        min_epochs=1,
        crop=None,
        calibrate=False,
        random_state=None,
        device="auto",
        precision="32",
        n_threads=None,
        standardize=True,
        verbose=0,
        train_split=None,
        sr=22050,
        batch_augment=BatchAugment(),
        balanced_batches=False,
        **kwargs,
    ):
        super().__init__(
            module,
            criterion=criterion,
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            device=device,
            verbose=verbose,
            train_split=train_split,
            **kwargs,
        )
        self.valid_fraction = valid_fraction
        self.patience = patience
        self.clip_grad_norm = clip_grad_norm
        self.class_weight = class_weight
        self.lr_schedule = lr_schedule
        self.warmup_epochs = warmup_epochs
        self.label_smoothing = label_smoothing
        self.monitor = monitor
        self.min_epochs = min_epochs
        self.crop = crop
        self.calibrate = calibrate
        self.random_state = random_state
        self.precision = precision
        self.n_threads = n_threads
        self.standardize = standardize
        self.sr = sr
        self.batch_augment = batch_augment
        self.balanced_batches = balanced_batches

    # ------------------------------------------------------------------------------ fitting
    def fit(self, X, y, groups=None, **fit_params):
        """Train a new network on ``X``, ``y`` (continue training if ``warm_start``).

        Parameters
        ----------
        X : array-like, float
            Per the network's ``input_kinds``: images ``(n, C, H, W)`` (or ``(n, H, W)``),
            sequences ``(n, T, F)`` or waveforms ``(n, n_samples)``.
        y : array-like [shape=(n,)]
            Labels: strings or integers, at least two distinct.
        groups : array-like [shape=(n,)] or None
            Group of each row; the validation split then keeps every group on one side.
        **fit_params
            Passed to the module's ``forward``, as in skorch.

        Returns
        -------
        self
        """
        reset = not self.warm_start or not self.initialized_
        vars(self).pop("temperature_", None)  # fitted anew at the end of training, if calibrate
        return self._fit(X, y, groups, reset=reset, classes=None, **fit_params)

    def partial_fit(self, X, y, classes=None, groups=None, **fit_params):
        """Train for ``max_epochs`` more epochs without re-initialising a fitted network.

        ``classes`` (all the labels) is needed at the first call when that call's ``y`` does not
        hold all of them (or pass the skorch parameter ``classes``).
        """
        return self._fit(X, y, groups, reset=not self.initialized_, classes=classes, **fit_params)

    def _fit(self, X, y, groups, *, reset, classes, **fit_params):
        self._check_params()
        epochs_done = 0 if reset else len(self.history)
        with self._threads(), self._seeded(epochs_done) as seed:
            X = self._check_X(X, reset=reset)
            self._augmentation().check(self._trained_shape(X.shape), self._layout(X.ndim))
            if reset:
                self._learn_classes(y, classes)
            y = self._encode_y(y, X)
            if groups is not None:
                groups = column_or_1d(groups)
                check_consistent_length(y, groups)
            if reset:
                self.initialize()
            check_module_support(self.precision, self.device, self.module_)
            self._prepare_grad_scaler(reset)
            self._split_args_ = (groups, seed)
            try:
                super().partial_fit(X, y, **fit_params)
            finally:
                del self._split_args_
        return self

    def _check_params(self):
        def fail(name, must):
            raise ValueError(f"{name}={getattr(self, name)!r} must be {must}")

        vf = self.valid_fraction
        if vf is not None and not (isinstance(vf, numbers.Real) and 0 <= vf < 1):
            fail("valid_fraction", "a number in [0, 1), or None")
        if not (isinstance(self.patience, numbers.Integral) and self.patience >= 1):
            fail("patience", "a positive integer")
        if self.clip_grad_norm is not None and not (
            isinstance(self.clip_grad_norm, numbers.Real) and self.clip_grad_norm > 0
        ):
            fail("clip_grad_norm", "a positive number or None")
        if not (self.class_weight is None or isinstance(self.class_weight, dict)
                or _is_string(self.class_weight, "balanced")):
            fail("class_weight", "None, 'balanced' or a dict {label: weight}")
        if not (self.lr_schedule is None or _is_string(self.lr_schedule, *LR_SCHEDULES[1:])):
            fail("lr_schedule", f"one of {LR_SCHEDULES}")
        if isinstance(self.optimizer, str) and self.optimizer.lower() not in OPTIMIZERS:
            fail("optimizer", f"one of {sorted(OPTIMIZERS)} or a torch.optim.Optimizer class")
        if self.n_threads is not None and not (
            isinstance(self.n_threads, numbers.Integral) and self.n_threads >= 1
        ):
            fail("n_threads", "a positive integer or None")
        if not (_is_real(self.sr) and 0 < self.sr < math.inf):
            fail("sr", "a positive number of Hz")
        if not (self.batch_augment is None or isinstance(self.batch_augment, BatchAugment)):
            fail("batch_augment", "a BatchAugment or None")
        if not (_is_integer(self.warmup_epochs) and self.warmup_epochs >= 0):
            fail("warmup_epochs", "an integer >= 0")
        if not (_is_real(self.label_smoothing) and 0 <= self.label_smoothing < 1):
            fail("label_smoothing", "a number in [0, 1)")
        if not _is_string(self.monitor, *MONITORS):
            fail("monitor", f"one of {tuple(MONITORS)}")
        if not (_is_integer(self.min_epochs) and self.min_epochs >= 1):
            fail("min_epochs", "a positive integer")
        if self.crop is not None and not (_is_integer(self.crop) and self.crop >= 1):
            fail("crop", "a positive integer (steps along the time axis) or None")
        if not isinstance(self.calibrate, (bool, np.bool_)):
            fail("calibrate", "True or False")
        if self.calibrate and not self._validates():
            fail("calibrate", "False without a validation split (valid_fraction=None): the "
                              "temperature is fitted on it")
        inert = [f"{name}={getattr(self, name)!r}" for name in STOPPING_PARAMS
                 if getattr(self, name) != _init_default(type(self), name)]
        if inert and not self._validates():
            # the spectrogram nets' default holds no split out: a patience carried over from an older
            # command would otherwise be ignored without a word
            warnings.warn(f"{', '.join(inert)} set, but {type(self).__name__} holds no validation split out "
                          "(valid_fraction=None), so it never stops early: pass valid_fraction=0.2 for early "
                          "stopping", UserWarning, stacklevel=3)
        check_device_support(check_precision(self.precision), self.device)

    def _prepare_grad_scaler(self, reset):
        """Set ``grad_scaler_``: a new one at a fresh fit or when ``precision`` changed to or from
        ``"16-mixed"``; a continued fit keeps the scale it reached."""
        kept = getattr(self, "grad_scaler_", None)
        if reset or (self.precision == "16-mixed") != (kept is not None):
            self.grad_scaler_ = grad_scaler(self.precision, self.device)

    def _trained_shape(self, shape):
        """Shape of the batches the network trains on: ``shape`` with ``crop`` steps of time."""
        if self.crop is None:
            return tuple(shape)
        layout = self._layout(len(shape))
        if layout not in TIME_AXES:
            raise ValueError(
                f"crop={self.crop!r} needs a time axis: images (n, C, H, W), sequences (n, T, F) or "
                f"waveforms (n, n_samples) of a net declaring them; X has shape {tuple(shape)}"
            )
        shape = list(shape)
        shape[TIME_AXES[layout]] = self.crop
        return tuple(shape)

    def _augmentation(self):
        """``batch_augment``, with None read as no augmentation."""
        return BatchAugment() if self.batch_augment is None else self.batch_augment

    def _layout(self, ndim):
        """Layout of validated inputs of ``ndim`` axes: "image", "sequence", "waveform" or None."""
        if ndim == 2:
            return "waveform" if "waveform" in self._input_kinds() else None
        return {4: "image", 3: "sequence"}.get(ndim)

    # ------------------------------------------------------------------ the training step
    def train_step_single(self, batch, **fit_params):
        """skorch's training step, on a batch cropped (``crop``) and augmented (``batch_augment``).

        The one place where training batches are cropped and augmented (validation batches go
        through :meth:`validation_step` instead): first a random crop of every sample, then the
        augmentation. With mixup the loss is ``lam * loss(y) + (1 - lam) * loss(y[perm])``.
        Without crops and augmentation this is skorch's step itself, with no extra random draw.
        The forward pass runs under ``precision``'s autocast (:meth:`infer`); with
        ``"16-mixed"`` the scaled loss is back-propagated and the gradients are unscaled here,
        before skorch's ``on_grad_computed`` (gradient clipping) reads them.

        Returns
        -------
        dict
            ``{"loss": loss, "y_pred": y_pred}``, as skorch's (``y_pred`` of the augmented batch;
            ``loss`` unscaled, float32).
        """
        augment = self._augmentation()
        self._set_training(True)
        Xi, yi = self._batch_on_device(batch)
        mix = None
        if not (augment.is_identity and self.crop is None):
            Xi = to_device(Xi, self.device)
            layout = self._layout(Xi.dim())
            if self.crop is not None:
                Xi = random_crop(Xi, self.crop, axis=TIME_AXES[layout])
            Xi, mix = augment(Xi, layout=layout, sr=self.sr)
        y_pred = self.infer(Xi, **fit_params)
        if mix is None:
            loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        else:
            yi = to_device(yi, self.device)
            loss = mixup_loss(lambda pred, target: self.get_loss(pred, target, X=Xi, training=True),
                              y_pred, yi, *mix)
        self._backward(loss)
        return {"loss": loss, "y_pred": y_pred}

    def _batch_on_device(self, batch):
        """``(Xi, yi)`` of ``batch``, copied to a CUDA device without blocking; as they are elsewhere
        (skorch's ``infer`` and ``get_loss`` convert them, as they always did)."""
        Xi, yi = unpack_data(batch)
        if not is_cuda(self.device):
            return Xi, yi
        return to_device(Xi, self.device), (None if yi is None else to_device(yi, self.device))

    def _backward(self, loss):
        """``loss.backward()``; with a loss scaler, of the scaled loss, then the gradients unscaled."""
        scaler = getattr(self, "grad_scaler_", None)
        if scaler is None:
            loss.backward()
            return
        scaler.scale(loss).backward()
        for name in self._optimizers:  # once per step: _step_optimizer calls this step only once
            scaler.unscale_(getattr(self, name + "_"))

    def _step_optimizer(self, step_fn):
        """skorch's; with a loss scaler, the step goes through it (skipped if the gradients are not
        finite) and the scale is updated. A scaler takes no closure: ``step_fn`` runs once first,
        as skorch's ``AccelerateMixin`` does (so LBFGS cannot train with ``"16-mixed"``)."""
        scaler = getattr(self, "grad_scaler_", None)
        if scaler is None:
            return super()._step_optimizer(step_fn)
        step_fn()
        for name in self._optimizers:
            scaler.step(getattr(self, name + "_"))
        scaler.update()
        return None

    def infer(self, x, **fit_params):
        """skorch's forward pass of the module, under ``precision``'s autocast; the output in float32.

        Every forward pass goes through here: training, validation, the windows of ``crop``,
        ``predict_proba`` and ``forward``. The backward pass runs outside autocast, as torch
        recommends.
        """
        with autocast(self.precision, self.device):
            output = super().infer(x, **fit_params)
        return to_float32(output)

    def infer_clips(self, Xi, **fit_params):
        """The module's output on whole clips: with ``crop``, the log of the mean softmax over the
        windows covering each clip; without, skorch's ``infer`` (the logits).

        Returning ``log(mean probability)`` in place of logits keeps skorch's arithmetic right:
        its softmax is the mean probability, and the cross-entropy of it is the clip's loss. The
        validation pass (:meth:`validation_step`) and predictions (:meth:`evaluation_step`:
        ``predict_proba``, ``forward``) go through here; training batches do not (they are
        cropped at random instead).

        Parameters
        ----------
        Xi : torch.Tensor or array [shape=(batch_size, ...)]

        Returns
        -------
        torch.Tensor [shape=(batch_size, n_classes)]
        """
        if self.crop is None:
            return self.infer(Xi, **fit_params)
        Xi = to_tensor(Xi, device=self.device)
        windows, n_windows = covering_windows(Xi, self.crop, axis=TIME_AXES[self._layout(Xi.dim())])
        return mean_log_proba(self.infer(windows, **fit_params), n_windows)

    def validation_step(self, batch, **fit_params):
        """skorch's, on whole clips (:meth:`infer_clips`): the validation scores are clip-level."""
        self._set_training(False)
        Xi, yi = self._batch_on_device(batch)
        with torch.no_grad():
            y_pred = self.infer_clips(Xi, **fit_params)
            loss = self.get_loss(y_pred, yi, X=Xi, training=False)
        return {"loss": loss, "y_pred": y_pred}

    def evaluation_step(self, batch, training=False):
        """skorch's, on whole clips (:meth:`infer_clips`), divided by ``temperature_`` if calibrated."""
        self.check_is_fitted()
        Xi, _ = self._batch_on_device(batch)
        with torch.set_grad_enabled(training):
            self._set_training(training)
            output = self.infer_clips(Xi)
        temperature = getattr(self, "temperature_", None)
        return output if temperature is None or training else output / temperature

    # ------------------------------------------------------------------- data validation
    def _net_name(self):
        module = self.module
        return (module if isinstance(module, type) else type(module)).__name__

    def _input_kinds(self):
        module = self.module
        return tuple(getattr(module if isinstance(module, type) else type(module), "input_kinds", ()))

    def _check_X(self, X, *, reset):
        """``X`` validated and cast to float32 (the one place where that happens)."""
        if is_stored(X):  # rows read on demand from the store: checked and standardised batch by batch
            return check_stored(self, X, reset=reset)
        X = check_array(X, allow_nd=True, ensure_2d=False, dtype=np.float32,
                        ensure_all_finite=False, estimator=self, input_name="X")
        if X.size and not np.isfinite(X.sum()) and not np.isfinite(X).all():
            bad = (~np.isfinite(X.reshape(len(X), -1))).any(axis=1).sum()
            raise ValueError(f"{self._net_name()} does not accept NaN or infinite values in X; "
                             f"{bad} of {len(X)} samples have some")
        n_features = X.shape[1] if X.ndim > 1 else None
        kinds = self._input_kinds()
        if kinds:
            if not any(X.ndim in INPUT_KINDS[kind][0] for kind in kinds):
                raise ValueError(self._shape_error(X.shape, kinds))
            if "image" in kinds and X.ndim == 3:  # one channel
                X = X[:, np.newaxis]
        elif X.ndim < 2:
            raise ValueError(f"{self._net_name()} expects an array of samples; got shape {X.shape}")
        if reset:
            self.n_features_in_ = n_features  # scikit-learn's: X.shape[1] as given
            self.input_shape_ = tuple(X.shape[1:])
            self.input_mean_, self.input_std_ = _input_statistics(X) if self.standardize else (None, None)
        if getattr(self, "input_mean_", None) is not None:
            X = (X - self.input_mean_) / self.input_std_
        return X

    def _shape_error(self, shape, kinds):
        _, what, features = INPUT_KINDS[kinds[0]]
        message = f"{self._net_name()} expects {what} such as feature kinds {features}"
        others = [f"{INPUT_KINDS[k][1]} such as feature kinds {INPUT_KINDS[k][2]}" for k in kinds[1:]]
        if others:
            message += f" (or {' or '.join(others)})"
        message += f"; got shape {tuple(shape)}"
        if len(shape) == 1:
            message += ". Reshape your data with X[np.newaxis] if it holds a single sample"
        return message

    def _learn_classes(self, y, classes):
        if y is None:
            raise ValueError(f"{self._net_name()} requires y to be passed, but the target y is None")
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if self.classes is not None:
            labels = np.asarray(self.classes)
        elif classes is not None:
            labels = np.asarray(classes)
        else:
            labels = np.unique(y)
        if len(labels) < 2:
            raise ValueError(f"{self._net_name()} needs samples of at least 2 classes; "
                             f"got 1 class: {labels.tolist()[0]!r}")
        self.classes_inferred_ = labels
        self.class_weight_ = (
            None if self.class_weight is None
            else compute_class_weight(self.class_weight, classes=labels, y=y)
        )

    def _encode_y(self, y, X):
        """Labels ``y`` as int64 indices into ``classes_`` (the one place where ``y`` is cast)."""
        if y is None:
            raise ValueError(f"{self._net_name()} requires y to be passed, but the target y is None")
        y = column_or_1d(y, warn=True)
        check_consistent_length(X, y)
        classes = self.classes_
        order = np.argsort(classes, kind="stable")
        position = np.searchsorted(classes, y, sorter=order)
        codes = order[np.clip(position, 0, len(classes) - 1)]
        unknown = classes[codes] != y
        if unknown.any():
            raise ValueError(
                f"y contains labels not among classes_ {classes.tolist()}: "
                f"{np.unique(y[unknown]).tolist()}"
            )
        return codes.astype(np.int64)

    def check_data(self, X, y):
        """Nothing to do: ``fit`` validated ``X`` and encoded ``y`` before the training loop.

        (skorch's version would re-infer ``classes_`` from the encoded targets.)
        """

    # ---------------------------------------------------------------------- prediction
    def predict_proba(self, X):
        """Class probabilities (softmax of the logits), columns in the order of ``classes_``.

        Returns
        -------
        proba : np.ndarray [shape=(n_samples, n_classes)], float64
        """
        self.check_is_fitted()
        if not is_dataset(X):
            X = self._check_X(X, reset=False)
        with self._threads():
            proba = super().predict_proba(X).astype(np.float64)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X):
        """Predicted labels, taken from ``classes_``."""
        indices = self.predict_proba(X).argmax(axis=1)  # checks first that the net is fitted
        return self.classes_[indices]

    def forward_iter(self, X, training=False, device="cpu"):
        """skorch's, with ``n_threads``."""
        with self._threads():
            yield from super().forward_iter(X, training=training, device=device)

    # ---------------------------------------------------------- skorch's initialisation hooks
    def initialize_module(self):
        """Build the module with ``input_shape`` and ``n_classes`` taken from the fit's data."""
        kwargs = self.get_params_for("module")
        inferred = {"input_shape", "n_classes"} & set(kwargs)
        if inferred:
            raise ValueError(
                f"module__{' and module__'.join(sorted(inferred))} are set from the data at fit; "
                "do not pass them"
            )
        if not hasattr(self, "input_shape_"):
            raise ValueError(
                f"{type(self).__name__} sizes the network from the data: call fit or partial_fit "
                "rather than initialize"
            )
        shape = self._trained_shape((0, *self.input_shape_))[1:]  # crop steps of time with crop
        kwargs.update(input_shape=shape, n_classes=len(self.classes_))
        self.module_ = self.initialized_instance(self.module, kwargs)
        return self

    def initialize_criterion(self):
        """The criterion, weighted by ``class_weight_`` when ``class_weight`` is set, smoothed by
        ``label_smoothing`` when it is nonzero."""
        kwargs = self.get_params_for("criterion")
        if self.class_weight is not None and "weight" not in kwargs:
            kwargs["weight"] = torch.as_tensor(self.class_weight_, dtype=torch.float32)
        if self.label_smoothing and "label_smoothing" not in kwargs:
            criterion = self.criterion if isinstance(self.criterion, type) else type(self.criterion)
            if "label_smoothing" not in inspect.signature(criterion).parameters:
                raise ValueError(f"label_smoothing={self.label_smoothing!r}: the criterion "
                                 f"{criterion.__name__} takes no label_smoothing argument; set "
                                 "label_smoothing=0.0 or use torch.nn.CrossEntropyLoss")
            kwargs["label_smoothing"] = float(self.label_smoothing)
        self.criterion_ = self.initialized_instance(self.criterion, kwargs)
        return self

    def initialize_optimizer(self):
        """The optimizer; the strings ``"adam"``, ``"adamw"`` and ``"sgd"`` (Nesterov, momentum 0.9) resolved."""
        args, kwargs = self.get_params_for_optimizer("optimizer", self.get_all_learnable_params())
        optimizer = self.optimizer
        if isinstance(optimizer, str):
            optimizer = OPTIMIZERS[optimizer.lower()]
            if optimizer is torch.optim.SGD:
                kwargs = {"momentum": 0.9, "nesterov": True, **kwargs}
        self.optimizer_ = optimizer(*args, **kwargs)
        return self

    def get_default_callbacks(self):
        """skorch's defaults (with an accuracy on class indices) plus those the parameters ask for."""
        callbacks = [
            (name, EpochScoring(_valid_accuracy, name="valid_acc", lower_is_better=False)
             if name == "valid_acc" else callback)
            for name, callback in super().get_default_callbacks()
        ]
        validates = self._validates()
        if self.clip_grad_norm is not None:
            callbacks.append(("gradient_clipping", GradientNormClipping(self.clip_grad_norm)))
        if validates and self.monitor == "valid_balanced_acc":
            callbacks.append(("valid_balanced_acc", EpochScoring(
                _valid_balanced_accuracy, name="valid_balanced_acc", lower_is_better=False)))
        if self.lr_schedule is not None:
            callbacks.append(("lr_scheduler", self._lr_scheduler(validates)))
        if validates:
            stopping = dict(monitor=self.monitor, lower_is_better=MONITORS.get(self.monitor, True),
                            patience=self.patience, load_best=True)
            callbacks.append(("early_stopping", EarlyStopping(**stopping) if self.min_epochs <= 1
                              else PhasedEarlyStopping(**stopping, start=self.min_epochs)))
        if validates and self.calibrate is True:  # last: after the best weights are restored
            callbacks.append(("temperature_scaling", TemperatureScaling()))
        return callbacks

    def _validates(self):
        return self.train_split is not None or bool(self.valid_fraction)

    def _lr_scheduler(self, validates):
        epochs = self._epochs_per_fit()
        if self.lr_schedule == "cosine":
            return LRScheduler("CosineAnnealingLR", T_max=epochs)
        if self.lr_schedule == "warmup_cosine":
            return LRScheduler("LambdaLR", lr_lambda=WarmupCosine(epochs, self.warmup_epochs))
        if self.lr_schedule == "step":
            return LRScheduler("StepLR", step_size=max(1, epochs // 3), gamma=0.1)
        monitor = self.monitor if validates else "train_loss"
        return LRScheduler("ReduceLROnPlateau", monitor=monitor,
                           mode="min" if MONITORS.get(monitor, True) else "max",
                           factor=0.1, patience=max(1, self.patience // 2))

    def _epochs_per_fit(self):
        """Epochs of one call of ``fit`` or ``partial_fit`` (without early stopping): ``max_epochs``.

        The horizon of ``lr_schedule``; a subclass whose fits last otherwise overrides it.
        """
        return self.max_epochs

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        """skorch's; ``epochs`` defaults to :meth:`_epochs_per_fit` rather than ``max_epochs``."""
        epochs = self._epochs_per_fit() if epochs is None else epochs
        return super().fit_loop(X, y, epochs=epochs, **fit_params)

    def get_split_datasets(self, X, y=None, **fit_params):
        """Training and validation datasets: ``valid_fraction`` of the rows given to ``fit``."""
        if self.train_split is not None or not self.valid_fraction:
            return super().get_split_datasets(X, y, **fit_params)
        groups, seed = getattr(self, "_split_args_", (None, None))
        dataset = self.get_dataset(X, y)
        train, valid = validation_split(y, groups, valid_fraction=self.valid_fraction,
                                        random_state=seed)
        return Subset(dataset, train), Subset(dataset, valid)

    def get_dataset(self, X, y=None):
        """skorch's; rows read on demand from the store (a StreamDataset) get their targets ``y``."""
        if isinstance(X, StreamDataset):
            return X.with_targets(y)
        return super().get_dataset(X, y)

    def get_iterator(self, dataset, training=False):
        """skorch's data loaders; training batches are shuffled by default; on CUDA, batches are
        collated into pinned memory by default (``iterator_*__pin_memory`` decides otherwise).
        Rows read on demand from the store get a :class:`~estimators._stream_data.BatchStream`."""
        stream = unwrap(dataset)
        if stream is not None:  # rows read on demand (estimators/_stream_data.py)
            return self._stream_iterator(stream, training)
        pin = {"pin_memory": True} if pins_memory(
            self.device, self.iterator_train if training else self.iterator_valid) else {}
        if not training:
            if not pin:
                return super().get_iterator(dataset, training=False)
            kwargs = self.get_params_for("iterator_valid")
            batch_size = kwargs.pop("batch_size", self.batch_size)
            batch_size = len(dataset) if batch_size == -1 else batch_size
            return self.iterator_valid(dataset, batch_size=batch_size, **{**pin, **kwargs})
        kwargs = self.get_params_for("iterator_train")
        batch_size = kwargs.pop("batch_size", self.batch_size)
        batch_size = len(dataset) if batch_size == -1 else batch_size
        lone_last_sample = len(dataset) > 1 and len(dataset) % batch_size == 1
        kwargs = {"shuffle": True, "drop_last": lone_last_sample, **pin, **kwargs}
        if self.balanced_batches:  # classes drawn equally instead of shuffled rows
            kwargs.update(shuffle=False, sampler=balanced_sampler(dataset_targets(dataset)))
        return self.iterator_train(dataset, batch_size=batch_size, **kwargs)

    def _stream_iterator(self, dataset, training):
        """A :class:`~estimators._stream_data.BatchStream` with the options ``get_iterator`` gives
        a DataLoader (batch size, ``drop_last``, ``balanced_batches``)."""
        kwargs = self.get_params_for("iterator_train" if training else "iterator_valid")
        batch_size = kwargs.pop("batch_size", self.batch_size)
        batch_size = len(dataset) if batch_size == -1 else batch_size
        if not training:
            return BatchStream(dataset, batch_size, drop_last=kwargs.get("drop_last", False))
        lone_last_sample = len(dataset) > 1 and len(dataset) % batch_size == 1
        sampler = balanced_sampler(dataset.y) if self.balanced_batches else None
        return BatchStream(dataset, batch_size, shuffle=kwargs.get("shuffle", True),
                           drop_last=kwargs.get("drop_last", lone_last_sample), sampler=sampler)

    # ----------------------------------------------------------- seeding, device, threads
    @contextlib.contextmanager
    def _seeded(self, offset):
        """Seed torch (restoring its state afterwards); yields the split's seed (or None)."""
        if self.random_state is None:
            yield None
            return
        if isinstance(self.random_state, numbers.Integral):
            seed = int(self.random_state)
        else:
            seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        seed = (seed + offset) % (2**31 - 1)  # a continued fit does not replay the same shuffles
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield seed

    @contextlib.contextmanager
    def _threads(self):
        """Apply ``n_threads`` to torch for the duration of one call (torch's setting is global)."""
        if self.n_threads is None:
            yield
            return
        n_threads = torch.get_num_threads()
        torch.set_num_threads(self.n_threads)
        try:
            yield
        finally:
            torch.set_num_threads(n_threads)

    # The parameter ``device`` is stored as given ("auto" included) in the instance's __dict__,
    # where scikit-learn's get_params, set_params and clone find it. skorch reads ``self.device``
    # wherever it places tensors and modules (its private _initialize_module, infer, get_loss,
    # load_params, unpickling); this property is that one read, with "auto" resolved, so that
    # no method has to write the parameter for the length of a call.
    @property
    def device(self):
        """The torch device that skorch computes on: the ``device`` parameter, ``"auto"`` resolved."""
        device = vars(self)["device"]
        return _auto_device() if _is_auto(device) else device

    @device.setter
    def device(self, value):
        vars(self)["device"] = value

    def get_params(self, deep=True, **kwargs):
        # skorch lists its private bookkeeping set ``_params_to_validate`` as a parameter; it is not
        # one (skorch rebuilds it from the keyword arguments in __init__), so clone leaves it out.
        params = super().get_params(deep=deep, **kwargs)
        params.pop("_params_to_validate", None)
        params["device"] = vars(self)["device"]  # as set, not the resolved attribute
        return params

    def set_params(self, **kwargs):
        kwargs = self._fold_augment_params(kwargs)
        # skorch 1.4 raises on a new component class (optimizer=..., say) for an initialised net;
        # like any plain parameter it takes effect when fit next initialises the net.
        for name in ("module", "criterion", "optimizer"):
            if name in kwargs:
                setattr(self, name, kwargs.pop(name))
        if not self.initialized_:
            return super().set_params(**kwargs)
        super().set_params(**kwargs)
        if set(kwargs) & set(self.module_params):  # as skorch does for module__*: a new network
            self.initialize()
        return self

    def _check_deprecated_params(self, **kwargs):
        """skorch's hook for the keyword arguments of ``__init__``: the old flat augmentation
        parameters are not ``__init__`` arguments any more (``set_params`` still takes them)."""
        for key in kwargs:
            if key in DEPRECATED_AUGMENT_PARAMS:
                raise TypeError(f"{type(self).__name__}.__init__ got {key}=...: it is a field of "
                                f"batch_augment now; pass batch_augment=BatchAugment({key}=...)")

    def _fold_augment_params(self, kwargs):
        """``kwargs`` with ``batch_augment__<field>`` (and the deprecated ``<field>``) folded into
        one new ``batch_augment``: a BatchAugment is frozen, so it is replaced, never changed in
        place (a default instance may be shared by many nets)."""
        fields = {}
        for key in list(kwargs):
            if key.startswith("batch_augment__"):
                fields[key[len("batch_augment__"):]] = kwargs.pop(key)
            elif key in DEPRECATED_AUGMENT_PARAMS:
                warnings.warn(f"{key} is deprecated for {type(self).__name__}; use "
                              f"batch_augment__{key} (or batch_augment=BatchAugment({key}=...))",
                              FutureWarning, stacklevel=3)
                fields[key] = kwargs.pop(key)
        if not fields:
            return kwargs
        augment = kwargs.get("batch_augment", self.batch_augment)
        base = BatchAugment() if augment is None else augment
        unknown = set(fields) - set(base.get_params())
        if unknown:
            raise ValueError(f"batch_augment has no field {sorted(unknown)[0]!r}; "
                             f"its fields: {', '.join(base.get_params())}")
        return {**kwargs, "batch_augment": dataclasses.replace(base, **fields)}

    def get_params_for(self, prefix):
        """skorch's; for ``"module"``, also this class's ``module_params`` under their own names.

        The old spelling ``module__<name>`` of such a parameter still works, with a FutureWarning,
        and wins over ``<name>``; ``module__sr`` is refused, since ``sr`` is also the estimator's.
        """
        params = super().get_params_for(prefix)
        if prefix != "module":
            return params
        for name in self.module_params:
            if name not in params:
                params[name] = getattr(self, name)
            elif name in self.run_params:
                raise ValueError(f"module__{name}={params[name]!r}: set the estimator's {name} instead")
            else:
                warnings.warn(f"module__{name} is deprecated for {type(self).__name__}; use {name}",
                              FutureWarning, stacklevel=2)
        return params

    def load_params(self, f_params=None, f_optimizer=None, f_criterion=None, f_history=None,
                    checkpoint=None, use_safetensors=False, **kwargs):
        """skorch's. It sets ``device`` to where it mapped the tensors; "auto" names that already."""
        device = vars(self)["device"]
        super().load_params(f_params=f_params, f_optimizer=f_optimizer, f_criterion=f_criterion,
                            f_history=f_history, checkpoint=checkpoint,
                            use_safetensors=use_safetensors, **kwargs)
        if _is_auto(device):
            self.device = device

    def __setstate__(self, state):
        # skorch maps the pickled tensors to state["device"], which must name a torch device.
        device = state.get("device")
        super().__setstate__({**state, "device": _auto_device()} if _is_auto(device) else state)
        if _is_auto(device):
            self.device = device

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        kinds = self._input_kinds()
        if kinds:
            tags.input_tags.two_d_array = "waveform" in kinds
            tags.input_tags.three_d_array = bool({"image", "sequence"} & set(kinds))
        tags.classifier_tags.poor_score = True  # a few epochs of a small net on toy data
        return tags


def _input_statistics(X):
    """Mean and standard deviation of ``X`` over all axes but the channel (4-D) or feature (3-D) one.

    Returns
    -------
    mean, std : np.ndarray, float32, broadcastable against ``X`` (std at least 1e-6)
    """
    axes = {4: (0, 2, 3), 3: (0, 1)}.get(X.ndim, tuple(range(X.ndim)))
    mean = X.mean(axis=axes, keepdims=True, dtype=np.float64)
    std = X.std(axis=axes, keepdims=True, dtype=np.float64)
    return mean.astype(np.float32), np.maximum(std, 1e-6).astype(np.float32)


def _is_integer(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _is_string(value, *options):
    return isinstance(value, str) and value in options


def _init_default(cls, name):
    """The default of parameter ``name`` in the ``__init__`` of the nearest class of ``cls``'s MRO
    that declares it (a registered net declares its own knobs and passes the rest on)."""
    for klass in cls.__mro__:
        parameters = inspect.signature(klass.__init__).parameters
        if name in parameters:
            return parameters[name].default
    return None


def _is_auto(device):
    return _is_string(device, "auto")


def _auto_device():
    return "cuda" if torch.cuda.is_available() else "cpu"
