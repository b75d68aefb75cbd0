"""Hand-written reverse mode of the Heun integration (no delays), for gradient fitting.

JAX's automatic reverse of a ``lax.scan`` stores some twenty residual arrays
per step and replays them one small kernel at a time; on a CPU with 84
regions that overhead, not arithmetic, sets the cost.  Here the backward
pass is one reverse scan that recomputes each step from the saved state and
applies the transposed Jacobians of ``dfun`` directly, and
the gradient of the coupling matrices is one matrix product per call instead
of an outer product per step.

The transposed Jacobian of ``dfun`` and the slope of the transfer function
live next to the equations, in :mod:`model`.  Gradients flow to the
initial state, J_i and the stacked coupling matrices; the other node
parameters are constants here (use plain autodiff for those).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from .integrate import corrector, predictor, scheme_step
from .model import NodeParams, dfun, dfun_linearised, dfun_vjp


def _inside(x):
    return ((x > 0.0) & (x < 1.0)).astype(x.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def heun_trajectory(p: NodeParams, stacked: jax.Array, dt: float, e0, i0, z_e, z_i):
    """Heun integration without delays: S_e, S_i after each step, (T, N) each.

    Same numbers as :func:`integrate.integrate` with ``horizon == 1``;
    ``stacked`` is (2, N, N) = (weights * wLRE, weights * wFFI); z_e, z_i are
    (T, N) noise increments (zeros for none).
    """
    return _forward(p, stacked, dt, e0, i0, z_e, z_i)[0]


def _forward(p, stacked, dt, e0, i0, z_e, z_i):
    def body(carry, z):
        e, i = carry
        c = stacked @ e
        f_e, f_i = dfun(e, i, c[0], c[1], p)
        nxt = scheme_step(lambda a, b: dfun(a, b, c[0], c[1], p), e, i, f_e, f_i, z[0], z[1], dt)
        return nxt, nxt

    _, traj = jax.lax.scan(body, (e0, i0), (z_e, z_i))
    return traj, (p, stacked, e0, i0, z_e, z_i, traj)


def _fwd(p, stacked, dt, e0, i0, z_e, z_i):
    return _forward(p, stacked, dt, e0, i0, z_e, z_i)


def _bwd(dt, res, ct):
    p, stacked, e0, i0, z_e, z_i, (traj_e, traj_i) = res
    ct_e, ct_i = ct
    prev_e = jnp.concatenate([e0[None], traj_e[:-1]])
    prev_i = jnp.concatenate([i0[None], traj_i[:-1]])
    n = e0.shape[0]
    stacked_T = stacked.reshape(2 * n, n).T  # (N, 2N): one matvec gives both streams' transpose

    def body(carry, xs):
        lam_e, lam_i, dJ = carry
        e, i, ze, zi, cte, cti = xs
        lam_e, lam_i = lam_e + cte, lam_i + cti  # cotangent of this step's output
        c = stacked @ e
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
        new_e = u_e + v_e + fe + stacked_T @ ct_c.reshape(2 * n)
        new_i = u_i + v_i + fi
        return (new_e, new_i, dJ + gJ + fJ), ct_c

    zero = jnp.zeros_like(e0)
    (lam_e, lam_i, dJ), ct_c = jax.lax.scan(
        body, (zero, zero, zero), (prev_e, prev_i, z_e, z_i, ct_e, ct_i), reverse=True)
    d_stacked = jnp.einsum("tkn,tm->knm", ct_c, prev_e)
    d_p = jax.tree_util.tree_map(jnp.zeros_like, p)
    d_p = d_p.replace(J_i=jnp.broadcast_to(dJ, p.J_i.shape).astype(p.J_i.dtype))
    return d_p, d_stacked, lam_e, lam_i, jnp.zeros_like(z_e), jnp.zeros_like(z_i)


heun_trajectory.defvjp(_fwd, _bwd)
