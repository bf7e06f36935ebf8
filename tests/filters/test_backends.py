"""The filters' backends in the registry (npaccel.backends): names, choice, errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from npaccel import backends, filters


def test_cpu_and_numpy_are_available():
    names = backends.available("filters")
    assert "cpu" in names
    assert "numpy" in names


def test_numpy_arrays_choose_cpu():
    name, module = backends.implementation("filters", None, np.zeros(3))
    assert name == "cpu"
    assert module.__name__ == "npaccel.filters._cpu"
    name, module = backends.implementation("filters", "numpy", np.zeros(3))
    assert (name, module.__name__) == ("numpy", "npaccel.filters._scipy")


def test_unknown_backend_names_the_choices():
    with pytest.raises(backends.BackendError,
                       match=r"`backend` must be one of \['cpu', 'cuda', 'dask', 'numpy'\] "
                       r"for filters; got 'opencl'"):  # fmt: skip
        backends.implementation("filters", "opencl", np.zeros(3))


def test_unknown_array_type_without_backend_names_the_input():
    with pytest.raises(TypeError, match=r"`input` must be a NumPy array or a registered array "
                       r"type .*; got list"):  # fmt: skip
        backends.implementation("filters", None, [1, 2, 3])


def test_backend_that_fails_to_import_names_the_extra(monkeypatch):
    family = "filters-test-missing"
    monkeypatch.setitem(backends._REGISTRY, family, {})
    backends.register(family, "ghost", "npaccel._no_such_module", extra="gpu")
    assert backends.available(family) == []
    with pytest.raises(backends.BackendError,
                       match=r"backend 'ghost' for filters-test-missing is not available: .*"
                       r'install it with pip install "npaccel\[gpu\]"'):  # fmt: skip
        backends.implementation(family, "ghost", np.zeros(3))


def test_backends_agree_on_a_default_call():
    x = np.arange(30, dtype=np.float64).reshape(5, 6) % 7
    np.testing.assert_allclose(
        filters.gaussian_filter(x, 1.0), filters.gaussian_filter(x, 1.0, backend="numpy"),
        rtol=1e-12,
    )  # fmt: skip
    np.testing.assert_array_equal(
        filters.median_filter(x, 3), filters.median_filter(x, 3, backend="numpy")
    )


def test_complex_input_runs_on_the_reference_whatever_the_backend():
    x = np.arange(6.0) + 1j
    np.testing.assert_array_equal(
        filters.uniform_filter1d(x, 3, backend="cpu"),
        filters.uniform_filter1d(x, 3, backend="numpy"),
    )


def test_importing_filters_loads_no_backend_module():
    code = (
        "import sys, npaccel.filters; "
        "print(sorted(m for m in sys.modules if m.startswith(('numba', 'npaccel.filters._cpu', "
        "'npaccel.filters._scipy', 'scipy.ndimage'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_dask_arrays_choose_the_dask_backend():
    da = pytest.importorskip("dask.array")
    name, module = backends.implementation("filters", None, da.zeros(3, chunks=2))
    assert (name, module.__name__) == ("dask", "npaccel.filters._dask")
    assert "dask" in backends.available("filters")
