"""bokeh.images: safe conversions, clear errors naming the file, tensor range, atomic writes.

16-bit PNGs (which Pillow cannot write) are tested with the pair loader in tests/data/test_pairs.py.
"""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import torch
from PIL import Image

from bokeh import images
from bokeh.images import ImageError, from_tensor, jpeg_roundtrip, read_rgb, read_size, to_tensor, write_image
from colour_profiles import ADOBE_RGB, DISPLAY_P3, SRGB_PRIMARIES, expected_srgb, icc_profile, patches
from test_render import gradient_photo


def noise_image(seed: int, height: int, width: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_rgb_png_round_trip_is_exact(tmp_path):
    image = noise_image(0, 9, 13)
    write_image(tmp_path / "a.png", image)
    assert np.array_equal(read_rgb(tmp_path / "a.png"), image)
    assert read_size(tmp_path / "a.png") == (9, 13)


def test_grayscale_becomes_three_equal_channels(tmp_path):
    gray = noise_image(1, 7, 5)[..., 0]
    Image.fromarray(gray).save(tmp_path / "g.png")
    rgb = read_rgb(tmp_path / "g.png")
    assert rgb.shape == (7, 5, 3) and rgb.dtype == np.uint8
    assert all(np.array_equal(rgb[..., c], gray) for c in range(3))


def test_opaque_rgba_drops_alpha_but_transparent_rgba_is_refused(tmp_path):
    rgb = noise_image(3, 5, 6)
    opaque = np.concatenate([rgb, np.full((5, 6, 1), 255, np.uint8)], 2)
    Image.fromarray(opaque, "RGBA").save(tmp_path / "opaque.png")
    assert np.array_equal(read_rgb(tmp_path / "opaque.png"), rgb)
    see_through = opaque.copy()
    see_through[0, 0, 3] = 10
    Image.fromarray(see_through, "RGBA").save(tmp_path / "clear.png")
    with pytest.raises(ImageError, match="clear.png.*transparent"):
        read_rgb(tmp_path / "clear.png")


def test_exif_orientation_is_applied_by_both_readers(tmp_path):
    image = np.zeros((4, 10, 3), np.uint8)
    image[0, :3] = 255  # a white mark in the top-left corner of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view"
    Image.fromarray(image).save(tmp_path / "r.jpg", exif=exif, quality=100)
    shown = read_rgb(tmp_path / "r.jpg")
    assert shown.shape == (10, 4, 3) and read_size(tmp_path / "r.jpg") == (10, 4)
    assert shown[:3, -1].mean() > 200 and shown[:3, 0].mean() < 50  # the mark is now top-right


def test_corrupt_truncated_and_missing_files_name_the_file(tmp_path):
    (tmp_path / "junk.jpg").write_bytes(b"this is not an image at all")
    good = io.BytesIO()
    Image.fromarray(noise_image(4, 64, 64)).save(good, format="JPEG", quality=90)
    (tmp_path / "cut.jpg").write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    for reader in (read_rgb, read_size):
        with pytest.raises(ImageError, match=r"junk\.jpg: not a readable image"):
            reader(tmp_path / "junk.jpg")
        with pytest.raises(ImageError, match=r"cut\.jpg: corrupt or truncated"):
            reader(tmp_path / "cut.jpg")
        with pytest.raises(ImageError, match=r"gone\.jpg: file not found"):
            reader(tmp_path / "gone.jpg")


def test_tensor_range_and_round_trip():
    image = noise_image(5, 3, 4)
    image[0, 0] = (0, 127, 255)
    tensor = to_tensor(image)
    assert tensor.shape == (3, 3, 4) and tensor.dtype == torch.float32
    assert tensor[:, 0, 0].tolist() == pytest.approx([-1.0, 127 / 127.5 - 1, 1.0])
    assert np.array_equal(from_tensor(tensor), image)
    assert (from_tensor(torch.full((1, 3, 2, 2), 3.0)) == 255).all()  # out of range: clipped
    assert (from_tensor(torch.full((3, 2, 2), -3.0)) == 0).all()
    with pytest.raises(ValueError, match="uint8"):
        to_tensor(image.astype(np.float32))


def test_jpeg_roundtrip_matches_write_then_read(tmp_path):
    image = noise_image(6, 16, 24)
    write_image(tmp_path / "x.jpg", image, quality=90)
    assert np.array_equal(jpeg_roundtrip(image, 90), read_rgb(tmp_path / "x.jpg"))


def test_write_is_atomic_and_leaves_nothing_behind_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "keep.png"
    write_image(target, noise_image(7, 4, 4))
    before = target.read_bytes()

    def broken_save(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        write_image(target, noise_image(8, 4, 4))
    assert target.read_bytes() == before  # the old file is intact
    assert sorted(os.listdir(tmp_path)) == ["keep.png"]  # no temporary file left
    with pytest.raises(ValueError, match="suffix"):
        images.write_image(tmp_path / "x.txt", noise_image(9, 2, 2))


def test_written_images_get_the_usual_file_mode(tmp_path):
    import os

    import numpy as np

    from bokeh.images import write_image

    path = write_image(tmp_path / "x.png", np.zeros((4, 4, 3), np.uint8))
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_header_claiming_too_many_pixels_names_the_size_and_the_way_to_allow_it(tmp_path, monkeypatch):
    from test_render import bomb_png

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored after the test
    path = bomb_png(tmp_path / "huge.png", 20000, 15000)
    for reader in (read_rgb, read_size):  # read_size: what the EBB! pair check uses
        with pytest.raises(ImageError, match=r"huge\.png: its header claims 20000 x 15000 = 300,000,000 pixels.*max_pixels=300000000"):
            reader(path)
    images.set_max_pixels(300_000_000)
    assert images.max_pixels() == 300_000_000
    with pytest.raises(ImageError, match="truncated"):  # allowed now: the decoder finds no pixel data
        read_rgb(path)
    images.set_max_pixels(None)
    assert images.max_pixels() is None


@pytest.mark.parametrize("suffix", [".jfif", ".jpe", ".JPE", ".JPG", ".jpeg"])
def test_every_jpeg_suffix_is_read_and_written_as_jpeg(tmp_path, suffix):
    image = noise_image(10, 8, 12)
    path = write_image(tmp_path / f"photo{suffix}", image, quality=95)
    with Image.open(path) as written:
        assert written.format == "JPEG"
    assert np.array_equal(read_rgb(path), jpeg_roundtrip(image, 95))  # the same encoder settings as .jpg
    assert images.unsupported_reason(path) is None
    assert "HEIC" in images.unsupported_reason(tmp_path / "IMG_0001.HEIC")[0]


def gray_icc_profile(gamma: float) -> bytes:
    """A minimal ICC v2 gray display profile (a ``kTRC`` tone curve), built here: no system file needed."""
    import struct

    d50 = (0.9642, 1.0, 0.8249)
    s15 = lambda v: struct.pack(">i", int(round(v * 65536)))  # noqa: E731
    text = b"gray test\0"
    tags = [(b"desc", b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + b"\0" * 78),
            (b"wtpt", b"XYZ \0\0\0\0" + b"".join(s15(c) for c in d50)),
            (b"kTRC", b"curv\0\0\0\0" + struct.pack(">IH", 1, int(round(gamma * 256))) + b"\0\0"),
            (b"cprt", b"text\0\0\0\0none\0")]
    offset, table, data = 128 + 4 + 12 * len(tags), b"", b""
    for signature, body in tags:
        body += b"\0" * (-len(body) % 4)
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    header = (struct.pack(">I", offset + len(data)) + b"\0" * 4 + bytes([2, 0x10, 0, 0]) + b"mntrGRAYXYZ " + b"\0" * 12 + b"acsp"
              + b"\0" * 28 + b"".join(s15(c) for c in d50) + b"\0" * 48)
    return header + struct.pack(">I", len(tags)) + table + data


@pytest.mark.parametrize("kind", ["16-bit gray", "gray + opaque alpha", "8-bit gray"])
def test_gray_photos_with_a_gray_profile_are_converted_not_skipped(tmp_path, kind):
    # issue 32 (kept back twice): "profile is for GRAY but the pixels are I;16" for 16-bit gray and gray+alpha
    levels = np.array([[0, 64, 128, 255]], np.uint8).repeat(4, 0)
    if kind == "16-bit gray":
        image = Image.fromarray(levels.astype(np.uint16) * 257)
    elif kind == "gray + opaque alpha":
        image = Image.fromarray(np.stack([levels, np.full_like(levels, 255)], -1), "LA")
    else:
        image = Image.fromarray(levels)
    image.save(tmp_path / "gray.png", icc_profile=gray_icc_profile(1.0))  # linear gray
    read = read_rgb(tmp_path / "gray.png").astype(np.float64)
    linear = levels / 255.0  # the textbook sRGB encoding of linear light
    expected = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055) * 255.0
    assert np.abs(read - expected[..., None]).max() <= 2.5 and read[0, 1, 0] > 64 + 40, "converted by the profile"


def test_an_empty_image_file_is_said_to_be_empty(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    for read in (read_rgb, read_size):
        with pytest.raises(ImageError, match=r"empty\.jpg: empty file \(0 bytes\)"):
            read(tmp_path / "empty.jpg")


def test_a_multi_page_tiff_is_read_at_its_first_page_and_counted(tmp_path):
    first, second = (np.full((8, 8, 3), v, np.uint8) for v in (40, 200))
    Image.fromarray(first).save(tmp_path / "pages.tif", save_all=True, append_images=[Image.fromarray(second)])
    assert images.page_count(tmp_path / "pages.tif") == 2 and images.page_count(tmp_path / "pages.tif") != 1
    assert np.array_equal(read_rgb(tmp_path / "pages.tif"), first)
    write_image(tmp_path / "one.png", first)
    assert images.page_count(tmp_path / "one.png") == 1



@pytest.mark.parametrize("reader", ["read_rgb", "read_size", "read_mask", "read_gray"])
def test_every_reader_says_once_that_a_multi_page_tiff_is_read_at_page_1(tmp_path, reader, capsys):
    """issue 32, F10/F11: a matte, a mask, a real pair, a portrait or a training pair read from a
    multi-page TIFF: one line, from the one reader, once per file (render routes it to its progress bar)."""
    first, second, third = (np.full((8, 8, 3), v, np.uint8) for v in (40, 200, 90))
    path = tmp_path / f"pages_{reader}.tif"
    Image.fromarray(first).save(path, save_all=True, append_images=[Image.fromarray(second), Image.fromarray(third)])
    getattr(images, reader)(path)
    getattr(images, reader)(path)
    assert capsys.readouterr().err.splitlines() == [images.pages_note(path, 3)]
    said = []
    other = tmp_path / "other.tif"
    Image.fromarray(first).save(other, save_all=True, append_images=[Image.fromarray(second)])
    with images.page_notes(said.append):
        getattr(images, reader)(other)
    assert said == [f"{other}: 2 pages; page 1 is used, the other 1 are left out (save the page you mean as its own file)"]
    write_image(tmp_path / "one.png", first)
    getattr(images, reader)(tmp_path / "one.png")
    assert capsys.readouterr().err == ""


def test_files_of_one_name_in_a_folder_are_refused_by_the_one_listing(tmp_path):
    """issue 32, F9: x.jpg and x.png (or x.JPG) paired by name would be taken for one photo."""
    for name in ("x.jpg", "y.tif", "z.heic", ".hidden.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()
    assert list(images.images_by_stem(tmp_path)) == ["x", "y", "z"]
    assert list(images.images_by_stem(tmp_path, known=False)) == ["x", "y"]
    (tmp_path / "x.png").write_bytes(b"x")
    with pytest.raises(images.SameStemError, match=r"holds two files named x \(x.jpg and x.png\)"):
        images.images_by_stem(tmp_path)


# ----------------------------------------------------------------------------- colour profiles; a photo that cannot be read (issue 21)
@pytest.mark.parametrize("space, suffix", [(ADOBE_RGB, ".png"), (DISPLAY_P3, ".webp"), (ADOBE_RGB, ".tif")])
def test_a_photo_with_a_wide_gamut_profile_is_read_in_srgb(tmp_path, space, suffix):
    raw = patches()
    path = tmp_path / f"photo{suffix}"
    options = {"lossless": True} if suffix == ".webp" else {}
    Image.fromarray(raw).save(path, icc_profile=icc_profile(space["primaries"], space["gamma"], "wide"), **options)
    expected = expected_srgb(raw.astype(np.float64), space)
    assert np.abs(expected - raw).max() > 20, "the test colours must change when converted"
    assert np.abs(read_rgb(path).astype(np.float64) - expected).max() <= 2.5


def test_a_cmyk_jpeg_with_its_profile_is_read_in_rgb(tmp_path):
    # CMYK with an embedded profile whose colour space is not the pixels' is one line, not wrong colours
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(path, icc_profile=icc_profile(SRGB_PRIMARIES, 2.2, "rgb"))
    with pytest.raises(ImageError, match="profile is for RGB but the pixels are CMYK"):
        read_rgb(path)


def test_an_unreadable_photo_is_called_unreadable_not_corrupt(tmp_path, monkeypatch):
    path = tmp_path / "locked.png"
    Image.fromarray(gradient_photo(16, 16)).save(path)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(Image, "open", refuse)  # root reads chmod 000 files, so refuse as the OS would
    with pytest.raises(ImageError, match="permission denied") as raised:
        read_rgb(path)
    assert "corrupt" not in str(raised.value)
