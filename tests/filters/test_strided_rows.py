"""Inputs whose rows are contiguous but lie apart (crops, chunks, first-axis steps) are read
in place by the separable cpu kernels, with results equal bit for bit to a C copy's."""

from __future__ import annotations

import numpy as np
import pytest

from npaccel import filters as F
from npaccel.filters import _cpu

BIG = np.random.default_rng(5).random((3, 41, 37, 2)) * 250
CALLS = [
    ("box float32 (fused pair)", "float32", lambda x: F.uniform_filter(x, 3, axes=(0, 1))),
    ("box uint8 (integer sums)", "uint8", lambda x: F.uniform_filter(x, 5, axes=(0, 1))),
    ("gaussian 17 taps", "float32", lambda x: F.gaussian_filter(x, 2.0, axes=(0, 1))),
    ("along the first axis", "int16", lambda x: F.correlate1d(x, [1, -2, 4, 3], axis=0)),
    ("along the last axis", "float64", lambda x: F.uniform_filter1d(x, 4, axis=-1, origin=1)),
    ("laplace (two filters fused)", "uint8", lambda x: F.laplace(x, output=np.float32)),
    ("sobel, constant", "float32", lambda x: F.sobel(x, axis=1, mode="constant", cval=9)),
]


def _views(dtype):
    big = BIG.astype(dtype)
    image = np.ascontiguousarray(big[0, :, :, 0])
    return {
        "crop": image[4:33, 2:30],
        "every third row": image[::3],
        "rows reversed": image[::-1, 5:],
        "every other image of a batch": np.ascontiguousarray(big[..., 0])[::2],
        "one channel of an (H, W, C) image": np.ascontiguousarray(big[0])[::-2],
    }


@pytest.mark.parametrize(("label", "dtype", "call"), CALLS, ids=[c[0] for c in CALLS])
def test_strided_rows_equal_a_contiguous_copy(label, dtype, call):
    for where, view in _views(dtype).items():
        assert not view.flags.c_contiguous, where
        assert view[0].flags.c_contiguous, where
        np.testing.assert_array_equal(call(view), call(view.copy()), err_msg=where)


def test_such_inputs_are_not_copied_and_others_are():
    image = np.zeros((20, 30), np.float32)
    crop = image[3:15, 2:25]
    assert _cpu._kernel_input(crop, strided_rows=True) is crop
    assert _cpu._kernel_input(crop) is not crop  # kernels that need C order get a copy
    columns = image[:, ::2]  # elements apart within a row: copied
    assert _cpu._kernel_input(columns, strided_rows=True).flags.c_contiguous
