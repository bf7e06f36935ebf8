"""Bad arguments raise ValueError/TypeError naming the argument and echoing the value."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest

from npaccel import filters
from npaccel.backends import BackendError

X = np.arange(12, dtype=np.float64).reshape(3, 4)
X3 = np.zeros((2, 3, 4))
RO = np.zeros((3, 4))
RO.flags.writeable = False
F = filters

CASES = [
    # sigma, size, order, truncate, radius
    ("negative sigma", lambda: F.gaussian_filter(X, -1.0), ValueError,
     r"`sigma` must be finite and >= 0; got -1\.0"),
    ("negative sigma in a sequence", lambda: F.gaussian_filter(X, (1.0, -0.5)), ValueError,
     r"`sigma` must be finite and >= 0; got -0\.5"),
    ("nan sigma", lambda: F.gaussian_laplace(X, float("nan")), ValueError,
     r"`sigma` must be finite and >= 0; got nan"),
    ("zero sigma 1d", lambda: F.gaussian_filter1d(X, 0), ValueError, r"`sigma` must be > 0"),
    ("string sigma", lambda: F.gaussian_filter(X, "wide"), TypeError,
     r"`sigma` must be a real number; got 'wide'"),
    ("negative order", lambda: F.gaussian_filter(X, 1.0, order=-1), ValueError,
     r"`order` must be >= 0; got -1"),
    ("negative truncate", lambda: F.gaussian_filter(X, 1.0, truncate=-2), ValueError,
     r"`truncate` must be finite and >= 0; got -2"),
    ("negative radius", lambda: F.gaussian_filter1d(X, 1.0, radius=-1), ValueError,
     r"`radius` must be >= 0; got -1"),
    ("size 0", lambda: F.uniform_filter(X, 0), ValueError, r"`size` must be >= 1; got 0"),
    ("size -2 in a sequence", lambda: F.minimum_filter(X, size=(3, -2)), ValueError,
     r"`size` must be >= 1; got -2"),
    ("size 0 1d", lambda: F.maximum_filter1d(X, 0), ValueError, r"`size` must be >= 1; got 0"),
    ("float size", lambda: F.uniform_filter1d(X, 2.5), TypeError,
     r"`size` must be an integer; got 2\.5"),
    ("sizes for the wrong number of axes", lambda: F.uniform_filter(X, (3, 3, 3)), ValueError,
     r"`size` must be a scalar or have one entry per filtered axis \(2\); got \(3, 3, 3\)"),
    # origin
    ("origin too large", lambda: F.uniform_filter1d(X, 3, origin=2), ValueError,
     r"`origin` must satisfy .*\[-1, 1\] for size 3; got 2"),
    ("origin too small for an even size", lambda: F.correlate1d(X, [1, 2], origin=-2),
     ValueError, r"`origin` .*\[-1, 0\] for size 2; got -2"),
    ("origin of an even size", lambda: F.minimum_filter(X, size=(3, 4), origin=(0, 2)),
     ValueError, r"`origin` .*\[-2, 1\] for size 4; got 2"),
    ("origin of a footprint", lambda: F.median_filter(X, footprint=np.ones((1, 3)), origin=1),
     ValueError, r"`origin` .*\[0, 0\] for size 1; got 1"),
    ("origin of weights", lambda: F.correlate(X, np.ones((2, 2)), origin=(0, 1)), ValueError,
     r"`origin` .*for size 2; got 1"),
    ("origin of convolve", lambda: F.convolve1d(X, [1, 2, 3], origin=-2), ValueError,
     r"`origin` .*for size 3; got -2"),
    ("string origin", lambda: F.uniform_filter(X, 3, origin="left"), TypeError,
     r"`origin` must be an integer; got 'left'"),
    # mode, cval
    ("unknown mode", lambda: F.uniform_filter(X, 3, mode="edge"), ValueError,
     r"`mode` must be one of \{.*'reflect'.*\}; got 'edge'"),
    ("unknown mode 1d", lambda: F.correlate1d(X, [1], mode="Reflect"), ValueError,
     r"`mode` must be one of .*; got 'Reflect'"),
    ("unknown mode in a sequence", lambda: F.gaussian_filter(X, 1, mode=("wrap", "zero")),
     ValueError, r"`mode` must be one of .*; got 'zero'"),
    ("modes for the wrong number of axes", lambda: F.uniform_filter(X, 3, mode=["wrap"] * 3),
     ValueError, r"`mode` must be a scalar or have one entry per filtered axis \(2\)"),
    ("mode sequence for correlate", lambda: F.correlate(X, np.ones((2, 2)), mode=["wrap"] * 2),
     ValueError, r"`mode` must be one of .*; got \['wrap', 'wrap'\]"),
    ("mode sequence for median", lambda: F.median_filter(X, 3, mode=["wrap", "reflect"]),
     ValueError, r"`mode` must be a single value here; got \['wrap', 'reflect'\]"),
    ("mode sequence for a min footprint",
     lambda: F.minimum_filter(X, footprint=[[1, 0], [0, 1]], mode=("wrap", "nearest")),
     ValueError, r"`mode` must be a single value here; got \('wrap', 'nearest'\)"),
    ("non-numeric cval", lambda: F.uniform_filter(X, 3, cval="zero"), TypeError,
     r"`cval` must be a real number; got 'zero'"),
    # axes, axis
    ("axes out of range", lambda: F.uniform_filter(X, 3, axes=(0, 2)), ValueError,
     r"`axes` entries must be in \[-2, 1\] for a 2-D input; got \(0, 2\)"),
    ("negative axes out of range", lambda: F.median_filter(X, 3, axes=-3), ValueError,
     r"`axes` entries must be in \[-2, 1\] for a 2-D input; got -3"),
    ("repeated axes", lambda: F.gaussian_filter(X, 1, axes=(1, 1)), ValueError,
     r"`axes` must not repeat an axis; got \(1, 1\)"),
    ("repeated axes, negative", lambda: F.maximum_filter(X3, 2, axes=(0, -3)), ValueError,
     r"`axes` must not repeat an axis; got \(0, -3\)"),
    ("float axes", lambda: F.uniform_filter(X, 3, axes=(0.5,)), TypeError,
     r"`axes` must be an integer; got 0\.5"),
    ("axis out of range", lambda: F.correlate1d(X, [1, 2], axis=2), ValueError,
     r"`axis` must be in \[-2, 1\] for a 2-D input; got 2"),
    ("axis out of range, min1d", lambda: F.minimum_filter1d(X, 2, axis=-3), ValueError,
     r"`axis` must be in \[-2, 1\] for a 2-D input; got -3"),
    ("sobel axis outside axes", lambda: F.sobel(X3, axis=0, axes=(1, 2)), ValueError,
     r"`axis` 0 must be one of `axes` \(1, 2\)"),
    # output
    ("output of the wrong shape", lambda: F.uniform_filter(X, 3, output=np.zeros((4, 3))),
     ValueError, r"`output` must have the input's shape \(3, 4\); got \(4, 3\)"),
    ("output of the wrong shape, rank", lambda: F.median_filter(X, 3, output=np.zeros(12)),
     ValueError, r"`output` must have the input's shape \(3, 4\); got \(12,\)"),
    ("bool output dtype", lambda: F.uniform_filter(X, 3, output=bool), TypeError,
     r"`output` dtype must be one of \{uint8, .*float64.*\}; got bool"),
    ("bool output array", lambda: F.sobel(X, output=np.zeros((3, 4), bool)), TypeError,
     r"`output` dtype must be one of .*; got bool"),
    ("object output dtype", lambda: F.median_filter(X, 3, output=object), TypeError,
     r"`output` dtype must be one of .*; got object"),
    ("output is not an array or dtype", lambda: F.uniform_filter(X, 3, output="fast"),
     TypeError, r"`output` must be None, an ndarray or a dtype; got 'fast'"),
    ("read-only output", lambda: F.gaussian_filter(X, 1, output=RO), ValueError,
     r"`output` must be writeable; got a read-only array"),
    ("read-only output, rank", lambda: F.minimum_filter(X, 2, output=RO), ValueError,
     r"`output` must be writeable"),
    # weights, footprint, size
    ("weights of the wrong rank", lambda: F.correlate(X, np.ones(3)), ValueError,
     r"`weights` must have one dimension per filtered axis \(2\); got shape \(3,\)"),
    ("2-D weights for correlate1d", lambda: F.correlate1d(X, np.ones((2, 2))), ValueError,
     r"`weights` must be 1-D; got shape \(2, 2\)"),
    ("empty weights", lambda: F.convolve1d(X, []), ValueError,
     r"`weights` must not be empty; got shape \(0,\)"),
    ("complex weights", lambda: F.correlate1d(X, [1j, 1]), TypeError,
     r"`weights` must be an array of real numbers; got \[1j, 1\]"),
    ("footprint of the wrong rank", lambda: F.median_filter(X, footprint=np.ones(3)),
     ValueError, r"`footprint` must have one dimension per filtered axis \(2\); got shape "
     r"\(3,\)"),
    ("footprint of the wrong rank for axes",
     lambda: F.maximum_filter(X3, footprint=np.ones((2, 2)), axes=(0, 1, 2)), ValueError,
     r"`footprint` must have one dimension per filtered axis \(3\); got shape \(2, 2\)"),
    ("empty footprint", lambda: F.minimum_filter(X, footprint=np.zeros((2, 2))), ValueError,
     r"`footprint` must select at least one element; got all False"),
    ("both size and footprint", lambda: F.median_filter(X, 3, footprint=np.ones((3, 3))),
     ValueError, r"give `size` or `footprint`, not both"),
    ("neither size nor footprint", lambda: F.minimum_filter(X), ValueError,
     r"one of `size` or `footprint` must be given; got neither"),
    ("neither, percentile", lambda: F.percentile_filter(X, 50), ValueError,
     r"one of `size` or `footprint` must be given; got neither"),
    # rank, percentile
    ("rank too large", lambda: F.rank_filter(X, 9, size=3), ValueError,
     r"`rank` must be in \[-9, 8\] for a footprint of 9 elements; got 9"),
    ("rank too small", lambda: F.rank_filter(X, -4, footprint=[[1, 0], [1, 1]]), ValueError,
     r"`rank` must be in \[-3, 2\] for a footprint of 3 elements; got -4"),
    ("float rank", lambda: F.rank_filter(X, 1.5, size=3), TypeError,
     r"`rank` must be an integer; got 1\.5"),
    ("percentile above 100", lambda: F.percentile_filter(X, 100.5, size=3), ValueError,
     r"`percentile` must be in \[-100, 100\]; got 100\.5"),
    ("percentile below -100", lambda: F.percentile_filter(X, -101, size=3), ValueError,
     r"`percentile` must be in \[-100, 100\]; got -101"),
    ("string percentile", lambda: F.percentile_filter(X, "median", size=3), TypeError,
     r"`percentile` must be a real number; got 'median'"),
    # input
    ("complex input to a median", lambda: F.median_filter(X + 1j, 3), TypeError,
     r"rank filters need ordered values; `input` dtype complex128 is complex"),
    ("complex input to a rank filter", lambda: F.rank_filter(X.astype(np.complex64), 0, 2),
     TypeError, r"`input` dtype complex64 is complex"),
    ("complex input to a percentile filter",
     lambda: F.percentile_filter(X + 1j, 20, footprint=[[1, 1]]), TypeError,
     r"`input` dtype complex128 is complex"),
    ("object input", lambda: F.uniform_filter(np.array([1, "a"], dtype=object)), TypeError,
     r"`input` must be a numeric array; got dtype object"),
    ("str input", lambda: F.gaussian_filter(np.array(["a", "b"]), 1), TypeError,
     r"`input` must be a numeric array; got dtype <U1"),
    ("str input to a rank filter", lambda: F.median_filter(np.array(["a", "b"]), 2), TypeError,
     r"`input` must be a numeric array; got dtype <U1"),
    ("bytes input", lambda: F.sobel(np.array([b"ab"])), TypeError,
     r"`input` must be a numeric array; got dtype \|S2"),
    ("datetime input", lambda: F.minimum_filter1d(np.array(["2024-01-01"], "M8[D]"), 2),
     TypeError, r"`input` must be a numeric array; got dtype datetime64\[D\]"),
    ("bool input", lambda: F.uniform_filter(np.ones(3, bool)), TypeError,
     r"`input` dtype must be one of \{.*\}; got bool"),
    ("long double input", lambda: F.uniform_filter(np.ones(3, np.longdouble)), TypeError,
     r"`input` dtype must be one of \{.*\}; got float128"),
    ("unexpected keyword", lambda: F.gaussian_laplace(X, 1, truncat=3), TypeError,
     r"unexpected keyword argument\(s\) \['truncat'\]; allowed: truncate, radius"),
    ("unknown edge operator", lambda: F.gradient_magnitude(X, "scharr"), ValueError,
     r"`operator` must be one of \['prewitt', 'sobel'\]; got 'scharr'"),
    ("edge operator not a string", lambda: F.gradient_magnitude(X, F.sobel), ValueError,
     r"`operator` must be one of \['prewitt', 'sobel'\]; got <function sobel"),
    # backend
    ("unknown backend", lambda: F.uniform_filter(X, 3, backend="gpu"), ValueError,
     r"`backend` must be one of \['cpu', 'cuda', 'dask', 'numpy'\] for filters; got 'gpu'"),
    ("unknown backend, rank", lambda: F.median_filter(X, 3, backend="CPU"), ValueError,
     r"`backend` must be one of \['cpu', 'cuda', 'dask', 'numpy'\] for filters; got 'CPU'"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "error", "message"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_bad_argument_is_named_and_echoed(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
def test_errors_do_not_depend_on_the_backend(backend):
    with pytest.raises(ValueError, match=r"`size` must be >= 1; got 0"):
        filters.uniform_filter(X, 0, backend=backend)
    with pytest.raises(TypeError, match=r"rank filters need ordered values"):
        filters.median_filter(X + 1j, 3, backend=backend)


def test_unknown_backend_is_a_backend_error():
    with pytest.raises(BackendError) as info:
        filters.gaussian_filter(X, 1, backend="opencl")
    assert isinstance(info.value, ValueError)


def test_output_overlapping_the_input_is_refused():
    x = np.arange(20.0)
    with pytest.raises(ValueError, match=r"`output` must not overlap `input`"):
        filters.uniform_filter1d(x[:10], 3, output=x[5:15])
    with pytest.raises(ValueError, match=r"`output` must not overlap `input`"):
        filters.median_filter(x[::2], 3, output=x[::2][::-1])


@pytest.mark.parametrize("name", ["minimum_filter", "maximum_filter", "minimum_filter1d",
                                  "maximum_filter1d"])  # fmt: skip
@pytest.mark.parametrize("backend", ["cpu", "numpy"])
def test_complex_input_to_minimum_maximum(backend, name):
    x = np.array([1 + 2j, 3 + 0j, 2 - 1j])
    with pytest.raises(TypeError, match=re.escape("`input` dtype complex128 is complex")):
        getattr(filters, name)(x, 2, backend=backend)


class ArrayLike:
    """An array type that npaccel has no backend for (say, a torch or JAX array)."""

    def __array_namespace__(self, api_version=None):  # pragma: no cover - never called
        raise AssertionError


class CudaLike:
    """A device array (say, a CuPy array) seen only through its interface."""

    @property
    def __cuda_array_interface__(self):  # pragma: no cover - never read
        return {"shape": (3,), "typestr": "<f4", "data": (0, False), "version": 3}


@pytest.mark.parametrize("array", [ArrayLike(), CudaLike()], ids=["array api", "cuda"])
def test_unknown_array_type_gets_a_backend_hint(array):
    message = rf"`input` of type {type(array).__name__} needs a backend for it; pass backend="
    with pytest.raises(TypeError, match=message):
        filters.gaussian_filter(array, 1.0)
    with pytest.raises(TypeError, match=message):
        filters.median_filter(array, 3)


def test_numpy_scalar_input_is_not_a_foreign_array():
    np.testing.assert_array_equal(filters.gaussian_filter(np.float64(3.0), 1.0, backend="numpy"),
                                  3.0)  # fmt: skip


def test_lists_are_accepted_as_input():
    np.testing.assert_array_equal(filters.maximum_filter1d([1, 3, 2], 2, backend="numpy"),
                                  [1, 3, 3])  # fmt: skip


def test_cuda_without_cupy_names_the_extra(monkeypatch):
    from npaccel.cuda import _device

    monkeypatch.setattr(_device, "simulated", lambda: False)  # as on a machine with no GPU
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` fails
    with pytest.raises(BackendError, match=r"backend 'cuda' needs CuPy .*pip install "
                       r"\"npaccel\[gpu\]\""):  # fmt: skip
        filters.gaussian_filter(X, 1, backend="cuda")
