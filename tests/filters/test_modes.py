"""Boundary modes on tiny arrays, against expectations written out by hand.

A kernel with a single 1 reads exactly one input element, so ``correlate1d([1, 2, 3], e_k)``
shows which index each mode reads at each position, including far outside the array.
With x = [1, 2, 3] and cval = 9 the extensions are::

    index     ... -7 -6 -5 -4 -3 -2 -1 | 0 1 2 | 3 4 5 6 ...
    reflect   ...  1  1  2  3  3  2  1 | 1 2 3 | 3 2 1 1     period 6: (c b a | a b c | c b a)
    mirror    ...  2  3  2  1  2  3  2 | 1 2 3 | 2 1 2 3     period 4: (c b | a b c | b a)
    nearest   ...  1  1  1  1  1  1  1 | 1 2 3 | 3 3 3 3
    wrap      ...  3  1  2  3  1  2  3 | 1 2 3 | 1 2 3 1     period 3
    constant  ...  9  9  9  9  9  9  9 | 1 2 3 | 9 9 9 9
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import MODES
from npaccel import filters

X = [1, 2, 3]
CVAL = 9

# shift s: output i reads input index i + s
READS = {
    -7: {"reflect": [1, 1, 2], "mirror": [2, 3, 2], "nearest": [1, 1, 1], "wrap": [3, 1, 2],
         "constant": [9, 9, 9]},
    -4: {"reflect": [3, 3, 2], "mirror": [1, 2, 3], "nearest": [1, 1, 1], "wrap": [3, 1, 2],
         "constant": [9, 9, 9]},
    -1: {"reflect": [1, 1, 2], "mirror": [2, 1, 2], "nearest": [1, 1, 2], "wrap": [3, 1, 2],
         "constant": [9, 1, 2]},
    0: {"reflect": [1, 2, 3], "mirror": [1, 2, 3], "nearest": [1, 2, 3], "wrap": [1, 2, 3],
        "constant": [1, 2, 3]},
    1: {"reflect": [2, 3, 3], "mirror": [2, 3, 2], "nearest": [2, 3, 3], "wrap": [2, 3, 1],
        "constant": [2, 3, 9]},
    4: {"reflect": [2, 1, 1], "mirror": [1, 2, 3], "nearest": [3, 3, 3], "wrap": [2, 3, 1],
        "constant": [9, 9, 9]},
}  # fmt: skip
DTYPES = ("uint8", "float32", "float64")


def pick(length: int, k: int) -> np.ndarray:
    weights = np.zeros(length)
    weights[k] = 1.0
    return weights


def mode_kwargs(mode: str) -> dict:
    return {"mode": mode, "cval": CVAL}


# (length, k, origin) -> shift read: i + k - length // 2 - origin
PICKS = [(15, 0, 0), (9, 0, 0), (3, 0, 0), (3, 1, 0), (3, 2, 0), (9, 8, 0), (3, 1, 1), (3, 1, -1),
         (9, 4, 4), (4, 0, -1)]  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("length", "k", "origin"), PICKS)
def test_correlate1d_reads_the_index_the_mode_says(backend, length, k, origin, mode, dtype):
    shift = k - length // 2 - origin
    x = np.array(X, dtype=dtype)
    result = filters.correlate1d(x, pick(length, k), origin=origin, backend=backend,
                                 **mode_kwargs(mode))  # fmt: skip
    np.testing.assert_array_equal(result, np.array(READS[shift][mode], dtype=dtype))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shift", [-4, -1, 1, 4])
def test_convolve1d_reads_mirrored_index(backend, shift, mode):
    # convolution flips the kernel: a 1 at position k of a length-9 kernel reads i + 4 - k
    x = np.array(X, dtype=np.float64)
    result = filters.convolve1d(x, pick(9, 4 - shift), backend=backend, **mode_kwargs(mode))
    np.testing.assert_array_equal(result, READS[shift][mode])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shift", [-7, -4, -1, 1, 4])
def test_correlate_nd_reads_the_index_the_mode_says(backend, shift, mode):
    # along axis 1 of a (2, 3) array; rows differ so a wrong axis shows
    x = np.array([X, [10 * v for v in X]], dtype=np.float64)
    length = 2 * abs(shift) + 1
    weights = pick(length, length // 2 + shift)[None, :]
    result = filters.correlate(x, weights, backend=backend, **mode_kwargs(mode))
    row = np.array(READS[shift][mode], dtype=np.float64)
    expected = np.stack([row, np.where(row == CVAL, CVAL, 10 * row)])
    np.testing.assert_array_equal(result, expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shift", [-7, -4, -1, 1, 4])
def test_single_element_footprint_reads_the_index_the_mode_says(backend, shift, mode, dtype):
    # a rank filter over a one-element footprint is a shift, placed like a correlation;
    # along axis 1 of a (2, 3) array; along axis 0 in the next test
    x = np.array([X, [10 * v for v in X]], dtype=dtype)
    length = 2 * abs(shift) + 1
    footprint = pick(length, length // 2 + shift).astype(bool)[None, :]
    row = np.array(READS[shift][mode])
    expected = np.stack([row, np.where(row == CVAL, CVAL, 10 * row)]).astype(dtype)
    for fn in (filters.median_filter, filters.minimum_filter, filters.maximum_filter):
        result = fn(x, footprint=footprint, backend=backend, **mode_kwargs(mode))
        np.testing.assert_array_equal(result, expected, err_msg=fn.__name__)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", [(3,), (3, 2)])
def test_footprint_along_the_first_axis(backend, shape, mode):
    # 1-D input, or a footprint spanning axis 0 only (once failed on backend 'cpu')
    x = np.array(X, dtype=np.float64).reshape((3,) + (1,) * (len(shape) - 1))
    x = np.broadcast_to(x, shape).copy()
    footprint = pick(9, 0).astype(bool).reshape((9,) + (1,) * (len(shape) - 1))
    expected = np.broadcast_to(
        np.array(READS[-4][mode], dtype=np.float64).reshape(x.shape[:1] + (1,) * (x.ndim - 1)),
        shape,
    )
    result = filters.median_filter(x, footprint=footprint, backend=backend, **mode_kwargs(mode))
    np.testing.assert_array_equal(result, expected)
    result = filters.median_filter(x, size=3, axes=0, backend=backend, **mode_kwargs(mode))
    assert result.shape == shape


# minimum_filter1d of [3, 1, 2], cval 9; window of size s at origin o: i + j - s//2 - o
MIN1D = {
    (2, 0): {"reflect": [3, 1, 1], "mirror": [1, 1, 1], "nearest": [3, 1, 1], "wrap": [2, 1, 1],
             "constant": [3, 1, 1]},
    (2, -1): {"reflect": [1, 1, 2], "mirror": [1, 1, 1], "nearest": [1, 1, 2], "wrap": [1, 1, 2],
              "constant": [1, 1, 2]},
    (7, 0): {"reflect": [1, 1, 1], "mirror": [1, 1, 1], "nearest": [1, 1, 1], "wrap": [1, 1, 1],
             "constant": [1, 1, 1]},
}  # fmt: skip
# maximum_filter1d of [3, 1, 2], cval 0
MAX1D = {
    (2, -1): {"reflect": [3, 2, 2], "mirror": [3, 2, 2], "nearest": [3, 2, 2], "wrap": [3, 2, 3],
              "constant": [3, 2, 2]},
    (3, 1): {"reflect": [3, 3, 3], "mirror": [3, 3, 3], "nearest": [3, 3, 3], "wrap": [3, 3, 3],
             "constant": [3, 3, 3]},
    (2, 0): {"reflect": [3, 3, 2], "mirror": [3, 3, 2], "nearest": [3, 3, 2], "wrap": [3, 3, 2],
             "constant": [3, 3, 2]},
}  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
def test_minimum_maximum_filter1d_windows(backend, mode, dtype):
    x = np.array([3, 1, 2], dtype=dtype)
    for (size, origin), expected in MIN1D.items():
        result = filters.minimum_filter1d(x, size, origin=origin, mode=mode, cval=9,
                                          backend=backend)  # fmt: skip
        np.testing.assert_array_equal(result, expected[mode], err_msg=f"min {size} {origin}")
    for (size, origin), expected in MAX1D.items():
        result = filters.maximum_filter1d(x, size, origin=origin, mode=mode, cval=0,
                                          backend=backend)  # fmt: skip
        np.testing.assert_array_equal(result, expected[mode], err_msg=f"max {size} {origin}")


def test_per_axis_modes_hand_computed(backend):
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    # windows {i-1, i} x {j-1, j}; rows wrap (row -1 is row 1), columns constant 0
    result = filters.uniform_filter(x, 2, mode=("wrap", "constant"), backend=backend)
    np.testing.assert_array_equal(result, [[1.0, 2.5], [1.0, 2.5]])
    result = filters.maximum_filter(x, 2, mode=("wrap", "constant"), backend=backend)
    np.testing.assert_array_equal(result, [[3.0, 4.0], [3.0, 4.0]])
    # rows constant -1, columns wrap
    result = filters.minimum_filter(x, 2, mode=("constant", "wrap"), cval=-1, backend=backend)
    np.testing.assert_array_equal(result, [[-1.0, -1.0], [1.0, 1.0]])


@pytest.mark.parametrize(("alias", "mode"),
                         [("grid-wrap", "wrap"), ("grid-mirror", "reflect"),
                          ("grid-constant", "constant")])  # fmt: skip
def test_grid_aliases_equal_their_mode(backend, alias, mode):
    x = np.array([[1.0, 5.0, 2.0, 7.0], [3.0, 0.0, 8.0, 6.0]])
    calls = [
        lambda m: filters.correlate1d(x, pick(9, 0), mode=m, cval=CVAL, backend=backend),
        lambda m: filters.uniform_filter(x, 3, mode=m, cval=CVAL, backend=backend),
        lambda m: filters.gaussian_filter(x, 2.0, mode=[m, m], cval=CVAL, backend=backend),
        lambda m: filters.median_filter(x, 3, mode=m, cval=CVAL, backend=backend),
        lambda m: filters.maximum_filter(x, 5, mode=m, cval=CVAL, backend=backend),
    ]
    for call in calls:
        np.testing.assert_array_equal(call(alias), call(mode))
