"""Glass-Net, BGGAN's two-stage generator (SPEC.md, "Generator: Glass-Net").

Stage 1 predicts the residual R = I - O between the sharp input I and the bokeh target O, so
I - R is a rough bokeh image. Stage 2 takes [R, I - R] and renders the final image through a
U-Net. Both stages: encoder (stride-1 conv, then three stride-2 convs), nine residual blocks at
1/8 resolution, decoder of three 4 x 4 stride-2 transposed convs and a 3 x 3 conv + tanh.
"""

from __future__ import annotations

import torch
from torch import nn

from bokeh.models.norms import NormKind, make_norm

DOWNSAMPLE = 8  # three stride-2 convs: input sides must be multiples of this
# Instance norm at the 1/8 bottleneck needs more than one pixel: sides of at least 16 always work
MIN_SIDE = 2 * DOWNSAMPLE


def conv_block(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """3 x 3 conv without bias, then ReLU. Halves H and W when ``stride`` is 2."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.ReLU(inplace=True),
    )


def up_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """4 x 4 stride-2 transposed conv with bias, then ReLU. Doubles H and W."""
    return nn.Sequential(
        nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1, bias=True),
        nn.ReLU(inplace=True),
    )


class ResidualBlock(nn.Module):
    """conv -> norm -> ReLU [-> dropout] -> conv -> norm, added to the input, then ReLU.

    The order of the authors' code (SPEC.md); dropout (their 0.1) is off by default.

    Shape:
        x: ``(B, C, h, w)``; output the same shape, values >= 0.
    """

    def __init__(self, channels: int, norm: NormKind = "instance", dropout: float = 0.0) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            make_norm(norm, channels),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout) if dropout > 0 else nn.Identity(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            make_norm(norm, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu_(self.body(x) + x)


class Encoder(nn.Module):
    """Stride-1 conv to c channels, then three stride-2 convs to 2c, 4c and 8c.

    Shape:
        x: ``(B, in_channels, H, W)``; returns the four features
        ``[(B, c, H, W), (B, 2c, H/2, W/2), (B, 4c, H/4, W/4), (B, 8c, H/8, W/8)]``.
    """

    def __init__(self, in_channels: int, width: int) -> None:
        super().__init__()
        self.stages = nn.ModuleList([
            conv_block(in_channels, width),
            conv_block(width, 2 * width, stride=2),
            conv_block(2 * width, 4 * width, stride=2),
            conv_block(4 * width, 8 * width, stride=2),
        ])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


def residual_trunk(channels: int, blocks: int, norm: NormKind, dropout: float) -> nn.Sequential:
    """``blocks`` residual blocks at ``channels`` channels (the trunk at 1/8 resolution)."""
    return nn.Sequential(*[ResidualBlock(channels, norm, dropout) for _ in range(blocks)])


class ResidualStage(nn.Module):
    """Stage 1: predicts the residual R = I - O; only the trunk has a skip.

    Shape:
        x: ``(B, 3, H, W)`` in [-1, 1], H and W multiples of 8; returns R ``(B, 3, H, W)`` in [-1, 1].
    """

    def __init__(self, width: int = 16, blocks: int = 9, norm: NormKind = "instance", dropout: float = 0.0) -> None:
        super().__init__()
        c = width
        self.encoder = Encoder(3, c)
        self.trunk = residual_trunk(8 * c, blocks, norm, dropout)
        self.decoder = nn.Sequential(up_block(16 * c, 4 * c), up_block(4 * c, 2 * c), up_block(2 * c, c))
        self.head = nn.Conv2d(c, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        encoded = self.encoder(x)[-1]  # (B, 8c, H/8, W/8)
        x = torch.cat([self.trunk(encoded), encoded], 1)  # (B, 16c, H/8, W/8)
        return torch.tanh(self.head(self.decoder(x)))  # (B, 3, H, W)


class UNetStage(nn.Module):
    """Stage 2: renders the bokeh image from [R, I - R] with U-Net skips.

    Encoder as in stage 1 plus one stride-1 8c conv before the trunk; each transposed conv takes
    the concat of the previous decoder output and the mirrored encoder feature.

    Shape:
        x: ``(B, 6, H, W)``; returns ``(B, 3, H, W)`` in [-1, 1].
    """

    def __init__(self, width: int = 32, blocks: int = 9, norm: NormKind = "instance", dropout: float = 0.0,
                 full_res_skip: bool = False) -> None:
        super().__init__()
        c = width
        self.encoder = Encoder(6, c)
        self.bottleneck = conv_block(8 * c, 8 * c)
        self.trunk = residual_trunk(8 * c, blocks, norm, dropout)
        self.up = nn.ModuleList([up_block(16 * c, 4 * c), up_block(8 * c, 2 * c), up_block(4 * c, c)])
        # the standard U-Net's top skip: the full-resolution encoder feature joins the last decoder output
        self.fuse = conv_block(2 * c, c) if full_res_skip else None
        self.head = nn.Conv2d(c, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        full, half, quarter, eighth = self.encoder(x)
        if self.fuse is None:
            del full  # the paper's U-Net has no full-resolution skip: free it now
        bottom = self.bottleneck(eighth)  # (B, 8c, H/8, W/8)
        x = self.up[0](torch.cat([self.trunk(bottom), bottom], 1))  # (B, 4c, H/4, W/4)
        x = self.up[1](torch.cat([x, quarter], 1))  # (B, 2c, H/2, W/2)
        x = self.up[2](torch.cat([x, half], 1))  # (B, c, H, W)
        if self.fuse is not None:
            x = self.fuse(torch.cat([x, full], 1))  # (B, 2c, H, W) -> (B, c, H, W)
        return torch.tanh(self.head(x))


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """N(0, std) for conv and transposed-conv weights, zero biases (SPEC.md); norms keep defaults."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class GlassNet(nn.Module):
    """BGGAN's generator: a residual stage and a U-Net stage, "a pair of glasses".

    Args:
        width1: stage-1 width c1 (paper 16).
        width2: stage-2 width c2 (paper 32; the authors' released model 24).
        blocks: residual blocks per stage (9).
        norm: ``instance`` (paper), ``batch`` or ``none`` (the paper's ablation).
        dropout: dropout after the first ReLU of each residual block (authors' code 0.1; off).
        full_res_skip: off (the paper): stage 2's U-Net skips stop at half resolution, so its last
            transposed conv decides every full-resolution pixel from half-resolution features and
            a subject's outline cannot be kept exact. On: the standard U-Net's top skip, the
            full-resolution encoder feature concatenated with the last decoder output and fused by
            a 3 x 3 conv + ReLU before the head (2c x c x 9 more weights).
        global_residual: off (the paper): stage 2's tanh output is the final image. On: stage 2
            predicts a correction added to the rough image I - R (global residual learning, as in
            VDSR), so the untrained network is close to the identity and in-focus pixels keep the
            input's detail instead of being re-synthesised through the encoder-decoder; the sum is
            clamped to [-1, 1] in eval mode (training sees it unclamped, so saturated pixels keep
            their gradient). A deviation measured in the README ("A model that learns where the focus is").

    Shape:
        image: ``(B, 3, H, W)`` in [-1, 1], H and W multiples of 8; with instance norm not both 8
        (one pixel at the 1/8 bottleneck has no statistics): :data:`MIN_SIDE` (16) always works.
        Returns ``(bokeh, rough)``: the final image ``(B, 3, H, W)`` in [-1, 1] (with
        ``global_residual`` in training mode: [-3, 3], unclamped) and the stage-1 rough image I - R
        ``(B, 3, H, W)`` in [-2, 2].
    """

    def __init__(
        self,
        width1: int = 16,
        width2: int = 32,
        blocks: int = 9,
        norm: NormKind = "instance",
        dropout: float = 0.0,
        global_residual: bool = False,
        full_res_skip: bool = False,
    ) -> None:
        super().__init__()
        for name, value in (("width1", width1), ("width2", width2), ("blocks", blocks)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"GlassNet {name} must be a positive integer, got {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"GlassNet dropout must be in [0, 1), got {dropout!r}")
        for name, value in (("global_residual", global_residual), ("full_res_skip", full_res_skip)):
            if not isinstance(value, bool):
                raise ValueError(f"GlassNet {name} must be true or false, got {value!r}")
        self.norm = norm
        self.residual_stage = ResidualStage(width1, blocks, norm, dropout)
        self.unet_stage = UNetStage(width2, blocks, norm, dropout, full_res_skip)
        self.global_residual = global_residual
        self.apply(init_weights)

    @staticmethod
    def settings(**kwargs) -> dict:
        """``kwargs`` completed with the constructor's defaults: two settings dicts describe the same
        network exactly when these are equal (older checkpoints lack newer options)."""
        import inspect

        defaults = {name: p.default for name, p in inspect.signature(GlassNet.__init__).parameters.items() if name != "self"}
        unknown = set(kwargs) - set(defaults)
        if unknown:
            raise ValueError(f"unknown GlassNet setting(s) {sorted(unknown)}; known: {sorted(defaults)}")
        return {**defaults, **kwargs}

    def check_input(self, image: torch.Tensor) -> None:
        """Raise ``ValueError`` naming the problem if ``image`` is not ``(B, 3, H, W)``, H, W % 8 == 0,
        or (instance norm) so small that the bottleneck is a single pixel."""
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"GlassNet expects a (B, 3, H, W) image batch, got shape {tuple(image.shape)}")
        height, width = image.shape[-2:]
        if height % DOWNSAMPLE or width % DOWNSAMPLE:
            raise ValueError(
                f"GlassNet needs height and width that are multiples of {DOWNSAMPLE}, got {height} x {width}: "
                f"crop or pad the image (bokeh.render does this for you)"
            )
        if self.norm == "instance" and height * width < DOWNSAMPLE * DOWNSAMPLE * 2:
            raise ValueError(
                f"GlassNet with instance norm needs more than one pixel at 1/{DOWNSAMPLE} scale, got {height} x {width}: "
                f"pad the image to at least {MIN_SIDE} x {MIN_SIDE} (bokeh.render does this for you)"
            )

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.check_input(image)
        residual = self.residual_stage(image)  # R, (B, 3, H, W)
        rough = image - residual  # I - R
        bokeh = self.unet_stage(torch.cat([residual, rough], 1))  # (B, 6, H, W) -> (B, 3, H, W)
        if self.global_residual:
            bokeh = rough + bokeh
            if not self.training:
                bokeh = bokeh.clamp(-1.0, 1.0)
        return bokeh, rough
