"""Batch image processing: pipelines of npaccel.filters and pixel ops over folders of images.

>>> from npaccel.image import Pipeline
>>> p = Pipeline.parse("grayscale | gaussian sigma=2 | sobel | rescale 0 255 | astype uint8")
>>> # p(array) on one image; npaccel.image.run(["photos/"], "out/", p) over files

The names below load on first use, so ``import npaccel.image`` stays light (Pillow and
tifffile are imported only when an image is read or written).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Pipeline": "_pipeline",
    "Step": "_pipeline",
    "PipelineError": "_ops",
    "StepError": "_ops",
    "describe_ops": "_ops",
    "run": "_runner",
    "RunSummary": "_runner",
    "read_image": "_io",
    "write_image": "_io",
    "resolve_png_encoder": "_io",
    "ImageError": "_io",
    "ImageInfo": "_io",
    "discover_inputs": "_paths",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'npaccel.image' has no attribute {name!r}")
    value = getattr(import_module(f"npaccel.image.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
