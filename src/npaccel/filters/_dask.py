"""The 'dask' backend: filters of Dask arrays, lazily, chunk by chunk with real halos.

Every chunk is filtered by the same public function (so by the cpu kernels for NumPy
chunks, the cuda ones for CuPy chunks). A chunk is filtered as it is; the ring of pixels
within the filter's reach of a neighbouring chunk is then recomputed from thin strips of
the chunk's edge and the neighbour's (see `_overlap`), so no chunk is copied whole with its
halo. The array's own edges get no halo: the chunk at an edge is filtered with the call's
``mode``, which then pads exactly as it pads the whole array — so every mode gives the
single-array result, where Dask's own 'reflect' (NumPy's 'symmetric', not scipy's
'mirror') would not. Only 'wrap' needs the other end of the array: those axes get
periodic neighbours. An axis shorter than the halo is made one chunk (the filter then
sees all of it); chunks thinner than the halo go through ``map_overlap``, which merges
them, with a warning saying so.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import operator
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from npaccel import threads
from npaccel.filters import _params as P

__all__ = ["call", "halo"]

# filter name -> how far it reaches, from its bound arguments (see `halo`)
_ONE_AXIS = {"correlate1d", "convolve1d", "uniform_filter1d", "gaussian_filter1d",
             "minimum_filter1d", "maximum_filter1d"}  # fmt: skip
_RANK = {"minimum_filter", "maximum_filter", "median_filter", "rank_filter",
         "percentile_filter"}  # fmt: skip
_GAUSSIAN = {"gaussian_filter", "gaussian_laplace", "gaussian_gradient_magnitude"}
_ONE_PIXEL = {"sobel", "prewitt", "laplace", "gradient_magnitude"}
DEFAULT_CHUNK_BYTES = 64 << 20  # NumPy input with backend='dask': chunks of about this size


def _reach(n: int, origin: int, convolution: bool = False) -> int:
    """Pixels a window of ``n`` taps with ``origin`` reaches on its farther side; a
    convolution's window is mirrored (and its centre moves by one for even ``n``)."""
    centre = n // 2 + origin
    if convolution:
        centre = n - 1 - centre
    return max(centre, n - 1 - centre)


def _origins(origin: Any, n: int) -> tuple[int, ...]:
    return P.per_axis(origin, n, "origin", P.to_int)


def halo(name: str, ndim: int, params: dict[str, Any]) -> dict[int, int]:
    """{axis: depth} of filter ``name`` called with ``params`` on an ``ndim``-D array:
    how far an output pixel's inputs lie along each axis (0 on axes not filtered)."""
    depth = dict.fromkeys(range(ndim), 0)
    convolution = name.startswith("convolve")
    if name in _ONE_AXIS:
        axis = P.check_axis(params["axis"], ndim)
        if name in ("correlate1d", "convolve1d"):
            n = len(np.atleast_1d(params["weights"]))
        elif name == "gaussian_filter1d":
            n = 2 * _radius(params["sigma"], params) + 1
        else:
            n = P.to_size(params["size"], "size")
        depth[axis] = _reach(n, P.to_int(params.get("origin", 0), "origin"), convolution)
        return depth
    axes = P.normalize_axes(params.get("axes"), ndim)
    if name in ("correlate", "convolve"):
        shape = np.shape(params["weights"])
        for ax, n, o in zip(axes, shape, _origins(params["origin"], len(axes)), strict=False):
            depth[ax] = _reach(n, o, convolution)
    elif name == "uniform_filter":
        sizes = P.per_axis(params["size"], len(axes), "size", P.to_size)
        for ax, n, o in zip(axes, sizes, _origins(params["origin"], len(axes)), strict=True):
            depth[ax] = _reach(n, o)
    elif name in _RANK:
        footprint = params.get("footprint")
        sizes = (np.shape(footprint) if footprint is not None
                 else P.per_axis(params["size"], len(axes), "size", P.to_size))  # fmt: skip
        for ax, n, o in zip(axes, sizes, _origins(params["origin"], len(axes)), strict=False):
            depth[ax] = _reach(n, o)
    elif name in _GAUSSIAN:
        sigmas = P.per_axis(params["sigma"], len(axes), "sigma", P.to_sigma)
        radii = P.per_axis(params.get("radius"), len(axes), "radius", lambda v, _: v)
        for ax, sigma, radius in zip(axes, sigmas, radii, strict=True):
            depth[ax] = _radius(sigma, {**params, "radius": radius}) if sigma > 1e-15 else 0
    elif name in _ONE_PIXEL:
        for ax in axes:
            depth[ax] = 1
    else:  # pragma: no cover - a new filter must say how far it reaches
        raise NotImplementedError(f"the dask backend has no halo rule for {name!r}")
    return depth


def _radius(sigma: Any, params: dict[str, Any]) -> int:
    from npaccel.filters._linear import _gaussian_radius

    return _gaussian_radius(P.to_sigma(sigma, "sigma"), params.get("truncate", 4.0),
                            params.get("radius"))  # fmt: skip


def _wrapped_axes(name: str, ndim: int, params: dict[str, Any]) -> set[int]:
    """Axes whose mode is 'wrap' (they need the other end of the array as halo)."""
    if name in _ONE_AXIS:
        axis = P.check_axis(params["axis"], ndim)
        return {axis} if P.to_mode(params["mode"], "mode") == "wrap" else set()
    axes = P.normalize_axes(params.get("axes"), ndim)
    modes = P.per_axis(params["mode"], len(axes), "mode", P.to_mode)
    return {ax for ax, mode in zip(axes, modes, strict=True) if mode == "wrap"}


def _bind(fn: Callable[..., Any], args: tuple, kwargs: dict) -> dict[str, Any]:
    bound = inspect.signature(fn).bind(*args, **kwargs)
    bound.apply_defaults()
    params = dict(bound.arguments)
    params.update(params.pop("kwargs", {}))  # gaussian_* take truncate/radius as **kwargs
    return params


def _concurrent_tasks() -> int:
    """How many Dask tasks may run at once beside this one, in this process."""
    try:
        from distributed import get_worker

        return get_worker().state.nthreads
    except (ImportError, ValueError):  # not on a distributed worker
        pass
    import dask
    import dask.base
    import dask.local

    if dask.base.get_scheduler() is dask.local.get_sync:
        return 1
    return dask.config.get("num_workers", None) or _cpus()


def _share_cpus() -> None:
    """Run this task's kernels on its share of the CPUs (Numba's count is per calling
    thread): without it, two tasks of two kernel threads each fight over two cores."""
    import numba

    numba.set_num_threads(threads.threads_per_worker(_concurrent_tasks(), cpus=_cpus()))


_CPUS_TTL = 1.0  # seconds: the usable CPUs (affinity, cgroup quota) are read again after it
_cpus_seen: tuple[float, int] = (-_CPUS_TTL, 1)


def _cpus() -> int:
    """`threads.usable_cpus`, read at most once a second (reading the cgroup files takes
    ~0.2 ms: per chunk, that is a few percent of a small chunk's kernels)."""
    global _cpus_seen
    now = time.monotonic()
    if now - _cpus_seen[0] >= _CPUS_TTL:
        _cpus_seen = (now, threads.usable_cpus())
    return _cpus_seen[1]


def _filter(fn: Callable[..., Any], params: dict[str, Any], dtype: np.dtype, block: Any) -> Any:
    return fn(block, output=dtype, **params)


def _block(fn: Callable[..., Any], params: dict[str, Any], dtype: np.dtype, block: Any) -> Any:
    """One chunk, filtered on this task's share of the CPUs."""
    _share_cpus()
    return _filter(fn, params, dtype, block)


def call(fn: Callable[..., Any], x: Any, args: tuple, kwargs: dict) -> Any:
    """``fn(x, *args, **kwargs)`` for a Dask array ``x``: a lazy Dask array of the result.

    ``output`` may be None or a dtype (a lazy result has no array to write into)."""
    import dask.array as da

    params = _bind(fn, (x, *args), kwargs)
    del params["input"]
    output = params.pop("output", None)
    if output is not None and not isinstance(output, np.dtype | type | str):
        raise TypeError(f"`output` must be None or a dtype for a Dask array (the result is "
                        f"lazy; store it with .store() or .compute()); got "
                        f"{type(output).__name__}")  # fmt: skip
    dtype = P.check_dtype(np.dtype(x.dtype if output is None else output), "output")
    params["backend"] = None  # each chunk's own array type picks its kernels
    depth = halo(fn.__name__, x.ndim, params)
    for axis, d in depth.items():  # an axis shorter than the halo: one chunk, no halo
        if d and d >= x.shape[axis]:
            x = x.rechunk({axis: -1})
            depth[axis] = 0
    block = functools.partial(_block, fn, params, dtype)
    # the chunks' array type (NumPy; CuPy for a CuPy-backed Dask array) with the result dtype
    meta = np.empty_like(x._meta, shape=(0,) * x.ndim, dtype=dtype)
    if not any(depth.values()):
        return x.map_blocks(block, dtype=dtype, meta=meta)
    thin = [ax for ax, d in depth.items() if d and min(x.chunks[ax]) < d]
    if thin:
        warnings.warn(f"chunks along axes {thin} ({[min(x.chunks[a]) for a in thin]} at the "
                      f"thinnest) are thinner than the filter's halo "
                      f"({[depth[a] for a in thin]}): Dask merges them; choose chunks of at "
                      f"least several times the halo", stacklevel=3)  # fmt: skip
    wrapped = _wrapped_axes(fn.__name__, x.ndim, params)
    if thin:
        boundary = {ax: "periodic" if ax in wrapped else "none" for ax in range(x.ndim)}
        return da.map_overlap(block, x, depth=depth, boundary=boundary, trim=True, dtype=dtype,
                              meta=meta, allow_rechunk=True)  # fmt: skip
    return _overlap(functools.partial(_filter, fn, params, dtype), x, depth, wrapped, dtype,
                    meta, fn.__name__)  # fmt: skip


# --- halos without copying whole chunks -------------------------------------------------
#
# Dask's map_overlap concatenates every chunk with its neighbours' edges (a copy of the
# whole chunk) and trims the result (a view, but the filtered chunk was computed on the
# bigger array). Here a chunk is filtered as it is, and only the ring of pixels within the
# halo of a neighbouring chunk — the ones the call's ``mode`` got wrong — is recomputed from
# thin strips: the chunk's edge with the neighbour's, 3 × depth wide. The result is the same
# array; the copies are of strips, not of chunks.


def _overlap(block: Callable[[Any], Any], x: Any, depth: dict[int, int], wrapped: set[int],
             dtype: np.dtype, meta: Any, name: str) -> Any:  # fmt: skip
    """``block`` over every chunk of ``x`` with real neighbour data ``depth`` deep (every
    chunk is at least that deep along the halo axes); 'wrap' axes have periodic neighbours."""
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    axes = tuple(ax for ax, d in depth.items() if d)
    depths = tuple(depth[ax] for ax in axes)
    out_name = f"overlap-npaccel-{name}-{tokenize(x, block, depth, sorted(wrapped))}"
    layer = {}
    for index in itertools.product(*map(range, x.numblocks)):
        offsets, pieces = [], []
        for offset in itertools.product((-1, 0, 1), repeat=len(axes)):
            piece = _neighbour(x, index, axes, depths, offset, wrapped)
            if piece is not None:
                offsets.append(offset)
                pieces.append(piece)
        task = functools.partial(_ring_block, block, axes, depths, tuple(offsets))
        layer[(out_name, *index)] = (task, pieces)
    graph = HighLevelGraph.from_collections(out_name, layer, dependencies=[x])
    return da.Array(graph, out_name, chunks=x.chunks, dtype=dtype, meta=meta)


def _neighbour(x: Any, index: tuple[int, ...], axes: tuple[int, ...], depths: tuple[int, ...],
               offset: tuple[int, ...], wrapped: set[int]) -> Any:  # fmt: skip
    """The task for the part of chunk ``index + offset`` a halo needs (None where the array
    ends): the whole chunk at offset 0, its ``depth`` nearest pixels along offset axes."""
    key = list(index)
    where = [slice(None)] * x.ndim
    for ax, d, step in zip(axes, depths, offset, strict=True):
        if step == 0:
            continue
        n = index[ax] + step
        if not 0 <= n < x.numblocks[ax]:
            if ax not in wrapped or x.numblocks[ax] == 1:  # one chunk: the mode wraps it
                return None
            n %= x.numblocks[ax]
        key[ax] = n
        where[ax] = slice(-d, None) if step < 0 else slice(0, d)
    if not any(offset):
        return (x.name, *key)
    return (operator.getitem, (x.name, *key), tuple(where))


def _ring_block(block: Callable[[Any], Any], axes: tuple[int, ...], depths: tuple[int, ...],
                offsets: tuple[tuple[int, ...], ...], pieces: list[Any]) -> Any:  # fmt: skip
    """One output chunk from its pieces (see `_neighbour`), filtered by ``block`` on this
    task's share of the CPUs."""
    _share_cpus()
    have = dict(zip(offsets, pieces, strict=True))
    centre = have[(0,) * len(axes)]
    sides = [[s for s in (-1, 0, 1) if tuple(s if j == i else 0 for j in range(len(axes)))
              in have] for i in range(len(axes))]  # fmt: skip
    shape = centre.shape
    if any(shape[ax] < 2 * d for ax, d in zip(axes, depths, strict=True)):
        # a chunk thinner than two halos: its rings overlap, filter it whole with its halo
        whole = [[(s, slice(None)) for s in side] for side in sides]
        return block(_assemble(have, axes, whole))[_inner(axes, depths, sides, shape)]
    out = block(centre)
    for i, (ax, d) in enumerate(zip(axes, depths, strict=True)):
        steps = [step for step in (-1, 1) if step in sides[i]]
        if not steps:
            continue
        # along this axis, per side: the neighbour's d pixels and 2d of the chunk's edge,
        # both sides' strips side by side in one call (each kept pixel's window stays in
        # its own strip); along the others: the chunk with its halos, so that corners see
        # their diagonal neighbours
        segments = [[(s, slice(None)) for s in side] for side in sides]
        segments[i] = []
        for step in steps:
            edge = slice(0, 2 * d) if step < 0 else slice(-2 * d, None)
            segments[i] += [(step, slice(None)), (0, edge)][::-step]
        strips = block(_assemble(have, axes, segments))
        keep = list(_inner(axes, depths, sides, shape))
        target = [slice(None)] * centre.ndim
        for k, step in enumerate(steps):
            keep[ax] = slice(3 * d * k + d, 3 * d * k + 2 * d)
            target[ax] = slice(0, d) if step < 0 else slice(shape[ax] - d, shape[ax])
            out[tuple(target)] = strips[tuple(keep)]
    return out


def _inner(axes: tuple[int, ...], depths: tuple[int, ...], sides: list[list[int]],
           shape: tuple[int, ...]) -> tuple[slice, ...]:  # fmt: skip
    """Where the chunk lies in an array assembled with the halos in ``sides``."""
    where = [slice(None)] * len(shape)
    for ax, d, side in zip(axes, depths, sides, strict=True):
        low = d if -1 in side else 0
        where[ax] = slice(low, low + shape[ax])
    return tuple(where)


def _assemble(have: dict[tuple[int, ...], Any], axes: tuple[int, ...],
              segments: list[list[tuple[int, slice]]], offset: tuple[int, ...] = (),
              where: tuple[slice, ...] = ()) -> Any:  # fmt: skip
    """The pieces ``have`` concatenated: along the i-th halo axis, the (offset, slice)
    segments ``segments[i]``, in order. Each piece is sliced before anything is copied."""
    i = len(offset)
    if i == len(axes):
        piece = have[offset]
        cut = [slice(None)] * piece.ndim
        for ax, part in zip(axes, where, strict=True):
            cut[ax] = part
        return piece[tuple(cut)]
    parts = [_assemble(have, axes, segments, (*offset, step), (*where, part))
             for step, part in segments[i]]  # fmt: skip
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=axes[i])


def compute_numpy(fn: Callable[..., Any], x: np.ndarray, args: tuple, kwargs: dict,
                  chunk_bytes: int | None = None) -> np.ndarray:
    """NumPy input with ``backend='dask'``: chunked by a byte budget along the leading axes,
    filtered through :func:`call`, computed (on the active Dask scheduler), returned as
    NumPy (written into ``output`` when it is an array)."""
    import dask.array as da

    x = P.check_input(x)
    output = kwargs.pop("output", None)
    target = P.prepare_output(output, x) if isinstance(output, np.ndarray) else None
    dtype = target.dtype if target is not None else output
    if x.ndim == 0 or x.size == 0:  # nothing to chunk
        return fn(x, *args, output=target if target is not None else dtype, **kwargs)
    params = _bind(fn, (x, *args), kwargs)
    reach = halo(fn.__name__, x.ndim, params)[0]
    row_bytes = max(1, x[:1].nbytes)
    chunk_bytes = DEFAULT_CHUNK_BYTES if chunk_bytes is None else chunk_bytes
    rows = min(x.shape[0], max(chunk_bytes // row_bytes, 4 * reach, 1))
    lazy = call(fn, da.from_array(x, chunks=(rows, *x.shape[1:])), args,
                {**kwargs, "output": dtype})  # fmt: skip
    if target is None:
        return lazy.compute()
    if np.shares_memory(target, x):  # in place: chunks written early would be read as halos
        target[...] = lazy.compute()
    else:  # chunk by chunk into the output, no whole-array temporary
        da.store(lazy, target, lock=False)
    return target
