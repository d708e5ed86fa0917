"""ResNet-18 (He et al. 2016; BasicBlock, [2, 2, 2, 2]) on C-channel spectrogram images.

Written in plain torch with torchvision's layer names, so a torchvision-style ``resnet18`` state
dict loads through ``module__weights_path``: a final ``fc`` layer whose shape differs (another
number of classes) is skipped with a warning, and a first convolution trained on 3-channel (RGB)
images is adapted to C channels by summing its filters over the colour channels (and dividing by
C), also with a warning. ``module__base_width`` scales every layer (64 in the original).
"""

import warnings

import torch
from torch import nn

from estimators._recipe import SpectrogramNetClassifier

SPEC = {
    "class": "ResNet18Classifier",
    "input": "image",
    "feature": "mel",
    "feature_params": {"delta": False},
    "param_grid": {"base_width": [16, 32]},
    "test_params": {"max_epochs": 2, "base_width": 4},
    "test_shape": (1, 32, 32),
    "description": "ResNet-18 (BasicBlock [2, 2, 2, 2]) with a C-channel stem; loads state dicts",
}


class BasicBlock(nn.Module):
    """Two 3 x 3 convolutions with batch norm and an identity (or 1 x 1 projection) shortcut."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """ResNet-18 on ``(N, C, H, W)`` images; returns logits ``(N, n_classes)``.

    Parameters
    ----------
    input_shape : tuple (C, H, W)
    n_classes : int
    base_width : int, default=64
        Channels of the first stage; the stages have 1, 2, 4 and 8 times as many.
    weights_path : str, os.PathLike or None, default=None
        A file saved with ``torch.save(state_dict)`` (or a dict holding it under
        ``"state_dict"``) with torchvision's ``resnet18`` keys, loaded after initialisation.
    """

    input_kinds = ("image",)

    def __init__(self, input_shape, n_classes, *, base_width=64, weights_path=None):
        super().__init__()
        widths = [base_width * 2**i for i in range(4)]
        self.conv1 = nn.Conv2d(input_shape[0], widths[0], 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        in_channels = widths[0]
        for i, width in enumerate(widths):
            stride = 1 if i == 0 else 2
            stage = nn.Sequential(BasicBlock(in_channels, width, stride), BasicBlock(width, width))
            setattr(self, f"layer{i + 1}", stage)
            in_channels = width
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[-1], n_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        if weights_path is not None:
            self.load_weights(weights_path)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))

    def load_weights(self, path):
        """Load a torchvision-style ResNet-18 state dict from ``path`` (see the class docstring).

        Raises
        ------
        ValueError
            If keys are missing or unexpected, or shapes other than ``fc``'s and the input
            channels of ``conv1`` differ (e.g. another ``base_width``).
        """
        state = torch.load(path, map_location="cpu", weights_only=True)
        if "state_dict" in state:
            state = state["state_dict"]
        state = dict(state)
        own = self.state_dict()
        notes = []
        if any(k in state and state[k].shape != own[k].shape for k in ("fc.weight", "fc.bias")):
            del state["fc.weight"], state["fc.bias"]
            notes.append(f"skipped its fc layer (for another number of classes); fc "
                         f"{tuple(own['fc.weight'].shape)} keeps its fresh initialisation")
        stem, own_stem = state.get("conv1.weight"), own["conv1.weight"]
        if stem is not None and stem.shape[1] != own_stem.shape[1] \
                and (stem.shape[0], *stem.shape[2:]) == (own_stem.shape[0], *own_stem.shape[2:]):
            channels = own_stem.shape[1]
            state["conv1.weight"] = stem.sum(dim=1, keepdim=True).repeat(1, channels, 1, 1) / channels
            notes.append(f"adapted conv1 from {stem.shape[1]} to {channels} input channels")
        mismatched = [k for k in own.keys() & state.keys() if state[k].shape != own[k].shape]
        missing = sorted(own.keys() - state.keys() - {"fc.weight", "fc.bias"})
        unexpected = sorted(state.keys() - own.keys())
        if mismatched or missing or unexpected:
            raise ValueError(
                f"{path}: not a ResNet-18 state dict matching base_width and input_shape: "
                f"shape mismatches {sorted(mismatched)}, missing {missing}, unexpected {unexpected}"
            )
        self.load_state_dict(state, strict=False)
        if notes:
            warnings.warn(f"{path}: " + "; ".join(notes), UserWarning, stacklevel=2)


class ResNet18Classifier(SpectrogramNetClassifier):
    """:class:`ResNet18` as a scikit-learn classifier of ``(n, C, H, W)`` images.

    Parameters
    ----------
    base_width : int, default=64
        Channels of the first stage; the stages have 1, 2, 4 and 8 times as many.
    weights_path : str, os.PathLike or None, default=None
        A state dict with torchvision's ``resnet18`` keys, loaded after initialisation (see
        :class:`ResNet18`).

    Other Parameters
    ----------------
    lr, max_epochs, batch_size, device, random_state, ... :
        Every parameter of :class:`~estimators._torch.TorchClassifier` (training, validation,
        seeding, device, batch augmentation, crops) with the defaults of the spectrogram nets'
        recipe (:class:`~estimators._recipe.SpectrogramNetClassifier`: AdamW, warm-up + cosine,
        label smoothing 0.1, SpecAugment masks + mixup, every training clip for all
        epochs), and skorch's ``optimizer__*``, ``callbacks__*``, ...
    """

    module_params = ("base_width", "weights_path")

    def __init__(self, module=ResNet18, *, base_width=64, weights_path=None, **kwargs):
        super().__init__(module, **kwargs)
        self.base_width = base_width
        self.weights_path = weights_path
