"""Samples carry the segmenter's subject matte of their input, moved by the same crop, turn and flip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bokeh.data.pairs import Pair, PairDataset, list_pairs
from bokeh.images import write_image

HEIGHT, WIDTH = 40, 24  # portrait: a landscape crop turns it
POSITION = ((np.arange(HEIGHT)[:, None] * WIDTH + np.arange(WIDTH)[None]) % 251).astype(np.uint8)
IMAGE = np.repeat(POSITION[..., None], 3, 2)


def _positions(plane: torch.Tensor) -> torch.Tensor:
    return torch.round(plane * 255).long()


def test_the_cached_subject_plane_follows_the_crop_turn_and_flip(tmp_path):
    write_image(tmp_path / "subject.png", POSITION)  # the matte encodes the position too
    pair = Pair("0", Path("o.png"), Path("b.png"), subject=tmp_path / "subject.png")
    dataset = PairDataset([pair], crop=(16, 32), flip=True, reader=lambda p: (IMAGE, IMAGE), subject=True)
    flips = set()
    for seed in range(8):
        sample = dataset[(0, seed)]
        seen = torch.round((sample["input"][0] + 1) / 2 * 255).long()  # (16, 32) positions of the image
        assert sample["subject"].shape == (1, 16, 32) and sample["subject"].dtype == torch.float32
        assert torch.equal(_positions(sample["subject"][0]), seen)
        flips.add(bool(seen[0, 0] > seen[0, 1]))
    assert flips == {True, False}, "both flips were seen"


def test_a_validation_item_carries_the_subject_fitted_as_its_image(tmp_path):
    write_image(tmp_path / "subject.png", POSITION[:, :21])
    pair = Pair("0", Path("o.png"), Path("b.png"), subject=tmp_path / "subject.png")
    sample = PairDataset([pair], reader=lambda p: (IMAGE[:, :21], IMAGE[:, :21]), subject=True)[0]
    assert sample["subject"].shape == (1, 40, 24)  # padded to a multiple of 8, as the image
    seen = torch.round((sample["input"][0] + 1) / 2 * 255).long()
    assert torch.equal(_positions(sample["subject"][0]), seen)


def test_subject_off_share_gives_all_zero_planes_in_that_share(tmp_path):
    write_image(tmp_path / "subject.png", np.full((HEIGHT, WIDTH), 200, np.uint8))
    pair = Pair("0", Path("o.png"), Path("b.png"), subject=tmp_path / "subject.png")
    planes = [PairDataset([pair], crop=(16, 16), reader=lambda p: (IMAGE, IMAGE), subject=True, subject_off_share=0.5)[(0, s)]["subject"]
              for s in range(40)]
    off = sum(bool((p == 0).all()) for p in planes)
    assert 8 <= off <= 32 and all(bool((p == 0).all()) or bool((p > 0.7).all()) for p in planes)
    with pytest.raises(ValueError, match="subject_off_share must be in"):
        PairDataset([pair], subject=True, subject_off_share=1.5)


def test_without_a_cache_the_matte_is_computed_from_the_whole_input(monkeypatch):
    import bokeh.data.subject as subject

    calls = []

    def fake_matte(image):  # the red channel as the matte: the position
        calls.append(image.shape)
        return image[..., 0].astype(np.float32) / 255.0

    monkeypatch.setattr(subject, "subject_matte", fake_matte)
    dataset = PairDataset([Pair("0", Path("o.png"), Path("b.png"))], crop=(16, 32), reader=lambda p: (IMAGE, IMAGE), subject=True)
    sample = dataset[(0, 3)]
    assert calls == [(HEIGHT, WIDTH, 3)], "the whole photo, before the crop"
    assert torch.equal(_positions(sample["subject"][0]), torch.round((sample["input"][0] + 1) / 2 * 255).long())
    assert "subject" not in PairDataset([Pair("0", Path("o.png"), Path("b.png"))], reader=lambda p: (IMAGE, IMAGE))[0]


def test_a_set_caches_its_mattes_once_and_lists_them(make_folder, monkeypatch):
    import bokeh.data.subject as subject

    monkeypatch.setattr(subject, "subject_matte", lambda image: np.full(image.shape[:2], 0.5, np.float32))
    root = make_folder(["0", "1"], size=(40, 56))
    assert subject.cache_subject_mattes(root) == 2
    assert subject.cache_subject_mattes(root) == 0  # computed once
    pairs, _ = list_pairs(root)
    assert [p.subject.name for p in pairs] == ["0.png", "1.png"]
    assert np.allclose(subject.read_subject(pairs[0].subject, (40, 56)), 128 / 255)
    with pytest.raises(ValueError, match="does not match its image's 40x57"):
        subject.read_subject(pairs[0].subject, (40, 57))


def test_the_segmenter_matte_has_the_input_size_and_range():
    from bokeh.runtimes.segmenter import SegmenterMissing

    try:
        from bokeh.data.subject import subject_matte

        matte = subject_matte(IMAGE)
    except SegmenterMissing as missing:
        pytest.skip(f"no segmenter here: {missing}")
    assert matte.shape == (HEIGHT, WIDTH) and matte.dtype == np.float32
    assert 0.0 <= matte.min() and matte.max() <= 1.0
