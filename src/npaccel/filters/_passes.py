"""The plain, valid parameters the public layer hands to a backend."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MinMaxPass", "Pass", "gaussian_kernel1d"]


@dataclass(frozen=True)
class Pass:
    """One 1-D correlation: ``out[i] = sum_j weights[j] * in[i + j - len(weights)//2 - origin]``
    along ``axis``, edges extended by ``mode`` (cval is shared by all passes of a call)."""

    axis: int
    weights: np.ndarray  # float64, 1-D, non-empty
    mode: str
    origin: int

    @property
    def radius(self) -> int:
        """Elements needed on each side: the halo for chunked execution."""
        size = len(self.weights)
        return max(size // 2 + self.origin, size - size // 2 - 1 - self.origin)


@dataclass(frozen=True)
class MinMaxPass:
    """One 1-D minimum or maximum over ``size`` elements, placed like a correlation."""

    axis: int
    size: int
    mode: str
    origin: int


def gaussian_kernel1d(sigma: float, order: int, radius: int) -> np.ndarray:
    """Sampled, normalised Gaussian (``order`` 0) or its derivative, as scipy.ndimage builds it:
    the derivative of exp(-x²/2σ²) is a polynomial times it, with the polynomial's coefficients
    obtained by applying d/dx ``order`` times."""
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    sigma2 = sigma * sigma
    phi = np.exp(-0.5 / sigma2 * x**2)
    phi /= phi.sum()
    if order == 0:
        return phi
    powers = np.arange(order + 1)
    q = np.zeros(order + 1)
    q[0] = 1.0
    derivative = np.diag(powers[1:].astype(np.float64), 1) + np.diag(
        np.full(order, -1.0 / sigma2), -1
    )
    for _ in range(order):
        q = derivative @ q
    return (x[:, None] ** powers) @ q * phi
