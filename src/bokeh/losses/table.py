"""The generator's loss terms in one table: each name, the callable, and what it reads.

A term's weight and options come from the ``loss`` config (``conf/loss/bggan.yaml`` holds every
default; nothing here does): ``loss.<name>`` is the weight, or ``loss.<name>: {weight, ...options}``.
Keys that are no term are :data:`SETTINGS` (``focus_weight``, an option of ``l1``; ``gp``, the
critic's penalty weight). The generator loss is ``sum(weight * term)`` over the terms computed:

* a term with weight > 0 whose inputs the step has (a batch without matte targets adds no
  ``matte`` term; a pretraining module has no critics, so no ``adv``);
* ``always`` terms (L1 and SSIM: the figures a run is judged by) also at weight 0, for the log.

Adding a term: one :class:`Term` here (its callable, the step tensors it reads, its options) and
its default weight in ``conf/loss/bggan.yaml``; the LightningModule hands every step tensor over by
name (:data:`INPUTS`). Pure: torch only, no Lightning, no Hydra, no I/O (like BasicSR's loss
registry, without the registration decorators).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch

from bokeh import metrics
from bokeh.losses.adversarial import generator_adversarial_loss
from bokeh.losses.matte import MATTE_FORMS, matte_loss
from bokeh.losses.perceptual import perceptual_loss
from bokeh.losses.reconstruction import focus_weighted_l1_loss, gradient_l1_loss, l1_loss, ssim_loss

#: What a training step can hand the terms, by name (``None`` where it has no such tensor):
#: ``output`` and ``rough`` the generator's image and its stage-1 image, ``target``, all
#: ``(B, 3, H, W)`` in [-1, 1]; ``radius`` ``(B, 1, H, W)`` blur radii in px (synthetic data);
#: ``matte_logit``, ``matte_target`` ``(B, 1, H, W)``; ``vgg`` the frozen VGG19 features module;
#: ``critics`` the critic set (finetune).
INPUTS = ("output", "rough", "target", "radius", "matte_logit", "matte_target", "vgg", "critics")

#: Keys of the loss config that are settings, not terms.
SETTINGS = ("focus_weight", "gp")


def _l1(output: torch.Tensor, target: torch.Tensor, radius: torch.Tensor | None, focus_weight: float = 0.0) -> torch.Tensor:
    """L1; with ``focus_weight > 0`` and the batch's blur radii, in-focus pixels weigh ``1 + focus_weight``."""
    if focus_weight > 0 and radius is not None:
        return focus_weighted_l1_loss(output, target, radius, focus_weight, metrics.IN_FOCUS_MAX_RADIUS)
    return l1_loss(output, target)


@dataclass(frozen=True)
class Term:
    """One generator loss term.

    Attributes:
        fn: the loss callable; called as ``fn(*inputs, **options)``, returns a scalar tensor.
        inputs: names from :data:`INPUTS` passed positionally; the term is left out when one of them
            is ``None``, unless it is listed in ``optional``.
        options: keyword of ``fn`` -> dotted key in the loss config (``"matte.form"``, ``"focus_weight"``).
        choices: dotted key -> the values it may take (checked by :func:`check_loss`).
        optional: inputs that may be ``None`` (passed as such).
        required: inputs whose absence is an error when the term is weighted (a module that was
            not set up), rather than a reason to leave the term out.
        always: computed (and logged) at weight 0 too.
    """

    fn: Callable[..., torch.Tensor]
    inputs: tuple[str, ...]
    options: Mapping[str, str] = field(default_factory=dict)
    choices: Mapping[str, tuple] = field(default_factory=dict)
    optional: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    always: bool = False


#: The terms, in the order they are computed, logged (``train/<name>``) and summed.
TERMS: dict[str, Term] = {
    "l1": Term(_l1, ("output", "target", "radius"), options={"focus_weight": "focus_weight"}, optional=("radius",), always=True),
    "ssim": Term(ssim_loss, ("output", "target"), always=True),
    "rough_l1": Term(l1_loss, ("rough", "target")),
    "gradient": Term(gradient_l1_loss, ("output", "target")),
    "matte": Term(matte_loss, ("matte_logit", "matte_target"), options={"form": "matte.form"}, choices={"matte.form": MATTE_FORMS}),
    "vgg": Term(perceptual_loss, ("vgg", "output", "target"), required=("vgg",)),
    "adv": Term(generator_adversarial_loss, ("critics", "output")),
}


def setting(loss: Mapping[str, Any], key: str) -> Any:
    """The value at dotted ``key`` of the loss config (``"matte.form"``)."""
    value: Any = loss
    for part in key.split("."):
        value = value[part]
    return value


def weight_of(loss: Mapping[str, Any], name: str) -> float:
    """Term ``name``'s weight: ``loss[name]``, or ``loss[name]["weight"]`` for a term with options."""
    value = loss[name]
    return float(value["weight"] if isinstance(value, Mapping) else value)


def check_loss(loss: Mapping[str, Any]) -> None:
    """Every key of a (merged) loss config is a term or a setting, and every term is configured,
    with a weight >= 0 and options among their choices.

    Raises:
        ValueError: one sentence naming the key (``loss.matte.form must be one of ...``).
    """
    unknown = sorted(set(loss) - set(TERMS) - set(SETTINGS))
    if unknown:
        raise ValueError(f"unknown loss term(s) {unknown}; known: {sorted([*TERMS, *SETTINGS])}")
    missing = sorted(set(TERMS) - set(loss))
    if missing:
        raise ValueError(f"the loss config has no weight for term(s) {missing}: add them to conf/loss (0 switches a term off)")
    for name, term in TERMS.items():
        if not weight_of(loss, name) >= 0:
            raise ValueError(f"loss.{name} weight must be >= 0, got {loss[name]}")
        for key, allowed in term.choices.items():
            if setting(loss, key) not in allowed:
                raise ValueError(f"loss.{key} must be one of {allowed}, got {setting(loss, key)!r}")


def generator_terms(loss: Mapping[str, Any], inputs: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The unweighted value of every term that applies (module docstring), and ``total``, their
    weighted sum.

    Args:
        loss: the loss config (every term's weight and options; :func:`check_loss`).
        inputs: step tensors by the names of :data:`INPUTS` (missing names count as ``None``).

    Returns:
        ``{name: scalar}`` in :data:`TERMS` order, plus ``"total"`` (a scalar with the graph of the
        weighted terms; the plain number 0 if no term applies).

    Raises:
        ValueError: an input name outside :data:`INPUTS`, or a weighted term without a required input.
    """
    unknown = set(inputs) - set(INPUTS)
    if unknown:
        raise ValueError(f"unknown loss input(s) {sorted(unknown)}; known: {INPUTS}")
    terms: dict[str, torch.Tensor] = {}
    for name, term in TERMS.items():
        if not (term.always or weight_of(loss, name) > 0):
            continue
        absent = [key for key in term.inputs if key not in term.optional and inputs.get(key) is None]
        if any(key in term.required for key in absent):
            raise ValueError(f"loss term {name} is weighted but has no {absent[0]} input: set the module up (setup()) before computing losses")
        if absent:
            continue
        options = {keyword: setting(loss, key) for keyword, key in term.options.items()}
        terms[name] = term.fn(*(inputs.get(key) for key in term.inputs), **options)
    terms["total"] = sum(weight_of(loss, name) * value for name, value in terms.items())
    return terms
