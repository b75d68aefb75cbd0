"""BOLD from S_e through TVB's first-order Volterra HRF kernel, in streaming form.

(:func:`bold_init` and :func:`bold_update` also serve the Balloon-Windkessel
model of :mod:`balloon`, so simulations take either.)

TVB's ``monitors.Bold`` averages the observed variable into a "stock" sampled
every 4 ms, and at every TR takes a dot product of the last 20 s of stock with
the kernel ``h(t) = 1/3 exp(-0.5 t / tau_s) sin(w t) / w``:
``BOLD = k_1 V_0 (sum_lag h[lag - 1] stock[n - lag] - 1)``.  TVB's indexing
pairs lag ``l`` with ``h`` at ``(l - 1)`` stock periods, which we keep so that
the two agree; the only difference left is TVB's wrap-around term, which
multiplies the newest sample by the kernel's last value (-6e-7) instead of
the sample 20 s back.

The stock lives in a ring buffer carried by :class:`BoldState`, so BOLD can be
produced one TR at a time inside a compiled loop; its buffer is filled with
the initial state (a constant history), and a transient run warms it up.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from .._precision import FULL, matmul
from .balloon import BalloonBold, BalloonState, balloon_init, balloon_update

#: TVB's stock sampling period for the BOLD monitor (ms).
STOCK_PERIOD_MS = 4.0


def volterra_kernel(t_s: np.ndarray, tau_s: float = 0.8, tau_f: float = 0.4) -> np.ndarray:
    """First-order Volterra HRF kernel at times ``t_s`` (seconds)."""
    w = math.sqrt(1.0 / tau_f - 1.0 / (4.0 * tau_s**2))
    return (1.0 / 3.0) * np.exp(-0.5 * t_s / tau_s) * np.sin(w * t_s) / w


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class HRFBold:
    """BOLD observation settings.

    Attributes:
        weights_by_lag: (L,) kernel weight per lag in stock periods (lag 0,
            the newest sample, has weight 0; see the module doc).
        k1_V0: k_1 * V_0, the BOLD scale (dimensionless).
        period_ms: static; TR in ms.
        steps_per_stock: static; integration steps averaged into one stock sample.
        stock_per_tr: static; stock samples per TR.
    """

    weights_by_lag: jax.Array
    k1_V0: jax.Array
    period_ms: float = dataclasses.field(metadata=dict(static=True), default=720.0)
    steps_per_stock: int = dataclasses.field(metadata=dict(static=True), default=1)
    stock_per_tr: int = dataclasses.field(metadata=dict(static=True), default=180)

    @property
    def buffer_len(self) -> int:
        return self.weights_by_lag.shape[0]

    @property
    def steps_per_tr(self) -> int:
        return self.steps_per_stock * self.stock_per_tr


def _whole(ratio: float, what: str) -> int:
    n = int(round(ratio))
    if n < 1 or abs(ratio - n) > 1e-9 * max(1.0, ratio):
        raise ValueError(what)
    return n


def hrf_bold(
    dt: float = 4.0,
    period_ms: float = 720.0,
    hrf_length_ms: float = 20000.0,
    tau_s: float = 0.8,
    tau_f: float = 0.4,
    k_1: float = 5.6,
    V_0: float = 0.02,
    dtype=jnp.float64,
) -> HRFBold:
    """BOLD settings equal to TVB's ``Bold(period=period_ms)`` with the Volterra kernel.

    ``dt`` must divide TVB's 4 ms stock period, and 4 ms must divide the TR.
    """
    steps_per_stock = _whole(
        STOCK_PERIOD_MS / dt, f"dt = {dt} ms must divide the BOLD stock period of {STOCK_PERIOD_MS} ms")
    stock_per_tr = _whole(
        period_ms / STOCK_PERIOD_MS, f"the TR ({period_ms} ms) must be a multiple of {STOCK_PERIOD_MS} ms")
    n_kernel = int(math.ceil(hrf_length_ms / STOCK_PERIOD_MS))
    kernel = volterra_kernel(np.arange(n_kernel) * STOCK_PERIOD_MS / 1000.0, tau_s, tau_f)
    # Ring buffer holds whole TRs: lags 0..n_kernel must fit.
    buffer_len = int(math.ceil((n_kernel + 1) / stock_per_tr)) * stock_per_tr
    by_lag = np.zeros(buffer_len)
    by_lag[1 : n_kernel + 1] = kernel
    return HRFBold(
        weights_by_lag=jnp.asarray(by_lag, dtype),
        k1_V0=jnp.asarray(k_1 * V_0, dtype),
        period_ms=float(period_ms),
        steps_per_stock=steps_per_stock,
        stock_per_tr=stock_per_tr,
    )


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class BoldState:
    """Ring buffer of stock samples, (L, N), and the number of TRs written."""

    buffer: jax.Array
    n_written: jax.Array


def bold_init(cfg: HRFBold | BalloonBold, S_e0: jax.Array) -> BoldState | BalloonState:
    """A buffer filled with ``S_e0`` (N,): the history of a system at rest there.

    For :class:`BalloonBold` settings, the haemodynamic state at rest.
    """
    if isinstance(cfg, BalloonBold):
        return balloon_init(cfg, S_e0)
    buffer = jnp.broadcast_to(S_e0, (cfg.buffer_len, S_e0.shape[-1])).astype(S_e0.dtype)
    return BoldState(buffer=buffer, n_written=jnp.zeros((), jnp.int32))


def bold_update(cfg: HRFBold | BalloonBold, state, S_e_steps: jax.Array) -> tuple:
    """Append one TR of S_e and return the BOLD sample at its end.

    Either observation model: the HRF kernel here, or :mod:`balloon`'s ODE.

    Args:
        S_e_steps: (steps_per_tr, N) S_e at every integration step of the TR.

    Returns:
        The new state and BOLD, (N,), dimensionless (fractional signal change).
    """
    if isinstance(cfg, BalloonBold):
        return balloon_update(cfg, state, S_e_steps)
    n = S_e_steps.shape[-1]
    stock = S_e_steps.reshape(cfg.stock_per_tr, cfg.steps_per_stock, n).mean(axis=1)
    n_slots = cfg.buffer_len // cfg.stock_per_tr
    start = (state.n_written % n_slots) * cfg.stock_per_tr
    buffer = jax.lax.dynamic_update_slice(state.buffer, stock.astype(state.buffer.dtype), (start, jnp.zeros_like(start)))
    newest = start + cfg.stock_per_tr - 1
    lag = (newest - jnp.arange(cfg.buffer_len)) % cfg.buffer_len
    weights = cfg.weights_by_lag[lag]
    bold = cfg.k1_V0 * (matmul(weights, buffer) - 1.0)
    return BoldState(buffer=buffer, n_written=state.n_written + 1), bold


def chronological(cfg: HRFBold, state: BoldState) -> jax.Array:
    """The ring buffer's stock samples oldest first, (L, N)."""
    n_slots = cfg.buffer_len // cfg.stock_per_tr
    oldest = (state.n_written % n_slots) * cfg.stock_per_tr
    return jnp.roll(state.buffer, -oldest, axis=0)


def _by_block(stock: jax.Array, blocks: jax.Array) -> jax.Array:
    """<kernel block b, TR t> for every TR of ``stock`` (whole TRs of samples, N) and block, (TRs, B, N).

    A product batched over TRs, (B, S) @ (S, N) each, whose operands XLA:CPU takes as they lie;
    a plain einsum transposes the whole series (and its cotangent) first.  The barrier keeps XLA
    from folding the broadcast kernel back into such an einsum."""
    trs = stock.astype(jnp.float64).reshape(-1, blocks.shape[1], stock.shape[-1])
    lhs = jax.lax.optimization_barrier(jnp.broadcast_to(blocks, (trs.shape[0],) + blocks.shape))
    return jax.lax.dot_general(lhs, trs, (((2,), (1,)), ((0,), (0,))), precision=FULL)


def bold_from_steps(cfg: HRFBold, state: BoldState, S_e_steps: jax.Array) -> jax.Array:
    """BOLD at the end of every TR of a whole S_e series at once, (n_tr, N).

    Equals running :func:`bold_update` TR by TR from ``state``, but as one
    product with the kernel, so reverse-mode differentiation stores no ring buffers.

    The kernel's window at the end of TR k spans the buffer's whole TRs k .. k + B - 1
    (B = buffer_len / stock_per_tr), so BOLD_k = sum_b <kernel block b, TR k + b>: one matrix
    product of every TR's stock with the B kernel blocks, then a sum along a diagonal.  An FFT
    convolution of the whole series computes every sample in between too, and its spectra at
    5 simulated minutes are some 90 MB each; this keeps 8 MB and is exact in float64.

    Args:
        S_e_steps: (n_tr * steps_per_tr, N) S_e at every integration step.
    """
    n, per_tr = S_e_steps.shape[-1], cfg.stock_per_tr
    stock = S_e_steps.reshape(-1, cfg.steps_per_stock, n).mean(axis=1)
    n_tr = stock.shape[0] // per_tr
    n_blocks = cfg.buffer_len // per_tr
    # sample s of TR k + b sits at lag buffer_len - 1 - per_tr b - s from the end of TR k
    blocks = cfg.weights_by_lag.astype(jnp.float64)[::-1].reshape(n_blocks, per_tr)
    # the ring's TRs and the series' apart, not concatenated: a copy of the series (and, in reverse
    # mode, of its cotangent) is 50 MB at 5 minutes, 84 regions in float64
    by_block = jnp.concatenate([_by_block(chronological(cfg, state), blocks), _by_block(stock, blocks)])
    k = 1 + jnp.arange(n_tr)[:, None] + jnp.arange(n_blocks)[None, :]
    conv = by_block[k, jnp.arange(n_blocks)[None, :]].sum(axis=1)
    return (cfg.k1_V0 * (conv - 1.0)).astype(S_e_steps.dtype)
