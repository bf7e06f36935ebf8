"""GPU rows: the device's own roof, transfers, cuBLAS/cuSOLVER/cuFFT through CuPy, and the
image filters of npaccel's cuda backend against cupyx.scipy.ndimage.

Every case here needs a usable CUDA device (``requires=("cupy", "gpu")``: skipped with the
reason otherwise) and, except the end-to-end rows, is timed with CUDA events on the current
stream (`event_timer`): one sample is the device time of ``loops`` calls queued back to back,
so host launch overhead shows only where the GPU would sit idle waiting for it.

* ``gpu.copy`` (device-to-device copy, bytes = read + write) and ``gpu.gemm`` (float32,
  float64) are the GPU's roof: every other GPU figure is a fraction of them
  (`npaccel.bench._roofline`).
* ``gpu.h2d`` / ``gpu.d2h`` from pageable and from pinned host memory: PCIe, not on the roof.
* ``gpu.fft2``, ``gpu.solve``: cuFFT, cuSOLVER (via CuPy).
* ``filters.<name>`` on backends ``npaccel-cuda`` and ``cupyx`` (kernel only) and
  ``npaccel-cuda+transfers`` (NumPy in, NumPy out: upload, filter, download, host-timed).

Checks run on the host against npaccel's reference (scipy.ndimage in float64) on a corner
crop: filters are local, so the top-left ``CROP``² outputs depend only on the input's
top-left (CROP + halo)², edges included.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np

from npaccel.bench._case import Case, CheckFailed, check_close
from npaccel.bench._profile import Profile

__all__ = ["cases", "event_timer"]

CROP = 256
GPU = ("cupy", "gpu")
FILTERS = {"box3": 1, "gaussian2": 8, "sobel": 1, "median3": 1}  # name: halo (radius)


def event_timer() -> Callable[[], float]:
    """A clock in seconds read from CUDA events on the current stream: each reading records
    an event and waits for it, so the difference of two readings is the device time of the
    work queued between them."""
    import cupy

    base = cupy.cuda.Event()
    base.record()
    base.synchronize()

    def now() -> float:
        event = cupy.cuda.Event()
        event.record()
        event.synchronize()
        return cupy.cuda.get_elapsed_time(base, event) / 1e3

    return now


def _random(shape: tuple[int, ...], dtype: str, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "u":
        return rng.integers(0, 256, shape, dtype=dtype)
    if np.dtype(dtype).kind == "c":
        return (rng.random(shape) + 1j * rng.random(shape)).astype(dtype)
    return rng.random(shape, dtype=np.float64).astype(dtype)


def _copy(n: int) -> Case:
    def setup():
        import cupy

        src = cupy.asarray(_random((n, n), "float32"))
        dst = cupy.empty_like(src)

        def run():
            cupy.copyto(dst, src)
            return dst

        def check(result):
            if not bool(cupy.array_equal(result, src)):
                raise CheckFailed("device copy differs from its source")

        return run, check

    nbytes = 4 * n * n
    return Case("gpu.copy", "cupy", {"dtype": "float32", "n": n}, 0, 2 * nbytes, setup,
                scalable=False, requires=GPU, device="gpu", timer="cuda-events")  # fmt: skip


def _gemm(n: int, dtype: str) -> Case:
    def setup():
        import cupy

        a_host, b_host = _random((n, n), dtype, 1), _random((n, n), dtype, 2)
        a, b = cupy.asarray(a_host), cupy.asarray(b_host)
        c = cupy.empty_like(a)

        def run():
            return cupy.matmul(a, b, out=c)

        def check(result):  # four rows against a float64 product on the host
            rows = cupy.asnumpy(result[:4]).astype(np.float64)
            expected = a_host[:4].astype(np.float64) @ b_host.astype(np.float64)
            tol = 1e-4 if dtype == "float32" else 1e-10
            check_close(rows, expected, rtol=tol, atol=tol * n, what=f"GEMM {dtype}")

        return run, check

    size = np.dtype(dtype).itemsize
    return Case("gpu.gemm", "cupy", {"dtype": dtype, "n": n}, 2.0 * n**3, 3.0 * size * n * n,
                setup, scalable=False, work=(2.0 * n**3, "flops"), requires=GPU, device="gpu",
                timer="cuda-events")  # fmt: skip


def _transfer(n: int, direction: str, host_memory: str) -> Case:
    def setup():
        import cupy
        import cupyx

        data = _random((n, n), "float32")
        if host_memory == "pinned":
            host = cupyx.empty_pinned(data.shape, data.dtype)
            host[...] = data
        else:
            host = data.copy()
        device = cupy.asarray(data) if direction == "d2h" else cupy.empty(data.shape, data.dtype)
        stream = cupy.cuda.get_current_stream()

        if direction == "h2d":

            def run():
                device.set(host, stream=stream)
                return device

            def check(result):
                if not np.array_equal(cupy.asnumpy(result), data):
                    raise CheckFailed("host-to-device copy differs from the host data")
        else:
            host[...] = 0

            def run():
                # pinned: an asynchronous copy (the event timer waits for it); pageable
                # memory cannot be copied asynchronously
                return cupy.asnumpy(device, stream=stream, out=host,
                                    blocking=host_memory != "pinned")  # fmt: skip

            def check(result):
                stream.synchronize()
                if not np.array_equal(np.asarray(result), data):
                    raise CheckFailed("device-to-host copy differs from the device data")

        return run, check

    return Case(f"gpu.{direction}", host_memory, {"dtype": "float32", "n": n}, 0, 4.0 * n * n,
                setup, scalable=False, roof="none", requires=GPU, device="gpu",
                timer="cuda-events")  # fmt: skip


def _fft2(n: int) -> Case:
    def setup():
        import cupy

        host = _random((n, n), "complex64")
        x = cupy.asarray(host)

        def run():
            return cupy.fft.fft2(x)

        def check(result):
            # the first row and column of a 2-D DFT are 1-D DFTs of the column and row sums
            x64 = host.astype(np.complex128)
            got = cupy.asnumpy(result)
            scale = float(np.abs(x64).sum())
            check_close(got[:, 0], np.fft.fft(x64.sum(axis=1)), rtol=0, atol=1e-5 * scale,
                        what="fft2, first column")  # fmt: skip
            check_close(got[0, :], np.fft.fft(x64.sum(axis=0)), rtol=0, atol=1e-5 * scale,
                        what="fft2, first row")  # fmt: skip

        return run, check

    points = n * n
    flops = 5.0 * points * math.log2(points)  # the usual complex FFT count
    return Case("gpu.fft2", "cupy", {"dtype": "complex64", "n": n}, flops, 2 * 8.0 * points,
                setup, scalable=False, requires=GPU, device="gpu",
                timer="cuda-events")  # fmt: skip


def _solve(n: int) -> Case:
    def setup():
        import cupy

        a_host = _random((n, n), "float64", 3) + n * np.eye(n)  # well conditioned
        b_host = _random((n,), "float64", 4)
        a, b = cupy.asarray(a_host), cupy.asarray(b_host)

        def run():
            return cupy.linalg.solve(a, b)

        def check(result):
            residual = float(cupy.linalg.norm(a @ result - b) / cupy.linalg.norm(b))
            if not residual < 1e-10:
                raise CheckFailed(f"solve's relative residual is {residual:.3g} (> 1e-10)")

        return run, check

    flops = 2.0 / 3.0 * n**3 + 2.0 * n * n
    return Case("gpu.solve", "cupy", {"dtype": "float64", "n": n}, flops, 8.0 * n * n, setup,
                scalable=False, requires=GPU, device="gpu", timer="cuda-events")  # fmt: skip


def _filter_call(name: str, backend: str, x, out) -> Callable[[], object]:
    """One filter call on ``backend``: npaccel's (cuda or the numpy reference) or cupyx's."""
    if backend == "cupyx":
        from cupyx.scipy import ndimage as f

        options = {}
    else:
        from npaccel import filters as f

        options = {"backend": "numpy" if backend == "reference" else "cuda"}
    return {
        "box3": lambda: f.uniform_filter(x, 3, output=out, **options),
        "gaussian2": lambda: f.gaussian_filter(x, 2.0, output=out, **options),
        "sobel": lambda: f.sobel(x, -1, output=out, **options),
        "median3": lambda: f.median_filter(x, 3, output=out, **options),
    }[name]


def _filter(name: str, backend: str, n: int, dtype: str) -> Case:
    transfers = backend == "npaccel-cuda+transfers"

    def setup():
        import cupy

        host = _random((n, n), dtype, 12)
        if transfers:
            x, out = host, np.empty_like(host)
        else:
            x = cupy.asarray(host)
            out = cupy.empty_like(x)
        call = _filter_call(name, "cupyx" if backend == "cupyx" else "npaccel", x, out)
        reach = CROP + FILTERS[name]
        crop = host[:reach, :reach]
        expected = _filter_call(name, "reference", crop, np.empty_like(crop))()[:CROP, :CROP]
        # cupyx truncates integer results, npaccel rounds them (docs/filters.md): one unit
        scale = max(1.0, float(np.abs(expected).max()))
        atol = 1e-5 * scale if dtype == "float32" else 1.0

        def run():
            return call()

        def check(result):
            got = result[:CROP, :CROP]
            got = got if isinstance(got, np.ndarray) else cupy.asnumpy(got)
            check_close(got.astype(np.float64), expected.astype(np.float64), rtol=0, atol=atol,
                        what=f"{name} ({backend})")  # fmt: skip

        return run, check

    pixels = n * n
    taps = {"box3": 3, "gaussian2": 2 * int(4.0 * 2.0 + 0.5) + 1, "sobel": 3}.get(name)
    flops = 2 * (2 * taps - 1) * pixels if taps and dtype == "float32" else 0
    requires = (*GPU, "cupyx.scipy.ndimage") if backend == "cupyx" else GPU
    return Case(f"filters.{name}", backend, {"dtype": dtype, "n": n}, flops,
                2.0 * np.dtype(dtype).itemsize * pixels, setup, scalable=False,
                work=(float(pixels), "pixels"), roof="none" if transfers else "memory",
                requires=requires, device="gpu",
                timer="host" if transfers else "cuda-events")  # fmt: skip


def cases(profile: Profile) -> Iterator[Case]:
    full = profile.name != "quick"
    for n in profile.gpu_n:
        yield _copy(n)
        for dtype in ("float32", "float64"):
            yield _gemm(n, dtype)
        for direction in ("h2d", "d2h"):
            for memory in ("pageable", "pinned"):
                yield _transfer(n, direction, memory)
        yield _fft2(n)
        yield _solve(min(n, 8192))
        for dtype in ("float32", "uint8") if full else ("float32",):
            for name in FILTERS:
                for backend in ("npaccel-cuda", "cupyx"):
                    yield _filter(name, backend, n, dtype)
        yield _filter("box3", "npaccel-cuda+transfers", n, "float32")
