"""Glass-Net, BGGAN's two-stage generator (SPEC.md, "Generator: Glass-Net").

Stage 1 predicts the residual R = I - O between the sharp input I and the bokeh target O, so
I - R is a rough bokeh image. Stage 2 takes [R, I - R] and renders the final image through a
U-Net. Both stages: encoder (stride-1 conv, then three stride-2 convs), nine residual blocks at
1/8 resolution, decoder of three 4 x 4 stride-2 transposed convs and a 3 x 3 conv + tanh.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from bokeh.models.controls import (
    NO_FOCUS,
    REFERENCE_F_NUMBER,
    ControlError,
    InputContract,
    OutputContract,
    aperture_plane,
    focus_grid,
    focus_plane,
    focus_weights,
)
from bokeh.models.norms import NormKind, make_norm

DOWNSAMPLE = 8  # three stride-2 convs: input sides must be multiples of this
# Instance norm at the 1/8 bottleneck needs more than one pixel: sides of at least 16 always work
MIN_SIDE = 2 * DOWNSAMPLE
BLEND_INIT_BIAS = -4.0  # a new keep-weight channel starts at sigmoid(-4) ~ 0.02: the network as it was


class GlassLayers(NamedTuple):
    """Everything one Glass-Net pass computes (:meth:`GlassNet.layers`).

    Shape:
        image: ``(B, 3, H, W)`` the final bokeh image in [-1, 1] (``m * I + (1 - m) * background``
        for a model with a matte). rough: ``(B, 3, H, W)`` the stage-1 image I - R in [-2, 2].
        background: ``(B, 3, H, W)`` the rendered defocus layer B (equal to ``image`` without a
        matte). matte_logit: ``(B, 1, H, W)`` the keep weight's logit, ``None`` without a matte.
    """

    image: torch.Tensor
    rough: torch.Tensor
    background: torch.Tensor
    matte_logit: torch.Tensor | None

    @property
    def matte(self) -> torch.Tensor | None:
        """The keep weight m = sigmoid(logit) in [0, 1] ``(B, 1, H, W)``; 1 = the input's own pixel."""
        return None if self.matte_logit is None else torch.sigmoid(self.matte_logit)


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
        x: ``(B, 3 + k, H, W)``: the image in [-1, 1] (H and W multiples of 8) and ``k`` control planes;
        returns R ``(B, 3, H, W)`` in [-1, 1].
    """

    def __init__(self, width: int = 16, blocks: int = 9, norm: NormKind = "instance", dropout: float = 0.0,
                 in_channels: int = 3) -> None:
        super().__init__()
        c = width
        self.encoder = Encoder(in_channels, c)
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
        x: ``(B, 6 + k, H, W)`` (``k`` control planes); returns the head's ``(B, out_channels, H, W)``
        before any activation (Glass-Net applies tanh, and a sigmoid to a blend channel).
    """

    def __init__(self, width: int = 32, blocks: int = 9, norm: NormKind = "instance", dropout: float = 0.0,
                 full_res_skip: bool = False, in_channels: int = 6, out_channels: int = 3) -> None:
        super().__init__()
        c = width
        self.encoder = Encoder(in_channels, c)
        self.bottleneck = conv_block(8 * c, 8 * c)
        self.trunk = residual_trunk(8 * c, blocks, norm, dropout)
        self.up = nn.ModuleList([up_block(16 * c, 4 * c), up_block(8 * c, 2 * c), up_block(4 * c, c)])
        # the standard U-Net's top skip: the full-resolution encoder feature joins the last decoder output
        self.fuse = conv_block(2 * c, c) if full_res_skip else None
        self.head = nn.Conv2d(c, out_channels, 3, padding=1)

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
        return self.head(x)  # (B, out_channels, H, W)


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
            their gradient). A deviation measured in docs/reference-models.md ("What teaches a model where the focus is").
        focus_input: off (the paper). On: the network takes a tap-to-focus point
            (:mod:`bokeh.models.controls`), seen as a Gaussian plane concatenated to both stages' inputs.
        aperture_input: off (the paper). On: the network takes an f-number, seen as a constant plane
            ``1.8 / N`` (the relative aperture diameter) concatenated to both stages' inputs.
        subject_input: off. On: the network takes a subject matte (a segmenter's, 1 = subject), one
            plane concatenated to both stages' inputs after the other controls; without one it sees
            zeros (no subject prior). Grown onto a trained network with zero weights
            (:func:`grow_state`), it computes exactly what that network did.
        blend: off (the paper). On: stage 2 also predicts a keep weight ``m`` in [0, 1] (a sigmoid
            channel of its head) and the final image is ``m * I + (1 - m) * B``: where the model
            keeps the focus it returns the input's own pixels, not a re-synthesis (a layered
            composite, as portrait modes do); its bias starts at :data:`BLEND_INIT_BIAS` (m ~ 0.02),
            so a network loaded from weights without it starts as that network.

    Shape:
        image: ``(B, 3, H, W)`` in [-1, 1], H and W multiples of 8; with instance norm not both 8
        (one pixel at the 1/8 bottleneck has no statistics): :data:`MIN_SIDE` (16) always works.
        focus: ``(B, 2)`` fractions of width and height, :data:`~bokeh.models.controls.NO_FOCUS`
        for auto (the default); aperture: ``(B, 1)`` f-numbers (default f/1.8); subject: ``(B, 1, H, W)``
        matte in [0, 1] (default zeros); only for a model built with them (:attr:`contract`).
        Returns ``(bokeh, rough)`` (:meth:`layers` gives the matte and the defocus layer too): the final image ``(B, 3, H, W)`` in [-1, 1] (with
        ``global_residual`` in training mode: [-3, 3], unclamped) and the stage-1 rough image I - R
        ``(B, 3, H, W)`` in [-2, 2].

    Raises:
        ValueError: a wrong image shape; :class:`~bokeh.models.controls.ControlError` for a control
        the model was not built with or of the wrong shape.
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
        focus_input: bool = False,
        aperture_input: bool = False,
        blend: bool = False,
        subject_input: bool = False,
    ) -> None:
        super().__init__()
        for name, value in (("width1", width1), ("width2", width2), ("blocks", blocks)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"GlassNet {name} must be a positive integer, got {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"GlassNet dropout must be in [0, 1), got {dropout!r}")
        flags = (("global_residual", global_residual), ("full_res_skip", full_res_skip), ("focus_input", focus_input),
                 ("aperture_input", aperture_input), ("blend", blend), ("subject_input", subject_input))
        for name, value in flags:
            if not isinstance(value, bool):
                raise ValueError(f"GlassNet {name} must be true or false, got {value!r}")
        self.norm = norm
        self.contract = InputContract(focus_input, aperture_input, subject_input)
        self.outputs = OutputContract(blend)
        planes = self.contract.plane_count
        self.residual_stage = ResidualStage(width1, blocks, norm, dropout, in_channels=3 + planes)
        self.unet_stage = UNetStage(width2, blocks, norm, dropout, full_res_skip, in_channels=6 + planes, out_channels=4 if blend else 3)
        self.global_residual = global_residual
        self.blend = blend
        self._constants: dict[tuple, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        self.apply(init_weights)
        if blend:
            with torch.no_grad():
                self.unet_stage.head.bias[3].fill_(BLEND_INIT_BIAS)

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

    def control_constants(self, height: int, width: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The coordinate grid, the focus weights and a plane of ones for ``height x width`` (cached
        per size, dtype and device; a cached tensor is a constant in an exported graph)."""
        key = (height, width, like.dtype, like.device)
        if key not in self._constants:
            # real tensors even while a tracer runs the model (torch.export, the FakeTensorMode of
            # bokeh.models.norms.to_pool_instance_norm): traced or fake ones would poison the cache
            from torch.utils._python_dispatch import _disable_current_modes

            with _disable_current_modes():
                self._constants[key] = (focus_grid(height, width, like.dtype, like.device),
                                        focus_weights(height, width, dtype=like.dtype, device=like.device),
                                        torch.ones(1, 1, height, width, dtype=like.dtype, device=like.device))
        return self._constants[key]

    def control_planes(self, image: torch.Tensor, focus: torch.Tensor | None, aperture: torch.Tensor | None,
                       subject: torch.Tensor | None = None) -> list[torch.Tensor]:
        """The ``(B, 1, H, W)`` planes of the controls this model takes (defaults where ``None``)."""
        batch, height, width = image.shape[0], image.shape[2], image.shape[3]
        if subject is not None:
            if not self.contract.subject:
                raise ControlError(f"this GlassNet takes no subject input (its inputs: {', '.join(self.contract.names)})")
            if subject.ndim != 4 or subject.shape[1] != 1 or subject.shape[0] not in (1, batch) or subject.shape[2:] != image.shape[2:]:
                raise ControlError(f"GlassNet subject must have shape ({batch}, 1, {height}, {width}) (the image's size), "
                                   f"got {tuple(subject.shape)}")
        for name, value, taken, size in (("focus", focus, self.contract.focus, 2), ("aperture", aperture, self.contract.aperture, 1)):
            if value is None:
                continue
            if not taken:
                raise ControlError(f"this GlassNet takes no {name} input (its inputs: {', '.join(self.contract.names)})")
            if value.ndim != 2 or value.shape[1] != size or value.shape[0] not in (1, batch):
                raise ControlError(f"GlassNet {name} must have shape ({batch}, {size}), got {tuple(value.shape)}")
        if not self.contract.plane_count:
            return []
        grid, weights, ones = self.control_constants(height, width, image)
        planes = []
        if self.contract.focus:
            if focus is None:
                focus = image.new_tensor(NO_FOCUS).expand(batch, 2)
            planes.append(focus_plane(focus.to(image.dtype), grid, weights).expand(batch, 1, height, width))
        if self.contract.aperture:
            if aperture is None:
                aperture = image.new_full((batch, 1), REFERENCE_F_NUMBER)
            planes.append(aperture_plane(aperture.to(image.dtype), ones).expand(batch, 1, height, width))
        if self.contract.subject:
            planes.append(image.new_zeros(batch, 1, height, width) if subject is None else subject.to(image.dtype).expand(batch, 1, height, width))
        return planes

    def layers(self, image: torch.Tensor, focus: torch.Tensor | None = None,
               aperture: torch.Tensor | None = None, subject: torch.Tensor | None = None) -> GlassLayers:
        """One pass, every layer: the image, the rough image, the defocus layer B and the matte's
        logit (:class:`GlassLayers`). Arguments and errors as :meth:`forward`."""
        self.check_input(image)
        planes = self.control_planes(image, focus, aperture, subject)  # k x (B, 1, H, W)
        residual = self.residual_stage(torch.cat([image, *planes], 1) if planes else image)  # R, (B, 3, H, W)
        rough = image - residual  # I - R
        x = torch.cat([residual, rough, *planes], 1)  # (B, 6 + k, H, W)
        head = self.unet_stage(x)  # (B, 3 or 4, H, W)
        background = torch.tanh(head[:, :3] if self.blend else head)  # (B, 3, H, W)
        if self.global_residual:
            background = rough + background
        if self.global_residual and not self.training:
            background = background.clamp(-1.0, 1.0)
        if not self.blend:
            return GlassLayers(background, rough, background, None)
        logit = head[:, 3:4]  # (B, 1, H, W)
        keep = torch.sigmoid(logit)  # 1 = return the input's pixel
        bokeh = keep * image + (1.0 - keep) * background  # (B, 3, H, W): a blend of two images in [-1, 1]
        if not self.training:  # bf16 (autocast, bf16 weights) rounds the blend up to 1.004: an image stays in its range
            bokeh = bokeh.clamp(-1.0, 1.0)
        return GlassLayers(bokeh, rough, background, logit)

    def forward(self, image: torch.Tensor, focus: torch.Tensor | None = None,
                aperture: torch.Tensor | None = None, subject: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        layers = self.layers(image, focus, aperture, subject)
        return layers.image, layers.rough


GROWABLE = ("focus_input", "aperture_input", "blend", "subject_input")  # options a trained network can gain (zero-initialised)
PLANE_OPTIONS = ("focus_input", "aperture_input", "subject_input")  # input planes, in the order the network concatenates them


def grow_state(state: dict[str, torch.Tensor], saved: dict, wanted: dict) -> dict[str, torch.Tensor]:
    """A generator ``state`` trained with settings ``saved``, fitted to a Glass-Net with settings
    ``wanted`` that adds control inputs or the blend channel (:data:`GROWABLE`), so that the grown
    network computes exactly what the trained one did (for the default controls: f/1.8, auto
    focus and no subject; with a new subject input, whatever subject matte it is given; up to the
    blend channel's start value): new input channels of both stages' first convs
    get zero weights, a new blend channel zero weights and the bias :data:`BLEND_INIT_BIAS`.

    Args:
        state: ``GlassNet.state_dict()`` keys (no ``generator.`` prefix).
        saved, wanted: complete settings (:meth:`GlassNet.settings`).

    Raises:
        ValueError: the settings differ in anything but switching :data:`GROWABLE` options on.
    """
    other = {k for k in wanted if wanted[k] != saved.get(k)}
    if other - set(GROWABLE) or any(saved.get(k) and not wanted[k] for k in GROWABLE):
        raise ValueError(f"cannot grow a generator with settings {saved} into one with {wanted}: only switching on {', '.join(GROWABLE)} is possible")
    state = dict(state)
    extra = sum(bool(wanted[k]) for k in PLANE_OPTIONS) - sum(bool(saved.get(k)) for k in PLANE_OPTIONS)
    for i, new in enumerate(PLANE_OPTIONS):  # new planes are appended: none may come before a plane the network has
        later = [k for k in PLANE_OPTIONS[i + 1:] if saved.get(k)]
        if wanted[new] and not saved.get(new) and later:
            raise ValueError(f"cannot add {new} in front of the existing {', '.join(later)} plane(s); train with them from the start")
    for key in ("residual_stage.encoder.stages.0.0.weight", "unet_stage.encoder.stages.0.0.weight"):
        weight = state[key]  # (c, in, 3, 3)
        state[key] = torch.cat([weight, weight.new_zeros(weight.shape[0], extra, *weight.shape[2:])], 1)
    if wanted["blend"] and not saved.get("blend"):
        weight, bias = state["unet_stage.head.weight"], state["unet_stage.head.bias"]
        state["unet_stage.head.weight"] = torch.cat([weight, weight.new_zeros(1, *weight.shape[1:])])
        state["unet_stage.head.bias"] = torch.cat([bias, bias.new_full((1,), BLEND_INIT_BIAS)])
    return state
