"""Hand-written reverse mode of the Heun integration (no delays), for gradient fitting.

JAX's automatic reverse of a ``lax.scan`` stores some twenty residual arrays
per step and replays them one small kernel at a time; on a CPU with 84
regions that overhead, not arithmetic, sets the cost.  Here the backward
pass is one reverse scan that recomputes each step from the saved state and
applies the transposed Jacobians of ``dfun`` directly, and
the gradient of the coupling matrices is one matrix product per call instead
of an outer product per step.

:func:`heun_noisy` is one TR of it with the noise drawn from the TR's key, and
its reverse mode draws the noise again rather than storing it (a 5-minute,
84-region float64 simulation's noise is 50 MB; drawing it again costs a few
per cent of the backward pass).  :func:`heun_trajectory` takes the noise given.

The transposed Jacobian of ``dfun`` and the slope of the transfer function
live next to the equations, in :mod:`model`.  Gradients flow to the
initial state, J_i and the stacked coupling matrices; the other node
parameters are constants here (use plain autodiff for those).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from .._precision import FULL, matmul
from .._model.integrate import Integrator, corrector, draw_noise, predictor, scheme_step
from .._model.node import NodeParams, dfun, dfun_linearised, dfun_vjp


def _inside(x):
    return ((x > 0.0) & (x < 1.0)).astype(x.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def heun_trajectory(p: NodeParams, stacked: jax.Array, dt: float, e0, i0, z_e, z_i):
    """Heun integration without delays: S_e, S_i after each step, (T, N) each.

    Same numbers as :func:`integrate.integrate` with ``horizon == 1``;
    ``stacked`` is (2, N, N) = (weights * wLRE, weights * wFFI); z_e, z_i are
    (T, N) noise increments (zeros for none).
    """
    return _steps(p, stacked, dt, e0, i0, z_e, z_i)


def _steps(p, stacked, dt, e0, i0, z_e, z_i, n_steps=None):
    """The forward scan: (S_e, S_i) after each step; z_e or z_i may be None (no noise: give n_steps)."""
    def body(carry, z):
        e, i = carry
        c = matmul(stacked, e)
        f_e, f_i = dfun(e, i, c[0], c[1], p)
        nxt = scheme_step(lambda a, b: dfun(a, b, c[0], c[1], p), e, i, f_e, f_i, z[0], z[1], dt)
        return nxt, nxt

    return jax.lax.scan(body, (e0, i0), (z_e, z_i), length=n_steps)[1]


def _fwd(p, stacked, dt, e0, i0, z_e, z_i):
    traj = _steps(p, stacked, dt, e0, i0, z_e, z_i)
    return traj, (p, stacked, e0, i0, z_e, z_i, traj)


def _bwd(dt, res, ct):
    p, stacked, e0, i0, z_e, z_i, (traj_e, traj_i) = res
    lam_e, lam_i, dJ, d_stacked = _steps_reverse(p, stacked, dt, e0, i0, traj_e, traj_i, z_e, z_i, ct,
                                                  jnp.zeros_like(e0), jnp.zeros_like(e0))
    return _param_ct(p, dJ), d_stacked, lam_e, lam_i, jnp.zeros_like(z_e), jnp.zeros_like(z_i)


def _param_ct(p, dJ):
    d_p = jax.tree_util.tree_map(jnp.zeros_like, p)
    return d_p.replace(J_i=jnp.broadcast_to(dJ, p.J_i.shape).astype(p.J_i.dtype))


def _steps_reverse(p, stacked, dt, e0, i0, traj_e, traj_i, z_e, z_i, ct, lam_e, lam_i):
    """The reverse scan over one stretch of steps that started at (e0, i0).

    ``ct``: cotangents (ct_e, ct_i) of the stretch's outputs, ct_i may be None (S_i not an output);
    ``lam_e, lam_i``: the cotangent of the stretch's last state from what followed it.
    Returns the cotangent of (e0, i0), this stretch's dJ_i and d(stacked)."""
    ct_e, ct_i = ct
    prev_e = jnp.concatenate([e0[None], traj_e[:-1]])
    prev_i = jnp.concatenate([i0[None], traj_i[:-1]])
    n = e0.shape[0]
    stacked_T = stacked.reshape(2 * n, n).T  # (N, 2N): one matvec gives both streams' transpose

    def body(carry, xs):
        lam_e, lam_i, dJ = carry
        e, i, ze, zi, cte, cti = xs
        lam_e = lam_e + cte  # cotangent of this step's output
        lam_i = lam_i if cti is None else lam_i + cti
        c = matmul(stacked, e)
        (f_e, f_i), lin_f = dfun_linearised(e, i, c[0], c[1], p)
        pe_raw, pi_raw = predictor(e, f_e, ze, dt), predictor(i, f_i, zi, dt)
        pe, pi = jnp.clip(pe_raw, 0.0, 1.0), jnp.clip(pi_raw, 0.0, 1.0)
        (g_e, g_i), lin_g = dfun_linearised(pe, pi, c[0], c[1], p)
        u_e = lam_e * _inside(corrector(e, f_e, g_e, ze, dt))
        u_i = lam_i * _inside(corrector(i, f_i, g_i, zi, dt))
        # corrector: e' = e + dt/2 (f(e, i) + f(pe, pi)) + z
        ge, gi, gcl, gcf, gJ = dfun_vjp(pi, lin_g, p, 0.5 * dt * u_e, 0.5 * dt * u_i)
        v_e, v_i = ge * _inside(pe_raw), gi * _inside(pi_raw)
        # predictor: pe = e + dt f(e, i) + z; f(e, i) also enters the corrector
        fe, fi, fcl, fcf, fJ = dfun_vjp(i, lin_f, p, 0.5 * dt * u_e + dt * v_e, 0.5 * dt * u_i + dt * v_i)
        ct_c = jnp.stack([gcl + fcl, gcf + fcf])
        new_e = u_e + v_e + fe + matmul(stacked_T, ct_c.reshape(2 * n))
        new_i = u_i + v_i + fi
        return (new_e, new_i, dJ + gJ + fJ), ct_c

    (lam_e, lam_i, dJ), ct_c = jax.lax.scan(
        body, (lam_e, lam_i, jnp.zeros_like(e0)), (prev_e, prev_i, z_e, z_i, ct_e, ct_i), reverse=True)
    return lam_e, lam_i, dJ, jnp.einsum("tkn,tm->knm", ct_c, prev_e, precision=FULL)


heun_trajectory.defvjp(_fwd, _bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(6,))
def heun_noisy(p: NodeParams, stacked: jax.Array, h: Integrator, e0, i0, key, n_steps: int):
    """:func:`heun_trajectory` of ``n_steps`` steps whose noise :func:`integrate.draw_noise` draws
    from ``key`` (as a simulation draws a TR's): the same numbers, but its reverse mode draws the
    noise again instead of storing it.  Differentiable in ``p.J_i``, ``stacked``, ``e0`` and ``i0``."""
    return _steps(p, stacked, h.dt, e0, i0, *draw_noise(h, key, n_steps, e0.shape[0], e0.dtype), n_steps)


def _noisy_fwd(p, stacked, h, e0, i0, key, n_steps):
    traj = heun_noisy(p, stacked, h, e0, i0, key, n_steps)
    return traj, (p, stacked, h, e0, i0, key, traj)


def _noisy_bwd(n_steps, res, ct):
    p, stacked, h, e0, i0, key, (traj_e, traj_i) = res
    z_e, z_i = draw_noise(h, key, n_steps, e0.shape[0], e0.dtype)
    zero = jnp.zeros_like(e0)
    lam_e, lam_i, dJ, d_stacked = _steps_reverse(p, stacked, h.dt, e0, i0, traj_e, traj_i, z_e, z_i, ct, zero, zero)
    return (_param_ct(p, dJ), d_stacked, jax.tree_util.tree_map(jnp.zeros_like, h), lam_e, lam_i,
            np.zeros(key.shape, jax.dtypes.float0))


heun_noisy.defvjp(_noisy_fwd, _noisy_bwd)
