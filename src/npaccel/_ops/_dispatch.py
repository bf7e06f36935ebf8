"""Choosing the backend for a dispatching op, from ``backend=`` or the operands' array type.

The public functions call :func:`resolve` first (operands as arrays of one type, and the
backend module), validate shapes on those arrays, and hand the backend plain, valid
parameters. Array types come from the registry (:mod:`npaccel.backends`), so checking
"is this a CuPy array?" never imports CuPy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from npaccel import backends

__all__ = ["HOST", "Resolved", "check_out", "describe", "register_family", "resolve"]

HOST = "cpu"  # what npaccel.backends.backend_for_array names a NumPy array


def register_family(family: str) -> None:
    """Register ``family``'s backends: 'cpu' (default for NumPy), 'numpy', 'cuda' (CuPy)."""
    backends.register(family, "numpy", "npaccel._ops._numpy")
    backends.register(family, "cpu", "npaccel._ops._cpu")
    backends.register(family, "cuda", "npaccel._ops._cuda", array_type="cupy.ndarray",
                      extra="gpu")  # fmt: skip


def describe(array: Any) -> str:
    """'a NumPy array', 'a CuPy array', or the type's qualified name, for messages."""
    cls = type(array)
    if cls.__module__.partition(".")[0] == "cupy":
        return "a CuPy array"
    if isinstance(array, np.ndarray) and cls is np.ndarray:
        return "a NumPy array"
    return f"a {cls.__module__}.{cls.__qualname__}"


@dataclass(frozen=True)
class Resolved:
    """The backend chosen for a call and the operands as arrays of one type."""

    backend: str
    module: ModuleType
    arrays: tuple[Any, ...]
    kind: str  # the operands' own backend ('cpu' for NumPy): results come back as this type

    @property
    def host(self) -> bool:
        """Whether the operands are NumPy arrays (results are then NumPy arrays too)."""
        return self.kind == HOST


def _as_array(name: str, value: Any) -> tuple[Any, str]:
    kind = backends.backend_for_array(value)
    if kind is not None:
        return value, kind
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"`{name}` must be array_like; got {type(value).__name__} ({exc})"
        ) from None
    if array.dtype == object:
        raise TypeError(f"`{name}` must be a numeric array; got {type(value).__name__} that "
                        "NumPy reads as dtype object")  # fmt: skip
    return array, HOST


def resolve(family: str, backend: str | None, names: Sequence[str], values: Sequence[Any]
            ) -> Resolved:  # fmt: skip
    """Operands ``values`` (named ``names`` in messages) as arrays of one type, and the
    backend that runs them.

    Raises
    ------
    TypeError
        If the operands are of different array types (NumPy and CuPy mixed), or of a type
        no backend of ``family`` takes.
    BackendError
        If ``backend`` is unknown, is not installed, or cannot take these operands.
    """
    entries = backends._REGISTRY.get(family, {})
    if backend is not None and (not isinstance(backend, str) or backend not in entries):
        raise backends.BackendError(f"`backend` must be one of {sorted(entries)} or None for "
                                    f"{family}; got {backend!r}")  # fmt: skip
    pairs = [_as_array(n, v) for n, v in zip(names, values, strict=True)]
    arrays = tuple(a for a, _ in pairs)
    kinds = [k for _, k in pairs]
    first = kinds[0]
    for name, array, kind in zip(names, arrays, kinds, strict=True):
        if kind != first:
            raise TypeError(
                f"`{name}` is {describe(array)} but `{names[0]}` is {describe(arrays[0])}: "
                "all operands must be one array type. Move them to one device: "
                "cupy.asarray(x) uploads a NumPy array, x.get() downloads a CuPy one"
            )
    if first not in entries:
        raise TypeError(f"`{names[0]}` is {describe(arrays[0])}; npaccel's {family} ops take "
                        "NumPy arrays, or the array types of backends "
                        f"{sorted(set(entries) - {HOST, 'numpy'})}")  # fmt: skip
    if backend is None:
        backend = first
    elif first != HOST and backend != first:
        raise backends.BackendError(
            f"`backend` {backend!r} cannot take {describe(arrays[0])}; it runs on backend "
            f"{first!r} (or leave `backend` None)"
        )
    name, module = backends.implementation(family, backend, arrays[0])
    return Resolved(name, module, arrays, first)


def check_out(out: Any, shape: tuple[int, ...], dtype: np.dtype, resolved: Resolved) -> None:
    """``out`` must be an array of the operands' type, of ``shape``, that ``dtype`` casts to
    under NumPy's 'same_kind' rule."""
    if out is None:
        return
    kind = backends.backend_for_array(out)
    if kind != resolved.kind:
        want = describe(resolved.arrays[0])
        raise TypeError(f"`out` must be an array of the operands' type ({want.removeprefix('a ')}"
                        f"); got {describe(out)}")  # fmt: skip
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"`out` has shape {tuple(out.shape)}; this call returns shape "
                         f"{tuple(shape)}")  # fmt: skip
    if not np.can_cast(dtype, out.dtype, "same_kind"):
        raise TypeError(f"`out` has dtype {out.dtype}; the result is {np.dtype(dtype)}, which "
                        "does not cast to it under the 'same_kind' rule")  # fmt: skip
