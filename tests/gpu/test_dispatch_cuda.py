"""npaccel.linalg, npaccel.fft and npaccel.einsum on a real GPU: CuPy in, CuPy out, equal
to NumPy within each dtype's tolerance; NumPy in with backend='cuda' gives NumPy out."""

from __future__ import annotations

import numpy as np
import pytest
from gpu_support import require_device

from npaccel import backends, fft, linalg
from npaccel.einsum import einsum

pytestmark = pytest.mark.gpu
cupy = require_device()

RNG = np.random.default_rng(7)


def rand(shape, dtype="f8"):
    dtype = np.dtype(dtype)
    x = RNG.standard_normal(shape)
    if dtype.kind == "c":
        x = x + 1j * RNG.standard_normal(shape)
    return x.astype(dtype)


def spd(shape, dtype="f8"):
    m = rand(shape, dtype)
    return m @ np.conj(np.swapaxes(m, -1, -2)) + shape[-1] * np.eye(shape[-1], dtype=dtype)


def close_gpu(got, expected):
    """``got`` is a CuPy array equal to NumPy's ``expected`` (dtype, shape, values)."""
    assert isinstance(got, cupy.ndarray), type(got)
    host = cupy.asnumpy(got)
    expected = np.asarray(expected)
    assert host.dtype == expected.dtype
    assert host.shape == expected.shape
    single = expected.dtype in (np.float32, np.complex64)
    rtol = 2e-4 if single else 1e-8
    scale = float(np.max(np.abs(expected))) if expected.size else 1.0
    np.testing.assert_allclose(host, expected, rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("dtype", ["f4", "f8", "c8", "c16"])
def test_linalg_cupy_in_cupy_out(dtype):
    a, b = spd((3, 5, 5), dtype), rand((5, 2), dtype)
    ga, gb = cupy.asarray(a), cupy.asarray(b)
    close_gpu(linalg.matmul(ga, gb), np.matmul(a, b))
    close_gpu(linalg.solve(ga, gb), np.linalg.solve(a, b))
    close_gpu(linalg.solve(ga, gb[:, 0]), np.linalg.solve(a, b[:, 0]))  # 1-D b, batched a
    close_gpu(linalg.inv(ga), np.linalg.inv(a))
    close_gpu(linalg.cholesky(ga), np.linalg.cholesky(a))
    upper = np.conj(np.swapaxes(np.linalg.cholesky(a), -1, -2))
    close_gpu(cupy.ascontiguousarray(linalg.cholesky(ga, upper=True)), upper)


def test_solve_broadcasts_stacks_on_the_gpu():
    a, b = spd((4, 1, 3, 3)), rand((2, 3, 1))
    close_gpu(linalg.solve(cupy.asarray(a), cupy.asarray(b)), np.linalg.solve(a, b))


@pytest.mark.parametrize("dtype", ["f4", "f8"])
def test_lstsq_on_the_gpu(dtype):
    a, b = rand((8, 3), dtype), rand((8, 2), dtype)
    x, residuals, rank, s = linalg.lstsq(cupy.asarray(a), cupy.asarray(b))
    ex, eres, erank, es = np.linalg.lstsq(a, b, rcond=None)
    np.testing.assert_allclose(cupy.asnumpy(x), ex, rtol=1e-3 if dtype == "f4" else 1e-8)
    np.testing.assert_allclose(cupy.asnumpy(residuals), eres, rtol=1e-3 if dtype == "f4" else 1e-8)
    np.testing.assert_allclose(cupy.asnumpy(s), es, rtol=1e-4)
    assert int(rank) == erank


FFTS = [("fft2", {}), ("ifft2", {"norm": "ortho"}), ("rfft2", {}), ("irfft2", {"s": (6, 9)}),
        ("fftn", {"axes": (0, 2)}), ("ifftn", {"s": (4, 4, 4), "axes": (0, 1, 2)}), ("rfftn", {}),
        ("irfftn", {})]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "kwargs", "dtype"),
    [(name, kwargs, dtype) for name, kwargs in FFTS for dtype in ("f4", "f8", "c8", "c16")
     if not (name.startswith("rfft") and dtype.startswith("c"))],
    ids=lambda v: v if isinstance(v, str) else "",
)  # fmt: skip
def test_fft_cupy_in_cupy_out(name, kwargs, dtype):
    a = rand((3, 6, 8), dtype)
    close_gpu(getattr(fft, name)(cupy.asarray(a), **kwargs), getattr(np.fft, name)(a, **kwargs))


def test_einsum_cupy_in_cupy_out():
    x, y = rand((4, 3, 5), "f4"), rand((4, 5, 2), "f4")
    gx, gy = cupy.asarray(x), cupy.asarray(y)
    for optimize in (True, False, "optimal"):
        close_gpu(einsum("bij,bjk->bik", gx, gy, optimize=optimize),
                  np.einsum("bij,bjk->bik", x, y))  # fmt: skip
    close_gpu(einsum("ij->ji", gx[0], dtype="f8", order="C"), x[0].T.astype("f8"))
    close_gpu(einsum("ii", cupy.asarray(np.eye(3))), np.einsum("ii", np.eye(3)))


def test_numpy_in_with_backend_cuda_comes_back_as_numpy():
    a, b = spd((2, 4, 4)), rand((4, 3))
    for got, expected in (
        (linalg.matmul(a, b, backend="cuda"), np.matmul(a, b)),
        (linalg.solve(a, b, backend="cuda"), np.linalg.solve(a, b)),
        (linalg.inv(a, backend="cuda"), np.linalg.inv(a)),
        (fft.rfft2(b, backend="cuda"), np.fft.rfft2(b)),
        (einsum("bij,jk->bik", a, b, backend="cuda"), np.einsum("bij,jk->bik", a, b)),
    ):
        assert type(got) is np.ndarray
        np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-10)
    x, _, rank, _ = linalg.lstsq(b, np.ones(4), backend="cuda")
    assert type(x) is np.ndarray
    assert isinstance(rank, int)


def test_out_stays_on_the_device():
    ga, gb = cupy.asarray(rand((3, 4), "f4")), cupy.asarray(rand((4, 5), "f4"))
    out = cupy.empty((3, 5), cupy.float32)
    assert linalg.matmul(ga, gb, out=out) is out
    host_out = np.empty((3, 5), np.float32)
    assert linalg.matmul(ga.get(), gb.get(), out=host_out, backend="cuda") is host_out
    np.testing.assert_allclose(host_out, cupy.asnumpy(out), rtol=1e-5)


def test_mixed_numpy_and_cupy_name_the_argument():
    g = cupy.eye(3)
    with pytest.raises(TypeError, match=r"`x2` is a NumPy array but `x1` is a CuPy array"):
        linalg.matmul(g, np.eye(3))
    with pytest.raises(TypeError, match=r"`b` is a CuPy array but `a` is a NumPy array"):
        linalg.solve(np.eye(3), cupy.ones(3))
    with pytest.raises(TypeError, match=r"`out` must be an array of the operands' type"):
        linalg.matmul(g, g, out=np.empty((3, 3)))


def test_cupy_input_cannot_be_forced_onto_the_host():
    with pytest.raises(backends.BackendError,
                       match=r"`backend` 'cpu' cannot take a CuPy array; it runs on backend "
                             r"'cuda'"):  # fmt: skip
        fft.fft2(cupy.ones((4, 4)), backend="cpu")
