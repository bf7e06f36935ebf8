"""The op registry of ``npaccel image``: op name → typed parameters, rules and the function.

Every op runs on the canonical (P, H, W, C) stack (pages, rows, columns, channels). Filter
ops call :mod:`npaccel.filters` with ``axes=(1, 2)`` (pages and channels never mix) and keep
its numeric policy (dtype in = dtype out; integer results rounded half to even and
saturated). The others call :mod:`npaccel.image._geometry` and :mod:`npaccel.image._exposure`.

Parameters are checked here, before any image is touched: :meth:`OpSpec.bind` turns the
values of a step (positional and by name, from text or a file) into the full, canonical
parameters of the op, or raises :class:`PipelineError` naming the parameter, its rule and the
value given.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from npaccel import filters as F
from npaccel.filters._params import _ALL_MODES
from npaccel.filters._policy import store

__all__ = [
    "OPS",
    "REQUIRED",
    "OpSpec",
    "Param",
    "PipelineError",
    "StepError",
    "astype",
    "describe_ops",
    "edge_magnitude",
    "get_op",
    "resize_shape",
]

AXES = (1, 2)  # rows and columns of a (P, H, W, C) stack
PARAM_TYPES = ("int", "float", "bool", "str", "choice", "int_list", "float_list",
               "float_matrix")  # fmt: skip


# --------------------------------------------------------------------------- errors


def _where(step: int | None, op: str | None) -> str:
    if step is not None and op is not None:
        return f"step {step} ({op}): "
    if step is not None:
        return f"step {step}: "
    return f"{op}: " if op is not None else ""


class PipelineError(ValueError):
    """A pipeline spec that cannot run: bad syntax, unknown op or parameter, bad value.

    Raised up front by ``Pipeline.parse``/``from_dict``/``from_file`` before any image is
    touched. ``step`` (1-based), ``op`` and ``param`` say where, when known; ``detail`` is
    the message without the "step N (op): " prefix.
    """

    def __init__(self, detail: str, step: int | None = None, op: str | None = None,
                 param: str | None = None, source: str | None = None) -> None:  # fmt: skip
        self.detail, self.step, self.op, self.param = detail, step, op, param
        self.source = source
        super().__init__((f"{source}: " if source else "") + _where(step, op) + detail)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.detail, self.step, self.op, self.param, self.source))

    def at(self, step: int | None = None, op: str | None = None,
           source: str | None = None) -> PipelineError:  # fmt: skip
        """The same error, placed at pipeline step ``step`` (1-based), op or source file
        (each kept from this error when not given)."""
        return PipelineError(self.detail, self.step if step is None else step,
                             self.op if op is None else op, self.param,
                             self.source if source is None else source)  # fmt: skip


class StepError(ValueError):
    """An op failed on a particular image (e.g. a crop window outside a small image).

    The message names the step (1-based) and op and wraps the original message; the
    original exception is ``__cause__``. A runner records it per image and goes on.
    """

    def __init__(self, detail: str, step: int, op: str) -> None:
        self.detail, self.step, self.op = detail, step, op
        super().__init__(_where(step, op) + detail)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.detail, self.step, self.op))


# --------------------------------------------------------------------------- parameters


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()  # the default of a parameter that must be given


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


@dataclass(frozen=True)
class Param:
    """One typed parameter of an op.

    ``type`` is one of {'int', 'float', 'bool', 'str', 'choice', 'int_list', 'float_list'
    (a float, or one per channel), 'float_matrix'}; ``low``/``high`` bound numbers (and list
    entries), ``open_low``/
    ``open_high`` make a bound strict; ``allowed`` lists a choice's values; a default of None
    means none is accepted; ``finite`` (floats) rejects inf and nan.
    """

    name: str
    type: str
    default: Any = REQUIRED
    help: str = ""
    allowed: tuple[str, ...] | None = None
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    finite: bool = True

    def __post_init__(self) -> None:
        if self.type not in PARAM_TYPES:
            raise ValueError(f"`type` must be one of {PARAM_TYPES}; got {self.type!r}")
        if (self.type == "choice") != (self.allowed is not None):
            raise ValueError(f"param {self.name!r}: `allowed` goes with type 'choice' only")

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def nullable(self) -> bool:
        return self.default is None

    def _bounds(self) -> str:
        lo, hi = self.low, self.high
        if lo is not None and hi is not None:
            left, right = "(" if self.open_low else "[", ")" if self.open_high else "]"
            return f" in {left}{_num(lo)}, {_num(hi)}{right}"
        if lo is not None:
            return f" {'>' if self.open_low else '>='} {_num(lo)}"
        if hi is not None:
            return f" {'<' if self.open_high else '<='} {_num(hi)}"
        return ""

    @property
    def rule(self) -> str:
        """What the value must be, as a phrase: "a float >= 0", "one of {'x', 'y'}"."""
        if self.type == "choice":
            rule = "one of {" + ", ".join(repr(a) for a in self.allowed or ()) + "}"
        elif self.type == "int":
            rule = "an int" + self._bounds()
        elif self.type in ("float", "float_list"):
            rule = "a finite float" if self.finite and not self._bounds() else "a float"
            rule += self._bounds()
            if self.type == "float_list":
                rule += " or a list of them (one per channel)"
        elif self.type == "bool":
            rule = "true or false"
        elif self.type == "str":
            rule = "a string"
        elif self.type == "int_list":
            rule = "a list of ints" + self._bounds() + " (e.g. 2,1,0 or [0])"
        else:
            rule = "a 2-D list of numbers (e.g. [[0,1,0],[1,-4,1],[0,1,0]])"
        return rule + (" or none" if self.nullable else "")

    def _fail(self, value: Any, rule: str | None = None) -> PipelineError:
        hint = ""
        if self.allowed is not None and isinstance(value, str):
            close = difflib.get_close_matches(value, self.allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
        return PipelineError(f"`{self.name}` must be {rule or self.rule}; got {value!r}{hint}",
                             param=self.name)  # fmt: skip

    def _in_bounds(self, x: float) -> bool:
        if self.low is not None and (x <= self.low if self.open_low else x < self.low):
            return False
        return not (self.high is not None and (x >= self.high if self.open_high else
                                               x > self.high))  # fmt: skip

    def convert(self, value: Any) -> Any:
        """The canonical, hashable form of ``value`` (ints, floats, tuples), or raise
        :class:`PipelineError` naming this parameter, its rule and the value."""
        if isinstance(value, str) and self.nullable and value.lower() in ("none", "null"):
            value = None  # a YAML/JSON file's string "none"
        if value is None:
            if self.nullable:
                return None
            raise self._fail(value)
        kind = self.type
        if kind == "int":
            if not _is_int(value) or not self._in_bounds(value):
                raise self._fail(value)
            return int(value)
        if kind == "float":
            return self._float(value, value)
        if kind == "bool":
            if not isinstance(value, bool | np.bool_):
                raise self._fail(value)
            return bool(value)
        if kind in ("str", "choice"):
            if not isinstance(value, str) or (self.allowed is not None and
                                              value not in self.allowed):  # fmt: skip
                raise self._fail(value)
            return str(value)
        if kind == "int_list":
            items = (value,) if _is_int(value) else value
            if isinstance(items, str) or not isinstance(items, Iterable):
                raise self._fail(value)
            items = tuple(items)
            if not items or not all(_is_int(v) and self._in_bounds(v) for v in items):
                raise self._fail(value)
            return tuple(int(v) for v in items)
        if kind == "float_list":
            if _is_real(value):
                return self._float(value, value)
            if isinstance(value, str) or not isinstance(value, Iterable):
                raise self._fail(value)
            items = tuple(value)
            if not items:
                raise self._fail(value)
            return tuple(self._float(v, value) for v in items)
        return self._matrix(value)

    def _float(self, value: Any, shown: Any) -> float:
        if not _is_real(value):
            raise self._fail(shown)
        try:
            x = float(value)
        except OverflowError:  # an int beyond float's range
            raise self._fail(shown) from None
        if math.isnan(x):
            if self.finite:
                raise self._fail(shown, f"finite ({self.rule})")
            return math.nan  # one NaN object, so equal steps compare equal
        if math.isinf(x) and self.finite:
            raise self._fail(shown, f"finite ({self.rule})")
        if not self._in_bounds(x):
            raise self._fail(shown)
        return x

    def _matrix(self, value: Any) -> tuple[tuple[float, ...], ...]:
        if isinstance(value, str) or not isinstance(value, Iterable):
            raise self._fail(value)
        rows = []
        for row in value:
            if isinstance(row, str) or not isinstance(row, Iterable):
                raise self._fail(value)
            rows.append(tuple(self._float(v, value) for v in row))
        if not rows or not rows[0] or any(len(r) != len(rows[0]) for r in rows):
            raise self._fail(value, "a non-empty, rectangular " + self.rule[2:])
        return tuple(rows)

    def describe(self) -> dict[str, Any]:
        """JSON-ready description: name, type, required, default, allowed, min, max, rule."""
        return {
            "name": self.name,
            "type": self.type,
            "required": self.required,
            "default": None if self.required else _json_ready(self.default),
            "allowed": list(self.allowed) if self.allowed is not None else None,
            "min": self.low,
            "max": self.high,
            "rule": self.rule,
            "help": self.help,
        }


def _json_ready(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_json_ready(v) for v in value]
    return value


def _normalize_name(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def _suggest(name: str, names: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(names), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


# --------------------------------------------------------------------------- op specs


@dataclass(frozen=True)
class OpSpec:
    """One op: its name, a one-line summary, its parameters in positional order, the
    function ``run(stack, backend, **params) -> stack`` on a (P, H, W, C) stack, an optional
    cross-parameter ``check(params)`` (raises :class:`PipelineError`), and whether it may
    change the image's shape or dtype (same-shape images stay same-shape otherwise)."""

    name: str
    summary: str
    params: tuple[Param, ...]
    run: Callable[..., np.ndarray] = field(repr=False)
    changes_shape: bool = False
    changes_dtype: bool = False
    uses_backend: bool = False
    check: Callable[[dict[str, Any]], None] | None = field(default=None, repr=False)
    aliases: tuple[str, ...] = ()

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def bind(
        self, args: Iterable[Any] = (), kwargs: Mapping[str, Any] | Iterable[tuple[str, Any]] = ()
    ) -> tuple[tuple[str, Any], ...]:
        """All parameters of this op as ``((name, value), ...)`` in declared order, defaults
        filled in, from positional values (bound in declared order) and named ones.

        Raises
        ------
        PipelineError
            Too many positional values, an unknown parameter, one given twice, one missing,
            or a value of the wrong type or out of range; ``op`` and ``param`` are set.
        """
        try:
            return self._bind(tuple(args), kwargs)
        except PipelineError as exc:
            raise exc.at(op=self.name) from None

    def _bind(self, args: tuple[Any, ...], kwargs: Any) -> tuple[tuple[str, Any], ...]:
        names = [p.name for p in self.params]
        if len(args) > len(names):
            takes = (f"takes at most {len(names)} ({', '.join(names)})" if names else
                     "takes no parameters")  # fmt: skip
            raise PipelineError(f"too many positional values: {self.name} {takes}; "
                                f"got {len(args)}: {' '.join(map(repr, args))}")  # fmt: skip
        given: dict[str, Any] = dict(zip(names, args, strict=False))
        items = kwargs.items() if isinstance(kwargs, Mapping) else kwargs
        for key, value in items:
            name = _normalize_name(key) if isinstance(key, str) else key
            if name not in names:
                allowed = ", ".join(names) if names else "none"
                hint = _suggest(name, names) if isinstance(name, str) else ""
                raise PipelineError(f"unknown parameter {key!r}{hint} (parameters: {allowed})",
                                    param=str(key))  # fmt: skip
            if name in given:
                raise PipelineError(f"`{name}` given twice", param=name)
            given[name] = value
        values: dict[str, Any] = {}
        for p in self.params:
            if p.name in given:
                values[p.name] = p.convert(given[p.name])
            elif p.required:
                raise PipelineError(f"missing required parameter `{p.name}` ({p.rule})",
                                    param=p.name)  # fmt: skip
            else:
                values[p.name] = p.default
        if self.check is not None:
            self.check(values)
        return tuple(values.items())

    def describe(self) -> dict[str, Any]:
        """JSON-ready description of the op for ``npaccel image ops``."""
        return {
            "name": self.name,
            "summary": self.summary,
            "aliases": list(self.aliases),
            "changes_shape": self.changes_shape,
            "changes_dtype": self.changes_dtype,
            "params": [p.describe() for p in self.params],
        }


# --------------------------------------------------------------------------- shared params


_MODE = Param("mode", "choice", "reflect", "how the image extends past its edges "
              "(scipy.ndimage's modes)", allowed=_ALL_MODES)  # fmt: skip
_CVAL = Param("cval", "float", 0.0, "value outside the edges for mode 'constant'", finite=False)
_SIZE = Param("size", "int", 3, "window side length, in pixels", low=1)
_SIGMA = Param("sigma", "float", REQUIRED, "Gaussian standard deviation, in pixels", low=0)
_TRUNCATE = Param("truncate", "float", 4.0, "kernel radius in sigmas (used if no radius)",
                  low=0)  # fmt: skip


def _fail(param: str, detail: str) -> PipelineError:
    return PipelineError(detail, param=param)


# --------------------------------------------------------------------------- filter ops


def _gaussian(stack, backend, *, sigma, order, mode, cval, truncate, radius):
    return F.gaussian_filter(stack, sigma, order=order, mode=mode, cval=cval, truncate=truncate,
                             radius=radius, axes=AXES, backend=backend)  # fmt: skip


def _uniform(stack, backend, *, size, mode, cval):
    return F.uniform_filter(stack, size, mode=mode, cval=cval, axes=AXES, backend=backend)


def _median(stack, backend, *, size, mode, cval):
    return F.median_filter(stack, size, mode=mode, cval=cval, axes=AXES, backend=backend)


def _minimum(stack, backend, *, size, mode, cval):
    return F.minimum_filter(stack, size, mode=mode, cval=cval, axes=AXES, backend=backend)


def _maximum(stack, backend, *, size, mode, cval):
    return F.maximum_filter(stack, size, mode=mode, cval=cval, axes=AXES, backend=backend)


def _percentile(stack, backend, *, percentile, size, mode, cval):
    return F.percentile_filter(stack, percentile, size, mode=mode, cval=cval, axes=AXES,
                               backend=backend)  # fmt: skip


def _rank(stack, backend, *, rank, size, mode, cval):
    return F.rank_filter(stack, rank, size, mode=mode, cval=cval, axes=AXES, backend=backend)


def _check_rank(p: dict[str, Any]) -> None:
    n = p["size"] ** 2
    if not -n <= p["rank"] < n:
        raise _fail("rank", f"`rank` must be an int in [{-n}, {n - 1}] for size {p['size']} "
                    f"({n} pixels); got {p['rank']!r}")  # fmt: skip


def edge_magnitude(stack: np.ndarray, operator: str = "sobel", *, mode: str = "reflect",
                   cval: float = 0.0, backend: str | None = None) -> np.ndarray:  # fmt: skip
    """``sqrt(d/dy² + d/dx²)`` of an edge operator ('sobel', 'prewitt') over the rows and
    columns of a (P, H, W, C) stack, in one fused kernel (npaccel.filters.gradient_magnitude):
    computed in the filters' compute dtype (float32; float64 for float64 and 32/64-bit
    integer data), stored into ``stack.dtype`` by the numeric policy (integers rounded half
    to even and saturated)."""
    if stack.dtype.kind == "c":
        raise TypeError(f"edge magnitude needs real data; got dtype {stack.dtype}")
    return F.gradient_magnitude(stack, operator, mode=mode, cval=cval, axes=AXES,
                                backend=backend)  # fmt: skip


def _edge(filter_name: str) -> Callable[..., np.ndarray]:
    def run(stack, backend, *, axis, mode, cval):
        if axis == "both":
            return edge_magnitude(stack, filter_name, mode=mode, cval=cval, backend=backend)
        edge = getattr(F, filter_name)
        return edge(stack, axis=2 if axis == "x" else 1, mode=mode, cval=cval, axes=AXES,
                    backend=backend)  # fmt: skip

    return run


def _laplace(stack, backend, *, mode, cval):
    return F.laplace(stack, mode=mode, cval=cval, axes=AXES, backend=backend)


def _gaussian_laplace(stack, backend, *, sigma, mode, cval, truncate):
    return F.gaussian_laplace(stack, sigma, mode=mode, cval=cval, truncate=truncate, axes=AXES,
                              backend=backend)  # fmt: skip


def _gaussian_gradient_magnitude(stack, backend, *, sigma, mode, cval, truncate):
    return F.gaussian_gradient_magnitude(stack, sigma, mode=mode, cval=cval, truncate=truncate,
                                         axes=AXES, backend=backend)  # fmt: skip


def _correlate(stack, backend, *, weights, mode, cval):
    return F.correlate(stack, np.array(weights), mode=mode, cval=cval, axes=AXES,
                       backend=backend)  # fmt: skip


def _convolve(stack, backend, *, weights, mode, cval):
    return F.convolve(stack, np.array(weights), mode=mode, cval=cval, axes=AXES,
                      backend=backend)  # fmt: skip


_EDGE_AXIS = Param("axis", "choice", "both",
                   "'both': gradient magnitude hypot(d/dx, d/dy); 'x': signed derivative along "
                   "columns; 'y': along rows", allowed=("both", "x", "y"))  # fmt: skip
_WEIGHTS = Param("weights", "float_matrix", REQUIRED, "2-D kernel over rows × columns")

_FILTERS = (
    OpSpec("gaussian", "Gaussian blur (or derivative of `order`) over rows and columns",
           (_SIGMA, Param("order", "int", 0, "derivative order (0 smooths)", low=0), _MODE,
            _CVAL, _TRUNCATE, Param("radius", "int", None, "kernel radius, overrides truncate",
                                    low=0)),
           _gaussian, uses_backend=True, aliases=("gaussian_filter", "blur")),
    OpSpec("uniform", "mean over a size × size box", (_SIZE, _MODE, _CVAL), _uniform,
           uses_backend=True, aliases=("uniform_filter", "box", "mean")),
    OpSpec("median", "median over a size × size box", (_SIZE, _MODE, _CVAL), _median,
           uses_backend=True, aliases=("median_filter",)),
    OpSpec("minimum", "minimum over a size × size box (erosion)", (_SIZE, _MODE, _CVAL),
           _minimum, uses_backend=True, aliases=("minimum_filter", "erode")),
    OpSpec("maximum", "maximum over a size × size box (dilation)", (_SIZE, _MODE, _CVAL),
           _maximum, uses_backend=True, aliases=("maximum_filter", "dilate")),
    OpSpec("percentile", "percentile over a size × size box (scipy's rank rule)",
           (Param("percentile", "float", REQUIRED, "in [-100, 100]; negative counts from 100",
                  low=-100, high=100), _SIZE, _MODE, _CVAL),
           _percentile, uses_backend=True, aliases=("percentile_filter",)),
    OpSpec("rank", "rank-th smallest value over a size × size box (negative: from the top)",
           (Param("rank", "int", REQUIRED, "0-based rank in [-size², size²)"), _SIZE, _MODE,
            _CVAL),
           _rank, uses_backend=True, check=_check_rank, aliases=("rank_filter",)),
    OpSpec("sobel", "Sobel edges: gradient magnitude sqrt(d/dx² + d/dy²) by default, computed in "
           "float32 (float64 for float64 and 32-bit integer input) and stored in the input "
           "dtype; axis=x or y: one signed derivative (x along columns, y along rows)",
           (_EDGE_AXIS, _MODE, _CVAL), _edge("sobel"), uses_backend=True),
    OpSpec("prewitt", "Prewitt edges: as sobel, with [1, 1, 1] smoothing",
           (_EDGE_AXIS, _MODE, _CVAL), _edge("prewitt"), uses_backend=True),
    OpSpec("laplace", "discrete Laplacian (sum of second differences along rows and columns)",
           (_MODE, _CVAL), _laplace, uses_backend=True),
    OpSpec("gaussian_laplace", "Laplacian of Gaussian", (_SIGMA, _MODE, _CVAL, _TRUNCATE),
           _gaussian_laplace, uses_backend=True, aliases=("log",)),
    OpSpec("gaussian_gradient_magnitude", "gradient magnitude of Gaussian derivatives",
           (_SIGMA, _MODE, _CVAL, _TRUNCATE), _gaussian_gradient_magnitude, uses_backend=True),
    OpSpec("correlate", "correlation with a 2-D kernel over rows and columns",
           (_WEIGHTS, _MODE, _CVAL), _correlate, uses_backend=True),
    OpSpec("convolve", "convolution with a 2-D kernel over rows and columns",
           (_WEIGHTS, _MODE, _CVAL), _convolve, uses_backend=True),
)  # fmt: skip


# --------------------------------------------------------------------------- pixel ops


def _exposure():
    from npaccel.image import _exposure

    return _exposure


def _geometry():
    from npaccel.image import _geometry

    return _geometry


def _call(module: Callable[[], Any], name: str,
          with_backend: bool = False) -> Callable[..., np.ndarray]:  # fmt: skip
    """``run`` calling ``module().name(stack, **params)`` (op parameters are the function's
    keywords, plus ``backend=`` for functions that have one; the module is imported on
    first use)."""

    def run(stack, backend, **params):
        if with_backend:
            params["backend"] = backend
        return getattr(module(), name)(stack, **params)

    run.__name__ = name
    return run


_INT_DTYPES = ("uint8", "uint16", "int16", "int32")
ASTYPE_DTYPES = (*_INT_DTYPES, "float32", "float64")


def astype(stack: np.ndarray, dtype: Any) -> np.ndarray:
    """``stack`` converted to ``dtype``: floats to integers rounded half to even and
    saturated (NaN → 0), as npaccel.filters stores results; integers to integers
    saturated; anything to floats by a plain cast."""
    dtype = np.dtype(dtype)
    if stack.dtype == dtype:
        return stack.copy()
    if dtype.kind in "iu" and stack.dtype.kind in "iub":
        if stack.dtype.kind == "b":
            return stack.astype(dtype)
        src, dst = np.iinfo(stack.dtype), np.iinfo(dtype)
        lo, hi = max(src.min, dst.min), min(src.max, dst.max)
        return np.clip(stack, stack.dtype.type(lo), stack.dtype.type(hi)).astype(dtype)
    if dtype.kind in "iu":
        if stack.dtype.kind == "c":
            raise TypeError(f"cannot convert complex data ({stack.dtype}) to {dtype}")
        return store(stack.astype(np.float64, copy=False), np.empty(stack.shape, dtype))
    with np.errstate(over="ignore"):  # float64 beyond float32's range becomes ±inf
        return stack.astype(dtype)


def _astype(stack, backend, *, dtype):
    return astype(stack, dtype)


def _check_threshold(p: dict[str, Any]) -> None:
    if (p["value"] is None) == (p["method"] is None):
        raise _fail("value", "give exactly one of `value` (a float) or `method` ('otsu'); "
                    f"got value={p['value']!r}, method={p['method']!r}")  # fmt: skip


def _check_rescale(p: dict[str, Any]) -> None:
    if p["in_min"] is not None and p["in_max"] is not None and not p["in_min"] < p["in_max"]:
        raise _fail("in_min", f"`in_min` must be less than `in_max`; got in_min={p['in_min']!r}, "
                    f"in_max={p['in_max']!r}")  # fmt: skip


def _check_clip(p: dict[str, Any]) -> None:
    if p["lo"] is not None and p["hi"] is not None and p["lo"] > p["hi"]:
        raise _fail("lo", f"`lo` must be <= `hi`; got lo={p['lo']!r}, hi={p['hi']!r}")


_RESIZE_SIZE = ("width", "height")
_RESIZE_SCALE = ("factor", "fx", "fy")


def _check_resize(p: dict[str, Any]) -> None:
    given = [k for k in (*_RESIZE_SIZE, *_RESIZE_SCALE) if p[k] is not None]
    hint = ("give `width` and/or `height` (the other follows the aspect ratio), or `factor`, "
            "or `fx`/`fy`")  # fmt: skip
    if not given:
        raise _fail("width", f"{hint}; got none of them")
    if p["factor"] is not None and len(given) > 1:
        raise _fail("factor", f"{hint}; got {', '.join(given)}")
    if any(k in given for k in _RESIZE_SIZE) and any(k in given for k in _RESIZE_SCALE):
        raise _fail(given[-1], f"{hint}; got {', '.join(given)}")


def resize_shape(height: int, width: int, p: Mapping[str, Any]) -> tuple[int, int]:
    """The (height, width) a resize step gives an image of ``height × width``: an omitted
    side follows the aspect ratio, rounded to nearest (at least 1)."""
    if p.get("width") is not None or p.get("height") is not None:
        w, h = p.get("width"), p.get("height")
        if w is None:
            w = max(1, round(width * h / height))
        if h is None:
            h = max(1, round(height * w / width))
        return h, w
    fy = fx = p.get("factor")
    if fx is None:
        fx = p.get("fx") if p.get("fx") is not None else 1.0
        fy = p.get("fy") if p.get("fy") is not None else 1.0
    return max(1, round(height * fy)), max(1, round(width * fx))


def _resize(stack, backend, *, method, **size):
    h, w = resize_shape(stack.shape[1], stack.shape[2], size)
    return _geometry().resize(stack, h, w, method=method)


def _check_pad(p: dict[str, Any]) -> None:
    if all(p[k] is None for k in ("top", "bottom", "left", "right", "all")):
        raise _fail("all", "give `all` or at least one of `top`, `bottom`, `left`, `right`; "
                    "got none of them")  # fmt: skip
    if p["mode"] != "constant" and p["cval"] != 0:
        raise _fail("cval", f"`cval` applies to mode='constant' only; got cval={p['cval']!r} "
                    f"with mode={p['mode']!r}")  # fmt: skip


def _pad(stack, backend, *, top, bottom, left, right, all, mode, cval):
    fill = 0 if all is None else all
    sides = [fill if s is None else s for s in (top, bottom, left, right)]
    return _geometry().pad(stack, *sides, mode=mode, cval=cval)


def _side(name: str) -> Param:
    return Param(name, "int", None, f"pixels added at the {name} (default: `all`, else 0)",
                 low=0)  # fmt: skip


_MAX_VALUE = Param("max_value", "float", None, "the value of full scale (default: the integer "
                   "dtype's maximum)", low=0, open_low=True)  # fmt: skip
_PIXEL = (
    OpSpec("grayscale", "luma of RGB(A) → one channel", (
        Param("weights", "choice", "bt601", "luma weights", allowed=("bt601", "bt709")),),
        _call(_exposure, "grayscale", with_backend=True), uses_backend=True, changes_shape=True,
        aliases=("gray", "greyscale")),
    OpSpec("to_float", "integers → floats of full scale 1: x / max_value", (
        Param("dtype", "choice", "float32", "float type", allowed=("float32", "float64")),
        _MAX_VALUE), _call(_exposure, "to_float"), changes_dtype=True),
    OpSpec("from_float", "floats of full scale 1 → integers: x * max_value, rounded half to "
           "even and saturated", (
        Param("dtype", "choice", "uint8", "integer type", allowed=_INT_DTYPES),
        _MAX_VALUE), _call(_exposure, "from_float"), changes_dtype=True),
    OpSpec("rescale", "linear map of [in_min, in_max] (default: each page's finite range) "
           "onto [out_min, out_max], not clipped; float out", (
        Param("out_min", "float", 0.0, "output low"),
        Param("out_max", "float", 1.0, "output high"),
        Param("in_min", "float", None, "input low (default: image minimum)"),
        Param("in_max", "float", None, "input high (default: image maximum)")),
        _call(_exposure, "rescale"), changes_dtype=True, check=_check_rescale),
    OpSpec("normalize", "(x - mean) / std, float out (default: each page's channel stats)", (
        Param("mean", "float_list", None, "mean to subtract, one or one per channel"),
        Param("std", "float_list", None, "standard deviation to divide by, one or one per "
              "channel", low=0, open_low=True)),
        _call(_exposure, "normalize"), changes_dtype=True),
    OpSpec("clip", "limit values to [lo, hi]", (
        Param("lo", "float", None, "lower limit", finite=False),
        Param("hi", "float", None, "upper limit", finite=False)),
        _call(_exposure, "clip"), check=_check_clip),
    OpSpec("threshold", "binarise: pixels > value (or Otsu's threshold of each page) "
           "become `high`, others 0; same dtype", (
        Param("value", "float", None, "the threshold"),
        Param("method", "choice", None, "automatic threshold", allowed=("otsu",)),
        Param("high", "float", None, "foreground value (default: the integer dtype's "
              "maximum, 1.0 for floats)")),
        _call(_exposure, "threshold"), check=_check_threshold),
    OpSpec("invert", "negative: max - x (unsigned), -1 - x (signed), 1 - x (floats)", (),
           _call(_exposure, "invert")),
    OpSpec("equalize", "histogram equalisation of each page and channel", (
        Param("bins", "int", None, "float images only: histogram bins (default 256); integer "
              "images use one bin per value", low=2),),
        _call(_exposure, "equalize")),
    OpSpec("gamma", "gamma correction: gain * x ** gamma (of full scale)", (
        Param("gamma", "float", REQUIRED, "exponent", low=0, open_low=True),
        Param("gain", "float", 1.0, "multiplier")), _call(_exposure, "gamma")),
    OpSpec("unsharp", "unsharp mask: sharpen by amount × (image - Gaussian blur)", (
        Param("sigma", "float", 1.0, "blur standard deviation, in pixels", low=0),
        Param("amount", "float", 1.0, "strength"),
        Param("threshold", "float", 0.0, "only where |image - blur| exceeds it", low=0)),
        _call(_exposure, "unsharp_mask"), aliases=("unsharp_mask", "sharpen")),
    OpSpec("channels", "select / reorder channels: channels 2,1,0 (RGB → BGR), channels [0]", (
        Param("channels", "int_list", REQUIRED, "channel indices in output order (negative "
              "counts from the end)"),),
        _call(_exposure, "select_channels"), changes_shape=True,
        aliases=("select_channels",)),
    OpSpec("stack", "repeat a single channel `count` times (gray → RGB: stack 3)", (
        Param("count", "int", REQUIRED, "number of channels out", low=1),),
        _call(_exposure, "stack_channels"), changes_shape=True, aliases=("stack_channels",)),
    OpSpec("astype", "convert dtype: floats → integers rounded half to even and saturated "
           "(NaN → 0), integers saturated", (
        Param("dtype", "choice", REQUIRED, "target dtype", allowed=ASTYPE_DTYPES),),
        _astype, changes_dtype=True),
    OpSpec("resize", "resize by size (resize width=512 keeps the aspect ratio) or factor", (
        Param("width", "int", None, "output columns", low=1),
        Param("height", "int", None, "output rows", low=1),
        Param("factor", "float", None, "scale of both sides", low=0, open_low=True),
        Param("fx", "float", None, "scale of columns", low=0, open_low=True),
        Param("fy", "float", None, "scale of rows", low=0, open_low=True),
        Param("method", "choice", "area", "interpolation", allowed=("area", "bilinear"))),
        _resize, changes_shape=True, check=_check_resize),
    OpSpec("crop", "cut the window of height × width at (top, left)", (
        Param("top", "int", REQUIRED, "first row", low=0),
        Param("left", "int", REQUIRED, "first column", low=0),
        Param("height", "int", REQUIRED, "rows kept", low=1),
        Param("width", "int", REQUIRED, "columns kept", low=1)),
        _call(_geometry, "crop"), changes_shape=True),
    OpSpec("pad", "add borders: pad all=8, or per side", (
        _side("top"), _side("bottom"), _side("left"), _side("right"),
        Param("all", "int", None, "pixels added on every side not given", low=0),
        Param("mode", "choice", "constant", "border values (np.pad modes)",
              allowed=("constant", "edge", "reflect", "symmetric", "wrap")),
        Param("cval", "float", 0.0, "border value for mode 'constant'", finite=False)),
        _pad, changes_shape=True, check=_check_pad),
    OpSpec("flip", "mirror the image", (
        Param("direction", "choice", REQUIRED, "'horizontal' swaps left and right",
              allowed=("horizontal", "vertical", "both")),), _call(_geometry, "flip")),
    OpSpec("rotate90", "rotate by k × 90° counter-clockwise", (
        Param("k", "int", 1, "quarter turns (negative: clockwise)"),),
        _call(_geometry, "rotate90"), changes_shape=True, aliases=("rot90",)),
)  # fmt: skip


OPS: Mapping[str, OpSpec] = MappingProxyType({op.name: op for op in (*_FILTERS, *_PIXEL)})
_ALIASES: Mapping[str, str] = MappingProxyType(
    {alias: op.name for op in OPS.values() for alias in op.aliases}
)


def get_op(name: str) -> OpSpec:
    """The spec of op ``name`` (case and hyphens ignored; aliases such as scipy's
    ``gaussian_filter`` accepted), or a :class:`PipelineError` with a "did you mean"."""
    if not isinstance(name, str):
        raise PipelineError(f"an op name must be a string; got {name!r}")
    key = _normalize_name(name)
    key = _ALIASES.get(key, key)
    if key in OPS:
        return OPS[key]
    hint = _suggest(key, [*OPS, *_ALIASES]) or f"; known ops: {', '.join(OPS)}"
    raise PipelineError(f"unknown op {name!r}{hint} (`npaccel image ops` lists them)")


def describe_ops() -> list[dict[str, Any]]:
    """Every op as JSON-ready data (name, summary, aliases, changes_shape, changes_dtype,
    params with type/required/default/allowed/min/max/rule/help), for ``npaccel image ops``."""
    return [op.describe() for op in OPS.values()]
