"""The 'dask' backend: filters of Dask arrays, lazily, through ``map_overlap``.

Every chunk is filtered by the same public function (so by the cpu kernels for NumPy
chunks, the cuda ones for CuPy chunks), with a halo of real neighbouring data as deep as the
filter reaches along each filtered axis, and the halo trimmed off afterwards. The array's
own edges are not padded by Dask (``boundary='none'``): the chunk at an edge is filtered
with the call's ``mode``, which then pads exactly as it pads the whole array — so every
mode gives the single-array result, where Dask's own 'reflect' (NumPy's 'symmetric', not
scipy's 'mirror') would not. Only 'wrap' needs the other end of the array: those axes get a
periodic halo. An axis shorter than the halo is made one chunk (the filter then sees all of
it); chunks thinner than the halo are merged by Dask, with a warning saying so.
"""

from __future__ import annotations

import functools
import inspect
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
    return dask.config.get("num_workers", None) or threads.usable_cpus()


def _block(fn: Callable[..., Any], params: dict[str, Any], dtype: np.dtype, block: Any) -> Any:
    """One chunk, its kernels on this task's share of the CPUs (Numba's count is per calling
    thread): without it, two tasks of two kernel threads each fight over two cores."""
    import numba

    numba.set_num_threads(threads.threads_per_worker(_concurrent_tasks()))
    return fn(block, output=dtype, **params)


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
    boundary = {ax: "periodic" if ax in wrapped else "none" for ax in range(x.ndim)}
    return da.map_overlap(block, x, depth=depth, boundary=boundary, trim=True, dtype=dtype,
                          meta=meta, allow_rechunk=True)  # fmt: skip


def compute_numpy(fn: Callable[..., Any], x: np.ndarray, args: tuple, kwargs: dict,
                  chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> np.ndarray:
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
    rows = min(x.shape[0], max(chunk_bytes // row_bytes, 4 * reach, 1))
    lazy = call(fn, da.from_array(x, chunks=(rows, *x.shape[1:])), args,
                {**kwargs, "output": dtype})  # fmt: skip
    result = lazy.compute()
    if target is not None:
        target[...] = result
        return target
    return result
