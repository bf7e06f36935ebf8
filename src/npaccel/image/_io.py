"""Read and write image files: Pillow for PNG, JPEG, BMP and WebP, tifffile for TIFF.

Reading keeps the bit depth, detects the format from the content (and refuses a file whose
extension names another format), and checks the pixel count from the header before any
pixel is decoded. Writing is atomic: the encoder fills a temp file next to the target,
which is fsynced and then published by rename, or by hard link when an existing file must
not be replaced, so a target is either untouched or complete. Pillow and tifffile are
imported on first use.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from npaccel._files import remove_quietly, umask

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "REASONS",
    "SUPPORTED_FORMATS",
    "TEMP_PREFIX",
    "TEMP_SUFFIX",
    "ImageError",
    "ImageInfo",
    "cleanup_temp_files",
    "format_for_path",
    "read_image",
    "write_image",
]

SUPPORTED_FORMATS: dict[str, tuple[str, ...]] = {
    "PNG": (".png",),
    "JPEG": (".jpg", ".jpeg"),
    "BMP": (".bmp",),
    "WEBP": (".webp",),
    "TIFF": (".tif", ".tiff"),
}
DEFAULT_MAX_PIXELS: int = 178_956_970  # Pillow's error limit; per image, all pages together
TEMP_PREFIX = ".npaccel-tmp-"
TEMP_SUFFIX = ".part"
REASONS = frozenset({"missing", "empty", "permission", "corrupt", "truncated",
                     "wrong-extension", "unsupported", "too-large", "unwritable", "exists"})

_ALIASES = {"JPG": "JPEG", "TIF": "TIFF"}
_EXTENSION_FORMAT = {ext: name for name, exts in SUPPORTED_FORMATS.items() for ext in exts}
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic TIFF and BigTIFF
_PILLOW_FORMATS = ("PNG", "JPEG", "BMP", "WEBP")
_OTHER_FORMATS = ("GIF", "ICO", "PPM", "PSD", "JPEG2000")  # only named in errors
_PILLOW_LOCK = threading.Lock()  # header reads that switch Pillow's own limit off


class ImageError(Exception):
    """An input that cannot be read or an array that cannot be written.

    Parameters
    ----------
    reason : str
        A short code, kept as ``.reason``: one of :data:`REASONS`, {'missing', 'empty',
        'permission', 'corrupt', 'truncated', 'wrong-extension', 'unsupported',
        'too-large', 'unwritable', 'exists'}.
    message : str
        A full sentence naming the file: ``str(error)``.
    """

    def __init__(self, reason: str, message: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"`reason` must be one of {sorted(REASONS)}; got {reason!r}")
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ImageInfo:
    """What :func:`read_image` found: the ``format`` of the content, ``shape`` and ``dtype``
    of the returned array, Pillow's ``mode`` of the source (None when tifffile decoded it),
    ``pages`` (1 unless a multi-page TIFF) and the file's size, ``file_bytes``."""

    format: str
    shape: tuple[int, ...]
    dtype: str
    mode: str | None
    pages: int
    file_bytes: int


def format_for_path(path: str | os.PathLike, format: str | None = None) -> str:
    """The format to write ``path`` in: ``format`` if given, else its extension's.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.
    format : {'png', 'jpeg', 'jpg', 'bmp', 'webp', 'tiff', 'tif'}, optional
        Case-insensitive.

    Returns
    -------
    str
        A key of :data:`SUPPORTED_FORMATS`.

    Raises
    ------
    ValueError
        If ``format`` names no supported format, or is None and the extension names none.
    """
    if format is not None:
        name = format.upper() if isinstance(format, str) else None
        name = _ALIASES.get(name, name)
        if name not in SUPPORTED_FORMATS:
            allowed = sorted({f.lower() for f in SUPPORTED_FORMATS} | {"jpg", "tif"})
            raise ValueError(f"`format` must be one of {{{', '.join(allowed)}}}; got {format!r}")
        return name
    ext = os.path.splitext(os.fspath(path))[1]
    name = _EXTENSION_FORMAT.get(ext.lower())
    if name is None:
        raise ValueError(f"{os.fspath(path)!r}: the extension {ext!r} names no format npaccel "
                         f"writes ({', '.join(sorted(_EXTENSION_FORMAT))}); rename the output "
                         "or pass `format`")
    return name


# ------------------------------------------------------------------------------- reading


def read_image(path: str | os.PathLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS,
               copy: bool = True) -> tuple[np.ndarray, ImageInfo]:
    """Decode one image file, keeping its bit depth.

    Parameters
    ----------
    path : str or os.PathLike
        A PNG, JPEG, BMP, WebP or TIFF file. The content chooses the decoder and must be
        the format the extension names.
    max_pixels : int or None, optional
        Refuse an image with more pixels than this (all pages together), counted from the
        header before any pixel is decoded. None: no limit.
    copy : bool, optional
        True (default): the array owns its memory and is writeable. False: it may be a
        read-only view of the decoder's buffer, saving a copy of the image (what the batch
        runner does: pipelines never write into their input).

    Returns
    -------
    image : numpy.ndarray
        (H, W) for one channel, (H, W, C) for C > 1 (2: gray + alpha, 3: RGB, 4: RGBA);
        a TIFF of more than one page gives (P, H, W) or (P, H, W, C). C-contiguous; owning
        its memory and writeable unless ``copy=False``.
    info : ImageInfo

    Raises
    ------
    ImageError
        Its ``reason`` says why and its message names the file: 'missing', 'empty',
        'permission', 'unsupported' (an extension or content npaccel does not read),
        'wrong-extension', 'too-large', 'truncated', or 'corrupt' (anything else the
        decoder refuses; its message is included).
    ValueError
        If ``max_pixels`` is not a positive integer or None.

    Notes
    -----
    8-bit data gives uint8; 16-bit gray PNG ('I;16') and 16-bit TIFF give uint16; float and
    32-bit integer TIFF keep their dtype. Palette images become RGB, or RGBA when they have
    transparency (palette TIFF: 8-bit RGB, as Pillow reads it); 1-bit images become uint8
    0/255; CMYK and YCbCr (JPEG) become RGB by Pillow's conversion, without colour
    management. Pixels are returned as stored: an EXIF orientation is not applied. Only
    the first frame of an animated PNG or WebP is read.

    Pillow decodes 16-bit RGB, RGBA and gray + alpha PNGs only to 8 bits, so those are
    refused ('unsupported') rather than read with lost precision. For TIFF, tifffile's
    first series is read, its axes other than rows, columns and samples (pages; ImageJ's
    Z, T, C) flattened into P. A TIFF whose compression tifffile cannot decode without
    the ``imagecodecs`` package (LZW, JPEG, ...) is decoded by Pillow when it has one page
    and Pillow keeps its bit depth; otherwise it is refused, naming the package.

    Pillow keeps its own decompression-bomb limit in a module global; it is switched off
    (under a lock, restored at once) only while a header is read, and ``max_pixels`` is
    checked instead. Warnings Pillow emits during that header read are ignored.
    """
    max_pixels = _check_max_pixels(max_pixels)
    path = Path(path)
    name = str(path)
    try:
        size = os.stat(path).st_size
    except (FileNotFoundError, NotADirectoryError):
        raise ImageError("missing", f"{name!r} does not exist") from None
    except PermissionError:
        raise ImageError("permission", f"{name!r} cannot be read: permission denied on its "
                                       "directory; fix the permissions") from None
    if os.path.isdir(path):
        raise ImageError("missing", f"{name!r} is a directory, not an image file")
    expected = _EXTENSION_FORMAT.get(path.suffix.lower())
    if expected is None:
        raise ImageError("unsupported", f"{name!r}: the extension {path.suffix!r} is not an "
                         f"image format npaccel reads ({', '.join(sorted(_EXTENSION_FORMAT))})")
    if size == 0:
        raise ImageError("empty", f"{name!r} is empty (0 bytes)")
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except PermissionError:
        raise ImageError("permission", f"{name!r} cannot be read: permission denied; fix the "
                                       "file's permissions") from None
    except OSError as exc:
        raise ImageError("corrupt", f"{name!r} cannot be opened: {exc.strerror}") from None
    with fh:
        is_tiff = fh.read(4) in _TIFF_MAGIC
        fh.seek(0)
        if is_tiff:
            _check_extension(name, path.suffix, "TIFF", expected)
            image, mode, pages = _read_tiff(fh, name, size, max_pixels)
        else:
            image, mode, pages = _read_pillow(fh, name, path.suffix, expected, size,
                                              max_pixels)
        actual = "TIFF" if is_tiff else expected
    owned = image.flags.owndata and image.flags.writeable
    if not image.flags.c_contiguous or (copy and not owned):
        image = image.copy()
    return image, ImageInfo(actual, image.shape, str(image.dtype), mode, pages, size)


def _check_max_pixels(max_pixels: Any) -> int | None:
    if max_pixels is None:
        return None
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int | np.integer) \
            or max_pixels < 1:
        raise ValueError(f"`max_pixels` must be a positive integer or None (no limit); "
                         f"got {max_pixels!r}")
    return int(max_pixels)


def _check_extension(name: str, ext: str, actual: str, expected: str) -> None:
    if actual != expected:
        raise ImageError("wrong-extension", f"{name!r}: the content is {actual} but the "
                         f"extension {ext!r} says {expected}; rename it to "
                         f"{SUPPORTED_FORMATS[actual][0]}")


def _check_pixels(name: str, pixels: int, max_pixels: int | None, size: str) -> None:
    if max_pixels is not None and pixels > max_pixels:
        raise ImageError("too-large", f"{name!r} declares {size} = {pixels} pixels, more than "
                         f"`max_pixels` {max_pixels} (a decompression bomb?); raise the limit "
                         "(--max-pixels) if you trust the file")


def _decode_error(name: str, fmt: str, exc: BaseException, truncated: bool = False) -> ImageError:
    text = str(exc) or type(exc).__name__
    low = text.lower()
    if truncated or "truncat" in low or "failed to read" in low or isinstance(exc, EOFError):
        return ImageError("truncated", f"{name!r} is truncated: the {fmt} decoder says "
                                       f"{text!r}; copy the file again")
    return ImageError("corrupt", f"{name!r} cannot be decoded as {fmt}: {text}")


@contextlib.contextmanager
def _pillow_unlimited() -> Iterator[None]:
    """Pillow's bomb check off and its warnings ignored, for a header read: our own
    limit is checked from the header instead. Restored at once; serialised by a lock
    because Pillow keeps the limit in a module global."""
    from PIL import Image

    with _PILLOW_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _read_pillow(fh: IO[bytes], name: str, ext: str, expected: str, size: int,
                 max_pixels: int | None):
    from PIL import Image, UnidentifiedImageError

    try:
        with _pillow_unlimited():
            im = Image.open(fh, formats=_PILLOW_FORMATS)
    except UnidentifiedImageError:
        raise _unidentified(fh, name) from None
    except MemoryError:
        raise
    except Exception as exc:  # Pillow's plugins raise many types on bad headers
        raise _decode_error(name, expected, exc, _riff_short(fh, size)) from None
    with im:
        actual = "JPEG" if im.format == "MPO" else im.format
        _check_extension(name, ext, actual, expected)
        _check_pixels(name, im.width * im.height, max_pixels, f"{im.width} × {im.height}")
        image, mode = _pillow_pixels(im, name, actual, lambda: _riff_short(fh, size))
    return image, mode, 1


def _riff_short(fh: IO[bytes], size: int) -> bool:
    """Whether a WebP file is shorter than its RIFF header says (its decoder only says
    that it "could not create decoder object")."""
    fh.seek(0)
    head = fh.read(12)
    return head[:4] == b"RIFF" and head[8:] == b"WEBP" and int.from_bytes(head[4:8], "little") \
        + 8 > size


def _unidentified(fh: IO[bytes], name: str) -> ImageError:
    from PIL import Image

    fh.seek(0)
    try:
        with _pillow_unlimited(), Image.open(fh, formats=_OTHER_FORMATS) as im:
            other = im.format
    except Exception:  # not one of those either: just bad bytes
        other = None
    if other is not None:
        return ImageError("unsupported", f"{name!r}: the content is {other}, which npaccel "
                                         "does not read; convert it to PNG or TIFF")
    return ImageError("corrupt", f"{name!r}: the content is not PNG, JPEG, BMP, WebP or TIFF "
                                 "(or is damaged within its header)")


_KEEP_MODES = {"L", "LA", "RGB", "RGBA", "I", "F", "I;16", "I;16L", "I;16B", "I;16N"}
_CONVERT_MODES = {"1": "L", "La": "LA", "RGBa": "RGBA", "RGBX": "RGB", "CMYK": "RGB",
                  "YCbCr": "RGB"}


def _rawmode(im: Any) -> str:
    """The raw mode of the first tile: 'RGB;16B' says 16 bits per channel in the file."""
    args = im.tile[0][3] if im.tile else ""
    if isinstance(args, tuple):
        args = args[0] if args else ""
    return args if isinstance(args, str) else ""


def _pillow_pixels(im: Any, name: str, fmt: str,
                   short: Callable[[], bool] = lambda: False) -> tuple[np.ndarray, str]:
    mode, raw = im.mode, _rawmode(im)
    if ";16" in raw and mode != "I" and not mode.startswith("I;16"):
        raise ImageError("unsupported", f"{name!r} is a 16-bit {mode} {fmt}: Pillow decodes it "
                         "only to 8 bits, losing precision; convert it to 16-bit TIFF first")
    if mode in ("P", "PA"):
        target = "RGBA" if mode == "PA" or "transparency" in im.info else "RGB"
    elif mode in _KEEP_MODES:
        target = mode
    elif mode in _CONVERT_MODES:
        target = _CONVERT_MODES[mode]
    else:
        raise ImageError("unsupported", f"{name!r}: Pillow mode {mode!r} is not one npaccel "
                                        "reads; convert the file to RGB or gray")
    try:
        im.load()
        # a read-only view of the bytes Pillow exports (np.array would re-read them: 2.6 ms
        # against 0.4 ms for 1024×768 RGB); read_image copies it unless copy=False
        image = np.asarray(im if target == mode else im.convert(target))
    except MemoryError:
        raise
    except Exception as exc:  # decoders raise OSError, ValueError, SyntaxError, ...
        raise _decode_error(name, fmt, exc, short()) from None
    if not image.dtype.isnative:
        image = image.astype(image.dtype.newbyteorder("="))
    if mode == "I" and ";16" in raw and not raw.endswith("S"):
        image = image.astype(np.uint16)  # 16-bit data some Pillow versions widen to int32
    return image, mode


@dataclass(frozen=True)
class _TiffLayout:
    """Where a TIFF series' axes go: ``order`` lists them as (pages..., Y, X[, S])."""

    order: tuple[int, ...]
    pages: int
    height: int
    width: int
    channels: int

    @property
    def shape(self) -> tuple[int, ...]:
        pages = (self.pages,) if self.pages > 1 else ()
        return (*pages, self.height, self.width, *((self.channels,) if self.channels > 1 else ()))


def _tiff_layout(series: Any) -> _TiffLayout:
    axes, shape = series.axes, tuple(series.shape)
    if "Y" not in axes or "X" not in axes:
        raise ValueError(f"its first series has axes {axes!r}, without rows (Y) and columns (X)")
    spatial = [axes.index("Y"), axes.index("X")] + ([axes.index("S")] if "S" in axes else [])
    rest = [i for i in range(len(axes)) if i not in spatial]
    channels = shape[spatial[2]] if len(spatial) == 3 else 1
    return _TiffLayout(tuple(rest + spatial), math.prod(shape[i] for i in rest),
                       shape[spatial[0]], shape[spatial[1]], channels)


def _read_tiff(fh: IO[bytes], name: str, size: int, max_pixels: int | None):
    import tifffile

    try:
        tif = tifffile.TiffFile(fh)
    except MemoryError:
        raise
    except Exception as exc:  # TiffFileError, struct.error, ... on a bad header
        raise _decode_error(name, "TIFF", exc) from None
    with tif:
        try:
            series = tif.series[0]
            layout = _tiff_layout(series)
            keyframe = series.keyframe
            colormap = keyframe.colormap if keyframe.photometric == 3 else None  # palette
        except MemoryError:
            raise
        except Exception as exc:
            raise _decode_error(name, "TIFF", exc) from None
        _check_pixels(name, layout.pages * layout.height * layout.width, max_pixels,
                      f"{layout.pages} page(s) of {layout.width} × {layout.height}")
        try:
            image = _tiff_pixels(series, layout)
        except MemoryError:
            raise
        except Exception as exc:  # ValueError, zlib.error, struct.error, ... from the codecs
            if "imagecodecs" not in str(exc):
                raise _decode_error(name, "TIFF", exc, _beyond_end(series, size)) from None
            if layout.pages > 1:
                raise ImageError("unsupported", f"{name!r}: {exc}; install it (pip install "
                                                "imagecodecs) to read this TIFF") from None
            fh.seek(0)
            return _read_tiff_with_pillow(fh, name, exc)
    if colormap is not None:  # 16-bit colormap entries to 8-bit RGB, as Pillow reads them
        image = (colormap >> 8).astype(np.uint8).T[image]
    elif image.dtype == np.bool_:  # 1-bit
        image = image.view(np.uint8) * np.uint8(255)
    return image, None, layout.pages


def _tiff_pixels(series: Any, layout: _TiffLayout) -> np.ndarray:
    image = np.empty(layout.shape, np.dtype(series.dtype).newbyteorder("="))
    if list(layout.order) == sorted(layout.order):  # decode straight into the result
        series.asarray(out=image.reshape(series.shape))
    else:  # samples stored before rows, e.g. planar RGB (S, Y, X)
        image[...] = series.asarray().transpose(layout.order).reshape(layout.shape)
    return image


def _beyond_end(series: Any, size: int) -> bool:
    """Whether the file ends before the pixel data its header points to."""
    with contextlib.suppress(Exception):
        return any(offset + count > size for page in series.pages if page is not None
                   for offset, count in zip(page.dataoffsets, page.databytecounts, strict=False))
    return False


def _read_tiff_with_pillow(fh: IO[bytes], name: str, why: Exception):
    """One-page TIFF in a compression tifffile has no codec for; decoded under the lock
    (Pillow's TIFF loader checks its own limit again, per strip)."""
    from PIL import Image

    try:
        with _pillow_unlimited(), Image.open(fh, formats=("TIFF",)) as im:
            image, mode = _pillow_pixels(im, name, "TIFF")
    except ImageError as exc:
        if exc.reason != "unsupported":
            raise
        raise ImageError("unsupported", f"{name!r}: {why}, and Pillow would decode it with lost "
                         "precision; install it (pip install imagecodecs)") from None
    except MemoryError:
        raise
    except Exception as exc:
        raise _decode_error(name, "TIFF", exc) from None
    return image, mode, 1


# ------------------------------------------------------------------------------- writing

_PILLOW_HOLDS = {  # format -> {(dtype, channels)} Pillow writes
    "PNG": {("uint8", 1), ("uint8", 2), ("uint8", 3), ("uint8", 4), ("uint16", 1)},
    "JPEG": {("uint8", 1), ("uint8", 3)},
    "BMP": {("uint8", 1), ("uint8", 3), ("uint8", 4)},
    "WEBP": {("uint8", 1), ("uint8", 3), ("uint8", 4)},
}
_HOLDS_TEXT = {
    "PNG": "uint8 gray, gray + alpha, RGB or RGBA, or uint16 gray",
    "JPEG": "uint8 gray or RGB",
    "BMP": "uint8 gray, RGB or RGBA",
    "WEBP": "uint8 gray (stored as RGB), RGB or RGBA",
}
_TIFF_DTYPES = ("uint8", "uint16", "int16", "int32", "float32", "float64")
_PNG_LEVEL = 1  # see write_image's Notes
_NO_HARD_LINKS = {errno.EPERM, errno.EXDEV, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK,
                  errno.ENOSYS}


def write_image(path: str | os.PathLike, image: np.ndarray, *, format: str | None = None,
                overwrite: bool = False, quality: int | None = None,
                compress_level: int | None = None, pages: bool = False,
                png_encoder: str = "auto") -> int:
    """Encode ``image`` into ``path`` atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The target; its directory must exist.
    image : numpy.ndarray
        (H, W) gray or (H, W, C) with C in {1, 2, 3, 4} (C == 1 is gray); with ``pages``,
        a page stack (P, H, W) or (P, H, W, C). Any strides.
    format : {'png', 'jpeg', 'jpg', 'bmp', 'webp', 'tiff', 'tif'}, optional
        Default: from the extension (:func:`format_for_path`).
    overwrite : bool, optional
        Replace an existing target. If False, an existing target is left as it is and
        ImageError('exists') raised, also when another writer creates it meanwhile.
    quality : int, optional
        JPEG and WebP quality in [1, 100]; default: Pillow's (75 JPEG, 80 WebP). Ignored
        for the other formats.
    compress_level : int, optional
        zlib level in [0, 9] for PNG (default 1) and TIFF (default: uncompressed; 0 also
        writes uncompressed). Ignored for the other formats.
    pages : bool, optional
        ``image`` is a page stack, written as a multi-page TIFF (TIFF only).
    png_encoder : {'auto', 'pillow', 'opencv'}, optional
        Who writes PNG: 'auto' (default) is OpenCV when installed, else Pillow. Both write
        the same pixels (PNG is lossless); OpenCV is 2–5× faster and its files are a little
        smaller. Gray + alpha is always written by Pillow.

    Returns
    -------
    int
        The size of the written file, in bytes.

    Raises
    ------
    ImageError
        'unsupported': the format cannot hold this dtype or shape (the message says what
        it holds and the fix), or its encoder refused the image; 'exists': the target
        exists and ``overwrite`` is False; 'unwritable': the directory is missing or not
        writable, or writing failed (disk full, I/O error).
    ValueError
        If ``format``, ``quality`` or ``compress_level`` is not allowed.

    Notes
    -----
    What each format holds: PNG uint8 gray, gray + alpha, RGB, RGBA and uint16 gray (Pillow
    cannot write 16-bit RGB PNG: write TIFF); JPEG uint8 gray and RGB; BMP uint8 gray, RGB
    and RGBA (stored as 32-bit BGRA, whose alpha many readers, Pillow and so
    :func:`read_image` included, ignore); WebP uint8 RGB and RGBA, and gray converted to
    RGB; TIFF uint8, uint16, int16, int32, float32 and float64 with any number of channels.
    bool arrays are refused: convert them first.

    PNG defaults to a fast setting: OpenCV's default (zlib level 1 with run-length
    matching), or Pillow at zlib level 1 — a batch job is IO-bound, and level 6 (Pillow's
    default) costs several times the encode time for a few percent of size.

    The encoder writes ``.npaccel-tmp-*.part`` in the target's directory, which is
    fsynced, given the permissions a new file gets (0o666 less the umask) and published
    with :func:`os.replace` (``overwrite``) or :func:`os.link` (fails if the target exists;
    on a filesystem without hard links, a checked replace). On any error or interrupt the
    temp file is removed and the target is untouched.
    """
    path = Path(path)
    fmt = format_for_path(path, format)
    _check_option("quality", quality, 1, 100)
    _check_option("compress_level", compress_level, 0, 9)
    array = _writable(path, np.asarray(image), fmt, bool(pages))
    encode = _encoder(fmt, array, resolve_png_encoder(png_encoder))
    return _write_atomic(path, overwrite,
                         lambda fh: encode(fh, array, fmt, quality, compress_level, pages))


def _check_option(name: str, value: Any, lo: int, hi: int) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | np.integer)
                              or not lo <= value <= hi):
        raise ValueError(f"`{name}` must be an integer in [{lo}, {hi}] or None; got {value!r}")


def _writable(path: Path, image: np.ndarray, fmt: str, pages: bool) -> np.ndarray:
    """``image`` checked against what ``fmt`` holds, squeezed, contiguous, native order."""
    name = str(path)
    if pages and fmt != "TIFF":
        raise ImageError("unsupported", f"{name!r}: a page stack (pages=True) can only be "
                                        f"written as TIFF, not {fmt}; write TIFF "
                                        "(--format tiff)")
    lead = int(pages)
    if image.ndim == 3 + lead and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim not in (2 + lead, 3 + lead):
        hint = ("; a 4-D array is a page stack: pass pages=True and write TIFF"
                if image.ndim == 4 and not pages else "")
        expected = "(P, H, W) or (P, H, W, C)" if pages else "(H, W) or (H, W, C)"
        raise ImageError("unsupported", f"{name!r}: cannot write an array of shape "
                                        f"{image.shape}; expected {expected}{hint}")
    if image.size == 0:
        raise ImageError("unsupported", f"{name!r}: the array of shape {image.shape} has no "
                                        "pixels")
    channels = image.shape[-1] if image.ndim == 3 + lead else 1
    what = f"an array of dtype {image.dtype} and shape {image.shape}"
    if image.dtype == np.bool_:
        raise ImageError("unsupported", f"{name!r}: cannot write {what}; convert it first "
                                        "(`astype uint8` gives 0 and 1)")
    if fmt == "TIFF":
        if image.dtype.name not in _TIFF_DTYPES:
            raise ImageError("unsupported", f"{name!r}: TIFF output holds "
                             f"{{{', '.join(_TIFF_DTYPES)}}}, not {what}; add `astype float32` "
                             "(or another of those) to the pipeline")
    elif (image.dtype.name, channels) not in _PILLOW_HOLDS[fmt]:
        if fmt == "PNG" and image.dtype == np.uint16:
            fix = ("Pillow cannot write 16-bit PNG with more than one channel: write TIFF "
                   "(--format tiff), or add `to_float | from_float` for 8 bits")
        elif image.dtype != np.uint8:
            fix = ("add `astype uint8` (values already in 0..255) or `rescale 0 255 | astype "
                   "uint8` to the pipeline, or write TIFF (--format tiff)")
        else:
            fix = "select channels with `channels ...`, or write PNG or TIFF"
        raise ImageError("unsupported", f"{name!r}: {fmt} holds {_HOLDS_TEXT[fmt]}, not {what}; "
                                        f"{fix}")
    if not image.dtype.isnative:
        image = image.astype(image.dtype.newbyteorder("="))
    return np.ascontiguousarray(image)


def _encode_pillow(fh: IO[bytes], image: np.ndarray, fmt: str, quality: int | None,
                   compress_level: int | None, pages: bool) -> None:
    from PIL import Image

    im = Image.fromarray(image)  # uint8: L, LA, RGB, RGBA; uint16 (H, W): I;16
    if fmt == "WEBP" and im.mode == "L":
        im = im.convert("RGB")
    options: dict[str, Any] = {}
    if fmt == "PNG":
        options["compress_level"] = _PNG_LEVEL if compress_level is None else compress_level
    elif fmt in ("JPEG", "WEBP") and quality is not None:
        options["quality"] = quality
    im.save(fh, format=fmt, **options)


def _encode_tiff(fh: IO[bytes], image: np.ndarray, fmt: str, quality: int | None,
                 compress_level: int | None, pages: bool) -> None:
    import tifffile

    channels = image.shape[-1] if image.ndim == 3 + pages else 1
    options: dict[str, Any] = {"photometric": "rgb" if channels in (3, 4) else "minisblack"}
    if channels > 1:
        options["planarconfig"] = "contig"  # the last axis holds the samples
    if compress_level:
        options.update(compression="zlib", compressionargs={"level": compress_level})
    tifffile.imwrite(fh, image, **options)


def _encode_png_opencv(fh: IO[bytes], image: np.ndarray, fmt: str, quality: int | None,
                       compress_level: int | None, pages: bool) -> None:
    """PNG through OpenCV's libpng: the same pixels as Pillow's encoder, written 2–5× faster
    (Pillow tries all five row filters on every row; docs/image.md has the figures)."""
    import cv2

    if image.ndim == 3:  # RGB(A) -> OpenCV's BGR(A)
        image = np.ascontiguousarray(image[..., [2, 1, 0, 3][: image.shape[-1]]])
    # No parameters: OpenCV's fast default (zlib level 1, RLE); an explicit level is honoured.
    params = [] if compress_level is None else [cv2.IMWRITE_PNG_COMPRESSION, compress_level]
    ok, encoded = cv2.imencode(".png", image, params)
    if not ok:
        raise ImageError("unsupported", f"OpenCV's PNG encoder refused an array of dtype "
                                        f"{image.dtype} and shape {image.shape}")  # fmt: skip
    fh.write(encoded.data)


def _has_opencv() -> bool:
    try:
        import cv2  # noqa: F401
    except ImportError:
        return False
    return True


PNG_ENCODERS = ("auto", "pillow", "opencv")


def resolve_png_encoder(choice: str = "auto") -> str:
    """The PNG encoder ``choice`` means here: 'auto' is 'opencv' when OpenCV is installed
    (the `opencv` extra), else 'pillow'. Raises ValueError for another name, or for
    'opencv' without OpenCV."""
    if choice not in PNG_ENCODERS:
        raise ValueError(f"`png_encoder` must be one of {set(PNG_ENCODERS)}; got {choice!r}")
    if choice == "auto":
        return "opencv" if _has_opencv() else "pillow"
    if choice == "opencv" and not _has_opencv():
        raise ValueError("`png_encoder` 'opencv' needs OpenCV: pip install "
                         "'npaccel[opencv]' (opencv-python-headless)")  # fmt: skip
    return choice


_ENCODERS: dict[str, Callable[..., None]] = {
    "PILLOW": _encode_pillow, "TIFF": _encode_tiff, "OPENCV-PNG": _encode_png_opencv}


def _encoder(fmt: str, image: np.ndarray, png: str) -> Callable[..., None]:
    if fmt == "TIFF":
        return _ENCODERS["TIFF"]
    gray_alpha = image.ndim == 3 and image.shape[-1] == 2  # OpenCV has no such PNG
    if fmt == "PNG" and png == "opencv" and not gray_alpha:
        return _ENCODERS["OPENCV-PNG"]
    return _ENCODERS["PILLOW"]


def _write_atomic(path: Path, overwrite: bool, encode: Callable[[IO[bytes]], None]) -> int:
    name = str(path)
    directory = path.parent
    if not overwrite and os.path.lexists(path):  # early, to save the encoding; _publish rechecks
        raise ImageError("exists", f"{name!r} exists; pass overwrite=True (--overwrite) to "
                                   "replace it")
    if not directory.is_dir():
        raise ImageError("unwritable", f"{name!r}: its directory {str(directory)!r} does not "
                                       "exist; create it first")
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX)
    except OSError as exc:
        raise ImageError("unwritable", f"{name!r}: cannot create a file in {str(directory)!r}: "
                                       f"{exc.strerror}; check its permissions") from None
    try:
        os.close(fd)  # tifffile wants a named file; reopened by name below
        with open(tmp, "r+b") as fh:
            encode(fh)
            fh.flush()
            os.fsync(fh.fileno())
            size = os.fstat(fh.fileno()).st_size
        os.chmod(tmp, 0o666 & ~umask())
        _publish(tmp, path, overwrite)
    except OSError as exc:
        remove_quietly(tmp)
        if exc.errno is None:  # an encoder's own error, e.g. Pillow's "encoder error -2"
            raise ImageError("unsupported", f"{name!r}: the encoder failed: {exc}") from exc
        raise ImageError("unwritable", f"{name!r}: writing failed: {exc}") from exc
    except ValueError as exc:  # e.g. "Image size exceeds WebP limit of 16383 pixels"
        remove_quietly(tmp)
        raise ImageError("unsupported", f"{name!r}: the encoder refused the image: {exc}") from exc
    except BaseException:
        remove_quietly(tmp)
        raise
    with contextlib.suppress(OSError):  # make the new directory entry durable too
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return size


def _publish(tmp: str, path: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, path)
        return
    exists = ImageError("exists", f"{str(path)!r} exists; pass overwrite=True (--overwrite) "
                                  "to replace it")
    try:
        os.link(tmp, path, follow_symlinks=False)  # fails if the target exists: race-free
    except FileExistsError:
        raise exists from None
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        if os.path.lexists(path):  # no hard links here: a checked (not race-free) replace
            raise exists from None
        os.replace(tmp, path)
        return
    remove_quietly(tmp)


def cleanup_temp_files(directory: str | os.PathLike) -> int:
    """Remove the temp files (``.npaccel-tmp-*.part``) writes left under ``directory``.

    Call it only when no write into ``directory`` is in progress, e.g. before resuming
    a run that was killed. Symlinked directories are not followed.

    Parameters
    ----------
    directory : str or os.PathLike
        Searched recursively; a missing directory holds none.

    Returns
    -------
    int
        How many were removed.
    """
    removed = 0
    for top, _dirs, files in os.walk(directory, followlinks=False):
        for name in files:
            if name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(top, name))
                    removed += 1
    return removed
