"""Image file I/O, in one place: read RGB, convert safely, to and from tensors, write atomically.

Every reader in the project goes through :func:`read_rgb`, so EXIF orientation, grayscale,
opaque RGBA and 16-bit files are handled the same way everywhere, and every unreadable file
raises :class:`ImageError` naming the file, the reason and what to do: corrupt or truncated
files, and files whose header claims more pixels than :func:`max_pixels` (Pillow's guard against
decompression bombs: a few kilobytes that would decode to gigabytes), which
:func:`set_max_pixels` raises or lifts. Which files are images at all is decided by the suffix
(:data:`IMAGE_SUFFIXES`; :func:`unsupported_reason` says why another file is not read).

Value conventions:
    arrays: ``(H, W, 3)`` ``uint8`` in [0, 255], RGB;
    float images: ``(H, W, 3)`` ``float32`` in [0, 1];
    tensors: ``(3, H, W)`` ``float32`` in [-1, 1] (the network's range).

torch is imported by the two tensor functions only, so file tools (the synthetic-set writer) start
without paying for it.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import os
import re
import stat
import warnings
from collections.abc import Iterator
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError, features

from bokeh.files import atomic_file

if TYPE_CHECKING:
    import torch

JPEG_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".jfif")  # Pillow's JPEG suffixes (phones write .jfif, .JPE too)
#: Files read (and written) by suffix, compared in lower case; AVIF where this Pillow has the codec.
IMAGE_SUFFIXES = (*JPEG_SUFFIXES, ".png", ".bmp", ".tif", ".tiff", ".webp") + ((".avif",) if features.check("avif") else ())
#: Photo formats that are images but that Pillow cannot decode here: the reason and what to do.
_HEIF_REASON = ("HEIC/HEIF photo, which cannot be decoded here (Pillow has no HEIF codec)",
                "convert it to JPEG first (iPhone: Settings > Camera > Formats > Most Compatible)")
_RAW_REASON = ("camera raw file, which cannot be decoded here", "develop it to JPEG, PNG or TIFF first")
_GIF_REASON = ("GIF image (often animated, 256 colours), which is not read as a photo here", "save the frame you want as PNG first")
UNREADABLE_IMAGE_SUFFIXES = {
    **dict.fromkeys((".heic", ".heif", ".hif", ".heics"), _HEIF_REASON),
    **dict.fromkeys((".dng", ".cr2", ".cr3", ".nef", ".arw", ".orf", ".rw2", ".raf", ".srw", ".pef"), _RAW_REASON),
    ".gif": _GIF_REASON,
}
_SIXTEEN_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I"}
_JPEG_END = b"\xff\xd9"
_ORIENTATION_TAG = 0x0112  # EXIF orientation; values 5-8 swap width and height
#: The largest side (px) each format's encoder writes (WebP: 16,383; JPEG: 65,500 in libjpeg).
MAX_SIDE = {**dict.fromkeys(JPEG_SUFFIXES, 65500), ".webp": 16383, ".png": 2**31 - 1, ".bmp": 2**31 - 1,
            ".tif": 2**31 - 1, ".tiff": 2**31 - 1, ".avif": 65536}


class ImageError(ValueError):
    """A file that cannot be used as an RGB image: ``str()`` says which file, why and what to do."""

    def __init__(self, path: str | os.PathLike, reason: str, hint: str = "") -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}" + (f"; {hint}" if hint else ""))


def unsupported_reason(path: str | os.PathLike) -> tuple[str, str] | None:
    """``None`` if ``path``'s suffix is one of :data:`IMAGE_SUFFIXES`; else ``(reason, what to do)``.

    Photo formats that are images but cannot be decoded here (HEIC, camera raw) get their own
    reason (:data:`UNREADABLE_IMAGE_SUFFIXES`); anything else is "not an image file".
    """
    suffix = Path(path).suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return None
    if suffix in UNREADABLE_IMAGE_SUFFIXES:
        return UNREADABLE_IMAGE_SUFFIXES[suffix]
    return (f"not an image file name ({suffix or 'no suffix'})", f"images are read by suffix: {', '.join(IMAGE_SUFFIXES)}")


class SameStemError(ValueError):
    """A folder holds two image files of one name (``x.jpg`` and ``x.png``): which one is meant?"""


def images_by_stem(folder: str | os.PathLike, known: bool = True) -> dict[str, Path]:
    """``{stem: path}`` of the image files directly in ``folder``, in name order: the one listing of
    every reader that pairs files by name (real pairs, portraits and their masks, photo-pair masks).
    Hidden files and subfolders are left out. ``known``: also files of image types that are not
    decoded here (HEIC, raw: reported by the reader), else only :data:`IMAGE_SUFFIXES`.

    Raises:
        SameStemError: two files of one stem (``x.jpg`` and ``x.png``, also ``x.JPG`` and ``x.jpg``),
            one sentence naming both: they would be taken for one photo, or scored twice under one name.
    """
    folder = Path(folder)
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        if not (is_known_image_type(path) if known else path.suffix.lower() in IMAGE_SUFFIXES):
            continue
        if path.stem in files:
            raise SameStemError(f"{folder} holds two files named {path.stem} ({files[path.stem].name} and {path.name}): "
                                f"keep one, or rename one")
        files[path.stem] = path
    return files


def is_known_image_type(path: str | os.PathLike) -> bool:
    """True for image suffixes, readable here or not (HEIC, camera raw): files a user means as photos."""
    suffix = Path(path).suffix.lower()
    return suffix in IMAGE_SUFFIXES or suffix in UNREADABLE_IMAGE_SUFFIXES


def max_pixels() -> int | None:
    """The largest image (width x height pixels) the readers decode; ``None``: no limit.

    Pillow's own guard: it refuses images over ``2 * PIL.Image.MAX_IMAGE_PIXELS`` (178,956,970
    pixels by default, e.g. 16,000 x 11,000) as possible decompression bombs.
    """
    limit = Image.MAX_IMAGE_PIXELS
    return None if limit is None else int(2 * limit)


def set_max_pixels(limit: int | None) -> None:
    """Raise (or lower) :func:`max_pixels` for this process; ``None`` lifts it (trusted files only).

    This sets Pillow's process-wide ``PIL.Image.MAX_IMAGE_PIXELS`` (to ``limit / 2``: Pillow
    refuses images of more than twice that value; the readers here silence its warning between).
    """
    if limit is not None and int(limit) < 1:
        raise ValueError(f"max_pixels must be a positive number of pixels or None (no limit), got {limit}")
    Image.MAX_IMAGE_PIXELS = None if limit is None else int(limit) / 2


def _claimed_size(path: Path) -> tuple[int, int] | None:
    """``(W, H)`` from the header of an image Pillow refused as too large (its format's header
    reader alone, which does not apply the limit); ``None`` if that fails."""
    try:
        Image.init()
        name = Image.registered_extensions().get(path.suffix.lower())
        factory, _accept = Image.OPEN[name]
        with open(path, "rb") as stream:
            return tuple(factory(stream, str(path)).size)
    except Exception:  # only used to word the message; the pixel count is reported anyway
        return None


def _too_large(path: Path, error: Exception) -> ImageError:
    """The :class:`ImageError` for a file Pillow refused as a possible decompression bomb."""
    size = _claimed_size(path)
    counted = re.search(r"\((\d+) pixels\)", str(error))
    pixels = size[0] * size[1] if size else int(counted.group(1)) if counted else None
    claimed = (f"{size[0]} x {size[1]} = " if size else "") + (f"{pixels:,} pixels" if pixels else "an unknown size")
    return ImageError(
        path,
        f"its header claims {claimed}, more than the {max_pixels() or 0:,}-pixel limit against decompression bombs",
        f"if the file is genuine, raise the limit: max_pixels={pixels or 'N'} (python -m bokeh.render), "
        f"or bokeh.images.set_max_pixels({pixels or 'N'}) in Python",
    )


def not_a_file_reason(path: str | os.PathLike) -> str | None:
    """Why ``path`` is not a regular file that can be opened (``None`` if it is one): a broken
    symbolic link, a symbolic link loop, a FIFO, socket or device (opening a FIFO would wait for a
    writer forever), a folder, or no such file."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "a symbolic link loop (it points back at itself)"
        if path.is_symlink():
            return f"a broken symbolic link (its target {os.readlink(path)} does not exist)"
        if isinstance(error, PermissionError):
            return "cannot be read: permission denied on its folder"
        return "file not found"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder, not a file"
    kind = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
    return f"not a regular file ({kind})"


def _check_regular(path: Path) -> None:
    """Raise :class:`ImageError` unless ``path`` is a regular file (see :func:`not_a_file_reason`)."""
    reason = not_a_file_reason(path)
    if reason is not None:
        raise ImageError(path, reason, "check the folder" if reason == "file not found" else "replace it with the photo itself or remove it")


@contextlib.contextmanager
def _decode_errors(path: Path) -> Iterator[None]:
    """Turn every error while opening or decoding ``path`` into one :class:`ImageError`: a file
    that cannot be read (permission, I/O error) is told apart from a damaged one, and any other
    error of a decoder (a malformed EXIF block raises ``struct.error``) is that file's problem too.

    Pillow's ``DecompressionBombWarning`` (half the limit) is silenced: the limit is the error.
    """
    _check_regular(path)
    try:
        empty = path.stat().st_size == 0
    except OSError:
        empty = False  # the open below says what is wrong
    if empty:
        raise ImageError(path, "empty file (0 bytes)", "copy the photo again (the copy or download did not finish) or remove it")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    except ImageError:
        raise
    except Image.DecompressionBombError as error:
        raise _too_large(path, error) from error
    except FileNotFoundError as error:
        raise ImageError(path, "file not found", "check the folder") from error
    except PermissionError as error:
        raise ImageError(path, "cannot be read: permission denied", "make it readable (chmod u+r) or copy it somewhere you can read") from error
    except UnidentifiedImageError as error:
        raise ImageError(path, "not a readable image (corrupt, or not an image)", "re-export or remove the file") from error
    except OSError as error:
        if error.errno is not None:  # the system refused the read (I/O error, ...): not the file's content
            raise ImageError(path, f"cannot be read ({error.strerror or error})", "check the disk or copy the file again") from error
        raise ImageError(path, f"corrupt or truncated image ({error})", "re-copy the file from its source or remove the pair") from error
    except (SyntaxError, ValueError, EOFError) as error:
        raise ImageError(path, f"corrupt or truncated image ({error})", "re-copy the file from its source or remove the pair") from error
    except Exception as error:  # noqa: BLE001  a decoder's own failure: this file's problem
        raise ImageError(path, f"could not be decoded ({type(error).__name__}: {error})", "re-save it (e.g. from an image editor) or remove it") from error


def read_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(H, W)`` of an image as :func:`read_rgb` would return it, from the header only (fast).

    Raises :class:`ImageError` for a missing, unidentifiable, too large (:func:`max_pixels`) or
    (JPEG) visibly truncated file: a JPEG that does not end with its end-of-image marker is fully
    decoded here to find out.
    """
    path = Path(path)
    with _decode_errors(path), Image.open(path) as image:
        _note_pages(path, image)
        width, height = image.size
        orientation = _orientation(image, path)
        if image.format == "JPEG" and not _ends_like_jpeg(path):
            image.load()  # raises OSError("image file is truncated ...") if it really is
    return (width, height) if orientation in (5, 6, 7, 8) else (height, width)


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file into RGB ``uint8``, as it is meant to be seen.

    Conversions (all lossless or the usual ones): the EXIF orientation is applied; an embedded ICC
    colour profile other than sRGB (Adobe RGB, Display P3, ProPhoto, CMYK, gray) is converted to
    sRGB, the colour space the network was trained in (:func:`to_srgb`); grayscale
    (8-bit ``L`` or 16-bit ``I;16``) is replicated to three channels, 16 bits rounded to 8;
    palette images are expanded; RGBA / LA whose alpha is fully opaque drop the alpha. A file
    with transparent pixels is refused: it has no single correct RGB value there.

    Shape:
        returns ``(H, W, 3)`` ``uint8`` in [0, 255].

    Raises:
        ImageError: missing, unreadable (permission), not a regular file, corrupt or truncated
            file, malformed EXIF, a damaged colour profile, more pixels than :func:`max_pixels`,
            transparency, or an unsupported mode.
    """
    path = Path(path)
    with _decode_errors(path), Image.open(path) as image:
        _note_pages(path, image)
        image = to_srgb(_upright(image, path), path)
    return _to_rgb8(image, path)


#: Where the note on a multi-page file goes (:func:`page_notes`); default: a line on stderr.
_PAGE_REPORTERS: list = []
_PAGES_NOTED: set[str] = set()


def pages_note(path: str | os.PathLike, pages: int) -> str:
    """The one line every reader says for a file of ``pages`` pages (a multi-page TIFF) it read page 1 of."""
    return f"{path}: {pages} pages; page 1 is used, the other {pages - 1} are left out (save the page you mean as its own file)"


@contextlib.contextmanager
def page_notes(report) -> Iterator[None]:
    """Inside the block, the readers' note on a multi-page file goes to ``report(line)`` (a progress
    bar's console, a list) instead of stderr."""
    _PAGE_REPORTERS.append(report)
    try:
        yield
    finally:
        _PAGE_REPORTERS.remove(report)


def _note_pages(path: Path, image: Image.Image) -> None:
    """Say once per file and process that a file of several pages is read at its first
    (:func:`pages_note`): every reader (photos, mattes, masks, real pairs, portraits, training pairs)
    comes through here. A phone's JPEG with a preview frame (MPO) is one photo, not said."""
    pages = int(getattr(image, "n_frames", 1) or 1)
    if pages < 2 or image.format == "MPO" or str(path) in _PAGES_NOTED:
        return
    _PAGES_NOTED.add(str(path))
    line = pages_note(path, pages)
    if _PAGE_REPORTERS:
        _PAGE_REPORTERS[-1](line)
    else:
        import sys

        print(line, file=sys.stderr, flush=True)


def page_count(path: str | os.PathLike) -> int:
    """How many pages (frames) the image file holds: :func:`read_rgb` reads the first; a multi-page
    TIFF (or an animated image) has more, which the caller says it left out. 1 when unknown."""
    try:
        with Image.open(path) as image:
            return int(getattr(image, "n_frames", 1) or 1)
    except Exception:  # noqa: BLE001  read_rgb says what is wrong with the file
        return 1


def _upright(image: Image.Image, path: Path) -> Image.Image:
    """``image`` decoded and turned by its EXIF orientation (a malformed EXIF block: said as such)."""
    image.load()
    _orientation(image, path)
    try:
        return ImageOps.exif_transpose(image)
    except Exception as error:  # noqa: BLE001  struct.error, AttributeError, ...: Pillow re-encoding a bad tag
        raise _exif_error(path, error) from error


_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """A subject mask as booleans, upright. A cut-out with transparent pixels (what background
    removers export: the subject on a transparent background) is read by its alpha (opaque =
    subject); any other image by its brightness (white = subject: above half).

    Shape:
        returns ``(H, W)`` ``bool``. Raises :class:`ImageError` as :func:`read_rgb` does.
    """
    path = Path(path)
    with _decode_errors(path), Image.open(path) as image:
        _note_pages(path, image)
        image = _upright(image, path)
        if image.mode in _ALPHA_MODES or (image.mode == "P" and "transparency" in image.info):
            alpha = np.asarray(image.convert("RGBA"))[..., 3]
            if alpha.min() < 255:
                return alpha > 127
    return read_rgb(path).astype(np.uint16).sum(2) > 3 * 127


def read_gray(path: str | os.PathLike) -> np.ndarray:
    """A matte image as ``(H, W)`` ``uint8``, upright: its alpha where the file has one that is not
    fully opaque (a cut-out), else its brightness (colour files converted to gray, after the
    conversions of :func:`read_rgb`). Raises :class:`ImageError` as :func:`read_rgb` does (an empty
    file said as empty; a multi-page file noted)."""
    path = Path(path)
    with _decode_errors(path), Image.open(path) as image:
        _note_pages(path, image)
        image = _upright(image, path)
        if image.mode in _ALPHA_MODES or (image.mode == "P" and "transparency" in image.info):
            alpha = np.asarray(image.convert("RGBA"))[..., 3]
            if alpha.min() < 255:
                return np.ascontiguousarray(alpha)
    return np.asarray(Image.fromarray(read_rgb(path)).convert("L"))


def _orientation(image: Image.Image, path: Path) -> int:
    """The EXIF orientation (1-8; 1 when absent); :class:`ImageError` when the EXIF block is malformed."""
    try:
        return int(image.getexif().get(_ORIENTATION_TAG, 1))
    except (OSError, EOFError):  # the file ends before its metadata (a PNG's eXIf chunk is looked for at the end): truncated, said by _decode_errors
        raise
    except Exception as error:  # noqa: BLE001  struct.error, TypeError, ... from Pillow's EXIF parser
        raise _exif_error(path, error) from error


def _exif_error(path: Path, error: Exception) -> ImageError:
    return ImageError(path, f"malformed EXIF metadata ({type(error).__name__}: {error})",
                      "re-save the photo without its metadata (e.g. exiftool -all= FILE) or remove it")


@contextlib.contextmanager
def _cms_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as error:
        raise ImageError(path, f"its embedded ICC colour profile cannot be used ({error})",
                         "re-save the photo in sRGB (e.g. from an image editor) or remove it") from error


def srgb_profile() -> bytes:
    """The ICC profile (bytes) the outputs are tagged with: LittleCMS's built-in sRGB."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


#: Colours that test what an RGB profile does: every mix of 9 levels a channel (0, 32, ..., 255).
_PROBE_LEVELS = np.array([0, 32, 64, 96, 128, 160, 192, 224, 255], np.uint8)


@functools.lru_cache(maxsize=32)
def _is_srgb(data: bytes) -> bool:
    """True if the RGB profile ``data`` maps colours to sRGB as sRGB itself does (every probe colour
    within one level): its primaries, white point and tone curves are sRGB's, whatever its name
    says (Elle Stone's linear ``sRGB-elle-V2-g10`` has sRGB's primaries but not its curve)."""
    profile = ImageCms.ImageCmsProfile(io.BytesIO(data))
    if profile.profile.xcolor_space.strip() != "RGB":
        return False
    grid = np.stack(np.meshgrid(_PROBE_LEVELS, _PROBE_LEVELS, _PROBE_LEVELS, indexing="ij"), -1).reshape(1, -1, 3)
    probe = Image.fromarray(np.ascontiguousarray(grid))
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    mapped = ImageCms.profileToProfile(probe, profile, srgb, outputMode="RGB")
    return int(np.abs(np.asarray(mapped, np.int16) - grid).max()) <= 1


def to_srgb(image: Image.Image, path: str | os.PathLike = "<image>") -> Image.Image:
    """``image`` with its embedded ICC profile (``image.info["icc_profile"]``) converted to sRGB.

    RGB profiles (Adobe RGB, Display P3, ProPhoto, ...), CMYK and gray profiles are converted
    (perceptual intent), the result is ``RGB`` without a profile; an image without a profile, or
    with one that acts as sRGB (same primaries, white point and curves, whatever its name), is returned unchanged (untagged images are taken to be sRGB). Other modes
    with an RGB profile (RGBA, palette, 16-bit) are converted to 8-bit RGB first.

    Gray profiles take 16-bit gray and gray + (opaque) alpha too, as 8-bit gray first.

    Raises:
        ImageError: the profile cannot be parsed, or its colour space does not fit the pixels.
    """
    data = image.info.get("icc_profile")
    if not data:
        return image
    path = Path(path)
    with _cms_errors(path):
        profile = ImageCms.ImageCmsProfile(io.BytesIO(data))
        if _is_srgb(bytes(data)):
            return image
        space = profile.profile.xcolor_space.strip()
        if space == "RGB" and image.mode not in ("RGB", "CMYK"):
            image = Image.fromarray(_to_rgb8(image, path))
        elif space == "GRAY" and (image.mode in _SIXTEEN_BIT_MODES or image.mode in ("LA", "La", "1")):
            image = Image.fromarray(_to_rgb8(image, path)[..., 0])  # 8-bit L: 16 bits rounded, an opaque alpha dropped
        elif (space, image.mode) not in (("RGB", "RGB"), ("CMYK", "CMYK"), ("GRAY", "L")):
            raise ImageError(path, f"its embedded ICC profile is for {space} but the pixels are {image.mode}",
                             "re-save the photo in sRGB (e.g. from an image editor) or remove it")
        srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
        converted = ImageCms.profileToProfile(image, profile, srgb, outputMode="RGB")
    converted.info.pop("icc_profile", None)
    return converted


def _to_rgb8(image: Image.Image, path: Path) -> np.ndarray:
    """A decoded PIL image as ``(H, W, 3)`` ``uint8`` RGB (see :func:`read_rgb` for the rules)."""
    mode = image.mode
    if mode == "RGB":
        return np.asarray(image, dtype=np.uint8)
    if mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(image, dtype=np.float64)
        if values.max(initial=0) > 65535 or values.min(initial=0) < 0:
            raise ImageError(path, f"{mode} image with values outside 0-65535", "save it as an 8- or 16-bit RGB image")
        gray = np.round(values / 257.0).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode in _ALPHA_MODES or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        if np.asarray(rgba)[..., 3].min() < 255:
            raise ImageError(path, "has transparent pixels (alpha < 255)", "flatten it onto a background and save as RGB")
        return np.asarray(rgba.convert("RGB"), dtype=np.uint8)
    if mode in ("L", "1", "P", "CMYK", "YCbCr", "LAB", "HSV"):
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
    raise ImageError(path, f"unsupported image mode {mode!r}", "save it as an 8-bit RGB JPEG or PNG")


def _ends_like_jpeg(path: Path) -> bool:
    """True if the file's last bytes hold the JPEG end-of-image marker (a cheap truncation test)."""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 64))
        tail = handle.read()
    return tail.rstrip(b"\x00").endswith(_JPEG_END)  # files with trailers get a full decode instead


def jpeg_roundtrip(image: np.ndarray, quality: int = 95) -> np.ndarray:
    """Encode and decode in memory, as :func:`write_image` then :func:`read_rgb` would (same artefacts).

    Shape:
        image: ``(H, W, 3)`` ``uint8``; returns the same shape.
    """
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=int(quality), subsampling=0)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB"), dtype=np.uint8)


def float_to_uint8(image: np.ndarray) -> np.ndarray:
    """``float`` image in [0, 1] (clipped) to ``uint8`` by rounding. Any shape."""
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def to_tensor(image: np.ndarray) -> "torch.Tensor":
    """RGB ``uint8`` array to the network's tensor layout and range.

    Shape:
        image: ``(H, W, 3)`` ``uint8``; returns ``(3, H, W)`` ``float32`` in [-1, 1].
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"to_tensor expects an (H, W, 3) uint8 array, got {image.shape} {image.dtype}")
    import torch

    tensor = torch.from_numpy(np.require(image, requirements=["C", "W"])).permute(2, 0, 1)  # copies only if needed
    return tensor.float().div_(127.5).sub_(1.0)


def from_tensor(tensor: "torch.Tensor") -> np.ndarray:
    """Network tensor back to an RGB ``uint8`` array (values clipped to [-1, 1]).

    Shape:
        tensor: ``(3, H, W)`` or ``(1, 3, H, W)`` in [-1, 1]; returns ``(H, W, 3)`` ``uint8``.
    """
    if tensor.ndim == 4 and tensor.shape[0] == 1:
        tensor = tensor[0]
    if tensor.ndim != 3 or tensor.shape[0] != 3:
        raise ValueError(f"from_tensor expects a (3, H, W) or (1, 3, H, W) tensor, got {tuple(tensor.shape)}")
    unit = (tensor.detach().float().cpu().clamp(-1, 1) + 1.0) * 0.5
    return float_to_uint8(unit.permute(1, 2, 0).numpy())




def check_writable_size(path: str | os.PathLike, shape: tuple[int, ...]) -> None:
    """Raise ``ValueError`` (one sentence) if an image of ``shape`` ``(H, W, ...)`` is larger than the
    format of ``path``'s suffix can store (:data:`MAX_SIDE`: WebP 16,383 px, JPEG 65,500 px)."""
    suffix = Path(path).suffix.lower()
    limit = MAX_SIDE.get(suffix)
    if limit is not None and max(shape[:2]) > limit:
        raise ValueError(f"{path}: an image of {shape[1]} x {shape[0]} px is larger than {suffix} files allow "
                         f"({limit:,} px a side); render without side_by_side, or convert the photo to PNG first")


def write_image(path: str | os.PathLike, image: np.ndarray, quality: int = 95, icc_profile: bytes | None = None) -> Path:
    """Write an RGB ``uint8`` image atomically: a temporary file in the same folder, then ``os.replace``.

    A reader never sees a half-written file, and an interrupted run leaves no partial image under
    the final name. The format follows the suffix (JPEG suffixes, :data:`JPEG_SUFFIXES`, use
    ``quality``, no chroma subsampling, so re-encoding is deterministic for equal arrays).

    ``icc_profile`` (bytes, e.g. :func:`srgb_profile`) is embedded where the format stores one.
    The temporary name is shortened where needed, so any legal file name can be written.

    Shape:
        image: ``(H, W, 3)`` or ``(H, W)`` ``uint8``; or ``(H, W)`` ``uint16`` into a ``.png`` (16-bit
        grayscale, e.g. :mod:`bokeh.data.coc` maps).

    Raises:
        ValueError: an unknown suffix, a wrong dtype, or an image larger than the format allows
            (:func:`check_writable_size`), before anything is written.
        OSError: the file could not be written (no partial file is left).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise ValueError(f"{path}: unknown image suffix {suffix!r}; use one of {', '.join(IMAGE_SUFFIXES)}")
    sixteen_bit_png = image.dtype == np.uint16 and image.ndim == 2 and suffix == ".png"
    if image.dtype != np.uint8 and not sixteen_bit_png:
        raise ValueError(f"write_image expects uint8 data (or 2-D uint16 for .png), got {image.dtype}; use float_to_uint8 first")
    check_writable_size(path, image.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"quality": int(quality), "subsampling": 0} if suffix in JPEG_SUFFIXES else {}
    if icc_profile and suffix != ".bmp":
        options["icc_profile"] = icc_profile
    with atomic_file(path) as stream:  # a temporary file beside it, renamed; removed on any error
        Image.fromarray(image).save(stream, format=Image.registered_extensions()[suffix], **options)
    return path
