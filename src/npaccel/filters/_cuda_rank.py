"""Rank filters on the GPU (numba-cuda): minimum and maximum passes, medians of 3x3 and 5x5
boxes, and the rank of any footprint.

The two entry points have the contract of :mod:`npaccel.filters._cpu_rank` (``minmax_passes``
and ``rank_nd``) and its semantics exactly: the result of scipy.ndimage computed exactly,
stored into ``out`` by the policy of :func:`npaccel.filters._policy.store`.

Selection runs on order-preserving unsigned keys
------------------------------------------------
As on the cpu backend, the data is read through its unsigned view (uint8/16/32/64) and
mapped, as it is loaded, to a key whose unsigned order is the value order: unsigned integers
as they are, signed ones with the sign bit flipped, floats by the radix-sort map, a maximum
as a minimum of complemented keys. Every comparison is then one integer min or max, exact in
the input's own width (int64 and uint64 included), and NaN (of either sign) counts as larger
than every number, as in ``np.sort``: ``maximum_filter`` gives NaN wherever a NaN is in the
window, ``minimum_filter`` only where the whole window is NaN, and the median where its rank
falls among the NaNs — the rule the cpu backend follows (scipy.ndimage's own result with NaN
depends on where the NaN sits and cannot be matched). ``-0.0`` counts as smaller than
``+0.0``. float16 is read as float32 (exactly) and selected there.

Numbers
-------
``cval`` is converted to the input dtype by the policy (`_cpu_rank._cval_in`); where that
would change the stored result the whole call is computed in float64, as the reference.
With ``out`` of the compute dtype the kernels write into it directly; otherwise they write a
scratch array that one element-wise kernel stores by the policy (through float64, as the
reference: integers rounded half to even and saturated, NaN to 0). A float16 ``out`` is
written as float32 and cast once: the float32 is rounded to odd (`_to_float32_odd`) so the
final cast rounds the float64 value once, not twice.

Algorithms
----------
* Minimum/maximum passes: one kernel per pass over the ``(a, n, b)`` view of its axis, x of
  the grid along the contiguous dimension (``b`` when the axis is not the last, ``n`` when
  it is), so reads and writes are coalesced. Windows smaller than `VAN_HERK_MIN` take the
  minimum of their ``size`` keys per output (they come from L1); larger ones use van
  Herk/Gil-Werman per segment of ``size`` outputs: one thread writes the running minimum of
  the next segment's prefix into the output, then sweeps its own segment backwards and
  combines — two loads and three min per element whatever the size. Each pass is one read
  and one write of the array.
* Medians of 3x3 and 5x5 boxes on two adjacent axes, the array seen as ``(a, H, W*b)``
  (neighbours along W are ``b`` apart, ``b <= MEDIAN_STEP_MAX``): a block stages its tile of
  outputs plus the halo in shared memory, as keys (the edge modes and cval are resolved
  once, at load). 3x3: each thread computes `MEDIAN3_ROWS` vertically adjacent outputs, two
  at a time; the two rows those share are sorted once per column (`_two_columns`) and the
  median is ``med3(max of lows, med3 of middles, min of highs)`` of the sorted columns, 27
  min/max per output, all in registers, each input row read from shared memory once per
  thread. 5x5: every column of 5 in the tile is sorted once (9 compare-exchanges) into
  shared memory, shared by the five outputs that use it, and each output runs the cpu
  backend's pruned 124 min/max network over its 5 sorted columns.
* Any other footprint (holes, origins, N-D, every mode): one thread per output gathers the
  footprint's keys (flat offsets inside the array, each axis mapped by the mode near its
  edges). Rank 0 and n-1 keep a running min/max; up to `LOCAL_MAX` elements are selected
  in a per-thread local array (Wirth's quickselect); larger footprints, and 8-bit data
  from `HISTOGRAM_MIN` elements, use an exact radix select instead — 256-bin histograms of
  the key's bytes, most significant first (one pass for 8-bit data, ``itemsize`` passes
  for wider keys), so memory stays bounded (1 KiB per thread) for any footprint.

Kernels come from factories memoised on their static parameters, which enter as closure
constants: key width and kind, mode, inner step and tile shape; for the gather kernel the
method, the local array's length and the number of axes (offsets and rank are arguments, so
footprints of one size share a kernel). Block, tile and grid shapes are the module-level
parameters below, which tests shrink.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import cuda

from npaccel.filters._cpu_rank import _cval_in, _scalar_key
from npaccel.filters._cuda_common import (
    MODE_CODE,
    DeviceCall,
    device_call,
    device_constant,
    grid_1d,
    launch,
    map_index,
    memoised,
    store_bounds,
    to_integer,
)
from npaccel.filters._passes import MinMaxPass

__all__ = ["minmax_passes", "rank_nd"]

PASS_BLOCK = 256  # threads per block of the min/max pass kernels
VAN_HERK_MIN = 17  # windows of this size or more use van Herk/Gil-Werman (O(1) per element)
MEDIAN_THREADS = (32, 8)  # threads (x, y) per block of the median kernels
MEDIAN3_ROWS = 8  # 3x3: vertically adjacent outputs per thread (even: computed in pairs)
MEDIAN5_ROWS = 2  # 5x5: tile rows per thread row
MEDIAN_STEP_MAX = 8  # largest inner step b the median tiles take (wider: the gather kernel)
SELECT_BLOCK = 128  # threads per block of the gather kernel
LOCAL_MAX = 1024  # footprints up to this many elements: selection in a local array
HISTOGRAM_MIN = 256  # 8-bit data from this many elements: one 256-bin histogram
GRID_LIMIT = 65535  # blocks per grid dimension; kernels stride over the rest (tests shrink it)
SHARED_BYTES = 48 * 1024  # static shared memory one block may use

_UNSIGNED, _SIGNED, _FLOAT = 0, 1, 2
_KIND = {"u": _UNSIGNED, "i": _SIGNED, "f": _FLOAT}
_EXTREME, _SELECT, _RADIX = 0, 1, 2


# ----------------------------------------------------------------------------------------------
# Keys, small networks, the store
# ----------------------------------------------------------------------------------------------


@memoised
def _codec(width: int, kind: int, flip: bool):
    """``(key type, to_key, to_raw)`` for raw values of ``width`` bytes of ``kind``: device
    functions from the unsigned view of a value to its key and back; ``flip`` complements
    the keys (a maximum is then a minimum)."""
    kt = np.dtype(f"u{width}").type
    bits = 8 * width
    sign = kt(1 << (bits - 1))
    allb = kt((1 << bits) - 1)
    mag = kt((1 << (bits - 1)) - 1)
    inf = kt(np.array(np.inf, f"f{width}").view(kt)[()]) if kind == _FLOAT else allb
    fl = allb if flip else kt(0)

    @cuda.jit(device=True, inline=True)
    def to_key(u):
        if kind == _FLOAT:
            if (u & mag) > inf:  # NaN of either sign: above +inf
                k = u | sign
            elif u < sign:
                k = u ^ sign
            else:
                k = u ^ allb
        elif kind == _SIGNED:
            k = u ^ sign
        else:
            k = u
        return kt(k ^ fl)

    @cuda.jit(device=True, inline=True)
    def to_raw(k):
        k = kt(k ^ fl)
        if kind == _FLOAT:
            r = (k ^ sign) if k >= sign else (k ^ allb)
        elif kind == _SIGNED:
            r = k ^ sign
        else:
            r = k
        return kt(r)

    return kt, to_key, to_raw


# (min and max written as selects: numba's CUDA target does not type the builtins)
@cuda.jit(device=True, inline=True)
def _mn(a, b):
    return a if a < b else b


@cuda.jit(device=True, inline=True)
def _mx(a, b):
    return b if a < b else a


@cuda.jit(device=True, inline=True)
def _ce(a, b):
    return _mn(a, b), _mx(a, b)


@cuda.jit(device=True, inline=True)
def _med3(a, b, c):
    return _mx(_mn(a, b), _mn(_mx(a, b), c))


@cuda.jit(device=True, inline=True)
def _two_columns(a, b, c, d):
    """Sorted columns (a, b, c) and (b, c, d), sharing the sort of (b, c)."""
    p = _mn(b, c)
    q = _mx(b, c)
    return (_mn(p, a), _mx(p, _mn(q, a)), _mx(q, a), _mn(p, d), _mx(p, _mn(q, d)), _mx(q, d))


@cuda.jit(device=True, inline=True)
def _sort5(v0, v1, v2, v3, v4):
    a, b = _ce(v0, v1)
    d, e = _ce(v3, v4)
    c, e = _ce(v2, e)
    c, d = _ce(c, d)
    a, d = _ce(a, d)
    a, c = _ce(a, c)
    b, e = _ce(b, e)
    b, d = _ce(b, d)
    b, c = _ce(b, c)
    return a, b, c, d, e


@cuda.jit(device=True)
def _quickselect(v, n, k):
    """The k-th smallest of ``v[:n]`` (Wirth's selection; reorders ``v``)."""
    lo = 0
    hi = n - 1
    while lo < hi:
        pivot = v[k]
        i = lo
        j = hi
        while True:
            while v[i] < pivot:
                i += 1
            while pivot < v[j]:
                j -= 1
            if i <= j:
                t = v[i]
                v[i] = v[j]
                v[j] = t
                i += 1
                j -= 1
            if i > j:
                break
        if j < k:
            lo = i
        if k < i:
            hi = j
    return v[k]


@cuda.jit(device=True)
def _to_float32_odd(x):
    """``x`` (float64) as float32 rounded to odd: exact values as they are, others to the
    neighbour whose last bit is 1, so that rounding it to float16 rounds ``x`` once."""
    f = np.float32(x)
    if np.float64(f) == x or x != x:
        return f
    cell = cuda.local.array(1, np.float32)
    cell[0] = f
    bits = cell.view(np.uint32)
    if abs(np.float64(f)) > abs(x):  # rounded away from zero: truncate
        bits[0] = bits[0] - np.uint32(1)
    bits[0] = bits[0] | np.uint32(1)
    return cell[0]


@memoised
def _store_kernel(integer: bool, lo: float, hi: float, odd: bool):
    """Element-wise store of selected values into another dtype by the policy."""

    @cuda.jit
    def kernel(values, dst):
        for i in range(cuda.grid(1), values.shape[0], cuda.gridsize(1)):
            v = np.float64(values[i])
            if integer:
                dst[i] = to_integer(v, lo, hi)
            elif odd:
                dst[i] = _to_float32_odd(v)
            else:
                dst[i] = v

    return kernel


# ----------------------------------------------------------------------------------------------
# Minimum (maximum) passes
# ----------------------------------------------------------------------------------------------


@memoised
def _pass_kernel(width: int, kind: int, flip: bool, mode: int, inner: bool, van_herk: bool):
    """Minimum of ``size`` keys along the middle axis of ``(lines, n, b)`` data, output i
    reading positions ``i - off + [0, size)``; ``inner``: b > 1 (x of the grid along b)."""
    kt, to_key, to_raw = _codec(width, kind, flip)
    top = kt((1 << (8 * width)) - 1)  # the neutral element of min

    @cuda.jit(device=True, inline=True)
    def load(src, base, t, n, b, cv):
        m = map_index(t, n, mode)
        if m < 0:
            return cv
        return to_key(src[base + m * b])

    @cuda.jit(device=True, inline=True)
    def window(src, dst, base, i, n, b, size, off, cv):
        lo = i - off
        best = top
        if lo >= 0 and lo + size <= n:
            p = base + lo * b
            for _ in range(size):
                best = _mn(best, to_key(src[p]))
                p += b
        else:
            for j in range(size):
                best = _mn(best, load(src, base, lo + j, n, b, cv))
        dst[base + i * b] = to_raw(best)

    @cuda.jit(device=True, inline=True)
    def segment(src, dst, base, k, n, b, size, off, cv):
        # outputs i0 + j (j < m) read the suffix j.. of extended segment k (positions
        # t0 + [0, size)) and the first j keys of segment k + 1
        i0 = k * size
        m = _mn(size, n - i0)
        t1 = i0 + size - off
        acc = top
        for j in range(m):
            dst[base + (i0 + j) * b] = acc  # a key, until the backward sweep
            acc = _mn(acc, load(src, base, t1 + j, n, b, cv))
        t0 = i0 - off
        acc = top
        for j in range(size - 1, -1, -1):
            acc = _mn(acc, load(src, base, t0 + j, n, b, cv))
            if j < m:
                p = base + (i0 + j) * b
                dst[p] = to_raw(_mn(acc, dst[p]))

    body = segment if van_herk else window

    @cuda.jit
    def kernel(src, dst, lines, n, b, size, off, cv):
        x, y, z = cuda.grid(3)
        sx, sy, sz = cuda.gridsize(3)
        units = (n + size - 1) // size if van_herk else n
        if inner:
            for a in range(z, lines, sz):
                for u in range(y, units, sy):
                    for c in range(x, b, sx):
                        body(src, dst, a * n * b + c, u, n, b, size, off, cv)
        else:
            for a in range(y, lines, sy):
                for u in range(x, units, sx):
                    body(src, dst, a * n, u, n, 1, size, off, cv)

    return kernel


def _pow2(n: int) -> int:
    return 1 << max(0, (int(n) - 1).bit_length())


def _pass_launch(lines: int, units: int, b: int):
    """``(blocks, threads)`` of a pass kernel: x along the contiguous dimension."""
    dims = (b, units, lines) if b > 1 else (units, lines, 1)
    tx = min(PASS_BLOCK, _pow2(dims[0]))
    ty = max(1, min(PASS_BLOCK // tx, _pow2(dims[1])))
    blocks = tuple(max(1, min(-(-d // t), GRID_LIMIT)) for d, t in zip(dims, (tx, ty, 1),
                                                                       strict=True))  # fmt: skip
    return blocks, (tx, ty, 1)


def _prepare(call: DeviceCall, in_dtype, out_dtype, constant: bool, cval: float, flip: bool):
    """``(values the kernels select from, cval's key)``: cval converted to the input dtype
    by the policy, or the whole call in float64 where that would change the stored result
    (`_cpu_rank._cval_in`, as the cpu backend)."""
    src = call.src
    value = None
    if constant:
        value = _cval_in(np.dtype(in_dtype), np.dtype(out_dtype), cval)
        if value is None:
            src = src.astype(np.float64)
            value = np.float64(cval)
    cdtype = np.dtype(src.dtype)
    if value is None:
        return src, np.dtype(f"u{cdtype.itemsize}").type(0)
    return src, _scalar_key(cdtype.type(value), cdtype, flip)


def _target(call: DeviceCall, cdtype: np.dtype):
    """Where the last kernel writes: the call's destination when it holds the compute dtype,
    else a scratch array that `_store` converts into it."""
    if np.dtype(call.dst.dtype) == cdtype:
        return call.dst
    return call.xp.empty(call.src.shape, dtype=cdtype)


def _store(call: DeviceCall, values) -> None:
    """``values`` (the compute dtype) into ``call.dst`` by the policy."""
    dst = call.dst
    if values is dst:
        return
    if values.dtype == dst.dtype:
        dst[...] = values.reshape(dst.shape)
        return
    integer, lo, hi = store_bounds(call.out.dtype)
    odd = np.dtype(call.out.dtype) == np.float16
    kernel = _store_kernel(integer, lo, hi, odd)
    launch(kernel, *grid_1d(values.size), call.stream, values.reshape(-1), dst.reshape(-1))


def _keys_view(array, width: int):
    return array.reshape(-1).view(np.dtype(f"u{width}"))


def minmax_passes(input, passes, cval, minimum, out):
    """Minimum (or maximum) filter1d along each of ``passes`` in turn, stored into ``out``."""
    passes = tuple(p for p in passes if p.size > 1 or p.origin != 0)
    call = device_call(input, out)
    if call.src.size == 0:
        return call.finish()
    if not passes:
        _store(call, call.src)
        return call.finish()
    constant = any(p.mode == "constant" for p in passes)
    src, cv = _prepare(call, input.dtype, out.dtype, constant, cval, not minimum)
    cdtype = np.dtype(src.dtype)
    width, kind = cdtype.itemsize, _KIND[cdtype.kind]
    final = _target(call, cdtype)
    scratch = None
    shape = src.shape
    current = _keys_view(src, width)
    for index, p in enumerate(passes):
        if (len(passes) - 1 - index) % 2 == 0:  # alternate so that the last pass ends in final
            target = final
        else:
            if scratch is None:
                scratch = call.xp.empty(shape, dtype=cdtype)
            target = scratch
        lines = int(np.prod(shape[: p.axis], dtype=np.int64))
        n = shape[p.axis]
        b = int(np.prod(shape[p.axis + 1 :], dtype=np.int64))
        van_herk = p.size >= VAN_HERK_MIN
        kernel = _pass_kernel(width, kind, not minimum, MODE_CODE[p.mode], b > 1, van_herk)
        units = -(-n // p.size) if van_herk else n
        keys = _keys_view(target, width)
        launch(kernel, *_pass_launch(lines, units, b), call.stream, current, keys, lines, n, b,
               p.size, p.size // 2 + p.origin, cv)  # fmt: skip
        current = keys
    _store(call, final)
    return call.finish()


# ----------------------------------------------------------------------------------------------
# Medians of 3x3 and 5x5 boxes: a shared-memory tile of keys, columns sorted once
# ----------------------------------------------------------------------------------------------


@memoised
def _tile_loader(width: int, kind: int, step: int, mode: int, threads_x: int, threads_y: int):
    """Device function filling ``tile[:nrows, :ncols]`` with the keys at rows ``y0 + r`` and
    flat columns ``x0 + c`` of one ``(H, W*step)`` plane, edges extended by the mode."""
    _, to_key, _ = _codec(width, kind, False)

    @cuda.jit(device=True, inline=True)
    def load(tile, nrows, ncols, src, plane, y0, x0, height, w, cv):
        xlen = w * step
        for r in range(cuda.threadIdx.y, nrows, threads_y):
            gy = map_index(y0 + r, height, mode)
            row = (plane * height + gy) * xlen
            for c in range(cuda.threadIdx.x, ncols, threads_x):
                gx = x0 + c
                if gy < 0:
                    v = cv
                elif gx >= 0 and gx < xlen:
                    v = to_key(src[row + gx])
                else:  # outside along W: map the W index, keep the position within the step
                    q = gx // step
                    j = map_index(q, w, mode)
                    v = cv if j < 0 else to_key(src[row + j * step + gx - q * step])
                tile[r, c] = v

    return load


@memoised
def _median3x3_kernel(width: int, kind: int, step: int, mode: int, threads_x: int,
                      threads_y: int, rows: int):  # fmt: skip
    """3x3 medians of ``(planes, H, W*step)`` data; a block computes a tile of
    ``threads_y * rows`` by ``threads_x`` outputs, each thread ``rows`` outputs of a column."""
    kt, _, to_raw = _codec(width, kind, False)
    load = _tile_loader(width, kind, step, mode, threads_x, threads_y)
    th, tw = threads_y * rows, threads_x
    nrows, ncols = th + 2, tw + 2 * step
    pairs = rows // 2

    @cuda.jit
    def kernel(src, dst, planes, height, w, offy, offx, cv):
        tile = cuda.shared.array((nrows, ncols), kt)
        xlen = w * step
        tx = cuda.threadIdx.x
        top = cuda.threadIdx.y * rows
        c0, c1, c2 = tx, tx + step, tx + 2 * step
        for plane in range(cuda.blockIdx.z, planes, cuda.gridDim.z):
            for y0 in range(cuda.blockIdx.y * th, height, cuda.gridDim.y * th):
                for x0 in range(cuda.blockIdx.x * tw, xlen, cuda.gridDim.x * tw):
                    load(tile, nrows, ncols, src, plane, y0 - offy, x0 - offx * step, height, w,
                         cv)  # fmt: skip
                    cuda.syncthreads()
                    x = x0 + tx
                    a0, a1, a2 = tile[top, c0], tile[top, c1], tile[top, c2]
                    b0, b1, b2 = tile[top + 1, c0], tile[top + 1, c1], tile[top + 1, c2]
                    for pair in range(pairs):
                        r = top + 2 * pair
                        e0, e1, e2 = tile[r + 2, c0], tile[r + 2, c1], tile[r + 2, c2]
                        d0, d1, d2 = tile[r + 3, c0], tile[r + 3, c1], tile[r + 3, c2]
                        l0, m0, h0, k0, n0, g0 = _two_columns(a0, b0, e0, d0)
                        l1, m1, h1, k1, n1, g1 = _two_columns(a1, b1, e1, d1)
                        l2, m2, h2, k2, n2, g2 = _two_columns(a2, b2, e2, d2)
                        y = y0 + r
                        if x < xlen and y < height:
                            p = (plane * height + y) * xlen + x
                            dst[p] = to_raw(_med3(_mx(_mx(l0, l1), l2), _med3(m0, m1, m2),
                                                  _mn(_mn(h0, h1), h2)))  # fmt: skip
                            if y + 1 < height:
                                dst[p + xlen] = to_raw(_med3(_mx(_mx(k0, k1), k2),
                                                             _med3(n0, n1, n2),
                                                             _mn(_mn(g0, g1), g2)))  # fmt: skip
                        a0, a1, a2 = e0, e1, e2
                        b0, b1, b2 = d0, d1, d2
                    cuda.syncthreads()

    return kernel


@memoised
def _median5x5_kernel(width: int, kind: int, step: int, mode: int, threads_x: int,
                      threads_y: int, rows: int):  # fmt: skip
    """5x5 medians of ``(planes, H, W*step)`` data: the tile's columns of 5 are sorted once
    into shared memory, then every output merges its 5 sorted columns."""
    kt, _, to_raw = _codec(width, kind, False)
    load = _tile_loader(width, kind, step, mode, threads_x, threads_y)
    th, tw = threads_y * rows, threads_x
    nrows, ncols = th + 4, tw + 4 * step

    @cuda.jit
    def kernel(src, dst, planes, height, w, offy, offx, cv):
        tile = cuda.shared.array((nrows, ncols), kt)
        s0 = cuda.shared.array((th, ncols), kt)
        s1 = cuda.shared.array((th, ncols), kt)
        s2 = cuda.shared.array((th, ncols), kt)
        s3 = cuda.shared.array((th, ncols), kt)
        s4 = cuda.shared.array((th, ncols), kt)
        xlen = w * step
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        j0, j1, j2, j3, j4 = tx, tx + step, tx + 2 * step, tx + 3 * step, tx + 4 * step
        for plane in range(cuda.blockIdx.z, planes, cuda.gridDim.z):
            for y0 in range(cuda.blockIdx.y * th, height, cuda.gridDim.y * th):
                for x0 in range(cuda.blockIdx.x * tw, xlen, cuda.gridDim.x * tw):
                    load(tile, nrows, ncols, src, plane, y0 - offy, x0 - offx * step, height, w,
                         cv)  # fmt: skip
                    cuda.syncthreads()
                    for r in range(ty, th, threads_y):
                        for c in range(tx, ncols, threads_x):
                            v0, v1, v2, v3, v4 = _sort5(tile[r, c], tile[r + 1, c],
                                                        tile[r + 2, c], tile[r + 3, c],
                                                        tile[r + 4, c])  # fmt: skip
                            s0[r, c] = v0
                            s1[r, c] = v1
                            s2[r, c] = v2
                            s3[r, c] = v3
                            s4[r, c] = v4
                    cuda.syncthreads()
                    x = x0 + tx
                    for r in range(ty, th, threads_y):
                        y = y0 + r
                        if x < xlen and y < height:
                            m = _median25(s0[r, j0], s1[r, j0], s2[r, j0], s3[r, j0], s4[r, j0],
                                          s0[r, j1], s1[r, j1], s2[r, j1], s3[r, j1], s4[r, j1],
                                          s0[r, j2], s1[r, j2], s2[r, j2], s3[r, j2], s4[r, j2],
                                          s0[r, j3], s1[r, j3], s2[r, j3], s3[r, j3], s4[r, j3],
                                          s0[r, j4], s1[r, j4], s2[r, j4], s3[r, j4],
                                          s4[r, j4])  # fmt: skip
                            dst[(plane * height + y) * xlen + x] = to_raw(m)
                    cuda.syncthreads()

    return kernel


@cuda.jit(device=True, inline=True)
def _median25(c00, c01, c02, c03, c04, c10, c11, c12, c13, c14, c20, c21, c22, c23, c24, c30,
              c31, c32, c33, c34, c40, c41, c42, c43, c44):  # fmt: skip
    """Median of 25 from 5 sorted columns: ``c{column}{rank}`` is the rank-th smallest of
    column ``column``. The pruned Batcher network of the cpu backend
    (`npaccel.filters._cpu_rank._median5x5`: 50 full and 24 half comparators)."""
    t0, t1 = _ce(c00, c10)
    t2, t3 = _ce(c04, c14)
    t4, t5 = _ce(t2, t1)
    t6, t7 = _ce(c02, c12)
    t8, t9 = _ce(t6, t4)
    t10, t11 = _ce(t7, t5)
    t12, t13 = _ce(c01, c11)
    t14, t15 = _ce(c03, c13)
    t16, t17 = _ce(t14, t13)
    t18, t19 = _ce(t12, t8)
    t20, t21 = _ce(t16, t9)
    t22, t23 = _ce(t17, t10)
    t24, t25 = _ce(t15, t11)
    t26, t27 = _ce(c20, c30)
    t28, t29 = _ce(c24, c34)
    t30, t31 = _ce(t28, t27)
    t32, t33 = _ce(c22, c32)
    t34, t35 = _ce(t32, t30)
    t36, t37 = _ce(t33, t31)
    t38, t39 = _ce(c21, c31)
    t40, t41 = _ce(c23, c33)
    t42, t43 = _ce(t40, t39)
    t44, t45 = _ce(t38, t34)
    t46, t47 = _ce(t42, t35)
    t48, t49 = _ce(t43, t36)
    t50, t51 = _ce(t41, t37)
    t52, t53 = _ce(c40, t0)
    t54, t55 = _ce(t25, t53)
    t56, t57 = _ce(c44, t21)
    t58, t59 = _ce(t56, t54)
    t60, t61 = _ce(t57, t55)
    t62, t63 = _ce(c42, t19)
    t64, t65 = _ce(t23, t63)
    t66, t67 = _ce(t62, t58)
    t68, t69 = _ce(t64, t59)
    t70, t71 = _ce(t65, t60)
    t72, t73 = _ce(c41, t18)
    t74, t75 = _ce(t3, t73)
    t76, t77 = _ce(t22, t74)
    t78, t79 = _ce(c43, t20)
    t80, t81 = _ce(t24, t79)
    t82, t83 = _ce(t78, t76)
    t84, t85 = _ce(t80, t77)
    t86, t87 = _ce(t81, t75)
    t88, t89 = _ce(t72, t66)
    t90, t91 = _ce(t82, t67)
    t92, t93 = _ce(t83, t68)
    t94, t95 = _ce(t84, t69)
    t96, t97 = _ce(t85, t70)
    t98, t99 = _ce(t86, t71)
    t100 = _mn(t87, t61)
    t101 = _mx(t26, t52)
    t102 = _mn(t51, t95)
    t103 = _mx(t102, t101)
    t104 = _mx(t47, t91)
    t105 = _mn(t99, t104)
    t106 = _mn(t105, t103)
    t107 = _mx(t45, t89)
    t108 = _mn(t97, t107)
    t109 = _mn(t49, t93)
    t110 = _mx(t109, t108)
    t111 = _mx(t110, t106)
    t112 = _mx(t44, t88)
    t113 = _mn(t29, t96)
    t114 = _mx(t113, t112)
    t115 = _mx(t48, t92)
    t116 = _mn(t100, t115)
    t117 = _mn(t116, t114)
    t118 = _mx(t46, t90)
    t119 = _mn(t98, t118)
    t120 = _mn(t50, t94)
    t121 = _mx(t120, t119)
    t122 = _mn(t121, t117)
    t123 = _mx(t122, t111)
    return t123


# ----------------------------------------------------------------------------------------------
# Any footprint: gather, then select
# ----------------------------------------------------------------------------------------------


@memoised
def _select_kernel(width: int, kind: int, mode: int, method: int, nvals: int, nd: int):
    """The ``rank``-th smallest of the ``n`` keys at ``offsets`` (n x nd, per axis of the
    reduced shape; ``flat``: the same as flat offsets) around every element. ``method``:
    `_EXTREME` (rank 0 or n - 1), `_SELECT` (n == nvals keys in a local array) or
    `_RADIX`; ``low``/``high``: the smallest/largest offset per axis."""
    kt, to_key, to_raw = _codec(width, kind, False)
    digits = width

    @cuda.jit(device=True, inline=True)
    def key_at(src, t, j, inside, coord, shape, offsets, flat, cv):
        if inside:
            return to_key(src[t + flat[j]])
        idx = 0
        for k in range(nd):
            m = map_index(coord[k] + offsets[j, k], shape[k], mode)
            if m < 0:
                return cv
            idx = idx * shape[k] + m
        return to_key(src[idx])

    @cuda.jit
    def kernel(src, dst, shape, low, high, offsets, flat, n, rank, cv):
        coord = cuda.local.array(nd, np.int64)
        vals = cuda.local.array(nvals, kt)
        hist = cuda.local.array(256 if method == _RADIX else 1, np.int32)
        for t in range(cuda.grid(1), src.shape[0], cuda.gridsize(1)):
            rem = t
            inside = True
            for k in range(nd - 1, -1, -1):
                s = shape[k]
                c = rem % s
                rem //= s
                coord[k] = c
                if c + low[k] < 0 or c + high[k] >= s:
                    inside = False
            if method == _EXTREME:
                result = key_at(src, t, 0, inside, coord, shape, offsets, flat, cv)
                for j in range(1, n):
                    v = key_at(src, t, j, inside, coord, shape, offsets, flat, cv)
                    result = _mn(result, v) if rank == 0 else _mx(result, v)
            elif method == _SELECT:
                for j in range(nvals):
                    vals[j] = key_at(src, t, j, inside, coord, shape, offsets, flat, cv)
                result = _quickselect(vals, nvals, rank)
            else:  # radix select on the key's bytes, the most significant first
                result = kt(0)
                need = rank
                for level in range(digits - 1, -1, -1):
                    shift = kt(8 * level)
                    for d in range(256):
                        hist[d] = 0
                    for j in range(n):
                        v = key_at(src, t, j, inside, coord, shape, offsets, flat, cv)
                        if level == digits - 1 or kt(v >> (shift + kt(8))) == result:
                            hist[(v >> shift) & kt(255)] += 1
                    d = 0
                    below = 0
                    while below + hist[d] <= need:
                        below += hist[d]
                        d += 1
                    need -= below
                    result = kt((result << kt(8)) | kt(d))
            dst[t] = to_raw(result)

    return kernel


# ----------------------------------------------------------------------------------------------
# Plans and entry points
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RankPlan:
    """How `rank_nd` computes one call: ``method`` is 'median3x3' or 'median5x5' (with the
    plane view ``(planes, height, w * step)`` and the window offsets ``offy``, ``offx``), or
    'extreme', 'select', 'radix' (the gather kernel over ``shape``, the input with runs of
    unfiltered axes merged, and ``offsets``, n x len(shape))."""

    method: str
    planes: int = 0
    height: int = 0
    w: int = 0
    step: int = 0
    offy: int = 0
    offx: int = 0
    shape: tuple[int, ...] = ()
    offsets: np.ndarray | None = None


def _median_rows(size: int) -> int:
    rows = MEDIAN3_ROWS if size == 3 else MEDIAN5_ROWS
    return max(2, rows + rows % 2) if size == 3 else max(1, rows)


def _median_shared_bytes(size: int, step: int, itemsize: int) -> int:
    threads_x, threads_y = MEDIAN_THREADS
    th = threads_y * _median_rows(size)
    ncols = threads_x + (size - 1) * step
    rows = th + size - 1 + (5 * th if size == 5 else 0)
    return rows * ncols * itemsize


def plan_rank(shape: tuple[int, ...], footprint: np.ndarray, rank: int, origins, itemsize: int
              ) -> RankPlan:  # fmt: skip
    """The `RankPlan` for a footprint that is neither one element nor a box minimum or
    maximum (those `rank_nd` sends to `minmax_passes`)."""
    nd = len(shape)
    filtered = [a for a in range(nd) if footprint.shape[a] > 1]
    if footprint.all() and len(filtered) == 2 and filtered[1] == filtered[0] + 1:
        p, q = filtered
        size = footprint.shape[p]
        step = int(np.prod(shape[q + 1 :], dtype=np.int64))
        if (footprint.shape[q] == size and (size, rank) in ((3, 4), (5, 12))
                and step <= MEDIAN_STEP_MAX
                and _median_shared_bytes(size, step, itemsize) <= SHARED_BYTES):  # fmt: skip
            return RankPlan(f"median{size}x{size}", int(np.prod(shape[:p], dtype=np.int64)),
                            shape[p], shape[q], step, size // 2 + origins[p],
                            size // 2 + origins[q])  # fmt: skip
    reduced: list[int] = []
    source: list[int] = []  # the input axis each reduced axis filters, -1 for merged runs
    for a, extent in enumerate(shape):
        if footprint.shape[a] == 1 and source and source[-1] < 0:
            reduced[-1] *= extent
        else:
            reduced.append(extent)
            source.append(a if footprint.shape[a] > 1 else -1)
    where = np.argwhere(footprint)
    offsets = np.zeros((len(where), len(reduced)), dtype=np.int64)
    for k, a in enumerate(source):
        if a >= 0:
            offsets[:, k] = where[:, a] - (footprint.shape[a] // 2 + origins[a])
    n = len(where)
    if rank == 0 or rank == n - 1:
        method = "extreme"
    elif n > LOCAL_MAX or (itemsize == 1 and n >= HISTOGRAM_MIN):
        method = "radix"
    else:
        method = "select"
    return RankPlan(method, shape=tuple(int(s) for s in reduced), offsets=offsets)


def _run_median(call: DeviceCall, plan: RankPlan, mode: str, src, target, cv) -> None:
    cdtype = np.dtype(src.dtype)
    size = 3 if plan.method == "median3x3" else 5
    factory = _median3x3_kernel if size == 3 else _median5x5_kernel
    threads_x, threads_y = MEDIAN_THREADS
    rows = _median_rows(size)
    kernel = factory(cdtype.itemsize, _KIND[cdtype.kind], plan.step, MODE_CODE[mode],
                     threads_x, threads_y, rows)  # fmt: skip
    xlen = plan.w * plan.step
    blocks = (min(-(-xlen // threads_x), GRID_LIMIT),
              min(-(-plan.height // (threads_y * rows)), GRID_LIMIT),
              min(plan.planes, GRID_LIMIT))  # fmt: skip
    launch(kernel, blocks, (threads_x, threads_y), call.stream, _keys_view(src, cdtype.itemsize),
           _keys_view(target, cdtype.itemsize), plan.planes, plan.height, plan.w, plan.offy,
           plan.offx, cv)  # fmt: skip


def _run_select(call: DeviceCall, plan: RankPlan, mode: str, rank: int, src, target, cv
                ) -> None:  # fmt: skip
    cdtype = np.dtype(src.dtype)
    offsets = plan.offsets
    n, nd = offsets.shape
    method = {"extreme": _EXTREME, "select": _SELECT, "radix": _RADIX}[plan.method]
    kernel = _select_kernel(cdtype.itemsize, _KIND[cdtype.kind], MODE_CODE[mode], method,
                            n if method == _SELECT else 1, nd)  # fmt: skip
    strides = np.cumprod((1, *plan.shape[:0:-1]))[::-1].astype(np.int64)
    flat = offsets @ strides
    low = tuple(int(v) for v in offsets.min(axis=0))
    high = tuple(int(v) for v in offsets.max(axis=0))
    launch(kernel, *grid_1d(src.size, SELECT_BLOCK), call.stream,
           _keys_view(src, cdtype.itemsize), _keys_view(target, cdtype.itemsize), plan.shape,
           low, high, device_constant(offsets, call.xp), device_constant(flat, call.xp), n, rank,
           cv)  # fmt: skip


def rank_nd(input, footprint, rank, mode, cval, origins, out):
    """The ``rank``-th smallest over ``footprint`` around each element, stored into ``out``."""
    footprint = np.asarray(footprint, dtype=bool)
    if footprint.size == 1:  # (its origin is 0: the input itself)
        return minmax_passes(input, (), cval, True, out)
    if footprint.all() and rank in (0, footprint.size - 1):  # separable minimum / maximum
        passes = tuple(
            MinMaxPass(a, s, mode, o)
            for a, (s, o) in enumerate(zip(footprint.shape, origins, strict=True))
            if s > 1
        )
        return minmax_passes(input, passes, cval, rank == 0, out)
    call = device_call(input, out)
    if call.src.size == 0:
        return call.finish()
    src, cv = _prepare(call, input.dtype, out.dtype, mode == "constant", cval, False)
    cdtype = np.dtype(src.dtype)
    target = _target(call, cdtype)
    plan = plan_rank(src.shape, footprint, rank, tuple(origins), cdtype.itemsize)
    if plan.method in ("median3x3", "median5x5"):
        _run_median(call, plan, mode, src, target, cv)
    else:
        _run_select(call, plan, mode, rank, src, target, cv)
    _store(call, target)
    return call.finish()
