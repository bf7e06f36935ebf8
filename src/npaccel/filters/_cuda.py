"""The cuda backend: numba-cuda kernels on CuPy arrays (NumPy under the simulator).

Plan. Passes are grouped into launches as on the cpu backend, with one difference: a pair
of passes on adjacent axes runs as one 2-D tile kernel (`_cuda_linear.tile_kernel`), and
when passes commute the pair chosen is the one nearest the end of the array (H, W of an
image or volume; H, W of an (N, H, W, C) batch with axes=(1, 2)), whose neighbours along
the second axis are closest in memory. The tile kernel reads its input once and writes
its output once, so a 3x3 box or Sobel filter moves about as many bytes as a copy. Any
other pass, or a pair whose halo does not fit the tile (`MAX_HALO`, shared memory), runs
pass by pass through `pass_kernel` with scratch arrays in the accumulator type.
`combine_passes` fuses both pass lists of Laplace and the gradient magnitudes into one
tile kernel when `npaccel.filters._cpu._fusable` allows (the same conditions as the cpu
backend), and otherwise accumulates the filtered lists element-wise.

Numbers follow the policy (`npaccel.filters._policy`): accumulation and intermediates in
``compute_dtype(input.dtype, out.dtype)``, one store at the end (integers rounded half to
even, NaN to 0, saturated). float16 data is read as float32, exactly, and a float16 output
is written as float32 and cast once. Complex data never reaches this module: the dispatcher
sends it to `npaccel.filters._cupyx`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from npaccel.filters import _cuda_linear as K
from npaccel.filters._cpu import _fusable
from npaccel.filters._cuda_common import (
    MODE_CODE,
    REFLECT,
    DeviceCall,
    device_call,
    device_constant,
    grid_1d,
    launch,
)
from npaccel.filters._passes import Pass
from npaccel.filters._policy import compute_dtype

__all__ = ["combine_passes", "correlate_nd", "correlate_passes"]

GRID_YZ_LIMIT = 65535  # blocks along grid y and z; kernels stride over the rest (tests shrink it)
_SHARED_SLACK = 64  # alignment padding between the shared arrays
_IDENTITY = np.ones(1)


def _centre(p: Pass) -> int:
    return len(p.weights) // 2 + p.origin


def _fill(acc: np.dtype, cval: float) -> Any:
    """cval in the accumulator type (beyond float32's range it is ±inf there, as the
    float32 sums it enters would be)."""
    with np.errstate(over="ignore"):
        return acc.type(cval)


def _schedule(passes: tuple[Pass, ...], cval: float) -> list[tuple[Pass, ...]]:
    """Launches for ``passes``: pairs on adjacent axes (a tile kernel each) and single passes.

    Passes along different axes commute (up to rounding) unless a constant mode pads with
    a non-zero cval; then the order is kept and a pass pairs with the next one when that
    one is on the following axis. Otherwise passes are sorted by axis and paired from the
    last axis back (passes on one axis keep their order)."""
    reorder = cval == 0 or all(p.mode != "constant" for p in passes)
    todo = sorted(passes, key=lambda p: p.axis) if reorder else list(passes)
    steps: list[tuple[Pass, ...]] = []
    if not reorder:
        i = 0
        while i < len(todo):
            if i + 1 < len(todo) and todo[i + 1].axis == todo[i].axis + 1:
                steps.append((todo[i], todo[i + 1]))
                i += 2
            else:
                steps.append((todo[i],))
                i += 1
        return steps
    i = len(todo) - 1
    while i >= 0:
        if i > 0 and todo[i - 1].axis + 1 == todo[i].axis:
            steps.append((todo[i - 1], todo[i]))
            i -= 2
        else:
            steps.append((todo[i],))
            i -= 1
    return steps[::-1]


def _plane(shape: tuple[int, ...], v: int) -> tuple[tuple[int, int, int], int]:
    """``((a, H, W*b), b)``: the C-contiguous array seen as planes for axes v, v + 1."""
    a = int(np.prod(shape[:v], dtype=np.int64))
    b = int(np.prod(shape[v + 2 :], dtype=np.int64))
    return (a, shape[v], shape[v + 1] * b), b


def _fit_tiling(terms: tuple, shape: tuple[int, ...], v: int, itemsize: int) -> K.Tiling | None:
    """`K.TILING`, with fewer rows if its shared arrays would not fit, for filters on axes
    v, v + 1 of ``shape``; None when the halo is beyond `K.MAX_HALO`, no tile fits or the
    plane has 2**31 rows or columns or more: then the passes run one by one."""
    (_, rows, cols), step = _plane(shape, v)
    if max(rows, cols) >= 2**31:
        return None
    up = max(c for (_, c), _ in terms)
    down = max(n - 1 - c for (n, c), _ in terms)
    left = max(c for _, (_, c) in terms)
    right = max(n - 1 - c for _, (n, c) in terms)
    if max(up, down, left, right) > K.MAX_HALO:
        return None
    tiling = K.TILING
    while True:
        rin, cin = tiling.rows + up + down, tiling.cols + (left + right) * step
        mids = len(terms) * tiling.rows * cin + (len(terms) == 1)  # (1: a placeholder)
        shared = itemsize * (rin * cin + mids) + 4 * (rin + cin) + _SHARED_SLACK  # + edge maps
        if shared <= K.SHARED_BYTES:
            return tiling
        if tiling.rows == 1:
            return None
        tiling = dataclasses.replace(tiling, rows=tiling.rows // 2)


def _launch_tile(call: DeviceCall, src, dst, v: int, terms, weights, modes, combine, acc, fill,
                 tiling: K.Tiling) -> None:  # fmt: skip
    three, step = _plane(src.shape, v)
    kernel = K.tile_kernel(tiling, step, terms, modes[0], modes[1], combine, acc,
                           np.dtype(dst.dtype))  # fmt: skip
    a, rows, cols = three
    blocks = (
        -(-cols // tiling.cols),
        min(-(-rows // tiling.rows), GRID_YZ_LIMIT),
        min(a, GRID_YZ_LIMIT),
    )
    ws = [device_constant(w.astype(acc), call.xp) for w in weights]
    while len(ws) < 4:
        ws.append(ws[0])
    launch(kernel, blocks, (tiling.threads_x, tiling.threads_y), call.stream, src.reshape(-1),
           dst.reshape(-1), a, rows, cols, *ws, fill)  # fmt: skip


def _taps(p: Pass | None) -> tuple[int, int]:
    return (1, 0) if p is None else (len(p.weights), _centre(p))


def _weights(p: Pass | None) -> np.ndarray:
    return _IDENTITY if p is None else p.weights


def _pair_tiling(shape, first: Pass, second: Pass, acc: np.dtype) -> K.Tiling | None:
    """The tile for passes on axes v, v + 1 in one kernel, or None if they do not fit."""
    terms = ((_taps(first), _taps(second)),)
    return _fit_tiling(terms, shape, first.axis, acc.itemsize)


def _run_pair(call, src, dst, first: Pass, second: Pass, acc, fill, tiling) -> None:
    terms = ((_taps(first), _taps(second)),)
    modes = (MODE_CODE[first.mode], MODE_CODE[second.mode])
    _launch_tile(call, src, dst, first.axis, terms, (first.weights, second.weights), modes,
                 "sum", acc, fill, tiling)  # fmt: skip


def _run_one(call, src, dst, p: Pass, acc, fill) -> None:
    shape = src.shape
    n = shape[p.axis]
    step = int(np.prod(shape[p.axis + 1 :], dtype=np.int64))
    kernel = K.pass_kernel(len(p.weights), _centre(p), MODE_CODE[p.mode], step == 1, acc,
                           np.dtype(dst.dtype))  # fmt: skip
    w = device_constant(p.weights.astype(acc), call.xp)
    launch(kernel, *grid_1d(src.size), call.stream, src.reshape(-1), dst.reshape(-1), w, fill,
           n, step)  # fmt: skip


def _run_passes(call: DeviceCall, passes, cval: float, dst, acc: np.dtype) -> None:
    """``passes`` applied to ``call.src``, the result stored into ``dst`` (C-contiguous)."""
    fill = _fill(acc, cval)
    launches: list[tuple[tuple[Pass, ...], K.Tiling | None]] = []
    for step in _schedule(passes, cval):
        tiling = _pair_tiling(call.src.shape, *step, acc) if len(step) == 2 else None
        if tiling is not None:
            launches.append((step, tiling))
        else:
            launches.extend(((p,), None) for p in step)
    src = call.src
    scratch: list[Any] = []
    for index, (step, tiling) in enumerate(launches):
        if index == len(launches) - 1:
            target = dst
        else:  # ping-pong between (at most) two scratch arrays in the accumulator type
            if len(scratch) < 2:
                scratch.append(call.empty(acc))
            target = scratch[index % 2]
        if tiling is not None:
            _run_pair(call, src, target, step[0], step[1], acc, fill, tiling)
        else:
            _run_one(call, src, target, step[0], acc, fill)
        src = target


def _store(call: DeviceCall, values, dst, acc: np.dtype, root: bool = False) -> None:
    kernel = K.store_kernel(acc, np.dtype(dst.dtype), root)
    launch(kernel, *grid_1d(values.size), call.stream, values.reshape(-1), dst.reshape(-1))


def correlate_passes(input, passes, cval, out):
    if input.size == 0:
        return out
    acc = compute_dtype(input.dtype, out.dtype)
    call = device_call(input, out)
    if not passes:
        _store(call, call.src, call.dst, acc)
    else:
        _run_passes(call, passes, cval, call.dst, acc)
    return call.finish()


def _combine_plan(pass_lists, v: int) -> tuple | None:
    """``(terms, weights, modes)`` of two pass lists on axes v, v + 1 for one tile kernel,
    or None when their passes along one axis read the edges by different modes."""
    modes = [None, None]
    terms, weights = [], []
    for passes in pass_lists:
        by_axis = {p.axis: p for p in passes}
        pair = (by_axis.get(v), by_axis.get(v + 1))
        for side, p in enumerate(pair):
            if p is not None and len(p.weights) > 1:  # a 1-tap pass never reads an edge
                code = MODE_CODE[p.mode]
                if modes[side] not in (None, code):
                    return None
                modes[side] = code
        terms.append((_taps(pair[0]), _taps(pair[1])))
        weights.extend((_weights(pair[0]), _weights(pair[1])))
    codes = tuple(REFLECT if m is None else m for m in modes)
    return tuple(terms), (weights[0], weights[1], weights[2], weights[3]), codes


def combine_passes(input, pass_lists, cval, out, combine):
    if input.size == 0:
        return out
    acc = compute_dtype(input.dtype, out.dtype)
    call = device_call(input, out)
    fill = _fill(acc, cval)
    v = _fusable(pass_lists, cval)
    plan = _combine_plan(pass_lists, v) if v is not None else None
    if plan is not None:
        terms, weights, modes = plan
        tiling = _fit_tiling(terms, call.src.shape, v, acc.itemsize)
        if tiling is not None:
            _launch_tile(call, call.src, call.dst, v, terms, weights, modes, combine, acc, fill,
                         tiling)  # fmt: skip
            return call.finish()
    hypot = combine == "hypot"
    total = call.xp.zeros(call.src.shape, dtype=acc)
    part = call.empty(acc) if any(pass_lists) else None
    accumulate = K.accumulate_kernel(acc, hypot)
    for index, passes in enumerate(pass_lists):
        if passes:
            _run_passes(call, passes, cval, part, acc)
            values = part
        else:
            values = call.src
        launch(accumulate, *grid_1d(total.size), call.stream, total.reshape(-1),
               values.reshape(-1), index == 0)  # fmt: skip
    _store(call, total, call.dst, acc, root=hypot)
    return call.finish()


def correlate_nd(input, weights, mode, cval, origins, out):
    """General N-D correlation over the non-zero taps of ``weights``."""
    if input.size == 0:
        return out
    acc = compute_dtype(input.dtype, out.dtype)
    call = device_call(input, out)
    src, dst = call.src, call.dst
    if src.ndim == 0:  # one element: a 1-D array of length 1
        src, dst, weights, origins = src.reshape(1), dst.reshape(1), weights.reshape(1), (0,)
    shape = np.array(src.shape, dtype=np.int64)
    before = np.array([s // 2 + o for s, o in zip(weights.shape, origins, strict=True)])
    where = np.argwhere(weights != 0)
    tap_weights = weights[tuple(where.T)]
    if len(where) == 0:  # all-zero weights: one zero tap (0 * NaN is NaN, as on cpu)
        where, tap_weights = before[None, :], np.zeros(1)
    taps = (where - before).astype(np.int64)
    strides = np.cumprod(np.concatenate([[1], shape[:0:-1]]))[::-1].astype(np.int64)
    flat = (taps * strides).sum(axis=1).astype(np.int64)
    low = np.maximum(0, -taps.min(axis=0)).astype(np.int64)
    high = np.maximum(0, taps.max(axis=0)).astype(np.int64)
    xp = call.xp
    kernel = K.nd_kernel(src.ndim, MODE_CODE[mode], acc, np.dtype(dst.dtype))
    consts = [device_constant(c, xp) for c in (shape, taps, flat, tap_weights.astype(acc), low,
                                               high)]  # fmt: skip
    launch(kernel, *grid_1d(src.size), call.stream, src.reshape(-1), dst.reshape(-1), *consts,
           _fill(acc, cval))  # fmt: skip
    return call.finish()


def __getattr__(name: str):
    # Rank filters live in their own module; loaded with the backend on first use.
    if name in {"minmax_passes", "rank_nd"}:
        from npaccel.filters import _cuda_rank

        return getattr(_cuda_rank, name)
    raise AttributeError(name)
