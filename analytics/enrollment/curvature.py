"""The Laplace approximation of a fitted posterior: its curvature at the optimum, inverted."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def numeric_hessian(fun: Callable[[np.ndarray], float], x: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Central-difference Hessian of ``fun`` at ``x`` with one step per coordinate."""
    n = len(x)
    hess = np.zeros((n, n))
    f0 = fun(x)
    for i in range(n):
        for j in range(i, n):
            ei, ej = np.eye(n)[i] * steps[i], np.eye(n)[j] * steps[j]
            if i == j:
                value = (fun(x + ei) - 2 * f0 + fun(x - ei)) / steps[i] ** 2
            else:
                value = (fun(x + ei + ej) - fun(x + ei - ej) - fun(x - ei + ej) + fun(x - ei - ej)) / (4 * steps[i] * steps[j])
            hess[i, j] = hess[j, i] = value
    return hess


def laplace_covariance(hess: np.ndarray) -> np.ndarray:
    """The inverse Hessian of a negative log posterior; the inverse diagonal when that is not positive definite."""
    try:
        covariance = np.linalg.inv(hess)
        np.linalg.cholesky(covariance)
    except np.linalg.LinAlgError:
        covariance = np.diag(1 / np.maximum(np.diag(hess), 1e-6))
    return covariance
