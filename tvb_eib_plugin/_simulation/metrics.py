"""Functional connectivity and the fit metrics; pure JAX, differentiable."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._precision import matmul
from .._x64 import ensure_x64


def fc(bold: jax.Array) -> jax.Array:
    """FC: Pearson correlation between regions over time, diagonal 0.

    Args:
        bold: (T, N) BOLD samples.

    Returns:
        (N, N) correlation matrix.  A region with a constant signal correlates
        0 with every other (instead of NaN).
    """
    ensure_x64()
    x = bold - bold.mean(axis=0)
    norm = jnp.sqrt(jnp.sum(x * x, axis=0))
    x = x / jnp.maximum(norm, jnp.finfo(x.dtype).tiny)
    r = jnp.clip(matmul(x.T, x), -1.0, 1.0)  # rounding can put equal signals at 1 + 1 ulp
    return r * (1.0 - jnp.eye(r.shape[0], dtype=r.dtype))


def _pearson(a: jax.Array, b: jax.Array) -> jax.Array:
    a = a - a.mean()
    b = b - b.mean()
    return jnp.sum(a * b) / jnp.sqrt(jnp.sum(a * a) * jnp.sum(b * b))


def fc_corr(fc_sim: jax.Array, fc_target: jax.Array, entries: str = "upper") -> jax.Array:
    """Pearson correlation between two FC matrices.

    ``entries="upper"`` (default) uses the upper triangle without the diagonal,
    each pair of regions once; ``"all"`` uses every entry, diagonal zeros
    included, as the reference workflow does (it reads slightly higher).
    """
    ensure_x64()
    if entries == "upper":
        iu = jnp.triu_indices(fc_sim.shape[-1], k=1)
        return _pearson(fc_sim[iu], fc_target[iu])
    if entries == "all":
        return _pearson(fc_sim.ravel(), fc_target.ravel())
    raise ValueError(f"entries must be 'upper' or 'all', got {entries!r}")


def fc_rmse(fc_sim: jax.Array, fc_target: jax.Array) -> jax.Array:
    """Root mean square difference over all entries of the two FC matrices."""
    ensure_x64()
    return jnp.sqrt(jnp.mean((fc_sim - fc_target) ** 2))


def rowwise_rmse(fc_sim: jax.Array, fc_target: jax.Array) -> jax.Array:
    """Per-region RMSE_i = sqrt(mean_j (FC_target_ij - FC_sim_ij)^2), shape (N,)."""
    return jnp.sqrt(jnp.mean((fc_target - fc_sim) ** 2, axis=1))


#: The simulated FC's diagonal in the row RMSE of the EIB step: as given (0 from :func:`fc`),
#: all 1, or 1 but for the last region (0), as the authors' released C program leaves it.
RMSE_DIAGONALS = ("given", "one", "one_but_last")


def with_diagonal(fc_sim: jax.Array, mode: str = "given") -> jax.Array:
    """``fc_sim`` (N, N) with its diagonal set by ``mode`` (one of :data:`RMSE_DIAGONALS`).

    Schirner et al.'s released program sets its simulated FC's diagonal to 1 in a loop over all
    regions but the last, whose entry keeps its initial 0; its empirical FC's diagonal is 0.  Each
    row's RMSE then carries a (1 - 0)^2 / N term (none in the last row): a larger step.
    """
    if mode == "given":
        return fc_sim
    n = fc_sim.shape[-1]
    if mode == "one":
        diag = jnp.ones(n, fc_sim.dtype)
    elif mode == "one_but_last":
        diag = jnp.ones(n, fc_sim.dtype).at[-1].set(0.0)
    else:
        raise ValueError(f"rmse_diagonal must be one of {RMSE_DIAGONALS}, got {mode!r}")
    eye = jnp.eye(n, dtype=bool)
    return jnp.where(eye, diag[None, :], fc_sim)
