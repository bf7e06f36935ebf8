"""Read and write image files: Pillow for PNG, JPEG, BMP and WebP, tifffile for TIFF.

Reading keeps the bit depth and channels (8-bit → uint8, 16-bit → uint16, float TIFF stays
float; palette → RGB or RGBA, 1-bit → uint8 0/255, CMYK/YCbCr → RGB), refuses a file
whose content is another format than its extension says, and checks the pixel count from
the header before decoding anything (decompression bombs). Writing is atomic: the encoder
writes a temp file in the target's directory, which is fsynced and then published by
rename (or by hard link when existing files must not be replaced), so a target is either
untouched or complete. Pillow and tifffile are imported on first use.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["DEFAULT_MAX_PIXELS", "SUPPORTED_FORMATS", "ImageError", "ImageInfo",
           "cleanup_temp_files", "format_for_path", "read_image", "write_image"]  # fmt: skip

SUPPORTED_FORMATS: dict[str, tuple[str, ...]] = {
    "PNG": (".png",),
    "JPEG": (".jpg", ".jpeg"),
    "BMP": (".bmp",),
    "WEBP": (".webp",),
    "TIFF": (".tif", ".tiff"),
}
_ALIASES = {"JPG": "JPEG", "TIF": "TIFF"}
DEFAULT_MAX_PIXELS = 178_956_970  # per image, all pages together; Pillow's own default
TEMP_PREFIX = ".npaccel-tmp-"
TEMP_SUFFIX = ".part"
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


class ImageError(Exception):
    """A file that cannot be read, or an array that cannot be written to it.

    ``reason`` is a short code: 'missing', 'empty', 'permission', 'corrupt', 'truncated',
    'wrong-extension', 'unsupported', 'too-large', 'unwritable' or 'exists'.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ImageInfo:
    format: str
    shape: tuple[int, ...]
    dtype: str
    mode: str | None
    pages: int
    file_bytes: int


def format_for_path(path: str | os.PathLike, format: str | None = None) -> str:
    """The format named by ``format`` (case-insensitive; 'jpg', 'tif' accepted) or by the
    path's extension."""
    if format is not None:
        name = str(format).upper().lstrip(".")
        name = _ALIASES.get(name, name)
        if name not in SUPPORTED_FORMATS:
            allowed = sorted(f.lower() for f in SUPPORTED_FORMATS)
            raise ValueError(f"`format` must be one of {allowed}; got {format!r}")
        return name
    ext = os.path.splitext(os.fspath(path))[1].lower()
    for name, exts in SUPPORTED_FORMATS.items():
        if ext in exts:
            return name
    allowed = sorted(e for exts in SUPPORTED_FORMATS.values() for e in exts)
    raise ValueError(f"{os.fspath(path)!r}: extension {ext!r} is not an image format npaccel "
                     f"writes ({', '.join(allowed)}); pass a format")  # fmt: skip


# ------------------------------------------------------------------------------- reading


def read_image(
    path: str | os.PathLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> tuple[np.ndarray, ImageInfo]:
    """Decode one image file: (H, W), (H, W, C) or, for a multi-page TIFF, (P, H, W[, C]).

    Raises
    ------
    ImageError
        With ``reason`` saying why (see :class:`ImageError`); the message names the file.
    """
    path = Path(path)
    name = str(path)
    try:
        expected = format_for_path(path)
    except ValueError as exc:
        raise ImageError("unsupported", str(exc)) from None
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(16)
    except FileNotFoundError:
        raise ImageError("missing", f"{name!r} does not exist") from None
    except PermissionError:
        raise ImageError("permission", f"{name!r} cannot be read: permission denied") from None
    except OSError as exc:
        raise ImageError("corrupt", f"{name!r} cannot be read: {exc}") from None
    if size == 0:
        raise ImageError("empty", f"{name!r} is empty (0 bytes)")
    actual = "TIFF" if head[:4] in _TIFF_MAGIC else None
    if actual is None:
        actual = _pillow_format(path)
    if actual != expected:
        raise ImageError("wrong-extension",
                         f"{name!r}: the content is {actual} but the extension "
                         f"{path.suffix!r} says {expected}; rename the file")  # fmt: skip
    if actual == "TIFF":
        array, mode, pages = _read_tiff(path, max_pixels)
    else:
        array, mode, pages = _read_pillow(path, max_pixels)
    array = np.ascontiguousarray(array)
    info = ImageInfo(actual, tuple(array.shape), str(array.dtype), mode, pages, size)
    return array, info


def _pillow_format(path: Path) -> str:
    from PIL import Image, UnidentifiedImageError

    try:
        with _no_pillow_limit(), Image.open(path) as im:
            fmt = im.format or "?"
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ImageError("corrupt", f"{str(path)!r} is not a readable image: {exc}") from None
    return {"MPO": "JPEG"}.get(fmt, fmt)


@contextlib.contextmanager
def _no_pillow_limit():
    """Pillow's own bomb check off for a header read (ours runs instead). Pillow keeps it
    in a module global, so it is restored at once."""
    from PIL import Image

    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _check_pixels(path: Path, pixels: int, max_pixels: int | None) -> None:
    if max_pixels is not None and pixels > max_pixels:
        raise ImageError("too-large", f"{str(path)!r} has {pixels} pixels, more than the limit "
                                      f"of {max_pixels} (a decompression bomb?); raise "
                                      "--max-pixels to read it")  # fmt: skip


def _read_pillow(path: Path, max_pixels: int | None):
    from PIL import Image

    try:
        with _no_pillow_limit():  # our own limit is checked from the header instead
            im = Image.open(path)
        with im:
            _check_pixels(path, im.width * im.height, max_pixels)
            mode = im.mode
            im.load()
            if mode == "P" or mode == "PA":
                im = im.convert("RGBA" if "transparency" in im.info or mode == "PA" else "RGB")
            elif mode == "1":
                im = im.convert("L")
            elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
                im = im.convert("RGB")
            elif mode == "I;16" or mode.startswith("I;16"):
                return np.asarray(im).astype(np.uint16), mode, 1
            elif mode == "I":  # 16-bit PNGs open as 32-bit 'I' in some Pillow versions
                array = np.asarray(im)
                if array.min(initial=0) >= 0 and array.max(initial=0) <= 65535:
                    array = array.astype(np.uint16)
                return array, mode, 1
            return np.asarray(im), mode, 1
    except ImageError:
        raise
    except OSError as exc:
        reason = "truncated" if "truncated" in str(exc) else "corrupt"
        raise ImageError(reason, f"{str(path)!r} cannot be decoded: {exc}") from None
    except (ValueError, SyntaxError, MemoryError) as exc:
        raise ImageError("corrupt", f"{str(path)!r} cannot be decoded: {exc}") from None


def _read_tiff(path: Path, max_pixels: int | None):
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            shape = tuple(series.shape)
            pixels = int(np.prod(shape[:-1] if _has_samples(series) else shape, dtype=np.int64))
            _check_pixels(path, pixels, max_pixels)
            array = series.asarray()
            pages = len(series.pages) if len(series.pages) > 1 else 1
    except ImageError:
        raise
    except Exception as exc:  # tifffile raises many types for bad files
        text = str(exc)
        reason = "truncated" if "truncat" in text.lower() or "EOF" in text else "corrupt"
        raise ImageError(reason, f"{str(path)!r} cannot be decoded as TIFF: {exc}") from None
    if pages > 1 and array.shape[0] != pages:
        pages = 1
    return array, None, pages


def _has_samples(series) -> bool:
    axes = getattr(series, "axes", "")
    return axes.endswith("S")


# ------------------------------------------------------------------------------- writing

_PILLOW_MODES = {  # (dtype, channels) -> Pillow mode
    ("uint8", 1): "L", ("uint8", 2): "LA", ("uint8", 3): "RGB", ("uint8", 4): "RGBA",
    ("uint16", 1): "I;16",
}  # fmt: skip
_HOLDS = {  # format -> set of (dtype, channels) Pillow can write
    "PNG": {("uint8", 1), ("uint8", 2), ("uint8", 3), ("uint8", 4), ("uint16", 1)},
    "JPEG": {("uint8", 1), ("uint8", 3)},
    "BMP": {("uint8", 1), ("uint8", 3), ("uint8", 4)},
    "WEBP": {("uint8", 1), ("uint8", 3), ("uint8", 4)},
}
_TIFF_DTYPES = {"uint8", "uint16", "int16", "int32", "float32", "float64"}


def write_image(path: str | os.PathLike, image: np.ndarray, *, format: str | None = None,
                overwrite: bool = False, quality: int | None = None,
                compress_level: int | None = None, pages: bool = False) -> int:  # fmt: skip
    """Encode ``image`` to ``path`` atomically; returns the bytes written.

    ``image`` is (H, W) or (H, W, C) with C in {1, 2, 3, 4}; with ``pages`` a stack
    (P, H, W[, C]), TIFF only. PNG holds uint8 (1–4 channels) and uint16 gray (Pillow
    cannot write 16-bit RGB PNG: write TIFF); JPEG uint8 gray/RGB; BMP uint8 gray/RGB/RGBA;
    WebP uint8 (gray is stored as RGB); TIFF any of uint8, uint16, int16, int32, float32,
    float64 and any channels. ``compress_level`` is PNG's zlib level (default 1, fast, like
    OpenCV's default: a batch job is IO-bound and level 6 costs several times the encode
    time for a few percent of size) or, given for TIFF, its deflate level (default: none).
    """
    path = Path(path)
    fmt = format_for_path(path, format)
    image = np.asarray(image)
    _check_level("quality", quality, 1, 100)
    _check_level("compress_level", compress_level, 0, 9)
    if image.ndim == 3 + pages and image.shape[-1] == 1:
        image = image[..., 0]
    channels = 1 if image.ndim == 2 + pages else image.shape[-1]
    if pages and fmt != "TIFF":
        raise ImageError("unsupported", f"{str(path)!r}: a stack of {image.shape[0]} pages "
                                        f"can only be written as TIFF, not {fmt}")  # fmt: skip
    if image.ndim not in (2 + pages, 3 + pages) or (channels > 4 and fmt != "TIFF"):
        raise ImageError("unsupported", f"{str(path)!r}: cannot write an array of shape "
                                        f"{image.shape} as {fmt}")  # fmt: skip
    key = (str(image.dtype), channels)
    if fmt == "TIFF":
        if key[0] not in _TIFF_DTYPES:
            raise ImageError("unsupported", f"{str(path)!r}: TIFF output takes "
                             f"{sorted(_TIFF_DTYPES)}; got {image.dtype}")  # fmt: skip
    elif key not in _HOLDS[fmt]:
        raise ImageError("unsupported", f"{str(path)!r}: {fmt} cannot hold {image.dtype} with "
                         f"{channels} channel(s); add `astype uint8` to the pipeline or write "
                         "TIFF (--format tiff)")  # fmt: skip
    directory = path.parent
    if not directory.is_dir():
        raise ImageError("unwritable", f"{str(path)!r}: no directory {str(directory)!r}")
    if not overwrite and path.exists():
        raise ImageError("exists", f"{str(path)!r} exists; pass --overwrite to replace it")
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX)
    except OSError as exc:
        raise ImageError("unwritable", f"{str(path)!r}: cannot create a file in "
                                       f"{str(directory)!r}: {exc}") from None  # fmt: skip
    try:
        with os.fdopen(fd, "wb") as fh:
            if fmt == "TIFF":
                _encode_tiff(fh, image, compress_level, pages)
            else:
                _encode_pillow(fh, image, fmt, channels, quality, compress_level)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        _publish(tmp, path, overwrite)
        return path.stat().st_size
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _check_level(name: str, value: int | None, lo: int, hi: int) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | np.integer)
                              or not lo <= value <= hi):  # fmt: skip
        raise ValueError(f"`{name}` must be an integer in [{lo}, {hi}]; got {value!r}")


def _publish(tmp: str, path: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # fails if the target exists: no race with another writer
    except FileExistsError:
        raise ImageError("exists", f"{str(path)!r} exists; pass --overwrite") from None
    except OSError:  # no hard links on this filesystem
        if path.exists():
            raise ImageError("exists", f"{str(path)!r} exists; pass --overwrite") from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def _encode_pillow(fh, image, fmt, channels, quality, compress_level):
    from PIL import Image

    mode = _PILLOW_MODES[(str(image.dtype), channels)]
    array = np.ascontiguousarray(image)
    if mode == "I;16":
        im = Image.frombuffer("I;16", (array.shape[1], array.shape[0]),
                              array.astype("<u2").tobytes(), "raw", "I;16", 0, 1)  # fmt: skip
    else:
        im = Image.fromarray(array, mode=None)
    if fmt == "WEBP" and mode == "L":
        im = im.convert("RGB")
    options = {}
    if fmt == "PNG":
        options["compress_level"] = 1 if compress_level is None else compress_level
    if fmt in ("JPEG", "WEBP") and quality is not None:
        options["quality"] = quality
    im.save(fh, format=fmt, **options)


def _encode_tiff(fh, image, compress_level, pages):
    import tifffile

    options = {}
    if compress_level is not None:
        options["compression"] = "zlib"
        options["compressionargs"] = {"level": compress_level}
    photometric = "rgb" if image.shape[-1] in (3, 4) and image.ndim == 3 + pages else None
    if photometric is None:
        photometric = "minisblack"
    buffer = io.BytesIO()  # tifffile wants a named file or a seekable buffer, not an fd
    tifffile.imwrite(buffer, np.ascontiguousarray(image), photometric=photometric, **options)
    fh.write(buffer.getbuffer())


def cleanup_temp_files(directory: str | os.PathLike) -> int:
    """Remove temp files a killed run left under ``directory``; returns how many."""
    removed = 0
    for top, _dirs, files in os.walk(directory):
        for name in files:
            if name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(top, name))
                    removed += 1
    return removed
