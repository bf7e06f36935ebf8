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
"""

from __future__ import annotations

import numba
import numpy as np

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


@numba.njit(cache=True, inline="always")
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


@numba.njit(cache=True, inline="always")
def _store_value(v, is_int, lo, hi):
    """The policy for one value: integers rounded half to even and saturated, NaN to 0."""
    if is_int:
        v = np.rint(v)
        if v != v:
            return 0.0
        return min(max(v, lo), hi)
    return v


@_jit
def _pad_row(src_row, buf, c, mode, cval):
    """buf[t] = src_row[t - c] extended by ``mode``, for t in [0, len(buf))."""
    n = src_row.shape[0]
    for t in range(buf.shape[0]):
        j = _map_index(t - c, n, mode)
        buf[t] = cval if j < 0 else src_row[j]


@_pjit
def _pass_last(src, dst, w, c, mode, cval, is_int, lo, hi, acc_dtype_sample):
    """Correlate along the last axis of 2-D (rows, n) arrays."""
    rows, n = src.shape
    size = w.shape[0]
    ntasks = (rows + _ROWS_PER_TASK - 1) // _ROWS_PER_TASK
    for task in numba.prange(ntasks):
        buf = np.empty(n + size - 1, dtype=acc_dtype_sample.dtype)
        acc = np.empty(n, dtype=acc_dtype_sample.dtype)
        wk = w.astype(acc_dtype_sample.dtype)
        for r in range(task * _ROWS_PER_TASK, min(rows, (task + 1) * _ROWS_PER_TASK)):
            _pad_row(src[r], buf, c, mode, cval)
            for j in range(n):
                acc[j] = wk[0] * buf[j]
            for k in range(1, size):
                wkk = wk[k]
                seg = buf[k : k + n]  # a view: see _pass_fused
                for j in range(n):
                    acc[j] += wkk * seg[j]
            out = dst[r]
            for j in range(n):
                out[j] = _store_value(acc[j], is_int, lo, hi)


@_pjit
def _pass_rows(src, dst, w, c, mode, cval, is_int, lo, hi, acc_dtype_sample):
    """Correlate along the middle axis of 3-D (A, n, B) arrays by combining contiguous rows."""
    A, n, B = src.shape
    size = w.shape[0]
    rows = A * n
    ntasks = (rows + _ROWS_PER_TASK - 1) // _ROWS_PER_TASK
    for task in numba.prange(ntasks):
        acc = np.empty(B, dtype=acc_dtype_sample.dtype)
        wk = w.astype(acc_dtype_sample.dtype)
        for r in range(task * _ROWS_PER_TASK, min(rows, (task + 1) * _ROWS_PER_TASK)):
            a, i = r // n, r % n
            for b in range(B):
                acc[b] = 0.0
            for k in range(size):
                j = _map_index(i + k - c, n, mode)
                wkk = wk[k]
                if j < 0:
                    add = wkk * cval
                    for b in range(B):
                        acc[b] += add
                else:
                    row = src[a, j]
                    for b in range(B):
                        acc[b] += wkk * row[b]
            out = dst[a, i]
            for b in range(B):
                out[b] = _store_value(acc[b], is_int, lo, hi)


@_pjit
def _pass_fused(src, dst, wv, cv, modev, wh, ch, modeh, cval, is_int, lo, hi, acc_dtype_sample):
    """Two passes in one: along axis 1 (rows of (M, B) blocks), then along axis 2 of an
    (A, H, M, B) array, through a per-thread padded row buffer."""
    A, H, M, B = src.shape
    sv, sh = wv.shape[0], wh.shape[0]
    rows = A * H
    ntasks = (rows + _ROWS_PER_TASK - 1) // _ROWS_PER_TASK
    for task in numba.prange(ntasks):
        # Index arithmetic with offsets of unknown sign defeats vectorisation (Numba must
        # allow negative wrap-around), so every tap loop runs over a view from index 0.
        tmp = np.empty((M + sh - 1) * B, dtype=acc_dtype_sample.dtype)
        col_acc = np.empty(M * B, dtype=acc_dtype_sample.dtype)
        acc = np.empty(M * B, dtype=acc_dtype_sample.dtype)
        wvk = wv.astype(acc_dtype_sample.dtype)
        whk = wh.astype(acc_dtype_sample.dtype)
        for r in range(task * _ROWS_PER_TASK, min(rows, (task + 1) * _ROWS_PER_TASK)):
            a, i = r // H, r % H
            # first pass: one row of M*B elements, then into the middle of tmp
            for f in range(M * B):
                col_acc[f] = 0.0
            for k in range(sv):
                j = _map_index(i + k - cv, H, modev)
                wk = wvk[k]
                if j < 0:
                    add = wk * cval
                    for f in range(M * B):
                        col_acc[f] += add
                else:
                    row = src[a, j].ravel()
                    for f in range(M * B):
                        col_acc[f] += wk * row[f]
            tmp[ch * B : (ch + M) * B] = col_acc
            # edges of tmp along the second axis, by its mode
            for t in range(sh - 1):
                pos = t if t < ch else t + M  # padded column position in [0, M + sh - 1)
                col = _map_index(pos - ch, M, modeh)
                for b in range(B):
                    tmp[pos * B + b] = cval if col < 0 else col_acc[col * B + b]
            # second pass over the cached row
            for f in range(M * B):
                acc[f] = whk[0] * tmp[f]
            for m in range(1, sh):
                wm = whk[m]
                seg = tmp[m * B : m * B + M * B]
                for f in range(M * B):
                    acc[f] += wm * seg[f]
            out = dst[a, i].ravel()
            for f in range(M * B):
                out[f] = _store_value(acc[f], is_int, lo, hi)


@_pjit
def _store_flat(src, dst, is_int, lo, hi):
    for i in numba.prange(src.shape[0]):
        dst[i] = _store_value(src[i], is_int, lo, hi)


def _bounds(dtype: np.dtype) -> tuple[bool, float, float]:
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        hi = float(info.max) if info.bits < 64 else float(np.nextafter(float(info.max), 0))
        return True, float(info.min), hi
    return False, 0.0, 0.0


def _block(shape: tuple[int, ...], axis: int) -> tuple[int, int, int]:
    a = int(np.prod(shape[:axis], dtype=np.int64))
    b = int(np.prod(shape[axis + 1 :], dtype=np.int64))
    return a, shape[axis], b


def _centre(p: Pass) -> int:
    return len(p.weights) // 2 + p.origin


def _run_one(src, dst, p: Pass, cval, acc_sample):
    is_int, lo, hi = _bounds(dst.dtype)
    mode = _MODE_CODE[p.mode]
    a, n, b = _block(src.shape, p.axis)
    if b == 1:
        _pass_last(src.reshape(a, n), dst.reshape(a, n), p.weights, _centre(p), mode, cval,
                   is_int, lo, hi, acc_sample)  # fmt: skip
    else:
        _pass_rows(src.reshape(a, n, b), dst.reshape(a, n, b), p.weights, _centre(p), mode, cval,
                   is_int, lo, hi, acc_sample)  # fmt: skip


def _run_fused(src, dst, first: Pass, second: Pass, cval, acc_sample):
    is_int, lo, hi = _bounds(dst.dtype)
    shape = src.shape
    a = int(np.prod(shape[: first.axis], dtype=np.int64))
    b = int(np.prod(shape[second.axis + 1 :], dtype=np.int64))
    four = (a, shape[first.axis], shape[second.axis], b)
    _pass_fused(src.reshape(four), dst.reshape(four), first.weights, _centre(first),
                _MODE_CODE[first.mode], second.weights, _centre(second), _MODE_CODE[second.mode],
                cval, is_int, lo, hi, acc_sample)  # fmt: skip


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


def _apply(input: np.ndarray, passes: tuple[Pass, ...], cval: float, out: np.ndarray) -> None:
    """Run ``passes`` on ``input`` (any layout, its own dtype) into ``out`` (any layout)."""
    acc_dtype = compute_dtype(input.dtype, out.dtype)
    acc_sample = np.empty(0, dtype=acc_dtype)
    src = np.ascontiguousarray(input)
    if np.shares_memory(src, out):  # in-place call: output=input
        src = src.copy()
    final = out if out.flags.c_contiguous else np.empty(out.shape, out.dtype)
    steps = _schedule(passes, cval)
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


def combine_passes(input, pass_lists, cval, out, combine):
    acc_dtype = compute_dtype(input.dtype, out.dtype)
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
    if out.dtype == values.dtype:
        out[...] = values
        return out
    is_int, lo, hi = _bounds(out.dtype)
    target = out if out.flags.c_contiguous else np.empty(out.shape, out.dtype)
    _store_flat(values.reshape(-1), target.reshape(-1), is_int, lo, hi)
    if target is not out:
        out[...] = target
    return out


@_pjit
def _correlate_padded(padded, offsets, weights, rows_base, n, acc_dtype_sample, dst, is_int, lo,
                      hi):  # fmt: skip
    """out row r, element j = sum_k weights[k] * padded[rows_base[r] + offsets[k] + j]."""
    rows = rows_base.shape[0]
    ntasks = (rows + _ROWS_PER_TASK - 1) // _ROWS_PER_TASK
    for task in numba.prange(ntasks):
        acc = np.empty(n, dtype=acc_dtype_sample.dtype)
        wk = weights.astype(acc_dtype_sample.dtype)
        for r in range(task * _ROWS_PER_TASK, min(rows, (task + 1) * _ROWS_PER_TASK)):
            base = rows_base[r]
            for j in range(n):
                acc[j] = 0.0
            for k in range(offsets.shape[0]):
                start = base + offsets[k]
                seg = padded[start : start + n]  # a view: see _pass_fused
                wkk = wk[k]
                for j in range(n):
                    acc[j] += wkk * seg[j]
            out = dst[r]
            for j in range(n):
                out[j] = _store_value(acc[j], is_int, lo, hi)


def correlate_nd(input, weights, mode, cval, origins, out):
    """General N-D correlation: pad once by ``mode`` (numpy.pad), then sum the non-zero taps
    as shifted contiguous rows of the padded array."""
    acc_dtype = compute_dtype(input.dtype, out.dtype)
    if input.ndim == 0:
        return store(input * weights.reshape(()), out)
    before = [s // 2 + o for s, o in zip(weights.shape, origins, strict=True)]
    after = [s - 1 - b for s, b in zip(weights.shape, before, strict=True)]
    pad_kwargs = {"constant_values": cval} if mode == "constant" else {}
    padded = np.pad(input.astype(acc_dtype, copy=False), list(zip(before, after, strict=True)),
                    mode=_NP_PAD[mode], **pad_kwargs)  # fmt: skip
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
    final = out if out.flags.c_contiguous else np.empty(out.shape, out.dtype)
    is_int, lo, hi = _bounds(final.dtype)
    _correlate_padded(padded.reshape(-1), offsets, tap_weights, rows_base, n,
                      np.empty(0, acc_dtype), final.reshape(-1, n), is_int, lo, hi)  # fmt: skip
    if final is not out:
        out[...] = final
    return out


def __getattr__(name: str):
    # Rank filters live in their own module; loaded with the backend on first use.
    if name in {"minmax_passes", "rank_nd"}:
        from npaccel.filters import _cpu_rank

        return getattr(_cpu_rank, name)
    raise AttributeError(name)
