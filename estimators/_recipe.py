"""The training recipe of the spectrogram (image-input) nets: :class:`SpectrogramNetClassifier`.

Every registered net on ``(n, C, freq, time)`` images (cnn, cnn6, lenet, piczak, resnet18,
crnn) subclasses it, so that they share one set of defaults; each part is a parameter of
:class:`~estimators._torch.TorchClassifier`, which a grid can switch off:

============================  ======================================  ==============================
part                          default here                            otherwise
============================  ======================================  ==============================
optimizer                     ``"adamw"`` (weight decay 0.01)         ``optimizer="adam"``
schedule                      ``"warmup_cosine"``, 3 warm-up epochs   ``lr_schedule=None``
label smoothing               0.1                                     ``label_smoothing=0.0``
SpecAugment masks + mixup     :data:`RECIPE_AUGMENT`                  ``batch_augment=None``
training clips and epochs     every clip given to ``fit``, all 60     ``valid_fraction=0.2``: a
                              epochs, the last epoch's weights        grouped validation split and
                                                                      early stopping (below)
early stopping watches        ``"valid_acc"``, from epoch 10,         ``monitor="valid_loss"``,
(with a validation split)     patience 10, the best epoch restored    ``min_epochs=1``
random crops (per net)        e.g. PiczakNet's 41 frames              ``crop=None``
============================  ======================================  ==============================

Why no validation split by default: on small data sets a fifth of the training clips held out,
and an epoch chosen on a noisy validation curve, cost more than early stopping saves. The
cnn, one seed, 5-6 grouped folds, with the same recipe otherwise: 0.778 against 0.710 on the
demo, 0.699 against 0.652 on the drum kits, 0.824 against 0.778 on the spoken digits (the README's
measured section). The cosine schedule ends at a learning rate of zero, so the last epoch's
weights are those of a settled net. ``valid_fraction=0.2`` brings the validation split back,
with early stopping on it and the temperature of ``calibrate=True``.

The recurrent nets (rnn, lstm, gru, blstm, :mod:`estimators.rnn`), the tdnn (:mod:`estimators.tdnn`) and
the transformer (:mod:`estimators.transformer`) take the optimizer, the schedule, the label smoothing and the 60
epochs on every clip, but no masks or mixup: their input is a sequence of frames, not an image
(:class:`SequenceNetClassifier`).
The nets on waveforms keep :class:`~estimators._torch.TorchClassifier`'s plain defaults: their
training was measured with them, and masks or crops of a waveform are not what their studies
did. Every part is a parameter there too.
"""

from estimators._augment import BatchAugment
from estimators._torch import TorchClassifier

#: The default training-batch augmentation of the spectrogram nets: two frequency masks of up to
#: 8 bins and two time masks of up to 8 frames per example (SpecAugment's "LB"-like policy scaled
#: to 40-64 mel bands), and mixup with ``alpha=0.2``.
RECIPE_AUGMENT = BatchAugment(freq_mask=8, time_mask=8, n_masks=2, mixup_alpha=0.2)


class SpectrogramNetClassifier(TorchClassifier):
    """:class:`~estimators._torch.TorchClassifier` with the recipe's defaults (see the module).

    Parameters
    ----------
    module : torch.nn.Module subclass
    optimizer : default="adamw"
    lr : float, default=1e-3
        The peak learning rate, reached at the end of the warm-up.
    max_epochs : int, default=60
        Every one of them is trained without a validation split (the default).
    lr_schedule : default="warmup_cosine"
    warmup_epochs : int, default=3
    label_smoothing : float, default=0.1
    batch_augment : BatchAugment or None, default=RECIPE_AUGMENT
    valid_fraction : float in (0, 1) or None, default=None
        None: no validation split; the net trains on every clip given to ``fit`` for
        ``max_epochs`` and keeps the last epoch's weights. A fraction holds out a split grouped
        by ``groups`` for early stopping (the three parameters below) and for ``calibrate``.
    monitor : default="valid_acc"
        With a validation split only, as are ``min_epochs`` and ``patience``.
    min_epochs : int, default=10
    patience : int, default=10
        Sized for the noisy validation accuracy of augmented training.
    crop : int or None, default=None
    **kwargs
        Every other parameter of :class:`~estimators._torch.TorchClassifier`.
    """

    def __init__(self, module, *, optimizer="adamw", lr=1e-3, max_epochs=60, lr_schedule="warmup_cosine",
                 warmup_epochs=3, label_smoothing=0.1, batch_augment=RECIPE_AUGMENT, valid_fraction=None,
                 monitor="valid_acc", min_epochs=10, patience=10, crop=None, **kwargs):
        super().__init__(module, optimizer=optimizer, lr=lr, max_epochs=max_epochs, lr_schedule=lr_schedule,
                         warmup_epochs=warmup_epochs, label_smoothing=label_smoothing,
                         batch_augment=batch_augment, valid_fraction=valid_fraction, monitor=monitor,
                         min_epochs=min_epochs, patience=patience, crop=crop, **kwargs)


class SequenceNetClassifier(TorchClassifier):
    """:class:`~estimators._torch.TorchClassifier` with the recipe's training less its masks and mixup:
    the defaults of the nets over sequences of frames (see the module).

    Parameters
    ----------
    module : torch.nn.Module subclass
    optimizer : default="adamw"
    max_epochs : int, default=60
        Every one of them is trained without a validation split (the default).
    lr_schedule : default="warmup_cosine"
    warmup_epochs : int, default=3
    label_smoothing : float, default=0.1
    valid_fraction : float in (0, 1) or None, default=None
        None: the net trains on every clip given to ``fit`` for ``max_epochs``, along a warm-up
        and cosine schedule that ends at a learning rate of zero, and keeps the last epoch's
        weights. A fraction holds out a grouped split for early stopping and for ``calibrate=True``.
    **kwargs
        Every other parameter of :class:`~estimators._torch.TorchClassifier`.
    """

    def __init__(self, module, *, optimizer="adamw", max_epochs=60, lr_schedule="warmup_cosine", warmup_epochs=3,
                 label_smoothing=0.1, valid_fraction=None, **kwargs):
        super().__init__(module, optimizer=optimizer, max_epochs=max_epochs, lr_schedule=lr_schedule,
                         warmup_epochs=warmup_epochs, label_smoothing=label_smoothing,
                         valid_fraction=valid_fraction, **kwargs)
