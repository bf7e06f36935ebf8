"""The numba-cuda kernels of the linear filters (the cuda backend's `npaccel.filters._cuda`
plans which run).

Every kernel is made by a factory memoised on its static parameters — tap counts and
centres, edge modes, the accumulator type, the output's store (float cast, or the integer
policy with its bounds), the tile shape — which enter as closure constants, so loops over
taps have constant trip counts and the mode's branch of `map_index` is the only one left.
Weights are small device arrays, copied once per thread into registers.

* `tile_kernel`: one or two separable 2-D filters on two adjacent axes of a C-contiguous
  array viewed as ``(a, H, W*b)`` (neighbours along the second axis ``b`` elements apart).
  A block stages its output tile plus halo in shared memory (read from global memory
  once, four loads in flight per thread), runs the pass along H into a second shared
  array, then the pass along W while writing the output once. With two filters (Laplace,
  gradient magnitudes) both run from the same staged tile and are summed or combined as
  sqrt(a² + b²) before the single store.
* `pass_kernel`: one 1-D pass along any axis of an ``(a, n, b)`` view, one thread per
  output element in memory order, so reads and writes are coalesced whether the axis is
  the last one (``b == 1``) or not.
* `nd_kernel`: general N-D correlation over precomputed non-zero taps; elements whose
  window lies inside the array read flat offsets, the others map each axis by the mode.
* `store_kernel`, `accumulate_kernel`: element-wise stores by the numeric policy and the
  running sum of the unfused `combine_passes`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import cuda

from npaccel.cuda._device import simulated
from npaccel.filters._cuda_common import CONSTANT, map_index, memoised, store_bounds, to_integer

__all__ = [
    "MAX_HALO",
    "SHARED_BYTES",
    "TILE_REGISTERS",
    "TILING",
    "Tiling",
    "accumulate_kernel",
    "nd_kernel",
    "pass_kernel",
    "store_kernel",
    "tile_kernel",
]


@dataclass(frozen=True)
class Tiling:
    """Output tile of a `tile_kernel` block: ``rows`` x ``cols`` elements of the
    ``(H, W*b)`` plane, computed by ``threads_x`` x ``threads_y`` threads (x along cols)."""

    rows: int = 32
    cols: int = 64
    threads_x: int = 64
    threads_y: int = 4


TILING = Tiling()  # module defaults: tests shrink them so tiny arrays span several tiles
SHARED_BYTES = 48 * 1024  # static shared memory a block may declare
MAX_HALO = 16  # taps each side of a tile pass (Gaussian sigma 4, truncate 4); beyond: 1-D
TILE_REGISTERS = 128  # per thread, so that two 256-thread tile blocks fit on an SM
_REGISTER_TAPS = 64  # 1-D passes with more taps read their weights from memory


def _store(integer: bool, lo: float, hi: float):
    """A device function writing one accumulated value by the policy."""
    if integer:

        @cuda.jit(device=True, inline=True)
        def store(dst, index, value):
            dst[index] = to_integer(value, lo, hi)

    else:

        @cuda.jit(device=True, inline=True)
        def store(dst, index, value):
            dst[index] = value

    return store


@memoised
def tile_kernel(tiling: Tiling, step: int, terms: tuple, mode_v: int, mode_h: int,
                combine: str, acc: np.dtype, out: np.dtype):  # fmt: skip
    """Kernel ``(src, dst, a, H, L, wv0, wh0, wv1, wh1, cval)`` over flat C-contiguous
    arrays of shape ``(a, H, L)``, ``L = W * step``, H and L below 2**31.

    ``terms``: one or two ``((nv, cv), (nh, ch))``, tap count and centre of each filter's
    pass along H then along W (a missing pass is ``(1, 0)`` with weights ``[1]``);
    ``combine``: 'sum' or 'hypot' for two terms. ``cval`` is in the accumulator type.
    Launch with blocks ``(ceil(W*step / cols), row tiles, a)`` (y and z may be capped:
    the kernel strides over the rest) of ``(threads_x, threads_y)`` threads."""
    rows, cols, bx = tiling.rows, tiling.cols, tiling.threads_x
    nt = bx * tiling.threads_y
    A = np.dtype(acc).type
    zero = A(0)
    store = _store(*store_bounds(out))
    two = len(terms) == 2
    (nv0, cv0), (nh0, ch0) = terms[0]
    (nv1, cv1), (nh1, ch1) = terms[1] if two else ((1, 0), (1, 0))
    up, down = max(cv0, cv1), max(nv0 - 1 - cv0, nv1 - 1 - cv1)
    left, right = max(ch0, ch1), max(nh0 - 1 - ch0, nh1 - 1 - ch1)
    rin, cin = rows + up + down, cols + (left + right) * step
    n_in, n_mid, n_out = rin * cin, rows * cin, rows * cols
    n_mid1 = n_mid if two else 1
    off_v0, off_v1 = up - cv0, up - cv1  # first staged row each term's H pass reads
    off_h0, off_h1 = (left - ch0) * step, (left - ch1) * step
    col0 = left * step  # staged columns left of the tile
    hypot = combine == "hypot"
    const_h = mode_h == CONSTANT

    @cuda.jit(device=True, inline=True)
    def fetch(src, plane, e, row_of, col_of, n_cols, fill):
        """Staged element ``e`` (row-major in the rin x cin tile), edges read by the modes
        through the tile's row and column maps (-1: cval)."""
        if e >= n_in:
            return fill
        rr = e // cin
        gi = row_of[rr]
        gj = col_of[e - rr * cin]
        if gi < 0 or gj < 0:
            return fill
        return A(src[plane + gi * n_cols + gj])

    def kernel(src, dst, n_a, n_rows, n_cols, wv0, wh0, wv1, wh1, cval):
        staged = cuda.shared.array(n_in, dtype=A)
        mid0 = cuda.shared.array(n_mid, dtype=A)
        mid1 = cuda.shared.array(n_mid1, dtype=A)
        row_of = cuda.shared.array(rin, dtype=np.int32)
        col_of = cuda.shared.array(cin, dtype=np.int32)
        kv0 = cuda.local.array(nv0, dtype=A)
        kh0 = cuda.local.array(nh0, dtype=A)
        kv1 = cuda.local.array(nv1, dtype=A)
        kh1 = cuda.local.array(nh1, dtype=A)
        for k in range(nv0):
            kv0[k] = wv0[k]
        for k in range(nh0):
            kh0[k] = wh0[k]
        if two:
            for k in range(nv1):
                kv1[k] = wv1[k]
            for k in range(nh1):
                kh1[k] = wh1[k]
        fill = cval
        tid = cuda.threadIdx.y * bx + cuda.threadIdx.x
        width = n_cols // step
        j0 = cuda.blockIdx.x * cols
        row_tiles = (n_rows + rows - 1) // rows
        for cc in range(tid, cin, nt):  # the source column of each staged column, by mode_h
            jg = j0 + cc - col0
            if step == 1:
                gj = map_index(jg, width, mode_h)
            else:
                m = jg // step
                gj = map_index(m, width, mode_h)
                if gj >= 0:
                    gj = gj * step + (jg - m * step)
            col_of[cc] = gj
        for ia in range(cuda.blockIdx.z, n_a, cuda.gridDim.z):
            plane = ia * n_rows * n_cols
            for rt in range(cuda.blockIdx.y, row_tiles, cuda.gridDim.y):
                i0 = rt * rows
                for rr in range(tid, rin, nt):
                    row_of[rr] = map_index(i0 + rr - up, n_rows, mode_v)
                cuda.syncthreads()
                # 1. stage the tile and its halo: four independent loads, then four stores
                for e in range(tid, n_in, 4 * nt):
                    v0 = fetch(src, plane, e, row_of, col_of, n_cols, fill)
                    v1 = fetch(src, plane, e + nt, row_of, col_of, n_cols, fill)
                    v2 = fetch(src, plane, e + 2 * nt, row_of, col_of, n_cols, fill)
                    v3 = fetch(src, plane, e + 3 * nt, row_of, col_of, n_cols, fill)
                    staged[e] = v0
                    if e + nt < n_in:
                        staged[e + nt] = v1
                    if e + 2 * nt < n_in:
                        staged[e + 2 * nt] = v2
                    if e + 3 * nt < n_in:
                        staged[e + 3 * nt] = v3
                cuda.syncthreads()
                # 2. the pass along H, for every staged column
                for e in range(tid, n_mid, nt):
                    rr = e // cin
                    cc = e - rr * cin
                    # the intermediate itself reads cval beyond the W edges
                    if const_h and col_of[cc] < 0:
                        mid0[e] = fill
                        if two:
                            mid1[e] = fill
                    else:
                        r0 = zero
                        for k in range(nv0):
                            r0 += kv0[k] * staged[(rr + off_v0 + k) * cin + cc]
                        mid0[e] = r0
                        if two:
                            r1 = zero
                            for k in range(nv1):
                                r1 += kv1[k] * staged[(rr + off_v1 + k) * cin + cc]
                            mid1[e] = r1
                cuda.syncthreads()
                # 3. the pass along W, combined and stored once
                for o in range(tid, n_out, nt):
                    rr = o // cols
                    cc = o - rr * cols
                    i = i0 + rr
                    j = j0 + cc
                    if i < n_rows and j < n_cols:
                        base = rr * cin + cc
                        r0 = zero
                        for k in range(nh0):
                            r0 += kh0[k] * mid0[base + off_h0 + k * step]
                        if two:
                            r1 = zero
                            for k in range(nh1):
                                r1 += kh1[k] * mid1[base + off_h1 + k * step]
                            r0 = A(math.sqrt(r0 * r0 + r1 * r1)) if hypot else r0 + r1
                        store(dst, plane + i * n_cols + j, r0)
                cuda.syncthreads()  # before the next tile overwrites shared memory

    # float32: 2 blocks of 256 threads per SM; uncapped, LLVM's unrolling of the staging
    # loops takes up to ~210 registers (1 block per SM). float64 weights need twice the
    # registers: uncapped. (The simulator takes no such option.)
    capped = not simulated() and np.dtype(acc).itemsize == 4
    return cuda.jit(kernel, **({"max_registers": TILE_REGISTERS} if capped else {}))


@memoised
def pass_kernel(taps: int, centre: int, mode: int, last: bool, acc: np.dtype, out: np.dtype):
    """Kernel ``(src, dst, w, cval, n, step)``: one 1-D pass over flat C-contiguous arrays
    viewed as ``(a, n, step)``, along n (``last``: ``step == 1``). Grid-stride, 1-D grid."""
    A = np.dtype(acc).type
    zero = A(0)
    store = _store(*store_bounds(out))
    in_registers = taps <= _REGISTER_TAPS
    held = taps if in_registers else 1

    def kernel(src, dst, w, cval, n, step):
        kw = cuda.local.array(held, dtype=A)
        if in_registers:
            for k in range(taps):
                kw[k] = w[k]
        total = src.shape[0]
        for e in range(cuda.grid(1), total, cuda.gridsize(1)):
            i = e % n if last else (e // step) % n
            first = i - centre
            r = zero
            if first >= 0 and first + taps <= n:
                base = e - centre * step
                for k in range(taps):
                    wk = kw[k] if in_registers else w[k]
                    r += wk * A(src[base + k * step])
            else:
                for k in range(taps):
                    wk = kw[k] if in_registers else w[k]
                    j = map_index(first + k, n, mode)
                    if j < 0:
                        r += wk * cval
                    else:
                        r += wk * A(src[e + (j - i) * step])
            store(dst, e, r)

    return cuda.jit(kernel)


@memoised
def nd_kernel(ndim: int, mode: int, acc: np.dtype, out: np.dtype):
    """Kernel ``(src, dst, shape, taps, flat, w, low, high, cval)``: N-D correlation of flat
    C-contiguous arrays of ``shape``. Tap ``k`` reads ``index + taps[k]`` (per axis) with
    weight ``w[k]``, at flat offset ``flat[k]`` when every axis ``d`` has ``low[d] <=
    index[d] < shape[d] - high[d]``. Grid-stride, 1-D grid."""
    A = np.dtype(acc).type
    zero = A(0)
    store = _store(*store_bounds(out))

    def kernel(src, dst, shape, taps, flat, w, low, high, cval):
        index = cuda.local.array(ndim, dtype=np.int64)
        total = src.shape[0]
        ntaps = w.shape[0]
        for e in range(cuda.grid(1), total, cuda.gridsize(1)):
            rest = e
            inside = True
            for back in range(ndim):
                d = ndim - 1 - back
                q = rest // shape[d]
                i = rest - q * shape[d]
                index[d] = i
                rest = q
                if i < low[d] or i >= shape[d] - high[d]:
                    inside = False
            r = zero
            if inside:
                for k in range(ntaps):
                    r += w[k] * A(src[e + flat[k]])
            else:
                for k in range(ntaps):
                    offset = 0
                    outside = False
                    for d in range(ndim):
                        j = map_index(index[d] + taps[k, d], shape[d], mode)
                        if j < 0:
                            outside = True
                            break
                        offset = offset * shape[d] + j
                    if outside:
                        r += w[k] * cval
                    else:
                        r += w[k] * A(src[offset])
            store(dst, e, r)

    return cuda.jit(kernel)


@memoised
def store_kernel(acc: np.dtype, out: np.dtype, root: bool):
    """Kernel ``(src, dst)``: ``dst = policy(src)`` element-wise over flat arrays, in the
    accumulator type, after a square root when ``root``."""
    A = np.dtype(acc).type
    store = _store(*store_bounds(out))

    def kernel(src, dst):
        for e in range(cuda.grid(1), src.shape[0], cuda.gridsize(1)):
            x = A(src[e])
            if root:
                x = A(math.sqrt(x))
            store(dst, e, x)

    return cuda.jit(kernel)


@memoised
def accumulate_kernel(acc: np.dtype, square: bool):
    """Kernel ``(total, part, first)``: ``total (=, or += unless first) part`` (squared when
    ``square``) over flat arrays, ``total`` in the accumulator type."""
    A = np.dtype(acc).type

    def kernel(total, part, first):
        for e in range(cuda.grid(1), total.shape[0], cuda.gridsize(1)):
            p = A(part[e])
            if square:
                p = p * p
            total[e] = p if first else total[e] + p

    return cuda.jit(kernel)
