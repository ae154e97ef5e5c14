"""The one road from a photo to its render (``bokeh.render.render_photo``) and the focus decision inside
it: ``subject=off`` is the render from before the subject matte, bit for bit; ``subject=auto`` keeps a
portrait's face; a tap outside every subject falls back to the model's tapped matte; a user's matte of
ones returns the photo; a missing segmenter is one sentence, exit 2; the training callback scores what
``bokeh.evaluate real=`` scores; bf16 stays in range."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bokeh import composite
from bokeh.checkpoint import load_generator
from bokeh.data.transforms import unpad
from bokeh.images import from_tensor, read_rgb, to_tensor
from bokeh.render import GeneratorBackend, TorchBackend, load_backend, render_photo
from bokeh.render.__main__ import main as render_main
from bokeh.render.fit import (Plan, has_matte, matte_to_uint8, pad_to, plan_for, resize, restore_detail, subject_evidence,
                              subject_trusted, working_short_side)
from test_render import write_tiny_checkpoint


def _pre_change_render(image: np.ndarray, model, short_side="auto", detail: bool = True, focus=None, aperture=None):
    """``bokeh.render.fit.render_layers`` as it was before the subject matte (commit 225f8df), kept here
    verbatim (its tensor core inlined) as the reference ``subject="off"`` must reproduce bit for bit."""
    plan: Plan = plan_for(image.shape[:2], model.static_size, working_short_side(model, short_side))
    photo = to_tensor(image)[None]
    turned = torch.rot90(photo, 1, dims=(2, 3)) if plan.rotate else photo
    work = resize(turned, plan.work)
    controls = {}
    if focus is not None:
        controls["focus"] = plan.map_point(focus)
    if aperture is not None:
        controls["aperture"] = aperture
    matte = None
    if has_matte(model):
        layers = {k: unpad(v, plan.work) for k, v in model.layers(pad_to(work, plan.canvas), **controls).items()}
        y, matte = composite.full_size(turned, layers["matte"], layers["background"])
        if not detail:
            y = resize(layers["image"], plan.turned)
    else:
        y_work = unpad(model(pad_to(work, plan.canvas), **controls), plan.work)
        y = resize(y_work, plan.turned)
        if detail and plan.work[0] * plan.work[1] < plan.turned[0] * plan.turned[1]:
            y = restore_detail(y, turned, work, y_work)
    if plan.rotate:
        y = torch.rot90(y, -1, dims=(2, 3))
        matte = None if matte is None else torch.rot90(matte, -1, dims=(2, 3))
    return y.clamp(-1.0, 1.0)[0], None if matte is None else matte[0]


@pytest.fixture(scope="module")
def grace() -> np.ndarray:
    """matplotlib's sample portrait (it ships with the package): ``(600, 512, 3)`` uint8."""
    from bokeh.demo import subject_photo

    return subject_photo("grace_hopper")


@pytest.fixture(scope="module")
def reference():
    return load_backend("reference", precision="fp32")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("ckpt")
    return {"blend": write_tiny_checkpoint(folder / "blend.ckpt", blend=True, focus_input=True, aperture_input=True),
            "paper": write_tiny_checkpoint(folder / "paper.ckpt")}


def face(matte: torch.Tensor) -> torch.Tensor:
    """A central box on Grace Hopper's face (rows 20-50 %, columns 35-65 %) of a ``(1, H, W)`` matte."""
    height, width = matte.shape[-2:]
    return matte[..., int(0.2 * height):int(0.5 * height), int(0.35 * width):int(0.65 * width)]


# ----------------------------------------------------------------------------- subject=off: as before
def test_subject_off_is_the_render_from_before_the_subject_matte_bit_for_bit(tiny, reference, grace):
    photo = np.asarray(Image.fromarray(grace).resize((90, 120)))  # portrait: turned for a landscape fixed-size model
    cases = [(reference, grace, {}), (reference, grace, {"focus": (0.5, 0.3), "aperture": 4.0}),
             (load_backend(tiny["blend"]), photo, {"short_side": 32}), (load_backend(tiny["paper"]), photo, {"short_side": 32}),
             (TorchBackend(load_generator(tiny["paper"]), static_size=(64, 96)), photo, {})]
    for backend, image, options in cases:
        expected, expected_matte = _pre_change_render(image, backend, **options)
        rendered = render_photo(image, backend, subject="off", **options)
        assert torch.equal(rendered.image, expected) and rendered.decision == "model"
        assert (rendered.matte is None) == (expected_matte is None)
        assert expected_matte is None or torch.equal(rendered.matte, expected_matte)


# ----------------------------------------------------------------------------- subject=auto
def test_the_matte_covers_the_face_of_a_portrait_that_ships_with_matplotlib(reference, grace):
    rendered = render_photo(grace, reference)  # the default: subject=auto, no tap
    assert rendered.decision == "subject" and rendered.matte.shape == (1, 600, 512)
    assert (face(rendered.matte) > 0.5).float().mean() > 0.99, "the face is not kept"
    assert float(rendered.matte[..., :60, :60].mean()) < 0.05, "the wall behind her is kept"
    photo = to_tensor(grace)
    assert float((face(rendered.image) - face(photo)).abs().mean()) < 0.01  # her face is the photo's own
    off = render_photo(grace, reference, subject="off")
    assert float((face(off.image) - face(photo)).abs().mean()) > 3 * float((face(rendered.image) - face(photo)).abs().mean())
    assert set(rendered.layers) == {"image", "matte", "background", "subject"} and rendered.layers["subject"].shape[-2:] == rendered.plan.work


# ----------------------------------------------------------------------------- subject=person: the gate
def test_the_gate_keeps_the_models_blur_where_the_segmenter_marks_an_out_of_focus_picture_of_a_person(reference, monkeypatch):
    """Synthetic validation scene 10 of ``experiment=reference_v4`` (seed 3, id 3010): the astronaut photo is
    the far wall, out of focus; the selfie segmenter marks half the frame there, floating above the bottom edge."""
    from bokeh import metrics
    from bokeh.data.synthetic import make_pair, scene_config

    pair = make_pair(3010, seed=3, size=(256, 384), config=scene_config({"f_number": [1.8, 11.0], "reference_share": 0.35}))
    auto = render_photo(pair.sharp, reference, subject="person")
    off = render_photo(pair.sharp, reference, subject="off")
    region = auto.layers["subject"][0, 0] > 0.5
    assert float(region.float().mean()) > 0.4 and float((torch.from_numpy(pair.coc)[region].abs() >= 1).float().mean()) > 0.5
    assert auto.decision == "untrusted subject" and torch.equal(auto.image, off.image) and torch.equal(auto.matte, off.matte)
    ungated = render_photo(pair.sharp, reference)  # subject=auto: every subject matte is trusted
    assert ungated.decision == "subject"
    monkeypatch.setattr("bokeh.render.fit.subject_trusted", lambda subject: True)
    assert torch.equal(render_photo(pair.sharp, reference, subject="person").image, ungated.image), "the gate is the only difference"
    target = metrics.to_unit_range(to_tensor(pair.bokeh)[None])
    psnr = {name: float(metrics.psnr(metrics.to_unit_range(r.image[None]), target)) for name, r in (("gated", auto), ("ungated", ungated))}
    assert psnr["gated"] > psnr["ungated"] + 1.0, psnr


class RedSegmenter:
    """A stand-in segmenter: ``level`` where the photo is red, 0 elsewhere (it sees the photo as the model does)."""

    def __init__(self, level: float = 1.0) -> None:
        self.level = level

    def matte(self, image: torch.Tensor) -> torch.Tensor:
        red = (image[:, :1] > 0.5) & (image[:, 1:2] < -0.5) & (image[:, 2:] < -0.5)  # (1, 1, h, w)
        return red.float() * self.level


def red_box(shape: tuple[int, int], rows: tuple[float, float], cols: tuple[float, float]) -> np.ndarray:
    """A gray photo of ``shape`` with a red box over the given fractions of its rows and columns."""
    photo = np.full((*shape, 3), 128, np.uint8)
    height, width = shape
    photo[int(rows[0] * height):int(rows[1] * height), int(cols[0] * width):int(cols[1] * width)] = (230, 20, 20)
    return photo


def test_the_gate_trusts_a_confident_subject_that_is_small_or_rises_from_the_bottom_edge_and_nothing_else(tiny):
    cases = {  # name: (box rows, box columns, segmenter level, trusted)
        "a large subject rising from the bottom edge": ((0.3, 1.0), (0.15, 0.85), 1.0, True),
        "a small subject floating in the frame": ((0.3, 0.6), (0.4, 0.6), 1.0, True),
        "a large region floating in the frame": ((0.15, 0.75), (0.15, 0.85), 1.0, False),
        "an unsure region rising from the bottom edge": ((0.3, 1.0), (0.15, 0.85), 0.9, False),
    }
    for backend in (load_backend(tiny["blend"]), load_backend(tiny["paper"])):  # a model with a matte, and one without
        for name, (rows, cols, level, trusted) in cases.items():
            backend.segmenter = RedSegmenter(level)
            photo = red_box((96, 128), rows, cols)
            auto = render_photo(photo, backend, subject="person", short_side=64)
            off = render_photo(photo, backend, subject="off", short_side=64)
            assert render_photo(photo, backend, short_side=64).decision == "subject", "subject=auto trusts every matte"
            assert subject_trusted(auto.layers["subject"]) is trusted, (name, subject_evidence(auto.layers["subject"]))
            if trusted:
                assert auto.decision == "subject" and float(auto.matte[:, int(rows[0] * 96) + 4:int(rows[1] * 96) - 4,
                                                                        int(cols[0] * 128) + 4:int(cols[1] * 128) - 4].min()) > 0.9, name
            else:
                assert auto.decision == "untrusted subject" and torch.equal(auto.image, off.image), name
                # the matte used: the model's own, or for a model without one none of the photo (matte=true writes it)
                assert torch.equal(auto.matte, off.matte) if off.matte is not None else not bool(auto.matte.any()), name
    assert not subject_trusted(torch.zeros(1, 1, 16, 16))  # no region at all


def test_the_gate_reads_the_matte_upright_when_a_fixed_size_model_turns_the_photo(tiny):
    """A portrait photo through a landscape fixed-size model is turned a quarter turn; the frame's bottom
    edge the gate reads is the photo's, not the turned canvas's."""
    backend = TorchBackend(load_generator(tiny["blend"]), static_size=(64, 96))
    backend.segmenter = RedSegmenter()
    photo = red_box((120, 90), (0.4, 1.0), (0.15, 0.85))  # portrait: a large subject rising from its bottom edge
    rendered = render_photo(photo, backend, subject="person")
    assert rendered.plan.rotate and rendered.decision == "subject"
    assert float(rendered.matte[:, 60:110, 20:70].min()) > 0.9


def test_the_phone_pipeline_describes_the_gate_the_renderer_applies(reference, grace):
    """pipeline.json's ``subject_gate``, computed as it says on the segmenter's own 256 x 256 output,
    gives the renderer's verdict (a portrait: trusted; synthetic scene 3010: not)."""
    from bokeh.data.synthetic import make_pair, scene_config
    from bokeh.export.pair import describe_pipeline
    from bokeh.render.fit import BOTTOM_ROWS, SUBJECT_GATE, subject_segmenter
    from bokeh.runtimes.segmenter import segmenter_model_path

    description = describe_pipeline(["bokeh_float32.tflite"], (256, 384), "signed", ["image", "focus", "aperture"],
                                    ["bokeh", "matte", "background"], segmenter_model_path())
    gate = description["subject_gate"]
    assert {k: gate[k] for k in SUBJECT_GATE} == SUBJECT_GATE and gate["bottom_rows"] == BOTTOM_ROWS
    assert "k = max(g * s, matte)" in " ".join(description["steps"]) and description["composite"] == "m * photo + (1 - m) * up(B)"

    def phone(s: np.ndarray) -> bool:  # the rule as pipeline.json spells it
        region = s > 0.5
        if not region.any():
            return False
        rows = max(1, round(gate["bottom_rows"] * s.shape[0]))
        return bool(s[region].mean() >= gate["confidence"] and (region.mean() <= gate["small_area"] or region[-rows:].mean() >= gate["bottom"]))

    scene = make_pair(3010, seed=3, size=(256, 384), config=scene_config({"f_number": [1.8, 11.0], "reference_share": 0.35})).sharp
    for photo, trusted in ((grace, True), (scene, False)):
        s = subject_segmenter(reference).matte(resize(to_tensor(photo)[None], (256, 256)))[0, 0].numpy()  # its own output size
        assert phone(s) is trusted and (render_photo(photo, reference, subject="person").decision == "subject") is trusted


def test_a_tap_on_the_subject_keeps_it_and_a_tap_outside_every_subject_falls_back_to_the_models_tapped_matte(reference, grace):
    tapped = render_photo(grace, reference, focus=(0.5, 0.3))  # on her face
    assert tapped.decision == "tapped subject" and (face(tapped.matte) > 0.5).float().mean() > 0.99
    corner = (0.04, 0.04)  # the wall behind her: no subject there
    outside = render_photo(grace, reference, focus=corner)
    model = render_photo(grace, reference, focus=corner, subject="off")
    assert outside.decision == "tapped model"
    assert torch.equal(outside.matte, model.matte) and torch.equal(outside.image, model.image)


def test_a_model_without_a_matte_gets_the_subject_matte_over_its_own_render(tiny, grace):
    backend = load_backend(tiny["paper"])
    photo = np.asarray(Image.fromarray(grace).resize((128, 150)))
    outside = render_photo(photo, backend, subject="auto", matte=None, short_side=64)
    assert outside.decision == "subject" and float(face(outside.matte).mean()) > 0.9  # the face kept over the model's render
    off = render_photo(photo, backend, subject="off", short_side=64)
    keep = outside.matte
    assert torch.allclose(outside.image, (keep * to_tensor(photo) + (1 - keep) * off.image).clamp(-1, 1), atol=1e-5)


def test_an_all_ones_user_matte_returns_the_photo_exactly_and_zeros_the_models_background(tiny, grace, tmp_path):
    source = tmp_path / "grace.png"
    Image.fromarray(grace).save(source)
    ones = tmp_path / "ones.png"
    Image.fromarray(np.full((300, 256), 255, np.uint8)).save(ones)  # half the photo's size: resized to it
    out = tmp_path / "out"
    assert render_main([f"input={source}", f"ckpt={tiny['blend']}", f"out={out}", f"focus={ones}", "matte=true"]) == 0
    np.testing.assert_array_equal(read_rgb(out / "grace.png"), grace)
    assert (np.asarray(Image.open(out / "grace.matte.png")) == 255).all()
    backend = load_backend(tiny["blend"])
    zeros = render_photo(grace, backend, matte=np.zeros(grace.shape[:2], np.uint8))
    background = composite.upsample_background(zeros.layers["background"], grace.shape[:2])[0]
    assert zeros.decision == "user" and torch.equal(zeros.image, background.clamp(-1, 1))


def test_a_bad_user_matte_is_one_sentence_exit_2(tiny, grace, tmp_path, capsys):
    source = tmp_path / "in" / "grace.png"
    source.parent.mkdir()
    Image.fromarray(grace).save(source)
    broken, wide = tmp_path / "broken.png", tmp_path / "wide.png"
    broken.write_bytes(b"not a png")
    Image.fromarray(np.zeros((100, 300), np.uint8)).save(wide)
    for focus, folder, message in ((broken, False, "not a readable matte"), (tmp_path / "none.png", False, "no such file"),
                                   (wide, False, "must have the photo's shape"), (wide, True, "belongs to one photo")):
        out = tmp_path / "out"
        code = render_main([f"input={source.parent if folder else source}", f"ckpt={tiny['blend']}", f"out={out}", f"focus={focus}"])
        lines = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and message in lines[0] and f"focus={focus}" in lines[0], lines
        assert not out.exists() or not any(out.iterdir())


def test_matte_true_writes_the_matte_used_even_for_a_model_without_one(tiny, grace, tmp_path):
    source = tmp_path / "grace.png"
    small = np.asarray(Image.fromarray(grace).resize((128, 150)))
    Image.fromarray(small).save(source)
    out = tmp_path / "out"
    assert render_main([f"input={source}", f"ckpt={tiny['paper']}", f"out={out}", "matte=true", "short_side=64"]) == 0
    expected = render_photo(small, load_backend(tiny["paper"]), short_side=64).matte
    np.testing.assert_array_equal(np.asarray(Image.open(out / "grace.matte.png")), matte_to_uint8(expected))


def test_a_missing_segmenter_is_one_sentence_exit_2(tiny, grace, tmp_path, capsys, monkeypatch):
    import bokeh.runtimes.segmenter as segmenter

    monkeypatch.setattr(segmenter, "find_spec", lambda name: None)  # as if mediapipe were not installed
    segmenter._default.cache_clear()
    try:
        source = tmp_path / "grace.png"
        Image.fromarray(grace[:64, :64]).save(source)
        out = tmp_path / "out"
        assert render_main([f"input={source}", f"ckpt={tiny['blend']}", f"out={out}"]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and "mediapipe" in lines[0] and "install" in lines[0], lines
        assert not out.exists() or not any(out.iterdir())
        # subject=off needs no segmenter
        assert render_main([f"input={source}", f"ckpt={tiny['blend']}", f"out={out}", "subject=off"]) == 0
        assert render_main([f"input={source}", f"ckpt={tiny['blend']}", f"out={out}", "subject=maybe"]) == 2
        assert "subject=maybe: one of auto, person, off" in capsys.readouterr().err
        assert render_main([f"input={source}", f"ckpt={tiny['blend']}", f"out={out}", "subject=person", "overwrite=true"]) == 2, "person needs it too"
    finally:
        segmenter._default.cache_clear()


# ----------------------------------------------------------------------------- one road: training = command line
@pytest.mark.parametrize("subject", ["auto", "off"])
def test_the_training_callbacks_real_pair_score_equals_bokeh_evaluate_real(tiny, tmp_path, capsys, monkeypatch, subject):
    from types import SimpleNamespace

    from bokeh import cpu
    from bokeh.evaluate import __main__ as evaluate
    from bokeh.callbacks import RealPairScores
    from test_real_pairs import write_ebb_set

    monkeypatch.setattr(cpu, "native_bf16", lambda: False)  # precision=auto computes in fp32, as the generator in training
    folder = write_ebb_set(tmp_path / "real" / "ebb", names=("1", "2", "3"))
    logged = {}
    module = SimpleNamespace(generator=load_generator(tiny["blend"]).train(), log=lambda key, value, **kwargs: logged.__setitem__(key, value))
    RealPairScores(str(folder), subject=subject).on_validation_epoch_end(SimpleNamespace(sanity_checking=False, is_global_zero=True), module)
    assert module.generator.training  # its mode is given back
    cli = evaluate.main([f"ckpt={tiny['blend']}", f"real={folder}", "tap=false", f"subject={subject}"])["means"]["f/1.8"]["model"]
    capsys.readouterr()
    for key in RealPairScores.KEYS:
        assert math.isfinite(logged[f"real/{key}"]) and logged[f"real/{key}"] == pytest.approx(cli[key], rel=1e-6, abs=1e-9), key
    tapped = evaluate.main([f"ckpt={tiny['blend']}", f"real={folder}", "tap=true", f"subject={subject}"])["means"]["f/1.8"]["model"]
    assert logged["real/tapped/psnr"] == pytest.approx(tapped["psnr"], rel=1e-6)


def test_a_generator_with_a_subject_input_renders_through_the_generator_backend(tmp_path, grace):
    """The training callbacks render a v4-style generator (subject input, matte) through
    :class:`GeneratorBackend`: its subject plane needs the working size, with or without a matte given."""
    photo = np.asarray(Image.fromarray(grace).resize((128, 150)))
    generator = load_generator(write_tiny_checkpoint(tmp_path / "v4.ckpt", blend=True, focus_input=True, aperture_input=True,
                                                     subject_input=True))
    backend = GeneratorBackend(generator)
    layers = backend.layers(torch.zeros(1, 3, 64, 56))  # no subject given: an all-zero plane
    assert layers["image"].shape == (1, 3, 64, 56) and layers["matte"].shape == (1, 1, 64, 56)
    for options in ({"subject": "off"}, {"matte": np.full(photo.shape[:2], 200, np.uint8)}):
        rendered = render_photo(photo, backend, short_side=64, **options)
        assert rendered.image.shape[-2:] == photo.shape[:2] and bool(torch.isfinite(rendered.image).all())


# ----------------------------------------------------------------------------- bf16
def test_the_subject_path_stays_in_range_in_bf16(tiny, grace):
    photo = np.asarray(Image.fromarray(grace).resize((128, 150)))
    generator = load_generator(tiny["blend"])
    for backend in (TorchBackend(generator, precision="bf16"), GeneratorBackend(generator.to(torch.bfloat16))):
        for options in ({}, {"focus": (0.5, 0.3)}, {"focus": (0.04, 0.04)}, {"matte": np.full(photo.shape[:2], 200, np.uint8)}):
            rendered = render_photo(photo, backend, short_side=64, **options)
            assert rendered.image.dtype == torch.float32 and rendered.matte.dtype == torch.float32
            assert float(rendered.image.min()) >= -1.0 and float(rendered.image.max()) <= 1.0
            assert float(rendered.matte.min()) >= 0.0 and float(rendered.matte.max()) <= 1.0
            assert bool(torch.isfinite(rendered.image).all())
            if rendered.decision != "tapped model":  # the corner tap: the model's own (untaught) matte
                assert float(face(rendered.matte).mean()) > 0.7, rendered.decision
    with torch.autocast("cpu", dtype=torch.bfloat16):  # as a bf16-mixed validation runs it
        rendered = render_photo(photo, GeneratorBackend(load_generator(tiny["blend"])), short_side=64)
    assert float(rendered.image.abs().max()) <= 1.0 and float(rendered.matte.max()) <= 1.0
