"""The cpu backend: Numba kernels, parallel over rows, on the threads npaccel.threads sets.

Layout. Every array is handled as C-contiguous blocks ``(A, n, B)``: ``n`` the filtered
axis, ``A`` the axes before it, ``B`` the axes after it. A pass along an axis with ``B > 1``
combines whole contiguous rows (``dst[a, i, :] = sum_k w[k] * src[a, i + k - c, :]``), so the
inner loop is a vectorised axpy over ``B`` elements; a pass along the last axis (``B == 1``)
copies each row into a padded buffer once and runs the taps over it.

Fusion. Two passes on adjacent axes — the image's rows then columns, or H then W of an
(N, H, W, C) batch — run as one kernel: for each output row, the first pass writes one
padded row to a per-thread buffer that stays in cache, and the second pass reads it from
there. Input is read once, in its own dtype (a uint8 image is never widened in memory),
and output written once, rounded and saturated by the policy, so a 3x3 box or Sobel moves
about as many bytes as a copy.

Boundaries are resolved once per row (an index map), never inside the tap loops.

Strided input. Input whose rows are contiguous but lie apart — a crop, a chunk of a bigger
array (every chunk of ``dask.array.from_array``), a ``[::-1]`` or ``[::2]`` along the first
axis — is read where it lies: the linear kernels take its rows as contiguous arrays (`_row`)
instead of copying the whole input to a C-contiguous temporary first.

float16 (which Numba cannot hold in arrays) is loaded as float32, exactly, and a float16
output is computed as float32 and cast once at the end, as the policy says.
"""

from __future__ import annotations

import numba
import numpy as np
from numba.core import cgutils, types
from numba.extending import intrinsic, overload

from npaccel.filters._passes import Pass
from npaccel.filters._policy import compute_dtype, store

__all__ = ["combine_passes", "correlate_nd", "correlate_passes"]

REFLECT, MIRROR, NEAREST, CONSTANT, WRAP = range(5)
_MODE_CODE = {"reflect": REFLECT, "mirror": MIRROR, "nearest": NEAREST, "constant": CONSTANT,
              "wrap": WRAP}  # fmt: skip
_NP_PAD = {"reflect": "symmetric", "mirror": "reflect", "nearest": "edge", "wrap": "wrap",
           "constant": "constant"}  # fmt: skip
_ROWS_PER_TASK = 8  # rows one parallel task handles: amortises its scratch buffers

_jit = numba.njit(cache=True, nogil=True, fastmath=False)
_pjit = numba.njit(cache=True, nogil=True, parallel=True, fastmath=False)


@intrinsic
def _pointer(typingctx, address):
    """The integer ``address`` as a void pointer (for `numba.carray`)."""

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return types.voidptr(address), codegen


def _row(src, a, j):
    """``src[a, j]`` of a 3-D array as a C-contiguous 1-D array (compiled: see the overload)."""
    return src[a, j]


@overload(_row)
def _row_overload(src, a, j):
    if src.layout == "C":
        return lambda src, a, j: src[a, j]
    dtype = src.dtype

    def strided(src, a, j):  # rows apart, each contiguous: the loops over it vectorise
        row = src[a, j]
        if row.shape[0] > 1 and row.strides[0] != row.itemsize:
            raise ValueError("_row: the rows of a strided input must be contiguous")
        return numba.carray(_pointer(row.ctypes.data), row.shape[0], dtype)

    return strided


@numba.njit(cache=True)
def _map_index(i, n, mode):
    """Index inside [0, n) that position ``i`` reads under ``mode``; -1 means cval."""
    if 0 <= i < n:
        return i
    if mode == NEAREST:
        return 0 if i < 0 else n - 1
    if mode == WRAP:
        return i % n
    if mode == REFLECT:
        j = i % (2 * n)
        return j if j < n else 2 * n - 1 - j
    if mode == MIRROR:
        if n == 1:
            return 0
        j = i % (2 * n - 2)
        return j if j < n else 2 * n - 2 - j
    return -1


@numba.njit(cache=True)
def _emit(vals, out, conv, lims):
    """Store a row by the policy. ``conv``: 0 float output (cast); 1, 2, 3 integer output via
    int32, int64 or uint64 — rounded half to even, NaN to 0, saturated to ``lims`` (lo, hi in
    the accumulator's type). Converting through a 32/64-bit integer, and selects rather than
    branches, keep these loops vectorised."""
    n = vals.shape[0]
    if conv == 0:
        for f in range(n):
            out[f] = vals[f]
        return
    lo, hi = lims[0], lims[1]
    zero = lo - lo
    if conv == 1:
        for f in range(n):
            v = np.rint(vals[f])
            v = lo if v < lo else v
            v = hi if v > hi else v
            out[f] = np.int32(v if v == v else zero)
    elif conv == 2:
        for f in range(n):
            v = np.rint(vals[f])
            v = lo if v < lo else v
            v = hi if v > hi else v
            out[f] = np.int64(v if v == v else zero)
    else:
        for f in range(n):
            v = np.rint(vals[f])
            v = lo if v < lo else v
            v = hi if v > hi else v
            out[f] = np.uint64(v if v == v else zero)


@numba.njit(cache=True)
def _taps4(dst, init, w0, t0, w1, t1, w2, t2, w3, t3):
    """dst (=, or += unless ``init``) w0 * t0 + w1 * t1 + w2 * t2 + w3 * t3, elementwise."""
    if init:
        for f in range(dst.shape[0]):
            dst[f] = w0 * t0[f] + w1 * t1[f] + w2 * t2[f] + w3 * t3[f]
    else:
        for f in range(dst.shape[0]):
            dst[f] += w0 * t0[f] + w1 * t1[f] + w2 * t2[f] + w3 * t3[f]


@numba.njit(cache=True)
def _tap1(dst, init, w, t):
    """dst (=, or += unless ``init``) w * t, elementwise."""
    if init:
        for f in range(dst.shape[0]):
            dst[f] = w * t[f]
    else:
        for f in range(dst.shape[0]):
            dst[f] += w * t[f]


@numba.njit(cache=True)
def _combine_rows(dst, w, src, a, i, c, mode, cval):
    """dst[:] = sum_k w[k] * src[a, i + k - c, :] over rows of a 3-D (A, n, L) array, rows
    outside [0, n) taken by ``mode`` (cval rows for 'constant')."""
    n = src.shape[1]
    size = w.shape[0]
    L = dst.shape[0]
    first = i - c
    if first >= 0 and first + size <= n and size == 3:
        r0, r1, r2 = _row(src, a, first), _row(src, a, first + 1), _row(src, a, first + 2)
        w0, w1, w2 = w[0], w[1], w[2]
        for f in range(L):
            dst[f] = w0 * r0[f] + w1 * r1[f] + w2 * r2[f]
        return
    if first >= 0 and first + size <= n and size == 5:
        r0, r1, r2 = _row(src, a, first), _row(src, a, first + 1), _row(src, a, first + 2)
        r3, r4 = _row(src, a, first + 3), _row(src, a, first + 4)
        w0, w1, w2, w3, w4 = w[0], w[1], w[2], w[3], w[4]
        for f in range(L):
            dst[f] = w0 * r0[f] + w1 * r1[f] + w2 * r2[f] + w3 * r3[f] + w4 * r4[f]
        return
    # any size: taps four at a time (one pass over dst per four rows, not per row: a 17-tap
    # Gaussian makes 5 passes instead of 17); a group touching a cval row goes tap by tap
    k = 0
    while k < size:
        if k + 4 <= size:
            j0 = _map_index(first + k, n, mode)
            j1 = _map_index(first + k + 1, n, mode)
            j2 = _map_index(first + k + 2, n, mode)
            j3 = _map_index(first + k + 3, n, mode)
            if j0 >= 0 and j1 >= 0 and j2 >= 0 and j3 >= 0:
                _taps4(dst, k == 0, w[k], _row(src, a, j0), w[k + 1], _row(src, a, j1),
                       w[k + 2], _row(src, a, j2), w[k + 3], _row(src, a, j3))  # fmt: skip
                k += 4
                continue
        j = _map_index(first + k, n, mode)
        if j >= 0:
            _tap1(dst, k == 0, w[k], _row(src, a, j))
        else:
            add = w[k] * cval
            if k == 0:
                for f in range(L):
                    dst[f] = add
            else:
                for f in range(L):
                    dst[f] += add
        k += 1


@numba.njit(cache=True)
def _combine_shifted(dst, w, buf, step):
    """dst[f] = sum_m w[m] * buf[f + m * step]: taps over a padded row, each tap a view
    starting at index 0 (offsets of unknown sign in the index would defeat vectorisation)."""
    size = w.shape[0]
    L = dst.shape[0]
    if size == 3:
        t0, t1, t2 = buf[0:L], buf[step : step + L], buf[2 * step : 2 * step + L]
        w0, w1, w2 = w[0], w[1], w[2]
        for f in range(L):
            dst[f] = w0 * t0[f] + w1 * t1[f] + w2 * t2[f]
        return
    if size == 5:
        t0, t1, t2 = buf[0:L], buf[step : step + L], buf[2 * step : 2 * step + L]
        t3, t4 = buf[3 * step : 3 * step + L], buf[4 * step : 4 * step + L]
        w0, w1, w2, w3, w4 = w[0], w[1], w[2], w[3], w[4]
        for f in range(L):
            dst[f] = w0 * t0[f] + w1 * t1[f] + w2 * t2[f] + w3 * t3[f] + w4 * t4[f]
        return
    # any size: taps four at a time, one pass over dst per four taps
    m = 0
    while m + 4 <= size:
        _taps4(dst, m == 0, w[m], buf[m * step : m * step + L],
               w[m + 1], buf[(m + 1) * step : (m + 1) * step + L],
               w[m + 2], buf[(m + 2) * step : (m + 2) * step + L],
               w[m + 3], buf[(m + 3) * step : (m + 3) * step + L])  # fmt: skip
        m += 4
    while m < size:
        _tap1(dst, m == 0, w[m], buf[m * step : m * step + L])
        m += 1


@_jit
def _pad_row(src_row, buf, c, mode, cval):
    """buf[t] = src_row[t - c] extended by ``mode``, for t in [0, len(buf))."""
    n = src_row.shape[0]
    for t in range(buf.shape[0]):
        j = _map_index(t - c, n, mode)
        buf[t] = cval if j < 0 else src_row[j]


@_pjit
def _pass_last(src, dst, w, c, mode, cval, conv, bounds, acc_sample):
    """Correlate along the last axis of 2-D (rows, n) arrays."""
    rows, n = src.shape
    size = w.shape[0]
    ntasks = (rows + _ROWS_PER_TASK - 1) // _ROWS_PER_TASK
    for task in numba.prange(ntasks):
        buf = np.empty(n + size - 1, dtype=acc_sample.dtype)
        acc = np.empty(n, dtype=acc_sample.dtype)
        wk = w.astype(acc_sample.dtype)
        lims = bounds.astype(acc_sample.dtype)
        for r in range(task * _ROWS_PER_TASK, min(rows, (task + 1) * _ROWS_PER_TASK)):
            _pad_row(src[r], buf, c, mode, cval)
            _combine_shifted(acc, wk, buf, 1)
            _emit(acc, dst[r], conv, lims)


@_pjit
def _pass_rows(src, dst, w, c, mode, cval, conv, bounds, acc_sample):
    """Correlate along the middle axis of 3-D (A, n, B) arrays by combining contiguous rows."""
    A, n, B = src.shape
    rows = A * n
    ntasks = (rows + _ROWS_PER_TASK - 1) // _ROWS_PER_TASK
    for task in numba.prange(ntasks):
        acc = np.empty(B, dtype=acc_sample.dtype)
        wk = w.astype(acc_sample.dtype)
        lims = bounds.astype(acc_sample.dtype)
        for r in range(task * _ROWS_PER_TASK, min(rows, (task + 1) * _ROWS_PER_TASK)):
            a, i = r // n, r % n
            _combine_rows(acc, wk, src, a, i, c, mode, cval)
            _emit(acc, dst[a, i], conv, lims)


@numba.njit(cache=True)
def _fused_row(src, a, i, B, wv, cv, modev, wh, ch, modeh, cval, tmp, out):
    """out = (pass along H over the rows around ``i``, then along M over elements B apart)
    for row ``i`` of block ``a`` of an (A, H, M*B) array; ``tmp`` holds the padded
    intermediate row, (M + len(wh) - 1) * B long, and stays in cache."""
    L = out.shape[0]
    M = L // B
    col = tmp[ch * B : ch * B + L]
    _combine_rows(col, wv, src, a, i, cv, modev, cval)
    for t in range(wh.shape[0] - 1):  # edges along the second axis, by its mode
        pos = t if t < ch else t + M
        j = _map_index(pos - ch, M, modeh)
        for b in range(B):
            tmp[pos * B + b] = cval if j < 0 else col[j * B + b]
    _combine_shifted(out, wh, tmp, B)


@_pjit
def _pass_fused(src, dst, B, wv, cv, modev, wh, ch, modeh, cval, conv, bounds, acc_sample):
    """Two passes in one over (A, H, M*B) arrays: along H by combining rows, then along M
    (elements B apart) over a per-thread padded row that stays in cache."""
    A, H, L = src.shape
    M = L // B
    rows = A * H
    direct = conv == 0 and dst.dtype == acc_sample.dtype
    ntasks = (rows + _ROWS_PER_TASK - 1) // _ROWS_PER_TASK
    for task in numba.prange(ntasks):
        tmp = np.empty((M + wh.shape[0] - 1) * B, dtype=acc_sample.dtype)
        acc = np.empty(L, dtype=acc_sample.dtype)
        wvk = wv.astype(acc_sample.dtype)
        whk = wh.astype(acc_sample.dtype)
        lims = bounds.astype(acc_sample.dtype)
        for r in range(task * _ROWS_PER_TASK, min(rows, (task + 1) * _ROWS_PER_TASK)):
            a, i = r // H, r % H
            if direct:  # output has the accumulator's type: no separate store pass
                _fused_row(src, a, i, B, wvk, cv, modev, whk, ch, modeh, cval, tmp, dst[a, i])
            else:
                _fused_row(src, a, i, B, wvk, cv, modev, whk, ch, modeh, cval, tmp, acc)
                _emit(acc, dst[a, i], conv, lims)


@_pjit
def _combine_fused(src, dst, B, p0, p1, hypot, cval, conv, bounds, acc_sample):
    """Two two-pass filters of the same (A, H, M*B) array, summed (or, with ``hypot``,
    sqrt of the sum of squares) row by row: Laplace, Gaussian Laplace and gradient
    magnitude of an image without full-size temporaries. ``p0``/``p1``: (wv, cv, modev,
    wh, ch, modeh) of each filter; a missing pass is the identity [1]."""
    A, H, L = src.shape
    M = L // B
    rows = A * H
    wv0, cv0, mv0, wh0, ch0, mh0 = p0
    wv1, cv1, mv1, wh1, ch1, mh1 = p1
    ntasks = (rows + _ROWS_PER_TASK - 1) // _ROWS_PER_TASK
    for task in numba.prange(ntasks):
        tmp0 = np.empty((M + wh0.shape[0] - 1) * B, dtype=acc_sample.dtype)
        tmp1 = np.empty((M + wh1.shape[0] - 1) * B, dtype=acc_sample.dtype)
        acc0 = np.empty(L, dtype=acc_sample.dtype)
        acc1 = np.empty(L, dtype=acc_sample.dtype)
        wv0k, wh0k = wv0.astype(acc_sample.dtype), wh0.astype(acc_sample.dtype)
        wv1k, wh1k = wv1.astype(acc_sample.dtype), wh1.astype(acc_sample.dtype)
        lims = bounds.astype(acc_sample.dtype)
        for r in range(task * _ROWS_PER_TASK, min(rows, (task + 1) * _ROWS_PER_TASK)):
            a, i = r // H, r % H
            _fused_row(src, a, i, B, wv0k, cv0, mv0, wh0k, ch0, mh0, cval, tmp0, acc0)
            _fused_row(src, a, i, B, wv1k, cv1, mv1, wh1k, ch1, mh1, cval, tmp1, acc1)
            if hypot:
                for f in range(L):
                    acc0[f] = np.sqrt(acc0[f] * acc0[f] + acc1[f] * acc1[f])
            else:
                for f in range(L):
                    acc0[f] += acc1[f]
            _emit(acc0, dst[a, i], conv, lims)


@_pjit
def _store_flat(src, dst, conv, bounds):
    n = src.shape[0]
    chunk = 1 << 14
    for task in numba.prange((n + chunk - 1) // chunk):
        lims = bounds.astype(src.dtype)
        stop = min(n, (task + 1) * chunk)
        _emit(src[task * chunk : stop], dst[task * chunk : stop], conv, lims)


@numba.njit(cache=True)
def _sum_rows(dst, src, a, i, size, c, mode, cval):
    """dst[:] = sum_k src[a, i + k - c, :] for k < size, in dst's integer type, rows outside
    [0, n) taken by ``mode`` (cval rows for 'constant')."""
    n = src.shape[1]
    L = dst.shape[0]
    first = i - c
    if first >= 0 and first + size <= n and size == 3:
        r0, r1, r2 = _row(src, a, first), _row(src, a, first + 1), _row(src, a, first + 2)
        for f in range(L):
            dst[f] = r0[f] + r1[f] + r2[f]
        return
    if first >= 0 and first + size <= n and size == 5:
        r0, r1, r2 = _row(src, a, first), _row(src, a, first + 1), _row(src, a, first + 2)
        r3, r4 = _row(src, a, first + 3), _row(src, a, first + 4)
        for f in range(L):
            dst[f] = r0[f] + r1[f] + r2[f] + r3[f] + r4[f]
        return
    for f in range(L):
        dst[f] = 0
    for k in range(size):
        j = _map_index(first + k, n, mode)
        if j >= 0:
            row = _row(src, a, j)
            for f in range(L):
                dst[f] += row[f]
        else:
            for f in range(L):
                dst[f] += cval


@numba.njit(cache=True)
def _sum_shifted(dst, buf, size, step):
    """dst[f] = sum_m buf[f + m * step] for m < size."""
    L = dst.shape[0]
    if size == 3:
        t0, t1, t2 = buf[0:L], buf[step : step + L], buf[2 * step : 2 * step + L]
        for f in range(L):
            dst[f] = t0[f] + t1[f] + t2[f]
        return
    if size == 5:
        t0, t1, t2 = buf[0:L], buf[step : step + L], buf[2 * step : 2 * step + L]
        t3, t4 = buf[3 * step : 3 * step + L], buf[4 * step : 4 * step + L]
        for f in range(L):
            dst[f] = t0[f] + t1[f] + t2[f] + t3[f] + t4[f]
        return
    t = buf[0:L]
    for f in range(L):
        dst[f] = t[f]
    for m in range(1, size):
        t = buf[m * step : m * step + L]
        for f in range(L):
            dst[f] += t[f]


@numba.njit(cache=True)
def _emit_scaled(sums, scale, out, conv, lims, clamp):
    """out = policy-store of sums * scale[0] (``scale``: 1 / window as float32 or float64;
    the sums are converted to its type first: integer * float32 would compute in float64).
    Without ``clamp`` (a mean of values the output type holds) the saturation is skipped."""
    k = scale[0]
    lo, hi = lims[0], lims[1]
    if not clamp:
        if conv == 1:
            for f in range(out.shape[0]):
                out[f] = np.int32(np.rint(scale.dtype.type(sums[f]) * k))
        else:
            for f in range(out.shape[0]):
                out[f] = np.int64(np.rint(scale.dtype.type(sums[f]) * k))
    elif conv == 1:
        for f in range(out.shape[0]):
            v = np.rint(scale.dtype.type(sums[f]) * k)
            v = lo if v < lo else v
            v = hi if v > hi else v
            out[f] = np.int32(v)
    else:
        for f in range(out.shape[0]):
            v = np.rint(scale.dtype.type(sums[f]) * k)
            v = lo if v < lo else v
            v = hi if v > hi else v
            out[f] = np.int64(v)


@_pjit
def _box_int(src, dst, B, sv, cv, modev, sh, ch, modeh, cval, scale, conv, bounds, clamp,
             acc_sample):
    """Box mean of integer (A, H, M*B) arrays over sv rows x sh elements B apart, with exact
    integer sums in ``acc_sample``'s type and one rounding (sum * scale) per output."""
    A, H, L = src.shape
    M = L // B
    rows = A * H
    ntasks = (rows + _ROWS_PER_TASK - 1) // _ROWS_PER_TASK
    for task in numba.prange(ntasks):
        tmp = np.empty((M + sh - 1) * B, dtype=acc_sample.dtype)
        acc = np.empty(L, dtype=acc_sample.dtype)
        lims = bounds.astype(scale.dtype)
        fill = acc_sample.dtype.type(cval)
        for r in range(task * _ROWS_PER_TASK, min(rows, (task + 1) * _ROWS_PER_TASK)):
            a, i = r // H, r % H
            col = tmp[ch * B : ch * B + L]
            _sum_rows(col, src, a, i, sv, cv, modev, fill)
            for t in range(sh - 1):  # edges along the second axis, by its mode
                pos = t if t < ch else t + M
                j = _map_index(pos - ch, M, modeh)
                for b in range(B):
                    tmp[pos * B + b] = fill * sv if j < 0 else col[j * B + b]
            _sum_shifted(acc, tmp, sh, B)
            _emit_scaled(acc, scale, dst[a, i], conv, lims, clamp)


_SMALL_INTS = {np.dtype(t) for t in ("uint8", "int8", "uint16", "int16")}


def _box_plan(input: np.ndarray, steps, cval, out: np.ndarray):
    """(accumulator dtype, scale dtype) when ``steps`` is one box mean (uniform weights) of
    8/16-bit integer data into an integer output, which exact integer sums compute with a
    single rounding; else None. The scale's rounding error stays far below the distance of
    any non-tie quotient sum / N from a half (>= 1 / 2N), so it rounds exactly."""
    if len(steps) != 1 or input.dtype not in _SMALL_INTS or out.dtype.kind not in "iu":
        return None
    for p in steps[0]:
        if not (np.all(p.weights == p.weights[0]) and p.weights[0] == 1.0 / len(p.weights)):
            return None
    if any(p.mode == "constant" for p in steps[0]) and not _holds(input.dtype, cval):
        return None
    window = int(np.prod([len(p.weights) for p in steps[0]]))
    info = np.iinfo(input.dtype)
    reach = max(abs(int(info.min)), int(info.max)) * window
    if input.dtype.kind == "u" and reach <= np.iinfo(np.uint16).max:
        acc = np.uint16
    elif reach <= np.iinfo(np.int16).max:
        acc = np.int16
    elif reach <= np.iinfo(np.int32).max:
        acc = np.int32
    else:
        acc = np.int64
    scale = np.float32 if info.bits == 8 and window <= 4096 else np.float64
    return np.dtype(acc), np.dtype(scale)


def _run_box(src, dst, step: tuple[Pass, ...], cval, acc_dtype, scale_dtype):
    conv, bounds = _conversion(dst.dtype)
    if len(step) == 1:  # one axis: pair it with a window of 1 on a neighbouring axis
        p = step[0]
        shape = (*src.shape[: p.axis + 1], 1, *src.shape[p.axis + 1 :])
        one = Pass(p.axis + 1, np.ones(1), "reflect", 0)
        src, dst, step = src.reshape(shape), dst.reshape(shape), (p, one)
    first, second = step
    shape = src.shape
    a = int(np.prod(shape[: first.axis], dtype=np.int64))
    b = int(np.prod(shape[second.axis + 1 :], dtype=np.int64))
    three = (a, shape[first.axis], shape[second.axis] * b)
    window = len(first.weights) * len(second.weights)
    # cval only enters sums in 'constant' mode (where _box_plan checked that it fits)
    fill = int(cval) if "constant" in (first.mode, second.mode) else 0
    clamp = not _holds_range(dst.dtype, src.dtype, fill)
    _box_int(src.reshape(three), dst.reshape(three), b, len(first.weights), _centre(first),
             _MODE_CODE[first.mode], len(second.weights), _centre(second),
             _MODE_CODE[second.mode], fill, np.array([1.0 / window], scale_dtype), conv,
             bounds, clamp, np.empty(0, acc_dtype))  # fmt: skip


def _holds_range(out: np.dtype, input: np.dtype, cval: float) -> bool:
    """Whether integer type ``out`` holds every value of integer type ``input`` and cval."""
    o, i = np.iinfo(out), np.iinfo(input)
    return o.min <= min(i.min, cval) and max(i.max, cval) <= o.max


def _conversion(dtype: np.dtype) -> tuple[int, np.ndarray]:
    """(conv code for _emit, [lo, hi]) for storing into ``dtype``."""
    if dtype.kind not in "iu":
        return 0, np.zeros(2)
    info = np.iinfo(dtype)
    if info.bits < 32 or (info.bits == 32 and dtype.kind == "i"):
        conv = 1
    elif dtype == np.uint64:
        conv = 3
    else:
        conv = 2
    # float bounds of 64-bit types round up past the range: step below them
    hi = float(info.max) if info.bits < 64 else float(np.nextafter(float(info.max), 0))
    return conv, np.array([float(info.min), hi])


def _block(shape: tuple[int, ...], axis: int) -> tuple[int, int, int]:
    a = int(np.prod(shape[:axis], dtype=np.int64))
    b = int(np.prod(shape[axis + 1 :], dtype=np.int64))
    return a, shape[axis], b


def _centre(p: Pass) -> int:
    return len(p.weights) // 2 + p.origin


def _run_one(src, dst, p: Pass, cval, acc_sample):
    conv, bounds = _conversion(dst.dtype)
    mode = _MODE_CODE[p.mode]
    a, n, b = _block(src.shape, p.axis)
    if b == 1:
        _pass_last(src.reshape(a, n), dst.reshape(a, n), p.weights, _centre(p), mode, cval,
                   conv, bounds, acc_sample)  # fmt: skip
    else:
        _pass_rows(src.reshape(a, n, b), dst.reshape(a, n, b), p.weights, _centre(p), mode, cval,
                   conv, bounds, acc_sample)  # fmt: skip


def _run_fused(src, dst, first: Pass, second: Pass, cval, acc_sample):
    conv, bounds = _conversion(dst.dtype)
    shape = src.shape
    a = int(np.prod(shape[: first.axis], dtype=np.int64))
    b = int(np.prod(shape[second.axis + 1 :], dtype=np.int64))
    three = (a, shape[first.axis], shape[second.axis] * b)
    _pass_fused(src.reshape(three), dst.reshape(three), b, first.weights, _centre(first),
                _MODE_CODE[first.mode], second.weights, _centre(second), _MODE_CODE[second.mode],
                cval, conv, bounds, acc_sample)  # fmt: skip


def _schedule(passes: tuple[Pass, ...], cval: float) -> list[tuple[Pass, ...]]:
    """Group passes into kernel launches: adjacent-axis pairs fuse, the rest run alone.

    Passes along different axes commute (same result up to rounding) except when a
    constant mode pads with a non-zero cval; then their order is kept as given."""
    reorder = cval == 0 or all(p.mode != "constant" for p in passes)
    todo = sorted(passes, key=lambda p: p.axis) if reorder else list(passes)
    steps: list[tuple[Pass, ...]] = []
    i = 0
    while i < len(todo):
        p = todo[i]
        if i + 1 < len(todo) and todo[i + 1].axis == p.axis + 1:
            steps.append((p, todo[i + 1]))
            i += 2
        else:
            steps.append((p,))
            i += 1
    return steps


def _kernel_input(input: np.ndarray, *, strided_rows: bool = False) -> np.ndarray:
    """C-contiguous ``input`` in a dtype the kernels take (float16 widened to float32); with
    ``strided_rows``, ``input`` itself when only its first axis is strided (the separable
    kernels read such rows in place, see `_row`)."""
    if input.dtype == np.float16:
        return input.astype(np.float32, order="C")
    if strided_rows and input.ndim >= 2 and input.size and input[0].flags.c_contiguous:
        return input
    return np.ascontiguousarray(input)


def _kernel_output(out: np.ndarray) -> np.ndarray:
    """The array kernels write for ``out``: ``out`` itself when C-contiguous and of a dtype
    the kernels take, else a C-contiguous temporary (float32 for float16) the caller copies
    into ``out`` at the end."""
    if out.flags.c_contiguous and out.dtype != np.float16:
        return out
    return np.empty(out.shape, np.float32 if out.dtype == np.float16 else out.dtype)


def _apply(input: np.ndarray, passes: tuple[Pass, ...], cval: float, out: np.ndarray) -> None:
    """Run ``passes`` on ``input`` (any layout, its own dtype) into ``out`` (any layout)."""
    acc_dtype = compute_dtype(input.dtype, out.dtype)
    acc_sample = np.empty(0, dtype=acc_dtype)
    src = _kernel_input(input, strided_rows=True)
    if np.shares_memory(src, out):  # in-place call: output=input
        src = src.copy()
    final = _kernel_output(out)
    steps = _schedule(passes, cval)
    box = _box_plan(src, steps, cval, final)
    if box is not None:
        _run_box(src, final, steps[0], cval, *box)
        steps = []
    for index, step in enumerate(steps):
        last = index == len(steps) - 1
        dst = final if last else np.empty(src.shape, dtype=acc_dtype)
        if len(step) == 2:
            _run_fused(src, dst, step[0], step[1], cval, acc_sample)
        else:
            _run_one(src, dst, step[0], cval, acc_sample)
        src = dst
    if final is not out:
        out[...] = final


def correlate_passes(input, passes, cval, out):
    if not passes:
        return store(input, out)
    _apply(input, passes, cval, out)
    return out


def _fusable(pass_lists, cval) -> int | None:
    """The first of two adjacent axes that every pass of two pass lists lies on (at most one
    pass per axis, in axis order unless they commute — see `_schedule`), or None: then
    `combine_passes` runs them one by one."""
    if len(pass_lists) != 2:
        return None
    axes = sorted({p.axis for passes in pass_lists for p in passes})
    if len(axes) != 2 or axes[1] != axes[0] + 1:
        return None
    commute = cval == 0 or all(p.mode != "constant" for ps in pass_lists for p in ps)
    for passes in pass_lists:
        order = [p.axis for p in passes]
        if len(set(order)) != len(order) or (order != sorted(order) and not commute):
            return None
    return axes[0]


def _fused_params(passes, v: int) -> tuple:
    """(wv, cv, modev, wh, ch, modeh) of one pass list on axes v, v + 1."""
    identity = (np.ones(1), 0, REFLECT)
    by_axis = {p.axis: (p.weights, _centre(p), _MODE_CODE[p.mode]) for p in passes}
    return (*by_axis.get(v, identity), *by_axis.get(v + 1, identity))


def combine_passes(input, pass_lists, cval, out, combine):
    acc_dtype = compute_dtype(input.dtype, out.dtype)
    v = _fusable(pass_lists, cval)
    if v is not None:  # the image case: one kernel, one read of the input, one write
        src = _kernel_input(input, strided_rows=True)
        if np.shares_memory(src, out):  # in-place call: rows around i are read after i is written
            src = src.copy()
        final = _kernel_output(out)
        shape = src.shape
        a = int(np.prod(shape[:v], dtype=np.int64))
        b = int(np.prod(shape[v + 2 :], dtype=np.int64))
        three = (a, shape[v], shape[v + 1] * b)
        conv, bounds = _conversion(final.dtype)
        _combine_fused(src.reshape(three), final.reshape(three), b,
                       _fused_params(pass_lists[0], v), _fused_params(pass_lists[1], v),
                       combine == "hypot", cval, conv, bounds, np.empty(0, acc_dtype))  # fmt: skip
        if final is not out:
            out[...] = final
        return out
    total = np.zeros(input.shape, dtype=acc_dtype)
    part = np.empty(input.shape, dtype=acc_dtype)
    for passes in pass_lists:
        if passes:
            _apply(input, passes, cval, part)
        else:
            part[...] = input
        if combine == "hypot":
            np.multiply(part, part, out=part)
        total += part
    if combine == "hypot":
        np.sqrt(total, out=total)
    return _store_into(total, out)


def _store_into(values: np.ndarray, out: np.ndarray) -> np.ndarray:
    if out.dtype.kind == "f":  # a cast: NumPy's, parallel kernels add nothing
        out[...] = values
        return out
    conv, bounds = _conversion(out.dtype)
    target = _kernel_output(out)
    _store_flat(values.reshape(-1), target.reshape(-1), conv, bounds)
    if target is not out:
        out[...] = target
    return out


@_pjit
def _correlate_padded(padded, offsets, weights, rows_base, n, acc_sample, dst, conv, bounds):
    """out row r, element j = sum_k weights[k] * padded[rows_base[r] + offsets[k] + j]."""
    rows = rows_base.shape[0]
    ntasks = (rows + _ROWS_PER_TASK - 1) // _ROWS_PER_TASK
    for task in numba.prange(ntasks):
        acc = np.empty(n, dtype=acc_sample.dtype)
        wk = weights.astype(acc_sample.dtype)
        lims = bounds.astype(acc_sample.dtype)
        for r in range(task * _ROWS_PER_TASK, min(rows, (task + 1) * _ROWS_PER_TASK)):
            base = rows_base[r]
            taps = offsets.shape[0]
            k = 0  # taps four at a time, each a view from index 0 of the padded input
            while k + 4 <= taps:
                o0, o1, o2, o3 = (base + offsets[k], base + offsets[k + 1],
                                  base + offsets[k + 2], base + offsets[k + 3])  # fmt: skip
                _taps4(acc, k == 0, wk[k], padded[o0 : o0 + n], wk[k + 1], padded[o1 : o1 + n],
                       wk[k + 2], padded[o2 : o2 + n], wk[k + 3], padded[o3 : o3 + n])  # fmt: skip
                k += 4
            while k < taps:
                o0 = base + offsets[k]
                _tap1(acc, k == 0, wk[k], padded[o0 : o0 + n])
                k += 1
            _emit(acc, dst[r], conv, lims)


def _holds(dtype: np.dtype, value: float) -> bool:
    """Whether ``dtype`` represents ``value`` exactly."""
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return float(value).is_integer() and info.min <= value <= info.max
    with np.errstate(over="ignore"):
        return bool(dtype.type(value) == value)


def correlate_nd(input, weights, mode, cval, origins, out):
    """General N-D correlation: pad once by ``mode`` (numpy.pad), then sum the non-zero taps
    as shifted contiguous rows of the padded array."""
    acc_dtype = compute_dtype(input.dtype, out.dtype)
    if input.ndim == 0:
        return store(input * weights.reshape(()), out)
    before = [s // 2 + o for s, o in zip(weights.shape, origins, strict=True)]
    after = [s - 1 - b for s, b in zip(weights.shape, before, strict=True)]
    pad_kwargs = {"constant_values": cval} if mode == "constant" else {}
    source = _kernel_input(input)  # padded in its own dtype (a uint8 image stays 1 byte/px)
    if mode == "constant" and not _holds(source.dtype, cval):  # unless cval doesn't fit it
        source = source.astype(acc_dtype)
    padded = np.pad(source, list(zip(before, after, strict=True)), mode=_NP_PAD[mode],
                    **pad_kwargs)  # fmt: skip
    strides = np.array(padded.strides, dtype=np.int64) // padded.itemsize
    taps = np.argwhere(weights != 0)
    offsets = (taps * strides).sum(axis=1).astype(np.int64)
    tap_weights = weights[tuple(taps.T)].astype(np.float64)
    if len(offsets) == 0:  # all-zero weights
        offsets, tap_weights = np.zeros(1, np.int64), np.zeros(1)
    n = input.shape[-1]
    if input.ndim > 1:
        outer = np.indices(input.shape[:-1]).reshape(input.ndim - 1, -1).T
        rows_base = (outer * strides[:-1]).sum(axis=1).astype(np.int64)
    else:
        rows_base = np.zeros(1, np.int64)
    final = _kernel_output(out)
    conv, bounds = _conversion(final.dtype)
    _correlate_padded(padded.reshape(-1), offsets, tap_weights, rows_base, n,
                      np.empty(0, acc_dtype), final.reshape(-1, n), conv, bounds)  # fmt: skip
    if final is not out:
        out[...] = final
    return out


def __getattr__(name: str):
    # Rank filters live in their own module; loaded with the backend on first use.
    if name in {"minmax_passes", "rank_nd"}:
        from npaccel.filters import _cpu_rank

        return getattr(_cpu_rank, name)
    raise AttributeError(name)
