"""Frozen VGG19 feature extractor up to relu5_4, for the perceptual loss (SPEC.md, "Losses").

The layers are torchvision's ``vgg19().features[:36]`` (conv1_1 ... relu5_4: 16 convs, 4 max
pools), built without the 140 M-parameter classifier. This module does no I/O: it starts with
torchvision's random initialization, and :func:`bokeh.weights.load_vgg19_features` loads the
ImageNet weights (or a local file) into it.

The extractor is frozen for good: its parameters never require grad and it stays in eval mode even
when a parent module calls ``.train()`` (VGG19 has no dropout or batch norm in ``features``, but a
frozen network should not change behaviour with its parent's mode).
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.vgg import cfgs, make_layers

RELU5_4 = 36  # features[:36] ends with relu5_4 (index 35)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MIN_INPUT_SIZE = 16  # four 2 x 2 max pools before relu5_4


class VGG19Features(nn.Module):
    """VGG19 relu5_4 features of images in [-1, 1], ImageNet-normalized inside.

    The state-dict keys are ``features.<index>.weight`` / ``.bias``, as in torchvision's full
    ``vgg19`` model (without its ``classifier.*`` entries).

    Shape:
        x: ``(B, 3, H, W)`` in [-1, 1], H and W >= 16. Returns ``(B, 512, H // 16, W // 16)``, >= 0.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = make_layers(cfgs["E"], batch_norm=False)[:RELU5_4]  # cfg "E" is VGG19
        for module in self.features:
            if isinstance(module, nn.Conv2d):  # torchvision VGG's own initialization
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
        # non-persistent: the state dict holds only the VGG weights
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> VGG19Features:
        """Stay in eval mode whatever the parent asks: this network is frozen."""
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3 or min(x.shape[-2:]) < MIN_INPUT_SIZE:
            raise ValueError(
                f"VGG19Features expects a (B, 3, H, W) batch in [-1, 1] with H, W >= {MIN_INPUT_SIZE}, "
                f"got shape {tuple(x.shape)}"
            )
        x = ((x + 1) / 2 - self.mean) / self.std  # [-1, 1] -> [0, 1] -> ImageNet-normalized
        return self.features(x)  # (B, 512, H // 16, W // 16)
