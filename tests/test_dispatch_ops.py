"""npaccel.linalg, npaccel.fft and npaccel.einsum: NumPy's answers (values and dtypes) on
every host backend, errors raised up front that name the argument, and the backend chosen
by the operands' array type through the registry.

Without a GPU, backend 'cuda' runs under numba-cuda's simulator, where device arrays are
NumPy arrays: that checks the cuda backend's own code (batch broadcasting, the upper
Cholesky factor, einsum's layout and out handling) against NumPy. tests/gpu checks CuPy.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npaccel import backends, fft, linalg, threads
from npaccel._ops import _cpu
from npaccel.cuda._device import simulated
from npaccel.einsum import einsum, parse_subscripts
from npaccel.fft import work_dtype

BACKENDS = ["cpu", "numpy", *(["cuda"] if simulated() else [])]
NUMPY2 = np.lib.NumpyVersion(np.__version__) >= "2.0.0"
RNG = np.random.default_rng(20261203)


def rand(shape, dtype="f8"):
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        return (RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)).astype(dtype)
    if dtype.kind in "iu":
        return RNG.integers(-4 if dtype.kind == "i" else 0, 5, shape).astype(dtype)
    if dtype.kind == "b":
        return RNG.integers(0, 2, shape).astype(bool)
    return RNG.standard_normal(shape).astype(dtype)


def well_conditioned(shape, dtype="f8"):
    a = rand(shape, dtype)
    return a + 4 * np.eye(shape[-1], dtype=a.dtype)


def close(actual, expected, rtol=None):
    assert type(actual) is type(expected) or np.isscalar(expected)
    assert actual.shape == np.shape(expected)
    assert actual.dtype == expected.dtype
    single = np.dtype(expected.dtype) in (np.float32, np.complex64)
    rtol = rtol if rtol is not None else (2e-4 if single else 1e-10)
    scale = float(np.max(np.abs(expected))) if np.size(expected) else 1.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


# --- linalg equals numpy.linalg -----------------------------------------------------------

MATMUL_SHAPES = [
    ((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((2, 1, 3, 4), (5, 4, 2)), ((4,), (4, 5)),
    ((2, 3, 4), (4,)), ((4,), (4,)),
]  # fmt: skip


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", ["f4", "f8", "c16", "i4"])
def test_matmul_equals_numpy(backend, shapes, dtype):
    x1, x2 = rand(shapes[0], dtype), rand(shapes[1], dtype)
    expected = np.matmul(x1, x2)
    close(np.asarray(linalg.matmul(x1, x2, backend=backend)), expected)


SOLVE_SHAPES = [
    ((3, 3), (3,)), ((3, 3), (3, 2)), ((2, 3, 3), (3,)), ((2, 3, 3), (3, 2)),
    ((4, 1, 3, 3), (2, 3, 1)), ((3, 3), (5, 3, 2)),
]  # fmt: skip


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shapes", SOLVE_SHAPES, ids=str)
def test_solve_equals_numpy(backend, shapes):
    a, b = well_conditioned(shapes[0]), rand(shapes[1])
    if NUMPY2 or len(shapes[1]) == 1 or len(shapes[1]) != len(shapes[0]) - 1:
        # (NumPy 1.x read b.ndim == a.ndim - 1 as a stack of vectors)
        close(linalg.solve(a, b, backend=backend), np.linalg.solve(a, b))
    x = linalg.solve(a, b, backend=backend)
    ax = (a @ x[..., None])[..., 0] if b.ndim == 1 else a @ x
    np.testing.assert_allclose(ax, np.broadcast_to(b, ax.shape), atol=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["f4", "f8", "c8", "c16", "i8", "?"])
def test_inv_and_solve_keep_numpys_dtype(backend, dtype):
    a = np.eye(3, dtype=dtype) * 2 if dtype != "?" else np.eye(3, dtype=bool)
    a = a + (rand((3, 3), dtype) * 0.1 if np.dtype(dtype).kind in "fc" else 0)
    close(linalg.inv(a, backend=backend), np.linalg.inv(a))
    b = rand((3, 2), dtype)
    close(linalg.solve(a, b, backend=backend), np.linalg.solve(a, b))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["f4", "c16"])
@pytest.mark.parametrize("upper", [False, True])
def test_cholesky_equals_numpy(backend, dtype, upper):
    m = rand((2, 4, 4), dtype)
    a = m @ np.conj(np.swapaxes(m, -1, -2)) + 4 * np.eye(4, dtype=dtype)
    lower = np.linalg.cholesky(a)
    expected = np.conj(np.swapaxes(lower, -1, -2)) if upper else lower
    got = linalg.cholesky(a, upper=upper, backend=backend)
    close(np.ascontiguousarray(got), np.ascontiguousarray(expected))
    factor = (
        np.conj(np.swapaxes(got, -1, -2)) @ got
        if upper
        else got @ np.conj(np.swapaxes(got, -1, -2))
    )
    np.testing.assert_allclose(factor, a, rtol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("a_shape", "b_shape"), [((6, 3), (6,)), ((6, 3), (6, 2)), ((3, 5), (3,))])
@pytest.mark.parametrize("dtype", ["f4", "f8"])
def test_lstsq_equals_numpy(backend, a_shape, b_shape, dtype):
    a, b = rand(a_shape, dtype), rand(b_shape, dtype)
    x, residuals, rank, s = linalg.lstsq(a, b, backend=backend)
    ex, eres, erank, es = np.linalg.lstsq(a, b, rcond=None)
    close(x, ex, rtol=1e-3 if dtype == "f4" else 1e-8)
    close(residuals, eres, rtol=1e-3 if dtype == "f4" else 1e-8)
    close(s, es)
    assert rank == erank
    assert isinstance(rank, int)


def test_rank_deficient_lstsq_uses_numpys_default_rcond():
    a = np.array([[1.0, 1.0], [1.0, 1.0 + 1e-17], [2.0, 2.0]])
    assert linalg.lstsq(a, np.ones(3))[2] == np.linalg.lstsq(a, np.ones(3), rcond=None)[2] == 1


@given(
    batch1=st.lists(st.integers(1, 3), max_size=2),
    batch2=st.lists(st.integers(1, 3), max_size=2),
    n=st.integers(1, 4), k=st.integers(1, 4), m=st.integers(1, 4),
)  # fmt: skip
@settings(max_examples=30, deadline=None)
def test_batched_matmul_random_shapes(batch1, batch2, n, k, m):
    try:
        batch = np.broadcast_shapes(tuple(batch1), tuple(batch2))
    except ValueError:
        return
    x1, x2 = rand((*batch1, n, k), "f4"), rand((*batch2, k, m), "f4")
    got = linalg.matmul(x1, x2)
    assert got.shape == (*batch, n, m)
    close(got, np.matmul(x1, x2))


# --- fft equals numpy.fft -----------------------------------------------------------------

FFT_CASES = [  # (function name, shape, kwargs)
    ("fft2", (5, 6), {}),
    ("fft2", (2, 5, 6), {"s": (4, 8), "norm": "ortho"}),
    ("ifft2", (5, 6), {"axes": (0, 1), "norm": "forward"}),
    ("rfft2", (5, 7), {}),
    ("rfft2", (3, 5, 7), {"axes": (0, 2), "s": (4, -1)}),
    ("irfft2", (5, 4), {}),
    ("irfft2", (5, 4), {"s": (5, 7)}),
    ("fftn", (3, 4, 5), {}),
    ("fftn", (3, 4, 5), {"axes": (-1, 0)}),
    ("ifftn", (3, 4, 5), {"s": (2, 6), "axes": (0, 2)}),
    ("rfftn", (3, 4, 5), {"norm": "backward"}),
    ("irfftn", (3, 4, 5), {"axes": (1, 2), "s": (4, 9)}),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("name", "shape", "kwargs", "dtype"),
    [(*case, dtype) for case in FFT_CASES for dtype in ("f4", "f8", "c8", "c16")
     if not (case[0].startswith("rfft") and dtype.startswith("c"))],  # complex: an error
)  # fmt: skip
def test_fft_equals_numpy(backend, name, shape, kwargs, dtype):
    a = rand(shape, dtype)
    expected = getattr(np.fft, name)(a, **kwargs)
    if not NUMPY2 and np.dtype(dtype) in (np.float32, np.complex64):
        expected = expected.astype(np.complex64 if expected.dtype.kind == "c" else np.float32)
    close(getattr(fft, name)(a, **kwargs, backend=backend), expected)


def test_s_without_axes_transforms_the_last_len_s_axes():
    # NumPy 2 deprecates this form (it warns); npaccel keeps its meaning without a warning.
    a = rand((3, 4, 5))
    close(fft.fftn(a, s=(2, 6)), np.fft.fftn(a, s=(2, 6), axes=(1, 2)))
    close(fft.irfftn(a, s=(7,)), np.fft.irfftn(a, s=(7,), axes=(2,)))


@pytest.mark.parametrize("dtype", ["?", "u1", "i2", "i8", "f2", "f4", "f8", "g", "c8", "c16", "G"])
@pytest.mark.parametrize("kind", ["fftn", "ifftn", "rfftn", "irfftn"])
def test_fft_dtype_policy_is_numpy_2s(dtype, kind):
    if kind == "rfftn" and np.dtype(dtype).kind == "c":
        with pytest.raises(TypeError, match="must be real for rfftn"):
            work_dtype(np.dtype(dtype), kind, "cpu")
        return
    _, result = work_dtype(np.dtype(dtype), kind, "cpu")
    assert fft.__dict__[kind](np.ones((2, 4), dtype)).dtype == result
    if NUMPY2:
        assert getattr(np.fft, kind)(np.ones((2, 4), dtype)).dtype == result


def test_fft_workers_follow_set_threads():
    assert 1 <= _cpu.workers() <= threads.usable_cpus()
    with threads.set_threads(1):
        assert _cpu.workers() == 1
        a = rand((4, 6))
        close(fft.fft2(a), np.fft.fft2(a))


@given(
    shape=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    data=st.data(),
)
@settings(max_examples=30, deadline=None)
def test_fftn_random_shapes_and_axes(shape, data):
    ndim = len(shape)
    axes = data.draw(st.lists(st.integers(-ndim, ndim - 1), min_size=1, max_size=ndim,
                              unique_by=lambda ax: ax % ndim))  # fmt: skip
    s = data.draw(st.none() | st.lists(st.integers(1, 7), min_size=len(axes),
                                       max_size=len(axes)))  # fmt: skip
    a = rand(tuple(shape), "f8")
    close(fft.fftn(a, s=s, axes=axes), np.fft.fftn(a, s=s, axes=axes))
    close(fft.rfftn(a, s=s, axes=axes), np.fft.rfftn(a, s=s, axes=axes))


# --- einsum equals numpy.einsum ------------------------------------------------------------

EINSUM_CASES = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("ij,jk", [(3, 4), (4, 5)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]),
    ("ii", [(4, 4)]),
    ("ii->i", [(4, 4)]),
    ("ij->ji", [(3, 4)]),
    ("i,i", [(4,), (1,)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    ("b i j , b j -> b i", [(2, 3, 4), (2, 4)]),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("subscripts", "shapes"), EINSUM_CASES, ids=lambda c: str(c))
@pytest.mark.parametrize("dtype", ["f4", "c16"])
@pytest.mark.parametrize("optimize", [True, False])
def test_einsum_equals_numpy(backend, subscripts, shapes, dtype, optimize):
    operands = [rand(shape, dtype) for shape in shapes]
    expected = np.einsum(subscripts, *operands, optimize=False)
    got = einsum(subscripts, *operands, optimize=optimize, backend=backend)
    close(np.asarray(got), np.asarray(expected))
    assert parse_subscripts(subscripts, shapes) == np.shape(expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_einsum_dtype_order_and_out(backend):
    a = rand((3, 4), "f4")
    got = einsum("ij->ji", a, dtype="f8", order="C", backend=backend)
    assert got.dtype == np.float64
    assert got.flags.c_contiguous
    out = np.empty((3, 3), np.float32)
    assert einsum("ij,kj->ik", a, a, out=out, backend=backend) is out
    close(out, np.einsum("ij,kj->ik", a, a))


def test_einsum_explicit_path():
    ops = [rand((2, 3)), rand((3, 4)), rand((4, 5))]
    path = np.einsum_path("ij,jk,kl->il", *ops, optimize="optimal")[0]
    close(einsum("ij,jk,kl->il", *ops, optimize=path), np.einsum("ij,jk,kl->il", *ops))


# --- out= and array_like ------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_out_is_filled_and_returned(backend):
    x1, x2 = rand((2, 3, 4), "f4"), rand((4, 5), "f4")
    out = np.empty((2, 3, 5), np.float32)
    assert linalg.matmul(x1, x2, out=out, backend=backend) is out
    close(out, np.matmul(x1, x2))
    spec = np.empty((3, 3), np.complex64)
    assert fft.rfft2(x1[0], out=spec, backend=backend) is spec
    close(spec, np.fft.rfft2(x1[0]).astype(np.complex64))


def test_lists_are_array_like():
    close(linalg.solve([[2.0, 0.0], [0.0, 4.0]], [2.0, 2.0]), np.array([1.0, 0.5]))
    close(fft.fft2([[1, 0], [0, 0]]), np.ones((2, 2), complex))


# --- errors raised up front, naming the argument ------------------------------------------

ERRORS = [
    (
        lambda: linalg.matmul(np.ones((2, 3)), np.ones((4, 5))),
        ValueError,
        r"`x1` has 3 columns \(shape \(2, 3\)\) but `x2` has 4 rows \(shape \(4, 5\)\)",
    ),
    (
        lambda: linalg.matmul(np.ones(3), np.float64(2)),
        ValueError,
        r"`x2` must have at least 1 dimension; got a 0-d array",
    ),
    (
        lambda: linalg.matmul(np.ones((2, 2, 3)), np.ones((3, 3, 4))),
        ValueError,
        r"stack dimensions of `x1` \(2,\) and `x2` \(3,\) do not broadcast",
    ),
    (
        lambda: linalg.inv(np.ones((2, 3))),
        ValueError,
        r"`a` must be square in its last two axes, shape \(\.\.\., M, M\); got shape \(2, 3\)",
    ),
    (
        lambda: linalg.inv(np.ones(3)),
        ValueError,
        r"`a` must be a square matrix .* got shape \(3,\)",
    ),
    (
        lambda: linalg.inv(np.eye(2, dtype=np.float16)),
        TypeError,
        r"`a` has dtype float16; LAPACK takes float32, float64",
    ),
    (
        lambda: linalg.solve(np.eye(3), np.ones(4)),
        ValueError,
        r"`b` has 4 rows \(shape \(4,\)\) but `a` is 3x3 \(shape \(3, 3\)\)",
    ),
    (
        lambda: linalg.solve(np.ones((2, 3, 3)), np.ones((4, 3, 1))),
        ValueError,
        r"stack dimensions of `a` \(2,\) and `b` \(4,\) do not broadcast",
    ),
    (lambda: linalg.solve(np.ones((3, 4)), np.ones(3)), ValueError, r"`a` must be square"),
    (
        lambda: linalg.cholesky(np.eye(2), upper="yes"),
        TypeError,
        r"`upper` must be True or False; got 'yes'",
    ),
    (
        lambda: linalg.lstsq(np.ones((3, 2)), np.ones(4)),
        ValueError,
        r"`b` has 4 rows \(shape \(4,\)\) but `a` has 3",
    ),
    (lambda: linalg.lstsq(np.ones((2, 3, 2)), np.ones(3)), ValueError, r"`a` must be 2-D"),
    (
        lambda: linalg.lstsq(np.ones((3, 2)), np.ones(3), rcond="auto"),
        TypeError,
        r"`rcond` must be a real number or None; got 'auto'",
    ),
    (
        lambda: linalg.matmul(np.ones((2, 3)), np.ones((3, 4)), out=np.empty((2, 5))),
        ValueError,
        r"`out` has shape \(2, 5\); this call returns shape \(2, 4\)",
    ),
    (
        lambda: linalg.matmul(np.ones((2, 3)), np.ones((3, 4)), out=np.empty((2, 4), int)),
        TypeError,
        r"`out` has dtype int64; the result is float64",
    ),
    (
        lambda: linalg.matmul(np.ones((2, 3)), np.ones((3, 4)), out=[[0] * 4] * 2),
        TypeError,
        r"`out` must be an array of the operands' type \(NumPy array\); got a builtins.list",
    ),
    (
        lambda: fft.fft2(np.ones(3)),
        ValueError,
        r"`axes` entry -2 is out of range for a 1-D input \(shape \(3,\)\); use -1 <= axis < 1",
    ),
    (lambda: fft.fftn(np.ones((3, 3)), axes=(0, -2)), ValueError, r"`axes` must not repeat"),
    (
        lambda: fft.fftn(np.ones((3, 3)), axes=(0, 1), s=(2,)),
        ValueError,
        r"`s` has 1 entries but `axes` \(0, 1\) has 2",
    ),
    (lambda: fft.fftn(np.ones((3, 3)), s=(0, 2)), ValueError, r"`s` entries must be >= 1"),
    (lambda: fft.fftn(np.ones((3, 0))), ValueError, r"`a` has no points along axis 1"),
    (
        lambda: fft.irfft2(np.ones((3, 1))),
        ValueError,
        r"default output length 2 \* \(1 - 1\) = 0 is invalid; give `s`",
    ),
    (
        lambda: fft.fft2(np.ones((3, 3)), norm="unitary"),
        ValueError,
        r"`norm` must be one of \{None, 'backward', 'ortho', 'forward'\}; got 'unitary'",
    ),
    (lambda: fft.rfft2(np.ones((3, 3), complex)), TypeError, r"`a` must be real for rfftn"),
    (lambda: fft.fftn(np.ones(3), axes=("0",)), TypeError, r"`axes` entries must be integers"),
    (lambda: fft.fftn(np.float64(1.0)), ValueError, r"`a` must have at least 1 dimension"),
    (lambda: fft.fftn(np.array(["a"])), TypeError, r"`a` has dtype <U1; FFTs take"),
    (
        lambda: einsum("ij,jk", np.ones((2, 3)), np.ones((4, 2))),
        ValueError,
        r"label 'j' has size 4 in operand 1 \(shape \(4, 2\)\) but 3 in operand 0",
    ),
    (
        lambda: einsum("ij,jk", np.ones((2, 3))),
        ValueError,
        r"`subscripts` 'ij,jk' has 2 operand term\(s\) but 1 operand\(s\) were given",
    ),
    (
        lambda: einsum("ijk", np.ones((2, 3))),
        ValueError,
        r"term 'ijk' names 3 dimension\(s\) but operand 0 has 2 \(shape \(2, 3\)\)",
    ),
    (lambda: einsum("ij->ik", np.ones((2, 3))), ValueError, r"output label 'k' is in no"),
    (lambda: einsum("ij->ii", np.ones((2, 3))), ValueError, r"output label 'i' appears more"),
    (lambda: einsum("i1", np.ones((2, 3))), ValueError, r"'1' in operand 0's term 'i1' is not"),
    (lambda: einsum("i->i->i", np.ones(2)), ValueError, r"at most one '->'"),
    (lambda: einsum(0, np.ones(2)), TypeError, r"`subscripts` must be a str"),
    (
        lambda: einsum("i", np.ones(2), optimize="fast"),
        ValueError,
        r"`optimize` must be one of \{False, True, 'greedy', 'optimal'\}",
    ),
    (
        lambda: einsum("i", np.ones(2), dtype="i4"),
        TypeError,
        r"`operands\[0\]` has dtype float64, which does not cast to `dtype` int32",
    ),
    (lambda: einsum("i"), ValueError, r"at least one operand"),
    (
        lambda: linalg.inv(np.eye(2), backend="gpu"),
        backends.BackendError,
        r"`backend` must be one of \['cpu', 'cuda', 'numpy'\] or None for linalg; got 'gpu'",
    ),
    (lambda: fft.fft2(np.eye(2), backend=1), backends.BackendError, r"for fft; got 1"),
    (lambda: linalg.inv([[1, 2], [3]]), TypeError, r"`a` must be array_like"),
]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    ERRORS,
    ids=[f"{i}-{e.__name__}" for i, (_, e, _) in enumerate(ERRORS)],
)
def test_errors_name_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()


# --- the backend is chosen by the array type, through the registry ------------------------


class FakeArray(np.ndarray):
    """A registered array type that is not NumPy's: proves the dispatch seam without CuPy."""


@pytest.fixture
def fake_backend():
    """Family backends 'fake' for FakeArray, whose functions record their calls; the
    registry is restored (and checked) afterwards."""
    calls = []
    ops = type(sys)("npaccel_fake_ops")

    def record(name):
        def run(*args, **kwargs):
            calls.append((name, args, kwargs))
            return np.zeros(1).view(FakeArray)

        return run

    for name in ("inv", "matmul", "fftn", "einsum"):
        setattr(ops, name, record(name))
    before = (list(backends._ARRAY_TYPES), {f: dict(e) for f, e in backends._REGISTRY.items()})
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "npaccel_fake_ops", ops)
        mp.setattr(backends, "_ARRAY_TYPES", list(backends._ARRAY_TYPES))
        for family in ("linalg", "fft", "einsum"):
            mp.setitem(backends._REGISTRY, family, dict(backends._REGISTRY[family]))
            backends.register(family, "fake", "npaccel_fake_ops",
                              array_type=f"{__name__}.FakeArray")  # fmt: skip
        yield calls
    after = (list(backends._ARRAY_TYPES), {f: dict(e) for f, e in backends._REGISTRY.items()})
    assert after == before
    assert backends.backend_for_array(np.zeros(2).view(FakeArray)) == "cpu"


def test_array_type_chooses_the_backend(fake_backend):
    a = well_conditioned((3, 3)).view(FakeArray)
    assert isinstance(linalg.inv(a), FakeArray)
    linalg.matmul(a, a)
    fft.fft2(a)
    einsum("ij,jk", a, a)
    assert [c[0] for c in fake_backend] == ["inv", "matmul", "fftn", "einsum"]
    _, args, _ = fake_backend[2]
    assert args[1:] == ((3, 3), (0, 1), "backward")  # normalised before the backend sees them
    # a FakeArray cannot be forced onto another backend
    with pytest.raises(backends.BackendError,
                       match=r"`backend` 'numpy' cannot take a .*FakeArray; it runs on backend "
                             r"'fake' \(or leave `backend` None\)"):  # fmt: skip
        linalg.inv(a, backend="numpy")
    assert len(fake_backend) == 4


def test_mixed_array_types_name_the_argument(fake_backend):
    a = np.eye(3)
    with pytest.raises(TypeError, match=r"`x2` is a .*FakeArray but `x1` is a NumPy array: "
                                        r"all operands must be one array type"):  # fmt: skip
        linalg.matmul(a, a.view(FakeArray))
    with pytest.raises(TypeError, match=r"`operands\[2\]` is a NumPy array but `operands\[0\]`"):
        einsum("ij,jk,kl", a.view(FakeArray), a.view(FakeArray), a)
    with pytest.raises(TypeError, match=r"`out` must be an array of the operands' type"):
        linalg.matmul(a.view(FakeArray), a.view(FakeArray), out=np.empty((3, 3)))
    assert fake_backend == []  # nothing ran


def test_unregistered_family_type_is_a_type_error(monkeypatch):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(backends, "_ARRAY_TYPES", list(backends._ARRAY_TYPES))
        mp.setitem(sys.modules, "npaccel_fake_ops", type(sys)("npaccel_fake_ops"))
        mp.setitem(backends._REGISTRY, "other", {})
        backends.register("other", "fake", "npaccel_fake_ops", array_type=f"{__name__}.FakeArray")
        with pytest.raises(TypeError, match=r"`a` is a .*FakeArray; npaccel's linalg ops take "
                                            r"NumPy arrays, or the array types of backends "
                                            r"\['cuda'\]"):  # fmt: skip
            linalg.inv(np.eye(2).view(FakeArray))


def test_backends_are_registered_for_each_family():
    for family in ("linalg", "fft", "einsum"):
        assert set(backends.available(family)) >= {"cpu", "numpy", "cuda"}
        assert backends.implementation(family, None, np.zeros(2))[0] == "cpu"


def test_cuda_without_cupy_names_the_extra(monkeypatch):
    from npaccel.cuda import _device

    monkeypatch.setattr(_device, "simulated", lambda: False)  # as on a machine without the sim
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy raises ImportError
    for call in (lambda: linalg.inv(np.eye(2), backend="cuda"),
                 lambda: fft.fft2(np.eye(2), backend="cuda"),
                 lambda: einsum("ii", np.eye(2), backend="cuda")):  # fmt: skip
        with pytest.raises(
            backends.BackendError,
            match=r"backend 'cuda' needs CuPy .*pip install \"npaccel\[gpu\]\"",
        ):
            call()


def test_validation_comes_before_the_backend_is_needed(monkeypatch):
    from npaccel.cuda import _device

    monkeypatch.setattr(_device, "simulated", lambda: False)
    monkeypatch.setitem(sys.modules, "cupy", None)
    with pytest.raises(ValueError, match="must be square"):
        linalg.inv(np.ones((2, 3)), backend="cuda")


def test_fft_longdouble_is_refused_on_cuda():
    if np.dtype(np.longdouble) == np.dtype(np.float64):
        pytest.skip("long double is double on this platform")
    with pytest.raises(TypeError, match=r"cuFFT has no long double"):
        work_dtype(np.dtype(np.longdouble), "fftn", "cuda")


def test_importing_the_ops_loads_no_optional_library():
    code = ("import sys, json; import npaccel.linalg, npaccel.fft, npaccel.einsum; "
            "print(json.dumps(sorted(sys.modules)))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {name.split(".")[0] for name in json.loads(out.stdout)}
    assert not loaded & {"cupy", "scipy", "numba", "dask", "threadpoolctl"}
