"""BGGAN's multi-receptive-field critics (SPEC.md, "Critics").

Each critic is pix2pix's N-layer PatchGAN: 4 x 4 convs, ``ndf`` channels doubling up to
``8 * ndf``; ``depth`` stride-2 convs, then two stride-1 convs, the last to one channel (the
standard WGAN-GP critic: no sigmoid, raw scores). LeakyReLU 0.2 after every conv but the last;
instance norm (per sample, so the gradient penalty stays per sample) or none after every conv but
the first and the last. Never batch norm: it couples the samples of a batch, which breaks the
per-sample gradient penalty of WGAN-GP.

Receptive field of one output score: 70 px for depth 3 (pix2pix's "70 x 70 PatchGAN"), 142 px for
depth 4, 286 px for depth 5 (``r = 2 ** depth * 9 - 2``; see :func:`receptive_field`).

:class:`CriticSet` holds one critic per depth (the paper: depths 3 and 5) and returns the list of
their patch-score maps; the losses in :mod:`bokeh.losses.adversarial` average over that list.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from bokeh.models.glassnet import init_weights

CriticNorm = Literal["instance", "none"]
KERNEL = 4
PADDING = 1
MAX_WIDTH_FACTOR = 8  # channels stop doubling at 8 * ndf (pix2pix)


def _critic_norm(kind: CriticNorm, channels: int) -> nn.Module:
    """Instance norm with a learned affine (per sample and channel) or nothing."""
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True, track_running_stats=False)
    if kind == "none":
        return nn.Identity()
    raise ValueError(
        f"unknown critic norm {kind!r}: expected 'instance' or 'none' "
        f"(batch norm would couple the samples of the WGAN-GP penalty)"
    )


def receptive_field(strides: Sequence[int], kernel: int = KERNEL) -> int:
    """Side in pixels of the input window that one output value sees, for a chain of convs.

    Walking back from one output pixel: each conv widens the window to ``(r - 1) * stride + kernel``.
    """
    field = 1
    for stride in reversed(strides):
        field = (field - 1) * stride + kernel
    return field


class PatchCritic(nn.Module):
    """pix2pix N-layer PatchGAN critic with ``depth`` stride-2 convs.

    Layers (``c = ndf``): conv(in -> c, s2) + LReLU; ``depth - 1`` times conv(s2) + norm + LReLU
    with channels doubling up to 8c; conv(s1) + norm + LReLU; conv(s1) -> 1 channel.
    Convs followed by instance norm have no bias (the affine norm supplies it), nor has the last.

    Args:
        depth: number of stride-2 convs (>= 1). 3 -> 70 px receptive field, 5 -> 286 px.
        ndf: width of the first conv (pix2pix 64).
        norm: ``instance`` (affine instance norm) or ``none``.
        in_channels: 3 for an image; 6 for a conditional critic that sees [input, output].

    Shape:
        x: ``(B, in_channels, H, W)`` in [-1, 1], H and W >= :attr:`min_input_size`
        (``3 * 2 ** depth``: 24 px for depth 3, 96 px for depth 5).
        Returns raw patch scores ``(B, 1, H // 2**depth - 2, W // 2**depth - 2)`` (for sides
        divisible by ``2 ** depth``), unbounded.
    """

    def __init__(self, depth: int = 3, ndf: int = 64, norm: CriticNorm = "instance", in_channels: int = 3) -> None:
        super().__init__()
        for name, value in (("depth", depth), ("ndf", ndf), ("in_channels", in_channels)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"PatchCritic {name} must be a positive integer, got {value!r}")
        self.depth = depth
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, ndf, KERNEL, stride=2, padding=PADDING),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        width = ndf
        # depth - 1 further stride-2 convs, then one stride-1 conv, each with norm
        for index in range(1, depth + 1):
            out_width = ndf * min(2**index, MAX_WIDTH_FACTOR)
            stride = 2 if index < depth else 1
            layers += [
                nn.Conv2d(width, out_width, KERNEL, stride=stride, padding=PADDING, bias=norm == "none"),
                _critic_norm(norm, out_width),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            width = out_width
        # no bias: a constant offset cancels in D(real) - D(fake) and in the penalty, so under
        # WGAN-GP it would never receive gradient
        layers.append(nn.Conv2d(width, 1, KERNEL, stride=1, padding=PADDING, bias=False))
        self.layers = nn.Sequential(*layers)
        self.apply(init_weights)  # N(0, 0.02) convs, zero biases, as pix2pix and Glass-Net

    @property
    def receptive_field(self) -> int:
        """Side in pixels of the input window behind one output score (70 for depth 3, 286 for 5)."""
        return receptive_field([m.stride[0] for m in self.layers if isinstance(m, nn.Conv2d)])

    @property
    def min_input_size(self) -> int:
        """Smallest input side giving a score map of at least 1 x 1: ``3 * 2 ** depth``.

        Each 4 x 4 stride-2 conv with padding 1 maps a side s to s // 2, each stride-1 one to s - 1,
        so the output side is ``s // 2**depth - 2``.
        """
        return 3 * 2**self.depth

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``ValueError`` naming the shape if ``x`` is not a batch this critic can score."""
        in_channels = self.layers[0].in_channels
        if x.ndim != 4 or x.shape[1] != in_channels:
            raise ValueError(f"PatchCritic expects a (B, {in_channels}, H, W) batch, got shape {tuple(x.shape)}")
        height, width = x.shape[-2:]
        if min(height, width) < self.min_input_size:
            raise ValueError(
                f"PatchCritic of depth {self.depth} needs inputs of at least {self.min_input_size} x "
                f"{self.min_input_size} px, got {height} x {width}: use larger crops or a smaller depth"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.layers(x)  # (B, 1, H // 2**depth - 2, W // 2**depth - 2)


class CriticSet(nn.Module):
    """One :class:`PatchCritic` per depth, all scoring the same image (paper: depths 3 and 5).

    Args:
        depths: stride-2 conv counts, one critic each (default ``(3, 5)``: 70 and 286 px fields).
        ndf, norm, in_channels: as :class:`PatchCritic`, shared by all critics.

    Shape:
        x: ``(B, in_channels, H, W)`` in [-1, 1], H and W >= :attr:`min_input_size`
        (96 px with a depth-5 critic). Returns a list with one raw score map ``(B, 1, h_k, w_k)``
        per critic, in the order of ``depths``.
    """

    def __init__(
        self,
        depths: Sequence[int] = (3, 5),
        ndf: int = 64,
        norm: CriticNorm = "instance",
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        depths = list(depths)
        if not depths:
            raise ValueError("CriticSet needs at least one depth, got an empty list (the paper uses [3, 5])")
        self.critics = nn.ModuleList([PatchCritic(depth, ndf, norm, in_channels) for depth in depths])

    @property
    def receptive_fields(self) -> list[int]:
        """Receptive field in pixels of each critic, in the order of ``depths``."""
        return [critic.receptive_field for critic in self.critics]

    @property
    def min_input_size(self) -> int:
        """Smallest input side every critic accepts (set by the deepest one)."""
        return max(critic.min_input_size for critic in self.critics)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [critic(x) for critic in self.critics]
