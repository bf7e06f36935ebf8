"""npaccel.image._io: round trips for every format and bit depth, every error reason
provoked with real files, and atomic, safe writes."""

from __future__ import annotations

import errno
import importlib.util
import os
import shutil
import stat
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from npaccel.image import _io
from npaccel.image._io import (
    DEFAULT_MAX_PIXELS,
    REASONS,
    SUPPORTED_FORMATS,
    ImageError,
    ImageInfo,
    cleanup_temp_files,
    format_for_path,
    read_image,
    write_image,
)

RNG = np.random.default_rng(0)


def noise(shape, dtype=np.uint8):
    """Random pixels over the dtype's whole range (floats in [0, 1))."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return RNG.random(shape).astype(dtype)
    info = np.iinfo(dtype)
    return RNG.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)


def smooth(shape):
    """A gentle uint8 gradient: what lossy codecs keep well."""
    height, width = shape[:2]
    y, x = np.mgrid[0:height, 0:width]
    base = 30 + 100 * (x / max(width - 1, 1)) + 50 * (y / max(height - 1, 1))
    if len(shape) == 2:
        return base.astype(np.uint8)
    return np.stack([base + 25 * c for c in range(shape[2])], -1).astype(np.uint8)


def temp_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob(".npaccel-tmp-*"))


def png_bytes(width, height, *, bit_depth=8, color_type=0, pixels=b"") -> bytes:
    """A PNG with a real header: the check from the header needs no decodable pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(pixels))
            + chunk(b"IEND", b""))


def reason_of(call) -> str:
    with pytest.raises(ImageError) as caught:
        call()
    assert caught.value.reason in REASONS
    return caught.value.reason


# ------------------------------------------------------------------------ round trips

LOSSLESS = [
    ("png", np.uint8, (6, 7)),
    ("png", np.uint8, (6, 7, 2)),
    ("png", np.uint8, (6, 7, 3)),
    ("png", np.uint8, (6, 7, 4)),
    ("png", np.uint16, (6, 7)),
    ("bmp", np.uint8, (6, 7)),
    ("bmp", np.uint8, (6, 7, 3)),
    ("tif", np.uint8, (6, 7)),
    ("tif", np.uint8, (6, 7, 3)),
    ("tif", np.uint8, (6, 7, 4)),
    ("tif", np.uint16, (6, 7)),
    ("tif", np.uint16, (6, 7, 3)),
    ("tif", np.int16, (6, 7)),
    ("tif", np.int32, (6, 7)),
    ("tif", np.float32, (6, 7)),
    ("tif", np.float32, (6, 7, 5)),
    ("tif", np.float64, (6, 7, 2)),
]


@pytest.mark.parametrize(("ext", "dtype", "shape"), LOSSLESS)
def test_lossless_round_trip_keeps_values_dtype_and_channels(tmp_path, ext, dtype, shape):
    image = noise(shape, dtype)
    path = tmp_path / f"x.{ext}"
    written = write_image(path, image)
    assert written == path.stat().st_size > 0
    back, info = read_image(path)
    np.testing.assert_array_equal(back, image)
    assert back.dtype == image.dtype
    assert back.flags.c_contiguous
    assert back.flags.owndata
    assert back.flags.writeable
    view, _ = read_image(path, copy=False)  # may be read-only: the decoder's buffer
    np.testing.assert_array_equal(view, image)
    assert view.flags.c_contiguous
    fmt = format_for_path(path)
    assert info == ImageInfo(fmt, shape, np.dtype(dtype).name, info.mode, 1, written)
    assert (info.mode is None) == (fmt == "TIFF")
    assert temp_files(tmp_path) == []


def test_pillow_modes_of_what_was_written(tmp_path):
    modes = {}
    for name, image in {"g.png": noise((4, 5)), "la.png": noise((4, 5, 2)),
                        "g16.png": noise((4, 5), np.uint16), "c.jpg": smooth((4, 5, 3))}.items():
        write_image(tmp_path / name, image)
        modes[name] = read_image(tmp_path / name)[1].mode
    assert modes == {"g.png": "L", "la.png": "LA", "g16.png": "I;16", "c.jpg": "RGB"}


def test_single_channel_axis_is_squeezed(tmp_path):
    image = noise((5, 6, 1))
    write_image(tmp_path / "x.png", image)
    back, info = read_image(tmp_path / "x.png")
    assert info.shape == (5, 6)
    np.testing.assert_array_equal(back, image[..., 0])


@pytest.mark.parametrize("channels", [None, 3, 4])
def test_multi_page_tiff_round_trip(tmp_path, channels):
    shape = (3, 5, 6) if channels is None else (3, 5, 6, channels)
    stack = noise(shape, np.uint16)
    write_image(tmp_path / "s.tif", stack, pages=True)
    back, info = read_image(tmp_path / "s.tif")
    np.testing.assert_array_equal(back, stack)
    assert (info.pages, info.shape, info.mode) == (3, shape, None)
    with tifffile.TiffFile(tmp_path / "s.tif") as tif:
        assert len(tif.pages) == 3


def test_a_one_page_stack_reads_back_as_one_image(tmp_path):
    stack = noise((1, 4, 5))
    write_image(tmp_path / "one.tif", stack, pages=True)
    back, info = read_image(tmp_path / "one.tif")
    assert (info.pages, back.shape) == (1, (4, 5))


def test_pages_written_by_another_tool_become_a_stack(tmp_path):
    frames = [noise((4, 5)) for _ in range(3)]
    images = [Image.fromarray(f) for f in frames]
    images[0].save(tmp_path / "pil.tif", save_all=True, append_images=images[1:])
    back, info = read_image(tmp_path / "pil.tif")
    assert info.pages == 3
    np.testing.assert_array_equal(back, np.stack(frames))


@pytest.mark.parametrize("shape", [(16, 20), (16, 20, 3)])
def test_jpeg_round_trip_within_a_tolerance(tmp_path, shape):
    image = smooth(shape)
    write_image(tmp_path / "x.jpeg", image, quality=95)
    back, info = read_image(tmp_path / "x.jpeg")
    assert (info.format, back.shape, back.dtype) == ("JPEG", shape, np.uint8)
    error = np.abs(back.astype(int) - image)
    assert error.mean() < 2
    assert error.max() < 16


def test_jpeg_quality_changes_the_size(tmp_path):
    image = noise((24, 24, 3))
    low = write_image(tmp_path / "low.jpg", image, quality=5)
    default = write_image(tmp_path / "default.jpg", image)
    high = write_image(tmp_path / "high.jpg", image, quality=95)
    assert low < default < high


@pytest.mark.parametrize("channels", [3, 4])
def test_webp_round_trip_within_a_tolerance(tmp_path, channels):
    image = smooth((16, 20, channels))
    write_image(tmp_path / "x.webp", image, quality=100)
    back, info = read_image(tmp_path / "x.webp")
    assert (info.format, back.shape) == ("WEBP", image.shape)
    assert np.abs(back.astype(int) - image).mean() < 3
    if channels == 4:
        np.testing.assert_array_equal(back[..., 3], image[..., 3])  # alpha kept exactly


def test_webp_stores_gray_as_rgb(tmp_path):
    image = smooth((16, 20))
    write_image(tmp_path / "g.webp", image, quality=100)
    back, _ = read_image(tmp_path / "g.webp")
    assert back.shape == (16, 20, 3)
    assert np.abs(back.astype(int) - image[..., None]).mean() < 3


def test_bmp_rgba_is_written_but_its_alpha_is_not_read(tmp_path):
    image = noise((4, 5, 4))
    write_image(tmp_path / "x.bmp", image)
    back, info = read_image(tmp_path / "x.bmp")  # Pillow reads 32-bit BMP as RGB
    assert info.shape == (4, 5, 3)
    np.testing.assert_array_equal(back, image[..., :3])


@pytest.mark.parametrize("ext", ["png", "tif", "bmp"])
def test_non_contiguous_and_negative_stride_arrays_are_written(tmp_path, ext):
    base = noise((12, 14, 3))
    for i, view in enumerate([base[::2, ::-1], base[::-1, :, ::-1], base.transpose(1, 0, 2),
                              np.asfortranarray(base)]):
        assert not view.flags.c_contiguous
        path = tmp_path / f"v{i}.{ext}"
        write_image(path, view)
        np.testing.assert_array_equal(read_image(path)[0], view)


def test_negative_stride_page_stack_and_big_endian_arrays(tmp_path):
    stack = noise((3, 4, 5), np.uint16)[::-1, :, ::-1]
    write_image(tmp_path / "s.tif", stack, pages=True)
    np.testing.assert_array_equal(read_image(tmp_path / "s.tif")[0], stack)
    big = noise((4, 5), np.uint16).astype(">u2")
    for name in ("b.png", "b.tif"):
        write_image(tmp_path / name, big)
        back, _ = read_image(tmp_path / name)
        assert back.dtype == np.dtype("=u2")
        np.testing.assert_array_equal(back, big)


def test_tiff_compress_level_uses_deflate_and_default_is_uncompressed(tmp_path):
    image = smooth((32, 32))
    plain = write_image(tmp_path / "plain.tif", image)
    packed = write_image(tmp_path / "packed.tif", image, compress_level=9)
    zero = write_image(tmp_path / "zero.tif", image, compress_level=0)
    assert packed < plain == zero
    np.testing.assert_array_equal(read_image(tmp_path / "packed.tif")[0], image)
    with tifffile.TiffFile(tmp_path / "packed.tif") as tif:
        assert tif.pages[0].compression == tifffile.COMPRESSION.ADOBE_DEFLATE
    with tifffile.TiffFile(tmp_path / "plain.tif") as tif:
        assert tif.pages[0].compression == tifffile.COMPRESSION.NONE


@pytest.mark.parametrize("encoder", ["pillow", "opencv"])
def test_png_compress_level_defaults_to_fast(tmp_path, encoder):
    image = smooth((64, 64, 3))
    sizes = {level: write_image(tmp_path / f"{level}.png", image, compress_level=level,
                                png_encoder=encoder)
             for level in (0, 1, 9)}  # fmt: skip
    default = write_image(tmp_path / "default.png", image, png_encoder=encoder)
    assert sizes[0] > sizes[1] >= sizes[9]
    if encoder == "pillow":
        assert default == sizes[1]
    else:  # OpenCV's own default, zlib level 1 with run-length matching: compressed
        assert sizes[0] > default
    for path in tmp_path.iterdir():
        np.testing.assert_array_equal(read_image(path)[0], image)


PNG_LAYOUTS = [(np.uint8, (5, 7)), (np.uint8, (5, 7, 1)), (np.uint8, (5, 7, 2)),
               (np.uint8, (5, 7, 3)), (np.uint8, (5, 7, 4)), (np.uint16, (5, 7)),
               (np.uint8, (1, 1, 3))]  # fmt: skip


@pytest.mark.parametrize(("dtype", "shape"), PNG_LAYOUTS)
@pytest.mark.parametrize("view", ["contiguous", "negative", "strided"])
def test_opencv_and_pillow_png_encoders_write_the_same_pixels(tmp_path, dtype, shape, view):
    base = noise(tuple(2 * n for n in shape[:2]) + shape[2:], dtype)
    image = {"contiguous": base[: shape[0], : shape[1]].copy(),
             "negative": base[shape[0] - 1 :: -1, shape[1] - 1 :: -1],
             "strided": base[::2, ::2]}[view]  # fmt: skip
    for encoder in ("pillow", "opencv"):
        write_image(tmp_path / f"{encoder}.png", image, png_encoder=encoder)
    ours, _ = read_image(tmp_path / "opencv.png")
    theirs, _ = read_image(tmp_path / "pillow.png")
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(ours, image[..., 0] if shape[-1:] == (1,) else image)
    with Image.open(tmp_path / "opencv.png") as im:  # RGB stays RGB: no BGR swap on disk
        assert np.array_equal(np.asarray(im), ours)
    assert temp_files(tmp_path) == []


def test_png_encoder_choice_is_validated(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match=r"`png_encoder` must be one of .*; got 'libpng'"):
        write_image(tmp_path / "x.png", noise((3, 3)), png_encoder="libpng")
    monkeypatch.setattr(_io, "_has_opencv", lambda: False)
    assert _io.resolve_png_encoder("auto") == "pillow"
    with pytest.raises(ValueError, match=r"'opencv' needs OpenCV: pip install 'npaccel\[opencv\]'"):
        write_image(tmp_path / "x.png", noise((3, 3)), png_encoder="opencv")
    write_image(tmp_path / "x.png", noise((3, 3)))  # auto without OpenCV: Pillow
    assert temp_files(tmp_path) == []


def test_format_argument_overrides_the_extension(tmp_path):
    image = noise((4, 5))
    write_image(tmp_path / "x.data", image, format="Png")
    with Image.open(tmp_path / "x.data") as im:
        assert im.format == "PNG"
    write_image(tmp_path / "y.out", image, format="tif")
    assert tifffile.imread(tmp_path / "y.out").shape == (4, 5)


# ------------------------------------------------------------------------ special inputs


def test_palette_png_becomes_rgb_or_rgba_with_transparency(tmp_path):
    rgb = smooth((6, 8, 3))
    palette = Image.fromarray(rgb).convert("P")
    palette.save(tmp_path / "p.png")
    back, info = read_image(tmp_path / "p.png")
    assert (info.mode, back.shape) == ("P", (6, 8, 3))
    np.testing.assert_array_equal(back, np.array(palette.convert("RGB")))
    palette.info["transparency"] = int(np.array(palette)[0, 0])
    palette.save(tmp_path / "pt.png")
    back, info = read_image(tmp_path / "pt.png")
    assert (info.mode, back.shape) == ("P", (6, 8, 4))
    assert back[0, 0, 3] == 0
    assert back[..., 3].max() == 255


def test_one_bit_png_becomes_0_and_255(tmp_path):
    bits = noise((5, 9)) > 127
    Image.fromarray(bits).save(tmp_path / "b.png")
    back, info = read_image(tmp_path / "b.png")
    assert (info.mode, back.dtype) == ("1", np.uint8)
    np.testing.assert_array_equal(back, bits * np.uint8(255))


def test_16_bit_big_endian_png_is_uint16(tmp_path):
    gray = noise((3, 4), np.uint16)
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in gray)
    (tmp_path / "g16.png").write_bytes(png_bytes(4, 3, bit_depth=16, pixels=rows))
    back, info = read_image(tmp_path / "g16.png")
    assert info.mode.startswith("I;16")
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, gray)


def test_16_bit_rgb_png_is_refused_not_read_at_8_bits(tmp_path):
    rgb = noise((3, 4, 3), np.uint16)
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in rgb)
    (tmp_path / "rgb16.png").write_bytes(png_bytes(4, 3, bit_depth=16, color_type=2, pixels=rows))
    with pytest.raises(ImageError, match=r"16-bit RGB PNG.*only to 8 bits.*TIFF") as caught:
        read_image(tmp_path / "rgb16.png")
    assert caught.value.reason == "unsupported"


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    rgb = smooth((8, 8, 3))
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    back, info = read_image(tmp_path / "cmyk.jpg")
    assert (info.mode, back.shape, back.dtype) == ("CMYK", (8, 8, 3), np.uint8)
    assert np.abs(back.astype(int) - rgb).mean() < 8


def test_tiff_variants_planar_big_endian_one_bit_palette(tmp_path):
    rgb = noise((4, 5, 3))
    tifffile.imwrite(tmp_path / "planar.tif", rgb.transpose(2, 0, 1), photometric="rgb",
                     planarconfig="separate")
    np.testing.assert_array_equal(read_image(tmp_path / "planar.tif")[0], rgb)
    gray16 = noise((4, 5), np.uint16)
    tifffile.imwrite(tmp_path / "be.tif", gray16, byteorder=">", photometric="minisblack")
    back, _ = read_image(tmp_path / "be.tif")
    assert back.dtype.isnative
    np.testing.assert_array_equal(back, gray16)
    bits = noise((4, 5)) > 127
    tifffile.imwrite(tmp_path / "bits.tif", bits, photometric="minisblack")
    np.testing.assert_array_equal(read_image(tmp_path / "bits.tif")[0], bits * np.uint8(255))
    palette = Image.fromarray(smooth((4, 5, 3))).convert("P")
    palette.save(tmp_path / "palette.tif")
    back, info = read_image(tmp_path / "palette.tif")
    assert (info.mode, back.dtype) == (None, np.uint8)
    np.testing.assert_array_equal(back, np.array(palette.convert("RGB")))


def test_tiff_compressions_tifffile_cannot_decode_alone(tmp_path):
    gray = noise((6, 7))
    Image.fromarray(gray).save(tmp_path / "lzw.tif", compression="tiff_lzw")
    back, _ = read_image(tmp_path / "lzw.tif")  # tifffile if it has imagecodecs, else Pillow
    np.testing.assert_array_equal(back, gray)
    frames = [Image.fromarray(gray), Image.fromarray(gray[::-1])]
    frames[0].save(tmp_path / "lzw3.tif", compression="tiff_lzw", save_all=True,
                   append_images=frames[1:])
    if importlib.util.find_spec("imagecodecs") is not None:
        assert read_image(tmp_path / "lzw3.tif")[1].pages == 2
    else:
        with pytest.raises(ImageError, match="pip install imagecodecs") as caught:
            read_image(tmp_path / "lzw3.tif")
        assert caught.value.reason == "unsupported"


def test_format_is_detected_from_the_content(tmp_path):
    write_image(tmp_path / "x.jpeg", smooth((8, 8, 3)))
    (tmp_path / "x.jpg").write_bytes((tmp_path / "x.jpeg").read_bytes())
    assert read_image(tmp_path / "x.jpg")[1].format == "JPEG"  # either JPEG extension
    write_image(tmp_path / "X.TIFF", noise((3, 3)))
    assert read_image(tmp_path / "X.TIFF")[1].format == "TIFF"  # case-insensitive


# ------------------------------------------------------------------------ read errors


def test_missing_and_directory(tmp_path):
    with pytest.raises(ImageError, match=r"'.*nope\.png' does not exist") as caught:
        read_image(tmp_path / "nope.png")
    assert caught.value.reason == "missing"
    (tmp_path / "dir.png").mkdir()
    assert reason_of(lambda: read_image(tmp_path / "dir.png")) == "missing"


def test_empty_file(tmp_path):
    (tmp_path / "e.png").write_bytes(b"")
    with pytest.raises(ImageError, match=r"e\.png' is empty \(0 bytes\)") as caught:
        read_image(tmp_path / "e.png")
    assert caught.value.reason == "empty"


@pytest.mark.parametrize("name", ["x.gif", "notes.txt", "noextension"])
def test_unsupported_extension(tmp_path, name):
    Image.fromarray(noise((3, 3))).save(tmp_path / "real.gif")
    shutil.copy(tmp_path / "real.gif", tmp_path / name)
    with pytest.raises(ImageError, match="is not an image format npaccel reads") as caught:
        read_image(tmp_path / name)
    assert caught.value.reason == "unsupported"


def test_unsupported_content_under_a_supported_name(tmp_path):
    Image.fromarray(noise((3, 3))).save(tmp_path / "x.gif")
    os.replace(tmp_path / "x.gif", tmp_path / "x.png")
    with pytest.raises(ImageError, match="the content is GIF, which npaccel does not read"):
        read_image(tmp_path / "x.png")


@pytest.mark.parametrize(("writes", "named"), [
    ("jpg", "png"), ("png", "jpg"), ("tif", "png"), ("png", "tiff"), ("bmp", "webp"),
    ("webp", "jpeg"),
])
def test_wrong_extension(tmp_path, writes, named):
    write_image(tmp_path / f"real.{writes}", smooth((4, 4, 3)))
    os.replace(tmp_path / f"real.{writes}", tmp_path / f"x.{named}")
    actual = format_for_path(f"real.{writes}")
    with pytest.raises(ImageError) as caught:
        read_image(tmp_path / f"x.{named}")
    assert caught.value.reason == "wrong-extension"
    assert (f"the content is {actual} but the extension '.{named}' says "
            f"{format_for_path(f'x.{named}')}; rename it to {SUPPORTED_FORMATS[actual][0]}"
            in str(caught.value))


@pytest.mark.parametrize(("name", "content"), [
    ("garbage.png", b"not an image at all" * 10),
    ("garbage.jpg", bytes(range(256)) * 4),
    ("header-only.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40),
    ("bad.tif", b"II*\x00" + b"\xff" * 60),
])
def test_corrupt_content(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ImageError, match=name.replace(".", r"\.")) as caught:
        read_image(tmp_path / name)
    assert caught.value.reason == "corrupt"


def test_corrupt_pixel_data_includes_the_decoder_message(tmp_path):
    write_image(tmp_path / "x.tif", smooth((16, 16)), compress_level=6)
    data = bytearray((tmp_path / "x.tif").read_bytes())
    with tifffile.TiffFile(tmp_path / "x.tif") as tif:
        offset = tif.pages[0].dataoffsets[0]
    data[offset:offset + 8] = b"\xde\xad\xbe\xef" * 2  # a broken zlib stream, full length
    (tmp_path / "x.tif").write_bytes(bytes(data))
    with pytest.raises(ImageError, match=r"cannot be decoded as TIFF: .+") as caught:
        read_image(tmp_path / "x.tif")
    assert caught.value.reason == "corrupt"


@pytest.mark.parametrize(("name", "options"), [
    ("x.png", {}), ("x.jpg", {}), ("x.tif", {}), ("z.tif", {"compress_level": 6}),
    ("x.webp", {}), ("x.bmp", {}),
])
def test_truncated_files(tmp_path, name, options):
    write_image(tmp_path / name, noise((40, 50, 3)), **options)
    data = (tmp_path / name).read_bytes()
    if name.endswith(".tif"):
        with tifffile.TiffFile(tmp_path / name) as tif:  # tifffile writes the header first
            assert tif.pages[0].dataoffsets[0] < len(data) // 2
    (tmp_path / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="is truncated") as caught:
        read_image(tmp_path / name)
    assert caught.value.reason == "truncated"


def test_too_large_from_a_header_alone(tmp_path):
    # 100000 × 100000 declared, no pixel data: decoding it would need 10 GB
    (tmp_path / "bomb.png").write_bytes(png_bytes(100_000, 100_000))
    with pytest.raises(ImageError, match=r"100000 × 100000 = 10000000000 pixels.*"
                                         rf"`max_pixels` {DEFAULT_MAX_PIXELS}") as caught:
        read_image(tmp_path / "bomb.png")
    assert caught.value.reason == "too-large"
    write_image(tmp_path / "bomb.tif", np.zeros((4, 4), np.uint8))
    with tifffile.TiffFile(tmp_path / "bomb.tif", mode="r+b") as tif:
        tif.pages[0].tags["ImageWidth"].overwrite(200_000)
        tif.pages[0].tags["ImageLength"].overwrite(100_000)
    with pytest.raises(ImageError, match="200000 × 100000 = 20000000000 pixels"):
        read_image(tmp_path / "bomb.tif")


def test_max_pixels_counts_all_pages_and_is_inclusive(tmp_path):
    write_image(tmp_path / "s.tif", noise((3, 4, 4)), pages=True)  # 48 pixels
    with pytest.raises(ImageError, match=r"3 page\(s\) of 4 × 4 = 48 pixels") as caught:
        read_image(tmp_path / "s.tif", max_pixels=47)
    assert caught.value.reason == "too-large"
    assert read_image(tmp_path / "s.tif", max_pixels=48)[1].pages == 3
    write_image(tmp_path / "x.png", noise((4, 5)))
    assert reason_of(lambda: read_image(tmp_path / "x.png", max_pixels=19)) == "too-large"
    assert read_image(tmp_path / "x.png", max_pixels=20)[0].shape == (4, 5)
    assert read_image(tmp_path / "x.png", max_pixels=None)[0].shape == (4, 5)


def test_our_limit_rules_and_pillows_global_is_left_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # Pillow alone would refuse 25 pixels
    write_image(tmp_path / "x.png", noise((5, 5)))
    read_image(tmp_path / "x.png")  # no DecompressionBombError, and no warning (-W error)
    assert Image.MAX_IMAGE_PIXELS == 10
    assert reason_of(lambda: read_image(tmp_path / "x.png", max_pixels=24)) == "too-large"
    assert Image.MAX_IMAGE_PIXELS == 10
    with pytest.raises(Image.DecompressionBombError):  # Pillow's own check still works
        Image.open(tmp_path / "x.png")


def test_reads_from_many_threads_leave_pillows_limit_as_it_was(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    saved = Image.MAX_IMAGE_PIXELS
    images = {tmp_path / f"{i}.png": noise((5, 6, 3)) for i in range(8)}
    for path, image in images.items():
        write_image(path, image)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(read_image, [p for p in images for _ in range(5)]))
    assert saved == Image.MAX_IMAGE_PIXELS
    for (back, _), path in zip(results, [p for p in images for _ in range(5)], strict=True):
        np.testing.assert_array_equal(back, images[path])


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "100"])
def test_max_pixels_is_validated(tmp_path, bad):
    with pytest.raises(ValueError, match=rf"`max_pixels` must be a positive integer or None "
                                         rf"\(no limit\); got {bad!r}"):
        read_image(tmp_path / "x.png", max_pixels=bad)


def _as_nobody(fork, call):
    """``call`` as user 65534 (root is never refused a read or a write), through the
    `forked_as_nobody` fixture: ``(reason, message)`` of the ImageError it raised."""

    def child() -> str:
        try:
            call()
            return "none\nno error"
        except ImageError as exc:
            return f"{exc.reason}\n{exc}"
        except BaseException as exc:
            return f"other\n{exc!r}"

    reason, message = fork(child).split("\n", 1)
    return reason, message


def test_unreadable_file(shared_dir, forked_as_nobody):
    path = shared_dir / "secret.png"
    write_image(path, noise((3, 3)))
    path.chmod(0)
    if os.geteuid() == 0:
        reason, message = _as_nobody(forked_as_nobody, lambda: read_image(path))
    else:
        with pytest.raises(ImageError) as caught:
            read_image(path)
        reason, message = caught.value.reason, str(caught.value)
    assert reason == "permission"
    assert "secret.png' cannot be read: permission denied" in message


# ------------------------------------------------------------------------ write errors

UNWRITABLE = [
    ("x.png", np.uint16, (4, 5, 3), "Pillow cannot write 16-bit PNG with more than one channel"),
    ("x.png", np.float32, (4, 5), "add `astype uint8`"),
    ("x.png", np.uint8, (4, 5, 5), "PNG holds uint8 gray, gray \\+ alpha, RGB or RGBA"),
    ("x.jpg", np.uint8, (4, 5, 4), "JPEG holds uint8 gray or RGB, not an array of dtype uint8"),
    ("x.jpg", np.uint16, (4, 5), "write TIFF"),
    ("x.bmp", np.uint8, (4, 5, 2), "BMP holds uint8 gray, RGB or RGBA"),
    ("x.webp", np.int16, (4, 5, 3), "WEBP holds"),
    ("x.tif", np.int64, (4, 5), "TIFF output holds {uint8, uint16, int16, int32, float32"),
    ("x.tif", np.float16, (4, 5), "add `astype float32`"),
    ("x.tif", np.complex64, (4, 5), "TIFF output holds"),
    ("x.png", np.bool_, (4, 5), "dtype bool.*`astype uint8` gives 0 and 1"),
    ("x.tif", np.bool_, (4, 5), "dtype bool"),
    ("x.png", np.uint8, (4,), r"shape \(4,\); expected \(H, W\) or \(H, W, C\)"),
    ("x.tif", np.uint8, (2, 4, 5, 3), "a 4-D array is a page stack: pass pages=True"),
    ("x.png", np.uint8, (0, 5), "has no pixels"),
]


@pytest.mark.parametrize(("name", "dtype", "shape", "message"), UNWRITABLE)
def test_what_a_format_cannot_hold_is_refused_with_the_fix(tmp_path, name, dtype, shape,
                                                           message):
    image = np.zeros(shape, dtype)
    with pytest.raises(ImageError, match=message) as caught:
        write_image(tmp_path / name, image)
    assert caught.value.reason == "unsupported"
    assert name in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_page_stacks_are_tiff_only(tmp_path):
    with pytest.raises(ImageError, match="can only be written as TIFF, not PNG") as caught:
        write_image(tmp_path / "s.png", noise((2, 3, 4)), pages=True)
    assert caught.value.reason == "unsupported"
    with pytest.raises(ImageError, match=r"expected \(P, H, W\) or \(P, H, W, C\)"):
        write_image(tmp_path / "s.tif", noise((3, 4)), pages=True)


def test_an_encoder_refusal_after_the_temp_file_exists_cleans_up(tmp_path):
    wide = np.zeros((1, 16_384, 3), np.uint8)  # WebP's limit is 16383 pixels a side
    with pytest.raises(ImageError, match=r"the encoder refused the image: .*16383") as caught:
        write_image(tmp_path / "wide.webp", wide)
    assert caught.value.reason == "unsupported"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"quality": 0}, r"`quality` must be an integer in \[1, 100\] or None; got 0"),
    ({"quality": 101}, "`quality` must be"),
    ({"quality": 50.5}, "got 50.5"),
    ({"quality": True}, "got True"),
    ({"compress_level": -1}, r"`compress_level` must be an integer in \[0, 9\] or None; got -1"),
    ({"compress_level": 10}, "got 10"),
    ({"format": "gif"}, r"`format` must be one of \{bmp, jpeg, jpg, png, tif, tiff, webp\}; "
                        "got 'gif'"),
])
def test_options_are_validated(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        write_image(tmp_path / "x.png", noise((3, 3)), **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_format_for_path():
    assert [format_for_path(p) for p in ("a.PNG", "b.jpeg", "c.JPG", "d.tif", "e.tiff",
                                         "f.bmp", "g.WebP")] == \
        ["PNG", "JPEG", "JPEG", "TIFF", "TIFF", "BMP", "WEBP"]
    assert [format_for_path("x.png", f) for f in ("jpg", "JPEG", "Tif", "tiff", "webp")] == \
        ["JPEG", "JPEG", "TIFF", "TIFF", "WEBP"]
    with pytest.raises(ValueError, match=r"'out/x\.gif': the extension '\.gif' names no format "
                                         r"npaccel writes \(\.bmp, .*\.webp\); rename"):
        format_for_path("out/x.gif")
    with pytest.raises(ValueError, match="the extension '' names no format"):
        format_for_path("out/x")
    with pytest.raises(ValueError, match="got 3"):
        format_for_path("x.png", 3)


def test_the_target_directory_must_exist(tmp_path):
    with pytest.raises(ImageError, match="does not exist; create it first") as caught:
        write_image(tmp_path / "missing" / "x.png", noise((3, 3)))
    assert caught.value.reason == "unwritable"
    (tmp_path / "file").write_bytes(b"")
    assert reason_of(lambda: write_image(tmp_path / "file" / "x.png", noise((3, 3)))) == \
        "unwritable"


def test_an_unwritable_directory(shared_dir, forked_as_nobody):
    locked = shared_dir / "locked"
    locked.mkdir(mode=0o755)
    locked.chmod(0o555)
    try:
        if os.geteuid() == 0:
            reason, message = _as_nobody(forked_as_nobody,
                                         lambda: write_image(locked / "x.png", noise((3, 3))))
        else:
            with pytest.raises(ImageError) as caught:
                write_image(locked / "x.png", noise((3, 3)))
            reason, message = caught.value.reason, str(caught.value)
    finally:
        locked.chmod(0o755)
    assert reason == "unwritable"
    assert "cannot create a file in" in message
    assert "check its permissions" in message
    assert list(locked.iterdir()) == []


# ------------------------------------------------------------------------ atomic writes


def test_existing_target_is_refused_and_kept(tmp_path):
    target = tmp_path / "x.png"
    target.write_bytes(b"precious")
    with pytest.raises(ImageError, match=r"x.png' exists; pass overwrite=True") as caught:
        write_image(target, noise((3, 3)))
    assert caught.value.reason == "exists"
    assert target.read_bytes() == b"precious"
    (tmp_path / "dangling.png").symlink_to(tmp_path / "nowhere")
    assert reason_of(lambda: write_image(tmp_path / "dangling.png", noise((3, 3)))) == "exists"
    assert temp_files(tmp_path) == []


def test_overwrite_replaces(tmp_path):
    target = tmp_path / "x.png"
    target.write_bytes(b"old")
    image = noise((3, 3))
    write_image(target, image, overwrite=True)
    np.testing.assert_array_equal(read_image(target)[0], image)


def test_a_target_created_while_encoding_is_not_replaced(tmp_path, monkeypatch):
    target = tmp_path / "x.png"
    real = _io._ENCODERS["PILLOW"]

    def racing(fh, *args):
        target.write_bytes(b"the other writer's")  # appears after the early check
        real(fh, *args)

    monkeypatch.setitem(_io._ENCODERS, "PILLOW", racing)
    assert reason_of(lambda: write_image(target, noise((3, 3)), png_encoder="pillow")) == "exists"
    assert target.read_bytes() == b"the other writer's"
    assert temp_files(tmp_path) == []


def test_without_hard_links_a_checked_replace_publishes(tmp_path, monkeypatch):
    def no_links(src, dst, **kwargs):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    image = noise((3, 3))
    write_image(tmp_path / "x.png", image)
    np.testing.assert_array_equal(read_image(tmp_path / "x.png")[0], image)
    assert reason_of(lambda: write_image(tmp_path / "x.png", image)) == "exists"
    assert temp_files(tmp_path) == []


@pytest.mark.parametrize("error", [RuntimeError("encoder bug"), KeyboardInterrupt(),
                                   OSError(errno.ENOSPC, "No space left on device")])
@pytest.mark.parametrize("overwrite", [False, True])
def test_any_failure_removes_the_temp_file_and_keeps_the_target(tmp_path, monkeypatch, error,
                                                                overwrite):
    target = tmp_path / "x.png"
    if overwrite:
        target.write_bytes(b"keep me")
    seen = []

    def failing(fh, *args):
        seen.append(Path(fh.name))
        fh.write(b"half an image")
        raise error

    monkeypatch.setitem(_io._ENCODERS, "PILLOW", failing)
    expected = ImageError if isinstance(error, OSError) else type(error)
    with pytest.raises(expected) as caught:
        write_image(target, noise((3, 3)), overwrite=overwrite, png_encoder="pillow")
    if isinstance(error, OSError):
        assert caught.value.reason == "unwritable"
        assert "No space left on device" in str(caught.value)
    assert seen[0].parent == tmp_path
    assert seen[0].name.startswith(".npaccel-tmp-")
    assert seen[0].name.endswith(".part")
    assert not seen[0].exists()
    assert temp_files(tmp_path) == []
    assert target.read_bytes() == b"keep me" if overwrite else not target.exists()


def test_the_temp_file_is_fsynced_before_publishing(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def recording(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd")
                      else fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording)
    write_image(tmp_path / "x.tif", noise((3, 3)))
    assert any(".npaccel-tmp-" in str(s) for s in synced)


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_the_output_gets_normal_permissions(tmp_path, umask):
    old = os.umask(umask)
    try:
        write_image(tmp_path / "x.png", noise((3, 3)))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x.png").stat().st_mode) == 0o666 & ~umask


def test_cleanup_temp_files(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    leftovers = [tmp_path / ".npaccel-tmp-1.part", tmp_path / "a" / "b" / ".npaccel-tmp-x.part"]
    kept = [tmp_path / "x.png", tmp_path / ".npaccel-tmp-1.png", tmp_path / "a" / "y.part"]
    for path in leftovers + kept:
        path.write_bytes(b"")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / ".npaccel-tmp-9.part").write_bytes(b"")
    (tmp_path / "a" / "link").symlink_to(outside, target_is_directory=True)
    assert cleanup_temp_files(tmp_path / "a") == 1
    assert cleanup_temp_files(tmp_path) == 2  # and outside/ itself, not through the link
    assert all(p.exists() for p in kept)
    assert not any(p.exists() for p in leftovers)
    assert cleanup_temp_files(tmp_path / "nothing-here") == 0


def test_image_error_reasons_are_checked():
    assert str(ImageError("corrupt", "the sentence")) == "the sentence"
    with pytest.raises(ValueError, match="`reason` must be one of"):
        ImageError("bad", "x")


def test_importing_the_modules_imports_no_codec():
    code = ("import sys, npaccel.image._io, npaccel.image._paths; "
            "print(sorted(m for m in ('PIL', 'tifffile') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]"
