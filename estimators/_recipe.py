"""The training recipe of the spectrogram (image-input) nets: :class:`SpectrogramNetClassifier`.

Every registered net on ``(n, C, freq, time)`` images (cnn, cnn6, lenet, piczak, resnet18,
crnn) subclasses it, so that they share one set of defaults; each part is a parameter of
:class:`~estimators._torch.TorchClassifier`, which a grid can switch off:

============================  ======================================  ==============================
part                          default here                            off
============================  ======================================  ==============================
optimizer                     ``"adamw"`` (weight decay 0.01)         ``optimizer="adam"``
schedule                      ``"warmup_cosine"``, 3 warm-up epochs   ``lr_schedule=None``
label smoothing               0.1                                     ``label_smoothing=0.0``
SpecAugment masks + mixup     :data:`RECIPE_AUGMENT`                  ``batch_augment=None``
early stopping watches        ``"valid_acc"``, from epoch 10,         ``monitor="valid_loss"``,
                              patience 10, of up to 60 epochs         ``min_epochs=1``
random crops (per net)        e.g. PiczakNet's 41 frames              ``crop=None``
============================  ======================================  ==============================

Nets on sequences and waveforms (rnn, lstm, transformer, the front-end nets) keep
:class:`~estimators._torch.TorchClassifier`'s plain defaults: their training was measured with
them, and masks or crops of a waveform are not what their studies did. Every part is a
parameter there too.
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
    lr_schedule : default="warmup_cosine"
    warmup_epochs : int, default=3
    label_smoothing : float, default=0.1
    batch_augment : BatchAugment or None, default=RECIPE_AUGMENT
    monitor : default="valid_acc"
    min_epochs : int, default=10
    patience : int, default=10
        Sized for the noisy validation accuracy of augmented training.
    crop : int or None, default=None
    **kwargs
        Every other parameter of :class:`~estimators._torch.TorchClassifier`.
    """

    def __init__(self, module, *, optimizer="adamw", lr=1e-3, max_epochs=60, lr_schedule="warmup_cosine",
                 warmup_epochs=3, label_smoothing=0.1, batch_augment=RECIPE_AUGMENT, monitor="valid_acc",
                 min_epochs=10, patience=10, crop=None, **kwargs):
        super().__init__(module, optimizer=optimizer, lr=lr, max_epochs=max_epochs, lr_schedule=lr_schedule,
                         warmup_epochs=warmup_epochs, label_smoothing=label_smoothing,
                         batch_augment=batch_augment, monitor=monitor, min_epochs=min_epochs,
                         patience=patience, crop=crop, **kwargs)
