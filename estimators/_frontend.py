"""Networks with a learnable front end on raw waveforms: :class:`FrontEndClassifier`.

From the DeepFourier study of learnable front ends (HeuriNet, MSTNet, and the learnable mel
transform of ``estimators/deepfourier.py``). Such a network is an ``nn.Module`` with two
sub-modules: ``front_end``, mapping waveforms ``(N, n_samples)`` to ``(N, bands, frames)`` maps,
and a backbone (named by the module's class attribute ``backbone_name``: ``"piczak"`` in HeuriNet
and MSTNet, ``"backbone"`` in DeepFourierNet) taking those maps as one-channel images. On top of
:class:`~estimators._torch.TorchClassifier`, :class:`FrontEndClassifier` adds three ways to train
them, all off by default (the default fit is exactly TorchClassifier's):

- ``freeze_front_end``: a front end frozen for the whole fit, or for its first N epochs;
- spectrogram forcing (``forcing_epochs``): before the fit, the front end alone is trained to
  reproduce the normalised log-mel spectrogram of the training clips (mean-squared error, Adam);
- the IceBreaker (``icebreaker``): phase 0 trains the backbone alone on those spectrograms, phase 1
  the front end under the frozen backbone, phase 2 also the backbone's first convolution, phase 3
  everything.

Freezing and the IceBreaker's phases 1 to 3 are skorch callbacks (``estimators/_phases.py``:
:class:`~estimators._phases.FreezeSchedule`, :class:`~estimators._phases.PhasedEarlyStopping`)
that the classifier adds to its default callbacks; forcing and phase 0 pre-train on other targets
before the fit, each with a plain skorch net (:func:`force_front_end`, :func:`pretrain_backbone`).
The spectrograms are the store's ``mel`` feature (``featurestore.features.get("mel").compute``, a
pure function) of the waveforms given to ``fit``: the estimator still takes waveforms only.
"""

import inspect
import math

import numpy as np
import torch
from skorch import NeuralNetClassifier, NeuralNetRegressor
from skorch.callbacks import EarlyStopping, GradientNormClipping
from torch import nn
from torch.utils.data import Subset

from estimators._stream_data import materialise
from estimators._phases import FreezeSchedule, PhasedEarlyStopping, parameter_groups, stop_start
from estimators._torch import TorchClassifier, _is_integer as _is_int, _is_real, output_shape
from featurestore import features

#: Parameters of the store's ``mel`` kind that ``forcing_mel`` may set (``delta`` is always off).
MEL_KEYS = ("n_mels", "n_fft", "hop_length", "fmin", "fmax")


class DataScaler(nn.Module):
    """``(x - shift) / scale`` with two scalar buffers set from the training data.

    :class:`FrontEndClassifier` sets them at fit (:func:`fit_scalers`) with one pass over the
    training rows: ``shift`` is the mean of the scaler's input and ``scale`` its range
    ``max - min``, the normalisation of the spectrogram-forcing targets. Until then it is the
    identity. Buffers, not parameters: they are saved and pickled with the module, never trained.
    """

    def __init__(self):
        super().__init__()
        self.register_buffer("shift", torch.zeros(()))
        self.register_buffer("scale", torch.ones(()))

    def forward(self, x):
        return (x - self.shift) / self.scale


def fit_scalers(module, X, *, batch_size=256):
    """Set every :class:`DataScaler` in ``module`` from its inputs over ``X``, in module order.

    Parameters
    ----------
    module : torch.nn.Module
        Run on ``X`` in eval mode without gradients (one pass per scaler).
    X : torch.Tensor [shape=(n, ...)]
    batch_size : int

    Returns
    -------
    stats : list of (float, float)
        ``(shift, scale)`` of each scaler.
    """
    stats = []
    for scaler in [m for m in module.modules() if isinstance(m, DataScaler)]:
        scaler.shift.fill_(0.0)
        scaler.scale.fill_(1.0)
        total, count, low, high = 0.0, 0, math.inf, -math.inf

        def record(_, inputs):
            nonlocal total, count, low, high
            x = inputs[0].detach().double()
            total += float(x.sum())
            count += x.numel()
            low, high = min(low, float(x.min())), max(high, float(x.max()))

        handle = scaler.register_forward_pre_hook(record)
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                for start in range(0, len(X), batch_size):
                    module(X[start:start + batch_size])
        finally:
            handle.remove()
            module.train(was_training)
        shift, scale = total / count, max(high - low, 1e-6)
        scaler.shift.fill_(shift)
        scaler.scale.fill_(scale)
        stats.append((shift, scale))
    return stats


def mel_targets(X, *, sr, n_frames, **mel):
    """The store's log-mel spectrogram of each waveform, linearly resampled to ``n_frames`` frames.

    Parameters
    ----------
    X : np.ndarray [shape=(n, n_samples)], float32
        Waveforms (as given to ``fit``, before any standardisation).
    sr : number > 0
    n_frames : int
        Frames of the front end's output; the spectrogram's frames are mapped onto them by linear
        interpolation, first frame on first and last on last.
    **mel
        Parameters of the store's ``mel`` kind (``n_mels``, ``n_fft``, ``hop_length``, ``fmin``,
        ``fmax``; ``delta`` is off).

    Returns
    -------
    M : np.ndarray [shape=(n, n_mels, n_frames)], float32
        In dB, 80 dB range per clip (the store's convention).
    """
    M = features.get("mel").compute(np.asarray(X, dtype=np.float32), sr=sr, delta=False, **mel)[:, 0]
    if M.shape[-1] == n_frames:
        return M
    resized = nn.functional.interpolate(torch.from_numpy(M), size=n_frames, mode="linear",
                                        align_corners=True)
    return resized.numpy()


def normalised(M, stats):
    """``(M - mean) / (max - min)`` with ``stats = (mean, max - min)`` of the training targets."""
    mean, scale = stats
    return ((M - mean) / scale).astype(np.float32)


def target_statistics(M):
    """Mean and range ``max - min`` (at least 1e-6) of training targets ``M``, as floats."""
    return float(M.mean(dtype=np.float64)), max(float(M.max()) - float(M.min()), 1e-6)


def train_in_place(net_class, module, X, y, *, batch_size, clip_grad_norm, device, verbose, **params):
    """Train ``module``, an instance, in place with a plain skorch net; returns its history.

    Training batches are shuffled (a final batch of one row is dropped, as TorchClassifier's);
    no validation split. ``params`` are the net's (``criterion``, ``optimizer``, ``lr``,
    ``max_epochs``, ``optimizer__*``, ...).
    """
    callbacks = []
    if clip_grad_norm is not None:
        callbacks.append(("gradient_clipping", GradientNormClipping(clip_grad_norm)))
    lone_last_row = len(X) > 1 and len(X) % batch_size == 1
    net = net_class(module, batch_size=batch_size, train_split=None, iterator_train__shuffle=True,
                    iterator_train__drop_last=lone_last_row, callbacks=callbacks, device=device,
                    verbose=verbose, **params)
    net.fit(X, y)
    return net.history


def force_front_end(front_end, X, targets, *, epochs, lr, **settings):
    """Spectrogram forcing: ``epochs`` of Adam at ``lr`` on the MSE of ``front_end(X)`` to ``targets``.

    Parameters
    ----------
    front_end : torch.nn.Module
        Trained in place.
    X : torch.Tensor [shape=(n, n_samples)], float32
    targets : torch.Tensor [shape=(n, bands, frames)], float32
    **settings
        ``batch_size``, ``clip_grad_norm``, ``device``, ``verbose`` (see :func:`train_in_place`).
    """
    return train_in_place(NeuralNetRegressor, front_end, X, targets, criterion=nn.MSELoss,
                          optimizer=torch.optim.Adam, lr=lr, max_epochs=epochs, **settings)


def pretrain_backbone(backbone, images, y, *, epochs, criterion, optimizer, lr, n_classes, **settings):
    """IceBreaker phase 0: ``backbone`` alone, trained in place on ``images`` for ``epochs``.

    Parameters
    ----------
    backbone : torch.nn.Module
    images : torch.Tensor [shape=(n, 1, bands, frames)], float32
        The targets of forcing, as one-channel images.
    y : np.ndarray [shape=(n,)], int64
        Class indices.
    criterion : torch.nn.Module
        The fit's criterion instance (class weights included).
    optimizer : torch.optim.Optimizer
        The fit's optimizer instance: its class and settings (momentum, weight decay, ...) are
        used, with learning rate ``lr``, on the backbone's parameters.
    **settings
        ``batch_size``, ``clip_grad_norm``, ``device``, ``verbose`` (see :func:`train_in_place`).
    """
    accepted = _init_parameters(type(optimizer))  # defaults may hold more (AdamW's)
    optimizer_params = {f"optimizer__{key}": value for key, value in optimizer.defaults.items()
                        if key != "lr" and key in accepted}
    return train_in_place(NeuralNetClassifier, backbone, images, y, criterion=criterion,
                          optimizer=type(optimizer), lr=lr, max_epochs=epochs,
                          classes=np.arange(n_classes), **optimizer_params, **settings)


class FrontEndClassifier(TorchClassifier):
    """A :class:`~estimators._torch.TorchClassifier` for networks with a waveform front end.

    The network (``module``) must have a sub-module ``front_end`` mapping waveforms
    ``(N, n_samples)`` to ``(N, bands, frames)``; the IceBreaker also needs the backbone, the
    sub-module named by the module's class attribute ``backbone_name``, whose first convolution
    is the first ``nn.Conv1d``/``nn.Conv2d`` among its modules. Every parameter of
    :class:`~estimators._torch.TorchClassifier` keeps its meaning; with the defaults below a fit
    is exactly TorchClassifier's.

    Epochs are counted from the network's initialisation (``len(history_)``), so ``partial_fit``
    and ``warm_start`` continue a schedule rather than restart it. Forcing, phase 0 and the
    :class:`DataScaler` statistics run once per new network, at the start of the fit that builds
    it, on the training rows of that fit's validation split (never on its validation rows).

    Parameters
    ----------
    module : torch.nn.Module subclass
        The network, with ``front_end`` (and ``backbone_name`` for the IceBreaker).
    freeze_front_end : bool or int >= 0, default=False
        ``True``: the front end is frozen throughout (it keeps its initial or pre-trained
        weights); an int N: frozen for the first N epochs, then trained (0 is the same as
        False); ``False``: trained throughout. Early stopping cannot stop before epoch N + 1.
        Cannot be combined with ``icebreaker`` (whose phase 1 trains the front end).
    forcing_epochs : int >= 0, default=0
        Spectrogram forcing: epochs of pre-training of the front end alone, before the fit, to
        reproduce the targets ``(M - mean) / (max - min)``: ``M`` the store's log-mel of each
        training clip (parameters ``forcing_mel``) resampled in time to the front end's frames,
        ``mean``, ``max`` and ``min`` over all training clips (see ``target_stats_``). Loss: mean
        squared error; optimizer: Adam with ``forcing_lr``; ``batch_size`` and ``clip_grad_norm``
        as the fit; no validation. 0: no forcing.
    forcing_lr : float > 0, default=3e-4
        Adam's learning rate for spectrogram forcing.
    forcing_mel : dict or None, default=None
        Parameters of the store's ``mel`` kind for the targets of forcing and phase 0 (keys among
        ``n_mels``, ``n_fft``, ``hop_length``, ``fmin``, ``fmax``), overriding the front end's own
        (its ``mel_params()`` method when it has one; else 1024-point frames, hop 512). ``n_mels``
        must equal the front end's number of bands.
    icebreaker : sequence of 4 ints >= 0, or None, default=None
        Phase lengths ``(p0, p1, p2, p3)`` in epochs. Phase 0, before the fit: the backbone alone
        is trained for ``p0`` epochs on the targets of forcing (as one-channel images), with the
        fit's criterion (class weights too), optimizer, ``lr`` and ``batch_size``, without
        validation. Then the fit lasts ``p1 + p2 + p3`` epochs (**replacing** ``max_epochs``,
        also as the horizon of ``lr_schedule``): ``p1`` epochs with the backbone frozen, ``p2``
        with only its first convolution unfrozen, ``p3`` with everything trainable. Validation
        and the restoring of the best epoch work as usual, but early stopping can only stop in
        phase 3 (after ``patience`` epochs of it without improvement). Lists are accepted (JSON
        grids). With ``forcing_epochs`` too, forcing comes first, then phase 0.
    **kwargs
        Every parameter of :class:`~estimators._torch.TorchClassifier` (``lr``, ``max_epochs``,
        ``standardize``, ``batch_augment``, ``module__*``, ...). Its ``sr``, the sampling rate of the
        waveforms, is also that of the spectrogram targets of forcing and phase 0, and is given to
        the module when the class lists ``"sr"`` in ``module_params`` (the learnable mel's
        filterbank of :class:`~estimators.deepfourier.DeepFourierClassifier`).

    Attributes
    ----------
    target_stats_ : (float, float) or None
        ``(mean, max - min)`` of the training targets of forcing and phase 0 (None without them).
    forcing_history_, backbone_history_ : skorch History or None
        Per-epoch losses of spectrogram forcing and of IceBreaker phase 0 (None when not run).
    history_ :
        Also records ``frozen`` (the frozen groups, see :meth:`parameter_groups`) in each epoch
        when a freezing schedule is on, and ``phase`` (1, 2 or 3) with the IceBreaker.
    """

    def __init__(self, module, *, freeze_front_end=False, forcing_epochs=0, forcing_lr=3e-4,
                 forcing_mel=None, icebreaker=None, **kwargs):
        super().__init__(module, **kwargs)
        self.freeze_front_end = freeze_front_end
        self.forcing_epochs = forcing_epochs
        self.forcing_lr = forcing_lr
        self.forcing_mel = forcing_mel
        self.icebreaker = icebreaker

    # ------------------------------------------------------------------------ parameters
    def fit(self, X, y, groups=None, **fit_params):
        """Check the front-end parameters, then TorchClassifier's ``fit``."""
        self._check_front_end_params()
        X = materialise(X, f"{type(self).__name__} (its front end's set-up)")  # rows read from the store
        return super().fit(X, y, groups=groups, **fit_params)

    def partial_fit(self, X, y, classes=None, groups=None, **fit_params):
        """Check the front-end parameters, then TorchClassifier's ``partial_fit``."""
        self._check_front_end_params()
        X = materialise(X, f"{type(self).__name__} (its front end's set-up)")
        return super().partial_fit(X, y, classes=classes, groups=groups, **fit_params)

    def _check_front_end_params(self):
        def fail(name, must):
            raise ValueError(f"{name}={getattr(self, name)!r} must be {must}")

        freeze = self.freeze_front_end
        if not (isinstance(freeze, (bool, np.bool_)) or (_is_int(freeze) and freeze >= 0)):
            fail("freeze_front_end", "True, False or an integer >= 0 (epochs frozen)")
        if not (_is_int(self.forcing_epochs) and self.forcing_epochs >= 0):
            fail("forcing_epochs", "an integer >= 0")
        if not (_is_real(self.forcing_lr) and 0 < self.forcing_lr < math.inf):
            fail("forcing_lr", "a positive number")
        mel = self.forcing_mel
        if mel is not None and not (isinstance(mel, dict) and set(mel) <= set(MEL_KEYS)):
            fail("forcing_mel", f"None or a dict with keys among {list(MEL_KEYS)}")
        ice = self.icebreaker
        if ice is not None:
            if not _is_valid_icebreaker(ice):
                fail("icebreaker", "None or 4 integers >= 0: the epochs of phases 0 to 3")
            if sum(ice[1:]) == 0:
                fail("icebreaker", "a schedule with at least one epoch in phases 1 to 3")
            if self._freeze_epochs() != 0:
                raise ValueError(
                    f"freeze_front_end={freeze!r} cannot be combined with icebreaker={ice!r}, "
                    "whose phase 1 trains the front end; set freeze_front_end=False"
                )

    def _freeze_epochs(self):
        """Epochs with a frozen front end: 0, N, or math.inf for True."""
        freeze = self.freeze_front_end
        if isinstance(freeze, (bool, np.bool_)):
            return math.inf if freeze else 0
        return int(freeze)

    # ---------------------------------------------------------------- the freezing schedule
    def _schedule(self):
        """The phases of :class:`~estimators._phases.FreezeSchedule`, or None (no schedule)."""
        if self.icebreaker is not None:
            _, p1, p2, _ = self.icebreaker
            return ((p1, ("backbone_first_conv", "backbone_rest"), 1),
                    (p1 + p2, ("backbone_rest",), 2), (math.inf, (), 3))
        n_frozen = self._freeze_epochs()
        if n_frozen:
            return ((n_frozen, ("front_end",), None),)
        return None

    def parameter_groups(self):
        """Names of the fitted module's parameters in each group that a schedule can freeze
        (see :func:`estimators._phases.parameter_groups`)."""
        self.check_is_fitted(["module_"])
        return parameter_groups(self.module_)

    def get_default_callbacks(self):
        """TorchClassifier's, with the freezing schedule; early stopping waits for its last phase."""
        callbacks = super().get_default_callbacks()
        schedule = self._schedule()
        if schedule is None:
            return callbacks
        start = stop_start(schedule)
        callbacks = [
            (name, PhasedEarlyStopping(**callback.get_params(), start=start)
             if name == "early_stopping" and type(callback) is EarlyStopping and start > 1 else callback)
            for name, callback in callbacks
        ]
        return [*callbacks, ("freeze_schedule", FreezeSchedule(schedule))]

    def _epochs_per_fit(self):
        """With ``icebreaker``, ``p1 + p2 + p3`` (also the horizon of ``lr_schedule``)."""
        if _is_valid_icebreaker(self.icebreaker):
            return sum(self.icebreaker[1:])
        return super()._epochs_per_fit()

    # -------------------------------------------------- set-up of a new network: pre-training
    def initialize_module(self):
        """TorchClassifier's; checks for ``front_end`` and marks the new network for its set-up."""
        super().initialize_module()
        if not isinstance(getattr(self.module_, "front_end", None), nn.Module):
            raise ValueError(
                f"{type(self).__name__} needs a network with a sub-module front_end; "
                f"{self._net_name()} has none"
            )
        if self.icebreaker is not None and getattr(type(self.module_), "backbone_name", None) is None:
            raise ValueError(f"icebreaker={self.icebreaker!r} needs a network with a backbone "
                             f"(class attribute backbone_name); {self._net_name()} has none")
        self._needs_setup_ = True
        return self

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        """Set up a new network before its first epoch: scalers, forcing, IceBreaker phase 0.

        ``X`` and ``y`` are the fit's validated inputs (standardised if ``standardize``) and
        class indices. Nothing happens for a network already set up (``partial_fit``).
        """
        super().on_train_begin(net, X=X, y=y, **kwargs)
        if not getattr(self, "_needs_setup_", False):
            return
        self._needs_setup_ = False
        self.target_stats_ = self.forcing_history_ = self.backbone_history_ = None
        front_end = self.module_.front_end
        pretrains = self.forcing_epochs > 0 or (self.icebreaker is not None and self.icebreaker[0] > 0)
        has_scalers = any(isinstance(m, DataScaler) for m in front_end.modules())
        if not (pretrains or has_scalers):
            return  # nothing to do: no split drawn, no random number used
        rows = self._training_rows(X, y)
        X_train = torch.as_tensor(np.asarray(X)[rows], device=self.device)
        y_train = np.asarray(y)[rows]
        if has_scalers:
            fit_scalers(front_end, X_train, batch_size=max(self.batch_size, 256))
        if not pretrains:
            return
        targets = self._pretraining_targets(np.asarray(X)[rows])
        settings = {"batch_size": self.batch_size, "clip_grad_norm": self.clip_grad_norm,
                    "device": self.device, "verbose": self.verbose}
        if self.forcing_epochs > 0:
            self.forcing_history_ = force_front_end(front_end, X_train, targets,
                                                    epochs=self.forcing_epochs, lr=self.forcing_lr,
                                                    **settings)
        if self.icebreaker is not None and self.icebreaker[0] > 0:
            backbone = getattr(self.module_, type(self.module_).backbone_name)
            self.backbone_history_ = pretrain_backbone(
                backbone, targets.unsqueeze(1), y_train, epochs=self.icebreaker[0],
                criterion=self.criterion_, optimizer=self.optimizer_, lr=self.lr,
                n_classes=len(self.classes_), **settings)

    def _pretraining_targets(self, X_rows):
        """Targets of forcing and phase 0 for the training rows ``X_rows`` (validated, maybe
        standardised): the normalised log-mel ``(n, bands, frames)`` of the clips as given to
        ``fit``, as a float32 tensor on the device; sets ``target_stats_``."""
        front_end = self.module_.front_end
        bands, frames = output_shape(front_end, X_rows.shape[1:])
        waveforms = X_rows
        if getattr(self, "input_mean_", None) is not None:  # the clips as given to fit
            waveforms = waveforms * self.input_std_ + self.input_mean_
        mel = self._target_mel(bands)
        try:
            M = mel_targets(waveforms, sr=self.sr, n_frames=frames, **mel)
        except ValueError as error:  # the store's ParameterError names the mel parameter
            raise ValueError(f"forcing_mel={self.forcing_mel!r} (targets {mel}, sr={self.sr}): "
                             f"{error}") from error
        self.target_stats_ = target_statistics(M)
        return torch.as_tensor(normalised(M, self.target_stats_), device=self.device)

    def _training_rows(self, X, y):
        """Row indices of the training side of the fit's split (kept for the fit to reuse)."""
        dataset_train, dataset_valid = self.get_split_datasets(X, y)
        self._split_cache_ = (X, (dataset_train, dataset_valid))
        if dataset_valid is None:
            return np.arange(len(X))
        if isinstance(dataset_train, Subset) and not isinstance(dataset_train.dataset, Subset):
            return np.asarray(dataset_train.indices)
        raise ValueError(
            f"forcing, icebreaker and {self._net_name()}'s scalers need a validation split made of "
            "row indices (valid_fraction, or a train_split returning torch Subsets of the data)"
        )

    def get_split_datasets(self, X, y=None, **fit_params):
        """TorchClassifier's; the split drawn for the set-up of a new network is reused by its fit."""
        cached = getattr(self, "_split_cache_", None)
        if cached is not None:
            self._split_cache_ = None
            if cached[0] is X:
                return cached[1]
        return super().get_split_datasets(X, y, **fit_params)

    def _target_mel(self, bands):
        front_end = self.module_.front_end
        mel = dict(front_end.mel_params()) if hasattr(front_end, "mel_params") else {}
        mel = {"n_mels": bands, "n_fft": 1024, "hop_length": 512, **mel, **(self.forcing_mel or {})}
        if mel["n_mels"] != bands:
            raise ValueError(
                f"forcing_mel={self.forcing_mel!r}: n_mels={mel['n_mels']} must equal the "
                f"{bands} bands of {self._net_name()}'s front end"
            )
        return mel

def _init_parameters(module):
    target = module if isinstance(module, type) else type(module)
    try:
        return inspect.signature(target).parameters
    except (TypeError, ValueError):
        return {}


def _is_valid_icebreaker(value):
    return (isinstance(value, (list, tuple)) and len(value) == 4
            and all(_is_int(p) and p >= 0 for p in value))
