"""``npaccel.inspect``: how one array sits in memory, and what that costs a hot loop."""

from __future__ import annotations

import mmap
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

__all__ = ["ArrayReport", "inspect"]

_LARGE = 64 << 20  # bytes from which a copy or a wasted cache line is worth a remark
_CACHE_LINE = 64


class ArrayReport(Mapping[str, Any]):
    """Result of :func:`inspect`: a read-only mapping of facts (``dict(report)`` is
    JSON-ready), with ``report["advice"]`` a list of strings and ``str(report)`` a text
    report."""

    def __init__(self, facts: dict[str, Any]) -> None:
        self._facts = facts

    def __getitem__(self, key: str) -> Any:
        return self._facts[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._facts)

    def __len__(self) -> int:
        return len(self._facts)

    def __repr__(self) -> str:
        f = self._facts
        return f"ArrayReport(shape={f['shape']}, dtype={f['dtype']!r}, advice={len(f['advice'])})"

    def __str__(self) -> str:
        f = self._facts
        layout = (
            "C-contiguous"
            if f["c_contiguous"]
            else "F-contiguous"
            if f["f_contiguous"]
            else "non-contiguous"
        )
        lines = [
            f"shape      {f['shape']}  ({f['size']} elements)",
            f"dtype      {f['dtype']}  ({f['itemsize']} B/element"
            + (f", {f['padding_bytes']} B padding" if f["padding_bytes"] else "")
            + ")",
            f"bytes      {_human(f['nbytes'])}",
            f"layout     {layout}, strides {f['strides']}",
            f"alignment  {f['alignment']} B" + ("" if f["aligned"] else " (misaligned for dtype)"),
            "memory     "
            + (
                "owns its data"
                if f["owner"]
                else f"view of {f['base_type']} of {_human(f['base_nbytes'])}"
            )
            + (f", memory-mapped from {f['memmap_file']}" if f["memmap"] else "")
            + ("" if f["writeable"] else ", read-only"),
        ]
        lines += [
            f"advice     {a}" if i == 0 else f"           {a}" for i, a in enumerate(f["advice"])
        ] or ["advice     none"]
        return "\n".join(lines)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # IPython
        p.text(str(self))


def _human(n: int | None) -> str:
    if n is None:
        return "?"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def _base_chain(a: np.ndarray) -> list[Any]:
    """``a`` and what owns its memory, link by link: views' ``.base``, the helper objects
    of ``as_strided``/``sliding_window_view``, and the buffer behind a memoryview."""
    chain: list[Any] = [a]
    while len(chain) < 64:
        obj = chain[-1]
        if isinstance(obj, memoryview):
            nxt = obj.obj
        elif isinstance(obj, np.ndarray) or hasattr(obj, "__array_interface__"):
            nxt = getattr(obj, "base", None)
        else:
            nxt = None
        if nxt is None:
            break
        chain.append(nxt)
    return chain


def _root_nbytes(root: Any) -> int | None:
    if isinstance(root, np.ndarray):
        return root.nbytes
    if isinstance(root, mmap.mmap):
        return len(root)
    try:
        return memoryview(root).nbytes
    except TypeError:
        return None


def _span(a: np.ndarray) -> int:
    """Bytes from the lowest to the highest address the array touches."""
    if a.size == 0:
        return 0
    extent = sum((n - 1) * abs(s) for n, s in zip(a.shape, a.strides, strict=True))
    return extent + a.itemsize


def _padding(dtype: np.dtype) -> int:
    """Bytes of each element that no field covers (overlapping fields count once)."""
    if dtype.fields is None:
        return 0
    covered: set[int] = set()
    for name in dtype.names or ():
        field, offset = dtype.fields[name][:2]
        covered.update(range(offset, offset + field.itemsize))
    return max(0, dtype.itemsize - len(covered))


def _alignment(address: int) -> int:
    """Largest power of two (up to 4096) dividing the data address."""
    return min(address & -address, 4096) if address else 4096


def inspect(array: np.ndarray, *, pipeline_dtype: Any = None) -> ArrayReport:
    """Report how ``array`` is laid out in memory, with advice for fast code.

    Parameters
    ----------
    array : numpy.ndarray
        Any ndarray, including views, memmaps and structured arrays.
    pipeline_dtype : dtype-like, optional
        The dtype the rest of the computation uses; a wider ``array`` dtype (float64 into
        a float32 pipeline) gets advice to convert once.

    Returns
    -------
    ArrayReport
        A mapping with keys shape, ndim, dtype, itemsize, size, nbytes, strides,
        c_contiguous, f_contiguous, aligned, alignment, writeable, owner, base_type,
        base_nbytes, memmap, memmap_file, span_bytes, padding_bytes, byteorder, advice.

    Raises
    ------
    TypeError
        If ``array`` is not a NumPy ndarray or ``pipeline_dtype`` is not a dtype.

    Examples
    --------
    >>> import numpy as np, npaccel
    >>> report = npaccel.inspect(np.zeros((1000, 1000))[:, ::2])
    >>> report["c_contiguous"], report["owner"], report["base_nbytes"]
    (False, False, 8000000)
    >>> print(report["advice"][0])  # doctest: +ELLIPSIS
    not contiguous: ...
    """
    if not isinstance(array, np.ndarray):
        raise TypeError(
            f"`array` must be a NumPy ndarray (np.memmap included); got "
            f"{type(array).__name__}: pass np.asarray(x) to inspect the array it would make"
        )
    try:
        target = None if pipeline_dtype is None else np.dtype(pipeline_dtype)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"`pipeline_dtype` must be a NumPy dtype (e.g. 'float32'); got {pipeline_dtype!r}"
        ) from exc

    a = array
    chain = _base_chain(a)
    root = chain[-1]
    memmap = isinstance(root, mmap.mmap)  # a copy of an np.memmap owns RAM, not a mapping
    filename = next((getattr(x, "filename", None) for x in chain if isinstance(x, np.memmap)), None)
    address = a.__array_interface__["data"][0]
    span = _span(a)
    facts: dict[str, Any] = {
        "shape": list(a.shape),
        "ndim": a.ndim,
        "dtype": str(a.dtype),
        "itemsize": a.itemsize,
        "size": int(a.size),
        "nbytes": int(a.nbytes),
        "strides": list(a.strides),
        "c_contiguous": bool(a.flags.c_contiguous),
        "f_contiguous": bool(a.flags.f_contiguous),
        "aligned": bool(a.flags.aligned),
        "alignment": _alignment(address),
        "writeable": bool(a.flags.writeable),
        "owner": a.base is None,
        "base_type": None if a.base is None else type(root).__name__,
        "base_nbytes": None if a.base is None else _root_nbytes(root),
        "memmap": memmap,
        "memmap_file": str(filename) if memmap and filename else None,
        "span_bytes": span,
        "padding_bytes": _padding(a.dtype),
        "byteorder": "native" if a.dtype.isnative else "swapped",
    }
    facts["advice"] = list(_advice(a, facts, target))
    return ArrayReport(facts)


def _advice(a: np.ndarray, f: dict[str, Any], target: np.dtype | None) -> Iterator[str]:
    contiguous = f["c_contiguous"] or f["f_contiguous"]
    if a.dtype == object:
        yield (
            "object dtype: every element is a Python object, so no vectorised or compiled "
            "kernel applies; convert to a numeric dtype (a.astype(np.float64))."
        )
    aliased = a.size > 1 and any(s == 0 and n > 1 for n, s in zip(a.shape, a.strides, strict=True))
    if aliased and a.itemsize:
        yield (
            "zero stride (a broadcast view): elements alias each other; writing is unsafe "
            "and np.ascontiguousarray(a) materialises every repeat."
        )
    elif not contiguous and a.size > 1:
        yield (
            f"not contiguous: hot loops and kernels read it strided; "
            f"b = np.ascontiguousarray(a) copies {_human(f['nbytes'])} once."
        )
    if f["span_bytes"] >= _LARGE and f["nbytes"] < 0.5 * f["span_bytes"] and not aliased:
        used = f["nbytes"] / f["span_bytes"]
        yield (
            f"large strided view: it uses {used:.0%} of the {_human(f['span_bytes'])} it "
            f"spans, so every pass streams mostly unused cache lines; copy it once "
            f"(a.copy()) if it is read more than once."
        )
    if (
        not f["owner"]
        and f["base_nbytes"]
        and f["base_nbytes"] >= max(_LARGE, 4 * f["nbytes"])
        and not f["memmap"]
    ):
        yield (
            f"small view keeps a {_human(f['base_nbytes'])} base alive; "
            f"a.copy() lets the base be freed."
        )
    if not f["aligned"]:
        yield (
            "misaligned for its dtype (e.g. from a packed buffer or struct): SIMD loads "
            "split; a.copy() gives an aligned array."
        )
    elif f["alignment"] < _CACHE_LINE and f["nbytes"] >= _LARGE:
        yield (
            f"data starts {f['alignment']} B-aligned, not on a {_CACHE_LINE} B cache line; "
            "fine for NumPy, but aligned buffers help wide SIMD kernels."
        )
    if f["byteorder"] == "swapped":
        yield (
            "non-native byte order: every operation byte-swaps; convert once with "
            "a.astype(a.dtype.newbyteorder('='))."
        )
    if f["padding_bytes"]:
        yield (
            f"structured dtype with {f['padding_bytes']} padding byte(s) per element "
            f"({f['padding_bytes'] / a.itemsize:.0%} of the memory traffic); pack it or "
            "split fields into separate arrays (a['x'] is a strided view)."
        )
    if f["memmap"]:
        yield (
            "memory-mapped: first touches read from disk and random row access is "
            "slow; read large contiguous blocks (npaccel.data's loader does)."
        )
    if (
        target is not None
        and a.dtype.kind == target.kind
        and a.dtype.kind in "fiuc"
        and a.dtype.itemsize > target.itemsize
    ):
        yield (f"{a.dtype} in a {target} pipeline: a.astype(np.{target.name}) once cuts the "
               f"memory traffic of every later pass {a.dtype.itemsize // target.itemsize}x "
               f"({_human(f['nbytes'])} → {_human(a.size * target.itemsize)}).")  # fmt: skip
