"""Dual long-range coupling: excitation (wLRE) and feedforward inhibition (wFFI).

Convention (TVB's): ``weights[i, j]`` is the connection from region j to
region i, so region i receives ``c_i = sum_j weights[i, j] * w[i, j] * S_e_j``.
With conduction delays, ``S_e_j`` is taken ``idelays[i, j]`` steps in the
past, exactly as TVB's history does.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from .._precision import FULL, matmul
from .._x64 import ensure_x64
from .._validation import check_coupling_sign, check_delays


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class DualCoupling:
    """Structural weights and the two tunable coupling matrices.

    Attributes:
        weights: SC weights, (N, N), already normalised, >= 0.
        wLRE: long-range excitation scaling, (N, N), >= 0.
        wFFI: feedforward inhibition scaling, (N, N), >= 0.
        idelays: conduction delays in integration steps, (N, N) int32.
        horizon: static; 1 + the largest delay (1 means no delays).
    """

    weights: jax.Array
    wLRE: jax.Array
    wFFI: jax.Array
    idelays: jax.Array
    horizon: int = dataclasses.field(metadata=dict(static=True), default=1)

    def replace(self, **changes) -> "DualCoupling":
        return dataclasses.replace(self, **changes)

    @property
    def n_regions(self) -> int:
        return self.weights.shape[-1]


def dual_coupling(
    weights,
    wLRE=1.0,
    wFFI=1.0,
    delays_ms=None,
    dt: float = 4.0,
    dtype=jnp.float64,
) -> DualCoupling:
    """Build a :class:`DualCoupling` from arrays.

    Args:
        weights: (N, N) normalised SC weights.
        wLRE, wFFI: scalar or (N, N) initial coupling scalings.
        delays_ms: optional (N, N) conduction delays in ms (tract length / speed);
            rounded to whole steps of ``dt`` as TVB does. None: no delays.
        dt: integration step in ms.
    """
    ensure_x64()
    weights = np.asarray(weights, dtype=np.float64)
    n = weights.shape[0]
    check_coupling_sign({"wLRE": wLRE, "wFFI": wFFI})
    if delays_ms is None:
        idelays = np.zeros((n, n), dtype=np.int32)
    else:
        idelays = np.rint(check_delays(delays_ms, n) / dt).astype(np.int32)
    horizon = int(idelays.max()) + 1
    full = lambda w: jnp.asarray(np.broadcast_to(np.asarray(w, np.float64), (n, n)), dtype)
    return DualCoupling(
        weights=jnp.asarray(weights, dtype),
        wLRE=full(wLRE),
        wFFI=full(wFFI),
        idelays=jnp.asarray(idelays),
        horizon=horizon,
    )


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class EffectiveCoupling:
    """Loop-invariant form of :class:`DualCoupling` used inside the integrator.

    ``stacked`` is (2, N, N): weights * wLRE and weights * wFFI.  Computing it
    once per simulation keeps the elementwise products out of the time loop.
    ``gather_base`` (N * N,) int32 locates every edge's delayed source in the
    history ring (see :func:`afferent`); None without delays.
    """

    stacked: jax.Array
    gather_base: jax.Array | None
    horizon: int = dataclasses.field(metadata=dict(static=True), default=1)


def effective(c: DualCoupling) -> EffectiveCoupling:
    stacked = jnp.stack([c.weights * c.wLRE, c.weights * c.wFFI])
    base = None
    if c.horizon > 1:
        n = c.n_regions
        base = ((c.horizon - c.idelays) * n + jnp.arange(n, dtype=jnp.int32)[None, :]).reshape(-1)
    return EffectiveCoupling(stacked=stacked, gather_base=base, horizon=c.horizon)


def history_init(S_e0: jax.Array, horizon: int) -> jax.Array | None:
    """A history ring at rest at ``S_e0`` (N,): flat (2 * horizon * N,), or None without delays."""
    if horizon <= 1:
        return None
    return jnp.tile(S_e0, 2 * horizon)


def history_write(history: jax.Array, S_e: jax.Array, step: jax.Array, horizon: int) -> jax.Array:
    """Store the state reached at ``step`` in both of its rows (see :func:`afferent`)."""
    n = S_e.shape[0]
    row = step % horizon
    history = jax.lax.dynamic_update_slice(history, S_e, (row * n,))
    return jax.lax.dynamic_update_slice(history, S_e, ((row + horizon) * n,))


def afferent(ec: EffectiveCoupling, history: jax.Array, step: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Long-range inputs (c_lre, c_ffi), each (N,), for the step about to be taken.

    Args:
        history: without delays, (1, N) current S_e.  With delays the flat
            ring of :func:`history_init`: 2 * horizon rows of N, the state reached
            at step k stored in rows ``k % horizon`` and ``k % horizon + horizon``.
        step: index of the step about to be computed; it reads the state of
            step ``step - 1 - delay`` as TVB's history does.

    Storing each state twice lets one flat gather at ``gather_base + p N``
    (p the row of step - 1) find every delayed source without a modulo per
    edge: on XLA:CPU that halves the cost of the delayed coupling.
    """
    if ec.horizon == 1:
        c = matmul(ec.stacked, history[0])
        return c[0], c[1]
    n = ec.stacked.shape[-1]
    delayed = _take(history, ec.gather_base + ((step - 1) % ec.horizon) * n).reshape(n, n)
    # One (2, N) @ (N,) product per target region (a batched matvec): each delayed value is read
    # once and no (2, N, N) product is written; at 379 regions on XLA:CPU this step costs 2-2.5x less
    # than the elementwise product and a matvec with ones (benchmarks/cost_model.py).  Only the
    # order of the sum over sources differs from that: float rounding, bounded in tests/test_step_speed.py.
    c = jax.lax.dot_general(ec.stacked, delayed, (((2,), (1,)), ((1,), (0,))), precision=FULL)  # (N, 2)
    return c[:, 0], c[:, 1]


_FLAT = jax.lax.GatherDimensionNumbers(offset_dims=(), collapsed_slice_dims=(0,), start_index_map=(0,))


def _take(flat: jax.Array, index: jax.Array) -> jax.Array:
    """``flat[index]`` for indices known to lie in range (see :func:`effective`), without the
    negative-index wrap that ``flat[index]`` adds per edge (XLA still clamps, so a bad index cannot
    read outside the array)."""
    return jax.lax.gather(flat, index[:, None], _FLAT, (1,), mode=jax.lax.GatherScatterMode.PROMISE_IN_BOUNDS)
