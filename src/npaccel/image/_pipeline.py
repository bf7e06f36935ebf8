"""Pipeline specs of ``npaccel image``: the text grammar, the JSON/YAML form, and the
:class:`Pipeline` object that runs them.

Text form (never evaluated, only read)::

    grayscale | gaussian sigma=2 | sobel | rescale 0 255 | astype uint8

Steps are separated by ``|``; a step is ``op [positional ...] [name=value ...]``, positional
values binding to the op's parameters in declared order (``npaccel image ops`` lists them).
Values: ints, floats (``1e-3``, ``inf``, ``nan`` where allowed), ``true``/``false``, ``none``,
bare words (choices such as ``nearest``), quoted strings (``"a b"``, ``'x|y'``), comma lists
``2,1,0`` and bracketed lists ``[0]``, ``[[0,1,0],[1,-4,1],[0,1,0]]``. ``|`` and spaces
inside quotes or brackets do not split.

File / dict form: a list of steps, or ``{"pipeline": [...]}``; a step is
``{"op": "gaussian", "sigma": 2}`` (canonical, what :meth:`Pipeline.to_dict` writes),
``{"gaussian": {"sigma": 2}}``, ``{"gaussian": 2}`` (one positional value) or a text step
``"gaussian sigma=2"``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from npaccel import backends
from npaccel.image._ops import OpSpec, PipelineError, StepError, _json_ready, get_op

__all__ = ["Pipeline", "PipelineError", "Step", "StepError"]

# Errors an op raises on a particular image (its data, shape or dtype); others are bugs.
_STEP_ERRORS = (ValueError, TypeError, IndexError, ArithmeticError)

# --------------------------------------------------------------------------- text → tokens

_QUOTES = "\"'"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")
_KEYWORD = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*)=(.*)\Z", re.DOTALL)
_INT = re.compile(r"[+-]?\d+\Z")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?\Z|[+-]?(inf|infinity|nan)\Z",
                    re.IGNORECASE)  # fmt: skip
_BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_.+-]*\Z")
_WORDS = {"true": True, "false": False, "none": None, "null": None}


def _scan(text: str) -> list[list[str]]:
    """Steps of raw tokens (quotes kept): split at ``|`` and whitespace outside quotes and
    brackets. Inside double quotes a backslash escapes the next character (as in JSON)."""
    steps: list[list[str]] = []
    tokens: list[str] = []
    buf: list[str] = []
    quote: str | None = None
    depth = 0

    def flush() -> None:
        if buf:
            tokens.append("".join(buf))
            buf.clear()

    i = 0
    while i < len(text):
        c = text[i]
        if quote is not None:
            buf.append(c)
            if c == "\\" and quote == '"' and i + 1 < len(text):
                buf.append(text[i + 1])
                i += 1
            elif c == quote:
                quote = None
        elif c in _QUOTES:
            quote = c
            buf.append(c)
        elif c == "[":
            depth += 1
            buf.append(c)
        elif c == "]":
            if depth == 0:
                raise PipelineError(f"unmatched ']' in {''.join(buf) + c!r}", len(steps) + 1)
            depth -= 1
            buf.append(c)
        elif depth == 0 and c == "|":
            flush()
            steps.append(tokens)
            tokens = []
        elif depth == 0 and c.isspace():
            flush()
        else:
            buf.append(c)
        i += 1
    if quote is not None:
        raise PipelineError(f"unclosed quote {quote} in {''.join(buf)!r}", len(steps) + 1)
    if depth:
        raise PipelineError(f"unclosed '[' in {''.join(buf)!r}", len(steps) + 1)
    flush()
    steps.append(tokens)
    return steps


def _unquoted(text: str) -> Iterator[tuple[int, str, int]]:
    """(index, character, bracket depth before it) of every character outside quotes (a
    backslash in double quotes escapes the next one); a stray ']' leaves the depth at 0."""
    depth, quote, i = 0, None, 0
    while i < len(text):
        c = text[i]
        if quote is not None:
            if c == "\\" and quote == '"':
                i += 1
            elif c == quote:
                quote = None
        elif c in _QUOTES:
            quote = c
        else:
            yield i, c, depth
            if c == "[":
                depth += 1
            elif c == "]" and depth > 0:
                depth -= 1
        i += 1


def _split_top(raw: str) -> list[str]:
    """``raw`` split at commas outside quotes and brackets."""
    parts, start = [], 0
    for i, c, depth in _unquoted(raw):
        if c == "," and depth == 0:
            parts.append(raw[start:i])
            start = i + 1
    parts.append(raw[start:])
    return parts


def _parse_value(raw: str) -> Any:
    """The value a raw token stands for (see the module docstring); lists become tuples."""
    parts = _split_top(raw)
    if len(parts) > 1:
        items = [p.strip() for p in parts]
        if not all(items):
            raise PipelineError(f"empty item in list {raw!r}")
        return tuple(_parse_value(p) for p in items)
    if raw.startswith('"'):
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = None
        if not isinstance(value, str):
            raise PipelineError(f"cannot read {raw!r} as one quoted string")
        return value
    if raw.startswith("'"):
        if len(raw) < 2 or not raw.endswith("'") or "'" in raw[1:-1]:
            raise PipelineError(f"cannot read {raw!r} as one quoted string")
        return raw[1:-1]
    if raw.startswith("["):
        inner = raw[1:-1].strip()
        if not raw.endswith("]") or "]" in _strip_nested(inner):
            raise PipelineError(f"cannot read {raw!r} as one bracketed list")
        if not inner:
            return ()
        items = [p.strip() for p in _split_top(inner)]
        if not all(items):
            raise PipelineError(f"empty item in list {raw!r}")
        return tuple(_parse_value(p) for p in items)
    return _parse_word(raw)


def _strip_nested(inner: str) -> str:
    """``inner`` without its quoted strings and balanced brackets: what is left must hold no
    ']' (else the list closed early, as in ``[1]x[2]``)."""
    return "".join(c for _, c, depth in _unquoted(inner) if depth == 0 and c != "[")


def _parse_word(word: str) -> Any:
    if any(c in word for c in "\"'[]"):
        raise PipelineError(f"cannot read {word!r}: quote the whole value or write a "
                            "bracketed list")  # fmt: skip
    key = word.lower()
    if key in _WORDS:
        return _WORDS[key]
    if _INT.match(word):
        return int(word)
    if _FLOAT.match(word):
        return float(word)
    return word


def _format_float(x: float) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(x)


def _format_value(value: Any, top: bool = True) -> str:
    """Text that :func:`_parse_value` reads back as ``value`` (ints and integral floats may
    come back as each other; parameters convert them)."""
    if value is None:
        return "none"
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return _format_float(float(value))
    if isinstance(value, str):
        bare = _BARE.match(value) and _parse_word(value) == value
        return value if bare else json.dumps(value, ensure_ascii=False)
    items = list(value)
    if top and len(items) >= 2 and not any(isinstance(v, tuple | list) for v in items):
        return ",".join(_format_value(v, False) for v in items)
    return "[" + ",".join(_format_value(v, False) for v in items) + "]"


# --------------------------------------------------------------------------- Step


@dataclass(frozen=True)
class Step:
    """One validated pipeline step: an op name and all its parameters.

    Parameters
    ----------
    op : str
        Op name (aliases, case and hyphens are normalised to the registry's name).
    params : mapping or sequence of (name, value), optional
        Values by name; validated and completed with the defaults, then stored as a tuple
        of ``(name, value)`` pairs in the op's declared order, so equal steps compare equal
        and hash alike.

    Raises
    ------
    PipelineError
        Unknown op or parameter, a missing one, or a value of the wrong type or range.

    Examples
    --------
    >>> Step("gaussian", {"sigma": 2})["sigma"]
    2.0
    >>> str(Step.of("rescale", 0, 255))
    'rescale out_max=255'
    """

    op: str
    params: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        spec = get_op(self.op)
        items = self.params.items() if isinstance(self.params, Mapping) else self.params
        try:
            items = [(k, v) for k, v in items]
        except (TypeError, ValueError):
            raise PipelineError(f"`params` must be a mapping or (name, value) pairs; got "
                                f"{self.params!r}", op=spec.name) from None  # fmt: skip
        object.__setattr__(self, "op", spec.name)
        object.__setattr__(self, "params", spec.bind((), items))

    @classmethod
    def of(cls, op: str, *args: Any, **kwargs: Any) -> Step:
        """A step from positional values (in the op's declared order) and named ones."""
        spec = get_op(op)
        return cls(spec.name, spec.bind(args, kwargs))

    @property
    def spec(self) -> OpSpec:
        return get_op(self.op)

    @property
    def kwargs(self) -> dict[str, Any]:
        """All parameters as a dict (a copy)."""
        return dict(self.params)

    def __getitem__(self, name: str) -> Any:
        return dict(self.params)[name]

    def _explicit(self) -> list[tuple[str, Any]]:
        """The parameters that differ from their defaults."""
        return [(name, value) for (name, value), p in zip(self.params, self.spec.params,
                                                          strict=True)
                if not (value is p.default or value == p.default)]  # fmt: skip

    def __str__(self) -> str:
        words = [self.op]
        params = self.spec.params
        for name, value in self._explicit():
            # The op's own or only parameter is written positionally: `channels 2,1,0`.
            lead = name == params[0].name and (len(params) == 1 or name == self.op)
            words.append(_format_value(value) if lead else f"{name}={_format_value(value)}")
        return " ".join(words)

    def to_dict(self) -> dict[str, Any]:
        """``{"op": name, param: value, ...}`` with the non-default parameters (JSON-ready:
        lists, not tuples)."""
        return {"op": self.op, **{k: _json_ready(v) for k, v in self._explicit()}}

    def run(self, stack: np.ndarray, backend: str | None = None) -> np.ndarray:
        """This op on a (P, H, W, C) stack (errors not wrapped; see Pipeline.apply)."""
        return self.spec.run(stack, backend, **dict(self.params))


def _parse_step(tokens: list[str]) -> Step:
    head = tokens[0]
    if not _NAME.match(head):
        raise PipelineError(f"a step must start with an op name; got {head!r}")
    spec = get_op(head)
    args: list[Any] = []
    kwargs: list[tuple[str, Any]] = []
    for token in tokens[1:]:
        match = _KEYWORD.match(token)
        try:
            if match is None:
                args.append(_parse_value(token))
                continue
            name, raw = match.groups()
            if not raw:
                raise PipelineError(f"`{name}=` needs a value", param=name)
            try:
                kwargs.append((name, _parse_value(raw)))
            except PipelineError as exc:
                raise PipelineError(f"`{name}`: {exc.detail}", param=name) from None
        except PipelineError as exc:
            raise exc.at(op=spec.name) from None
    return Step(spec.name, spec.bind(args, kwargs))


def _step_from_obj(obj: Any) -> Step:
    if isinstance(obj, Step):
        return obj
    if isinstance(obj, str):
        steps = Pipeline.parse(obj).steps
        if len(steps) != 1:
            raise PipelineError(f"a text step must hold one op; got {len(steps)} in {obj!r} "
                                "(make each a list item)")  # fmt: skip
        return steps[0]
    if isinstance(obj, Mapping) and "op" in obj:
        params = {k: v for k, v in obj.items() if k != "op"}
        spec = get_op(obj["op"])
        return Step(spec.name, spec.bind((), params))
    if isinstance(obj, Mapping) and len(obj) == 1:
        ((name, value),) = obj.items()
        spec = get_op(name)
        if value is None:
            return Step(spec.name, spec.bind())
        if isinstance(value, Mapping):
            return Step(spec.name, spec.bind((), value))
        return Step(spec.name, spec.bind((value,)))
    raise PipelineError('a step must be {"op": name, param: value, ...}, {name: {param: '
                        f'value, ...}} or a text step; got {obj!r}')  # fmt: skip


# --------------------------------------------------------------------------- Pipeline

_EXAMPLE = "grayscale | gaussian sigma=2 | sobel"


@dataclass(frozen=True)
class Pipeline:
    """A validated sequence of image ops, run on stacks of images.

    Build one with :meth:`parse` (text), :meth:`from_dict` (list or ``{"pipeline": [...]}``)
    or :meth:`from_file` (.json, .yaml, .yml, .txt); every step is checked when the
    pipeline is made, before any image is touched. ``str(p)`` is canonical text that
    parses back to an equal pipeline, ``p.to_dict()`` round-trips through
    :meth:`from_dict`; pipelines compare equal and hash by their steps.

    Array layout: :meth:`apply` takes and returns the canonical 4-D stack (P, H, W, C) —
    pages, rows, columns, channels, C >= 1. Calling the pipeline is the convenience form:
    a 2-D (H, W) image runs as (1, H, W, 1), a 3-D (H, W, C) one as (1, H, W, C), a 4-D
    stack as is; for 2-D and 3-D input the result drops the page axis, and the channel
    axis too when it has one channel (``Pipeline.parse("grayscale")(rgb)`` is (H, W)); a
    4-D input gives a 4-D result.

    Parameters
    ----------
    steps : iterable of Step
        At least one.

    Raises
    ------
    PipelineError
        No steps, or a bad step; the message names the step (1-based), op and parameter.

    Examples
    --------
    >>> p = Pipeline.parse("grayscale | gaussian 2 | rescale 0 255 | astype uint8")
    >>> str(p)
    'grayscale | gaussian sigma=2 | rescale out_max=255 | astype uint8'
    >>> Pipeline.from_dict(p.to_dict()) == p
    True
    """

    steps: tuple[Step, ...]

    def __post_init__(self) -> None:
        steps = tuple(self.steps)
        if not steps:
            raise PipelineError(f"the pipeline is empty; give at least one step, e.g. "
                                f"{_EXAMPLE!r}")  # fmt: skip
        for i, step in enumerate(steps, 1):
            if not isinstance(step, Step):
                raise PipelineError(f"expected a Step; got {step!r} (use Pipeline.parse or "
                                    "Pipeline.from_dict for text and dicts)", i)  # fmt: skip
        object.__setattr__(self, "steps", steps)

    # ---- building

    @classmethod
    def parse(cls, text: str) -> Pipeline:
        """A pipeline from its text form (see the module docstring)."""
        if not isinstance(text, str):
            raise PipelineError(f"a pipeline text must be a string; got {type(text).__name__}")
        if not text.strip():
            raise PipelineError(f"the pipeline is empty; give at least one step, e.g. "
                                f"{_EXAMPLE!r}")  # fmt: skip
        steps = []
        for i, tokens in enumerate(_scan(text), 1):
            if not tokens:
                raise PipelineError("empty step (a '|' with nothing before or after it)", i)
            try:
                steps.append(_parse_step(tokens))
            except PipelineError as exc:
                raise exc.at(i) from None
        return cls(tuple(steps))

    @classmethod
    def from_dict(cls, obj: Any) -> Pipeline:
        """A pipeline from a list of steps or ``{"pipeline": [steps] or text}``; steps as in
        the module docstring."""
        if isinstance(obj, Mapping):
            if set(obj) != {"pipeline"}:
                raise PipelineError('expected {"pipeline": [steps]}; got keys '
                                    f"{sorted(map(str, obj))}")  # fmt: skip
            obj = obj["pipeline"]
        if isinstance(obj, str):
            return cls.parse(obj)
        if not isinstance(obj, list | tuple):
            raise PipelineError('a pipeline must be a list of steps or {"pipeline": [...]}; '
                                f"got {type(obj).__name__}")  # fmt: skip
        steps = []
        for i, item in enumerate(obj, 1):
            try:
                steps.append(_step_from_obj(item))
            except PipelineError as exc:
                raise exc.at(i) from None
        return cls(tuple(steps))

    @classmethod
    def from_file(cls, path: str | PathLike[str]) -> Pipeline:
        """A pipeline from a .json, .yaml/.yml (PyYAML, ``yaml.safe_load``) or .txt (text
        form) file. Errors name the file."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".json", ".yaml", ".yml", ".txt"):
            raise PipelineError("a pipeline file must end in .json, .yaml, .yml or .txt; "
                                f"got {str(path)!r}")  # fmt: skip
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise PipelineError(f"cannot read pipeline file {str(path)!r}: {why}") from None
        try:
            if suffix == ".txt":
                return cls.parse(text)
            return cls.from_dict(_load(text, suffix))
        except PipelineError as exc:
            raise exc.at(source=str(path)) from None

    # ---- reading

    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    def __getitem__(self, index: int) -> Step:
        return self.steps[index]

    def __str__(self) -> str:
        return " | ".join(str(step) for step in self.steps)

    def __repr__(self) -> str:
        return f"Pipeline.parse({str(self)!r})"

    def to_dict(self) -> dict[str, Any]:
        """``{"pipeline": [{"op": name, param: value, ...}, ...]}`` (non-default parameters;
        JSON-ready, though inf/nan values need JSON's Infinity/NaN or YAML)."""
        return {"pipeline": [step.to_dict() for step in self.steps]}

    @property
    def changes_shape(self) -> bool:
        """Whether some step may change an image's shape (resize, crop, pad, rotate90,
        grayscale, channels, stack)."""
        return any(step.spec.changes_shape for step in self.steps)

    @property
    def changes_dtype(self) -> bool:
        """Whether some step may change an image's dtype (astype, to_float, rescale ...)."""
        return any(step.spec.changes_dtype for step in self.steps)

    # ---- running

    def apply(self, stack: np.ndarray, backend: str | None = None) -> np.ndarray:
        """Run every step on a (P, H, W, C) stack; returns the resulting stack.

        Parameters
        ----------
        stack : ndarray
            4-D: pages, rows, columns, channels (C >= 1).
        backend : {'cpu', 'cuda', 'numpy'} or None, optional
            Engine of the filter steps (npaccel.filters' ``backend=``) and of grayscale.
            With 'cuda' the stack moves to the GPU once before each run of consecutive
            such steps and back after it; the other steps run on the CPU.

        Raises
        ------
        StepError
            A step failed on this data (e.g. a crop outside a small image); the message
            names the step and op, the original error is ``__cause__``.
        """
        stack = np.asarray(stack)
        if stack.ndim != 4 or stack.shape[3] < 1:
            raise ValueError("`stack` must be 4-D (pages, rows, columns, channels) with at "
                             f"least one channel; got shape {stack.shape} (call the "
                             "pipeline itself for a 2-D or 3-D image)")  # fmt: skip
        if backend is not None and any(step.spec.uses_backend for step in self.steps):
            backends.implementation("filters", backend, stack)  # an unknown name fails here
        resident = False  # whether ``stack`` is on the GPU (backend 'cuda' only)
        for i, step in enumerate(self.steps, 1):
            if backend == "cuda" and step.spec.uses_backend != resident:
                stack, resident = _moved(stack, to_device=not resident), not resident
            try:
                out = step.run(stack, backend)
            except backends.BackendError:
                raise
            except _STEP_ERRORS as exc:
                raise StepError(str(exc), i, step.op) from exc
            if getattr(out, "ndim", None) != 4 or not hasattr(out, "dtype"):
                raise StepError(f"expected a 4-D array back; got {getattr(out, 'shape', out)!r}",
                                i, step.op)  # fmt: skip
            stack = out
        return _moved(stack, to_device=False) if resident else stack

    def __call__(self, image: Any, backend: str | None = None) -> np.ndarray:
        """Run on one image (H, W) or (H, W, C), or a (P, H, W, C) stack; see the class
        docstring for the layout of the result."""
        image = np.asarray(image)
        if image.ndim not in (2, 3, 4):
            raise ValueError("`image` must be 2-D (H, W), 3-D (H, W, C) or 4-D (P, H, W, C); "
                             f"got shape {image.shape}")  # fmt: skip
        if image.ndim == 4:
            return self.apply(image, backend)
        stack = image[None, :, :, None] if image.ndim == 2 else image[None]
        out = self.apply(stack, backend)[0]
        return out[..., 0] if out.shape[-1] == 1 else out


def _moved(stack: Any, *, to_device: bool) -> Any:
    """``stack`` copied to the GPU (a CuPy array; under numba-cuda's simulator a NumPy one,
    the simulator's device memory) or back to the host."""
    from npaccel.cuda import _device

    if to_device:
        return _device.to_device(stack, _device.array_module(stack))
    return stack.get() if _device.is_cupy(stack) else stack


def _load(text: str, suffix: str) -> Any:
    if suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise PipelineError(f"not valid JSON: {exc}") from None
    try:
        import yaml
    except ImportError:
        raise ImportError('reading YAML pipelines needs PyYAML: pip install "npaccel[image]"'
                          ) from None  # fmt: skip
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PipelineError(f"not valid YAML: {exc}") from None
