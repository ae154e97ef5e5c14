"""The EBB! reader: layout, split, paired crops, fitting to multiples of 8, and every bad input."""

from __future__ import annotations

import io
import itertools
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from bokeh.models.controls import NO_FOCUS
from PIL import Image

from bokeh.data.datamodules import EBBDataModule
from bokeh.data.pairs import BadPairError, BadPairWarning, DataLayoutError, PairDataset, list_pairs, read_include_list, select
from bokeh.data.transforms import unpad
from bokeh.images import write_image
from test_render import bad_exif_jpeg, gradient_photo

# optional: the authors' cleaned EBB! training list, kept beside the checkout (../shared), never in the repository
CLEAN_LIST = Path(__file__).resolve().parents[3] / "shared" / "data" / "ebb_train_clean_list.txt"


def module(root, **overrides) -> EBBDataModule:
    settings = dict(root=str(root), crop_size=(16, 24), train_ids=(0, 4), val_ids=(5, 5), num_workers=0, batch_size=1)
    return EBBDataModule(**{**settings, **overrides})


def test_empty_or_wrong_folders_fail_at_once_saying_the_layout(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "wrong" / "images").mkdir(parents=True)
    (tmp_path / "bare" / "original").mkdir(parents=True)
    (tmp_path / "bare" / "bokeh").mkdir()
    for root, said in [
        (tmp_path / "missing", "does not exist"),
        (tmp_path / "empty", "has no original/ and bokeh/ folders"),
        (tmp_path / "wrong", "holds: images/"),
        (tmp_path / "bare", "no images in"),
    ]:
        with pytest.raises(DataLayoutError, match=said) as error:
            module(root).setup("fit")
        assert "expected <root>/original/<name>.jpg and <root>/bokeh/<name>.jpg" in str(error.value)


def test_default_split_is_val294(make_folder):
    root = make_folder(["4398", "4399", "4400", "4693", "4694", "notes"])
    dm = EBBDataModule(str(root), crop_size=(16, 24), num_workers=0)
    dm.setup("fit")
    assert [p.name for p in dm.train_set.pairs] == ["4398", "4399"]
    assert [p.name for p in dm.val_set.pairs] == ["4400", "4693"]
    everything = EBBDataModule(str(root), crop_size=(16, 24), train_ids=None, num_workers=0)
    everything.setup("fit")  # train_ids=None: all pairs outside val, numeric or not
    assert [p.name for p in everything.train_set.pairs] == ["4398", "4399", "4694", "notes"]


def test_the_challenge_zip_training_folder_is_found(make_folder):
    root = make_folder([str(i) for i in range(6)], sub="Training")
    dm = module(root)
    dm.setup("fit")
    assert len(dm.train_set) == 5 and len(dm.val_set) == 1


def test_include_list_restricts_training_only(make_folder, tmp_path):
    root = make_folder([str(i) for i in range(10)])
    listing = tmp_path / "keep.txt"
    listing.write_text("# cleaned\n0.jpg\n2.jpg\n\n9.jpg\n")
    assert read_include_list(listing) == {"0", "2", "9"}
    dm = module(root, train_ids=(0, 7), val_ids=(8, 9), include_list=str(listing))
    dm.setup("fit")
    assert [p.name for p in dm.train_set.pairs] == ["0", "2"]
    assert [p.name for p in dm.val_set.pairs] == ["8", "9"]  # validation is not filtered
    with pytest.raises(FileNotFoundError, match="one image name per line"):
        read_include_list(tmp_path / "nope.txt")


@pytest.mark.skipif(not CLEAN_LIST.is_file(), reason=f"the authors' cleaned list is optional and absent here ({CLEAN_LIST})")
def test_the_authors_include_list_reads(make_folder):
    root = make_folder([str(i) for i in range(10)])
    authors = module(root, train_ids=(0, 7), val_ids=(8, 9), include_list=str(CLEAN_LIST))
    authors.setup("fit")  # the authors' list leaves out 3 and 8
    assert [p.name for p in authors.train_set.pairs] == ["0", "1", "2", "4", "5", "6", "7"]


def where_from(crop: torch.Tensor, source: np.ndarray) -> str | None:
    """'plain' or 'flipped' if ``crop`` (a [-1, 1] tensor) is a window of ``source`` (or of its mirror)."""
    pixels = ((crop + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    h, w = pixels.shape[:2]
    for label, view in (("plain", source), ("flipped", source[:, ::-1])):
        if any(np.array_equal(view[y : y + h, x : x + w], pixels) for y in range(view.shape[0] - h + 1) for x in range(view.shape[1] - w + 1)):
            return label
    return None


def test_training_crops_take_the_same_window_and_flip_of_both_images(make_folder):
    root = make_folder([str(i) for i in range(6)], size=(40, 56))
    source = np.asarray(Image.open(root / "original" / "0.png"))
    dm = module(root)
    dm.setup("fit")
    seen = []
    for _ in range(30):
        item = dm.train_set[0]
        assert item["input"].shape == item["target"].shape == (3, 16, 24)
        assert torch.allclose(item["target"], -item["input"], atol=1e-6)  # target = 255 - input: same window and flip
        seen.append(where_from(item["input"], source))
    assert None not in seen and 0 < seen.count("flipped") < 30  # flipped sometimes, not always
    no_flip = module(root, flip=False)
    no_flip.setup("fit")
    assert all(where_from(no_flip.train_set[0]["input"], source) == "plain" for _ in range(10))


def test_iterating_a_dataset_ends(make_folder):
    root = make_folder([str(i) for i in range(6)])
    pairs, _ = list_pairs(root)
    dataset = PairDataset(pairs, crop=(16, 24))
    assert len(list(itertools.islice(iter(dataset), 10))) == 6
    with pytest.raises(IndexError):
        dataset[6]


def test_batches_follow_the_contract(make_folder):
    root = make_folder([str(i) for i in range(6)], size=(43, 61))
    dm = module(root, batch_size=2)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"input", "target", "name", "size", "focus", "aperture", "matte"}
    assert batch["input"].shape == (2, 3, 16, 24) and batch["input"].dtype == torch.float32
    assert batch["matte"].shape == (2, 1, 16, 24) and (batch["matte"] == -1).all()  # no region known: no matte loss
    # no mask or blur radius: the in-focus region is unknown, so no tap; no f_numbers.json: f/1.8
    assert batch["focus"].tolist() == [list(NO_FOCUS)] * 2 and torch.allclose(batch["aperture"], torch.full((2, 1), 1.8))
    assert -1.0 <= float(batch["input"].min()) and float(batch["target"].max()) <= 1.0
    assert isinstance(batch["name"], list) and all(isinstance(n, str) for n in batch["name"])
    val = next(iter(dm.val_dataloader()))
    assert val["input"].shape == (1, 3, 48, 64) and val["size"].tolist() == [[43, 61]]
    assert val["name"] == ["5"]


def test_validation_pads_to_a_multiple_of_8_and_unpad_restores_it(make_folder):
    root = make_folder([str(i) for i in range(6)], size=(43, 61))
    original = torch.from_numpy(np.array(Image.open(root / "original" / "5.png"))).permute(2, 0, 1).float() / 127.5 - 1
    padded = module(root)
    padded.setup("validate")
    item = padded.val_set[0]
    assert item["input"].shape == (3, 48, 64) and item["size"].tolist() == [43, 61]
    assert torch.equal(unpad(item["input"], item["size"]), original)
    assert torch.equal(item["input"][:, 43:, :61], original[:, 42:43].expand(3, 5, 61))  # edge rows repeated
    cropped = module(root, val_fit="crop")
    cropped.setup("validate")
    item = cropped.val_set[0]
    assert item["input"].shape == (3, 40, 56) and item["size"].tolist() == [40, 56]
    assert torch.equal(item["input"], original[:, :40, :56])


def test_portrait_pairs_turn_to_fit_a_landscape_crop(make_folder):
    root = make_folder([str(i) for i in range(6)], size=(56, 40))
    dm = module(root, crop_size=(32, 48))
    dm.setup("fit")
    assert dm.train_set[0]["input"].shape == (3, 32, 48)
    with pytest.raises(BadPairError, match="smaller than the crop"):
        module(root, crop_size=(32, 48), rotate_to_fit=False, on_bad_pair="fail").setup("fit")


# --- bad input: each case replaces pair 2 of a good folder (pairs 0-4 train, 5 validates) ----------


def truncated_jpeg(root: Path) -> Path:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(buffer, format="JPEG")
    (root / "original" / "2.png").unlink()
    path = root / "original" / "2.jpg"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) * 2 // 3])
    return path


def corrupt(root: Path) -> Path:
    path = root / "bokeh" / "2.png"
    path.write_bytes(b"\x89PNG but then garbage")
    return path


def missing_partner(root: Path) -> Path:
    (root / "bokeh" / "2.png").unlink()
    return root / "original" / "2.png"


def other_size(root: Path) -> Path:
    path = root / "bokeh" / "2.png"
    write_image(path, np.zeros((40, 50, 3), np.uint8))
    return path


def too_small(root: Path) -> Path:
    for side in ("original", "bokeh"):
        write_image(root / side / "2.png", np.zeros((12, 20, 3), np.uint8))
    return root / "original" / "2.png"


def bomb(root: Path) -> Path:
    from test_render import bomb_png

    (root / "bokeh" / "2.png").unlink()
    return bomb_png(root / "bokeh" / "2.png", 20000, 20000)


REPORTED = {  # case -> the reason the report gives
    "missing partner": (missing_partner, "no partner bokeh/2"),
    "corrupt file": (corrupt, "not a readable image"),
    "truncated JPEG": (truncated_jpeg, "corrupt or truncated"),
    "mismatched sizes": (other_size, "size 40x50 differs from its original's 40x56"),
    "smaller than crop": (too_small, "12x20 is smaller than the crop 16x24"),
    "decompression-bomb header": (bomb, "header claims 20000 x 20000 = 400,000,000 pixels"),
}


@pytest.mark.parametrize("case", REPORTED)
def test_a_bad_pair_is_skipped_with_a_warning_naming_the_file_and_counted(case, make_folder):
    damage, reason = REPORTED[case]
    root = make_folder([str(i) for i in range(6)])
    path = damage(root)
    dm = module(root)
    with pytest.warns(BadPairWarning) as caught:
        dm.setup("fit")
    messages = [str(w.message) for w in caught]
    assert any(str(path) in m and reason in m for m in messages), messages
    assert any("skipped 1 of" in m for m in messages), messages
    assert [p.name for p in dm.train_set.pairs] == ["0", "1", "3", "4"]


@pytest.mark.parametrize("case", REPORTED)
def test_a_bad_pair_fails_under_on_bad_pair_fail(case, make_folder):
    damage, reason = REPORTED[case]
    root = make_folder([str(i) for i in range(6)])
    path = damage(root)
    with pytest.raises(BadPairError, match="on_bad_pair=fail") as error:
        module(root, on_bad_pair="fail").setup("fit")
    assert str(path) in str(error.value) and reason in str(error.value)


def gray(root: Path, png16) -> None:
    Image.open(root / "original" / "2.png").convert("L").save(root / "original" / "2.png")


def rgba(root: Path, png16) -> None:
    image = Image.open(root / "bokeh" / "2.png").convert("RGBA")
    image.save(root / "bokeh" / "2.png")


def gray16(root: Path, png16) -> None:
    values = np.random.default_rng(1).integers(0, 65536, (40, 56)).astype(np.uint16)
    (root / "original" / "2.png").write_bytes(png16(values))


def rgb16(root: Path, png16) -> None:
    values = np.random.default_rng(2).integers(0, 65536, (40, 56, 3)).astype(np.uint16)
    (root / "bokeh" / "2.png").write_bytes(png16(values))


@pytest.mark.parametrize("convert", [gray, rgba, gray16, rgb16], ids=["grayscale", "opaque RGBA", "16-bit gray", "16-bit RGB"])
def test_convertible_images_load_without_a_report(convert, make_folder, png16):
    root = make_folder([str(i) for i in range(6)])
    convert(root, png16)
    dm = module(root, on_bad_pair="fail")
    with warnings.catch_warnings():
        warnings.simplefilter("error", BadPairWarning)
        dm.setup("fit")
        item = PairDataset(dm.train_set.pairs[2:3])[0]  # the whole converted pair
    assert item["name"] == "2" and item["input"].shape == item["target"].shape == (3, 40, 56)
    if convert in (gray, gray16):
        assert torch.equal(item["input"][0], item["input"][1]) and torch.equal(item["input"][1], item["input"][2])


def test_a_pair_that_fails_to_decode_later_is_skipped_or_fails_by_policy(make_folder):
    root = make_folder([str(i) for i in range(6)])
    image = np.asarray(Image.open(root / "bokeh" / "2.png").convert("RGBA")).copy()
    image[0, 0, 3] = 0  # one transparent pixel: no single right RGB value
    Image.fromarray(image, "RGBA").save(root / "bokeh" / "2.png")
    pairs, _ = list_pairs(root)
    skipping = PairDataset(select(pairs, (0, 4)), crop=(16, 24))
    with pytest.warns(BadPairWarning, match=r"2\.png: has transparent pixels.*1 skipped while loading"):
        item = skipping[2]
    assert item["name"] == "3"  # the next good pair instead
    assert skipping[2]["name"] == "3"  # remembered: no second decode attempt, no second warning
    failing = PairDataset(select(pairs, (0, 4)), crop=(16, 24), on_bad_pair="fail")
    with pytest.raises(BadPairError, match=r"pair 2: .*2\.png: has transparent pixels"):
        failing[2]


def test_a_training_crop_of_the_blur_radius_map_matches_the_image_crop():
    """The map gets the same turn, window and flip as the pair (checked on an image that encodes its position)."""
    import torch

    from bokeh.data.pairs import Pair, PairDataset

    height, width = 40, 24  # portrait: a landscape crop turns it
    position = (np.arange(height)[:, None] * width + np.arange(width)[None]) % 251
    image = np.repeat(position[..., None], 3, 2).astype(np.uint8)
    coc = position.astype(np.float32)
    dataset = PairDataset([Pair("0", Path("o.png"), Path("b.png"))], crop=(16, 32), flip=True,
                          reader=lambda pair: (image, image, coc))
    for seed in range(6):  # several windows and both flips
        sample = dataset[(0, seed)]
        expected = (sample["input"][0] + 1) / 2 * 255
        assert sample["coc"].shape == (1, 16, 32)
        torch.testing.assert_close(sample["coc"][0], expected, atol=0.6, rtol=0)


def test_phone_file_types_pair_up_and_undecodable_photos_are_reported(make_folder):
    root = make_folder([str(i) for i in range(6)])
    for side in ("original", "bokeh"):  # pair 1 as JPEG-family files with odd suffixes
        image = Image.open(root / side / "1.png").convert("RGB")
        (root / side / "1.png").unlink()
        image.save(root / side / ("1.jfif" if side == "original" else "1.JPE"), format="JPEG", quality=95)
        (root / side / "2.png").unlink()
        (root / side / "2.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic")  # pair 2 as iPhone HEIC
    (root / "original" / "notes.txt").write_text("not a photo: not a pair either")
    dm = module(root)
    with pytest.warns(BadPairWarning) as caught:
        dm.setup("fit")
    messages = [str(w.message) for w in caught]
    assert any("2.HEIC" in m and "HEIC/HEIF" in m and "convert it to JPEG" in m for m in messages), messages
    assert any("skipped 1 of" in m for m in messages), messages  # one report for the pair, not one per side
    assert [p.name for p in dm.train_set.pairs] == ["0", "1", "3", "4"]
    assert dm.train_set.pairs[1].original.suffix == ".jfif" and dm.train_set[1]["input"].shape == (3, 16, 24)


def test_validation_images_too_small_for_the_network_are_bad_pairs(make_folder):
    root = make_folder([str(i) for i in range(5)], size=(40, 56))
    make_folder(["5"], size=(8, 8), root=root)  # an 8 x 8 validation pair: one pixel at 1/8 scale
    with pytest.warns(BadPairWarning, match=r"5\.png: image of 8x8 is smaller than 16x16"):
        with pytest.raises(DataLayoutError, match="no usable validation pairs"):
            module(root).setup("fit")


def test_crops_too_small_for_the_network_are_refused():
    with pytest.raises(ValueError, match="at least 16"):
        EBBDataModule("unused", crop_size=(8, 8))


def test_a_pair_that_knows_no_region_has_an_unknown_matte_everywhere(make_folder):
    from bokeh.data.focus import UNKNOWN

    pairs, _ = list_pairs(make_folder(["0", "1"]))
    for dataset in (PairDataset(pairs, crop=(16, 24), flip=True), PairDataset(pairs)):
        sample = dataset[0]
        assert sample["matte"].shape == (1, *sample["input"].shape[-2:])
        assert (sample["matte"] == UNKNOWN).all()


def test_the_matte_is_the_in_focus_radius_through_the_same_crop_and_flip():
    """On an image that encodes its position, the matte of each crop is where the position's blur radius is < 1 px."""
    from bokeh.data.pairs import Pair

    height, width = 40, 24  # portrait: a landscape crop turns it
    position = (np.arange(height)[:, None] * width + np.arange(width)[None]) % 251
    image = np.repeat(position[..., None], 3, 2).astype(np.uint8)
    coc = (position % 7).astype(np.float32)  # radius 0 (in focus) on every 7th position, 1 to 6 px elsewhere
    dataset = PairDataset([Pair("0", Path("o.png"), Path("b.png"))], crop=(16, 32), flip=True,
                          reader=lambda pair: (image, image, coc))
    flips = set()
    for seed in range(6):
        sample = dataset[(0, seed)]
        seen = torch.round((sample["input"][0] + 1) / 2 * 255).long()  # (16, 32) positions
        assert torch.equal(sample["matte"][0], (seen % 7 == 0).float())
        assert torch.equal(sample["matte"], (sample["coc"] < 1).float())
        flips.add(bool(seen[0, 0] > seen[0, 1]))
    assert flips == {True, False}, "both flips were seen"


# ----------------------------------------------------------------------------- one bad pair in the training data (issue 21)
def test_a_bad_pair_in_training_data_is_skipped_with_its_reason(tmp_path):
    from bokeh.data.pairs import BadPairWarning, Pair, PairDataset

    good = [tmp_path / "g_in.png", tmp_path / "g_out.png"]
    for path in good:
        Image.fromarray(gradient_photo(32, 32)).save(path)
    bad = bad_exif_jpeg(tmp_path / "bad_in.jpg")
    dataset = PairDataset([Pair("bad", bad, good[1]), Pair("good", *good)], crop=(8, 8))
    with pytest.warns(BadPairWarning, match="malformed EXIF"):
        sample = dataset[0]
    assert sample["name"] == "good" and "bad" in dataset.skipped
