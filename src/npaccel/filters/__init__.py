"""scipy.ndimage's filters — same names, signatures, defaults and modes — multithreaded.

``backend="cpu"`` (default for NumPy input) runs Numba kernels on the threads
:mod:`npaccel.threads` sets; ``backend="numpy"`` runs scipy.ndimage in float64, the reference;
``backend="dask"`` (default for Dask arrays) filters chunks lazily with halos.
Every function also takes ``axes`` (filter e.g. only H and W of an (N, H, W, C) batch).
The numeric policy (float32 computed in float32; integer results rounded half to even and
saturated) is in docs/filters.md.
"""

from npaccel.filters._linear import (
    convolve,
    convolve1d,
    correlate,
    correlate1d,
    gaussian_filter,
    gaussian_filter1d,
    gaussian_gradient_magnitude,
    gaussian_laplace,
    gradient_magnitude,
    laplace,
    prewitt,
    sobel,
    uniform_filter,
    uniform_filter1d,
)
from npaccel.filters._rank import (
    maximum_filter,
    maximum_filter1d,
    median_filter,
    minimum_filter,
    minimum_filter1d,
    percentile_filter,
    rank_filter,
)
from npaccel.filters._route import routed

for _name in (  # Dask arrays and backend="dask" are routed before NumPy validation
    "convolve", "convolve1d", "correlate", "correlate1d", "gaussian_filter",
    "gaussian_filter1d", "gaussian_gradient_magnitude", "gaussian_laplace",
    "gradient_magnitude", "laplace", "maximum_filter", "maximum_filter1d", "median_filter",
    "minimum_filter", "minimum_filter1d", "percentile_filter", "prewitt", "rank_filter",
    "sobel", "uniform_filter", "uniform_filter1d",
):  # fmt: skip
    globals()[_name] = routed(globals()[_name])
del _name

__all__ = [
    "convolve",
    "convolve1d",
    "correlate",
    "correlate1d",
    "gaussian_filter",
    "gaussian_filter1d",
    "gaussian_gradient_magnitude",
    "gaussian_laplace",
    "gradient_magnitude",
    "laplace",
    "maximum_filter",
    "maximum_filter1d",
    "median_filter",
    "minimum_filter",
    "minimum_filter1d",
    "percentile_filter",
    "prewitt",
    "rank_filter",
    "sobel",
    "uniform_filter",
    "uniform_filter1d",
]
