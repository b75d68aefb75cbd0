"""Heun or Euler-Maruyama integration (stochastic or deterministic) with state clamping and delays.

A Heun step follows TVB's ``HeunStochastic.scheme``: the long-range input is
computed once from the history at the start of the step, the predictor and
the corrector share one noise increment, and both are clamped to [0, 1]::

    X~  = clamp(X + dt f(X) + z)
    X'  = clamp(X + dt/2 (f(X) + f(X~)) + z),   z = sigma sqrt(dt) N(0, 1)

An Euler-Maruyama step (the scheme of Schirner et al. 2023's C code, at
dt = 1 ms) is ``X' = clamp(X + dt f(X) + z)``: half the work of a Heun step.

``sigma`` is the noise standard deviation per sqrt(ms); TVB's ``Additive``
noise has ``sigma = sqrt(2 nsig)``.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from .._x64 import ensure_x64
from .coupling import EffectiveCoupling, afferent, history_init, history_write
from .node import NodeParams, dfun, dfun_and_rates


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Integrator:
    """Integrator settings.

    Attributes:
        sigma: (2, N) or (2, 1) noise standard deviation per sqrt(ms) for
            (S_e, S_i).
        dt: static; step in ms.
        noisy: static; which of (S_e, S_i) receive noise.  Only those draw
            random numbers, so noise on S_e alone costs half.
        scheme: static; ``"heun"`` (TVB's) or ``"euler"`` (Euler-Maruyama).
    """

    sigma: jax.Array
    dt: float = dataclasses.field(metadata=dict(static=True), default=4.0)
    noisy: tuple[bool, bool] = dataclasses.field(metadata=dict(static=True), default=(True, False))
    scheme: str = dataclasses.field(metadata=dict(static=True), default="heun")

    @property
    def stochastic(self) -> bool:
        return any(self.noisy)


#: The name of the settings class before Euler-Maruyama joined; kept for users' code.
Heun = Integrator

SCHEMES = ("heun", "euler")


def integrator(scheme: str = "heun", dt: float = 4.0, sigma_e: float = 0.01, sigma_i: float = 0.0,
               dtype=jnp.float64) -> Integrator:
    """Integrator settings; ``sigma_e = sigma_i = 0`` gives the deterministic scheme."""
    ensure_x64()
    if scheme not in SCHEMES:
        raise ValueError(f"integration scheme must be one of {SCHEMES}, got {scheme!r}")
    if not dt > 0:
        raise ValueError(f"dt must be positive, got {dt}")
    sig = jnp.asarray([[sigma_e], [sigma_i]], dtype)
    if bool(jnp.any(sig < 0)) or not bool(jnp.all(jnp.isfinite(sig))):
        raise ValueError(f"noise sigma must be finite and >= 0, got {sigma_e}, {sigma_i}")
    return Integrator(sigma=sig, dt=float(dt), noisy=(bool(sigma_e != 0), bool(sigma_i != 0)), scheme=scheme)


def heun(dt: float = 4.0, sigma_e: float = 0.01, sigma_i: float = 0.0, dtype=jnp.float64) -> Integrator:
    """Heun settings (TVB's ``HeunStochastic``, or deterministic with zero noise)."""
    return integrator("heun", dt, sigma_e, sigma_i, dtype)


def euler_maruyama(dt: float = 1.0, sigma_e: float = 0.01, sigma_i: float = 0.01, dtype=jnp.float64) -> Integrator:
    """Euler-Maruyama settings; the defaults put noise on both populations, as Schirner et al. (2023)."""
    return integrator("euler", dt, sigma_e, sigma_i, dtype)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class IntegratorState:
    """S_e, S_i: (N,) current gating; history: the ring of past S_e (see
    :func:`coupling.history_init`), or None without delays; step: index of
    the last completed step (int32).

    S_e and S_i are carried apart, not stacked: on XLA:CPU the stack and split
    cost more per step than the arithmetic of 84 regions.
    """

    S_e: jax.Array
    S_i: jax.Array
    history: jax.Array | None
    step: jax.Array

    @property
    def S(self) -> jax.Array:
        """(2, N) stacked (S_e, S_i)."""
        return jnp.stack([self.S_e, self.S_i])


def integrator_init(S0: jax.Array, horizon: int) -> IntegratorState:
    """State at rest at ``S0`` (2, N), with a constant history of its S_e."""
    history = history_init(S0[0], horizon)
    return IntegratorState(S_e=S0[0], S_i=S0[1], history=history, step=jnp.zeros((), jnp.int32))


def draw_noise(h: Integrator, key: jax.Array, n_steps: int, n_regions: int, dtype) -> tuple:
    """Noise increments (z_e, z_i) for ``n_steps`` steps, each (n_steps, N) or None.

    Draws are float32 normals cast to ``dtype``: the noise needs no more
    digits, and drawing float64 normals costs twice as much.
    """
    keys = jax.random.split(key, 2)
    out = []
    for i, on in enumerate(h.noisy):
        if not on:
            out.append(None)
            continue
        draw = jax.random.normal(keys[i], (n_steps, n_regions), jnp.float32).astype(dtype)
        out.append(draw * (h.sigma[i] * jnp.sqrt(jnp.asarray(h.dt, dtype))))
    return tuple(out)


def _add(x, z):
    return x if z is None else x + z


def predictor(S, f, z, dt: float):
    """The Euler step (Heun's predictor) X + dt f(X) + z, before clamping; z may be None."""
    return _add(S + dt * f, z)


def corrector(S, f, g, z, dt: float):
    """Heun's corrector X + dt/2 (f(X) + f(X~)) + z, before clamping; z may be None."""
    half = 0.5 * dt
    return _add(S + half * (f + g), z)


def _clamp(x):
    return jnp.clip(x, 0.0, 1.0)


def scheme_step(deriv, S_e, S_i, f_e, f_i, z_e, z_i, dt: float, scheme: str = "heun"):
    """One clamped Heun (or Euler) step from (S_e, S_i), whose derivatives (f_e, f_i) are
    given; ``deriv(S_e, S_i)`` gives those at the predictor.  The one scheme that serves
    :func:`integrator_step` and the hand-written adjoint's forward pass."""
    pe, pi = _clamp(predictor(S_e, f_e, z_e, dt)), _clamp(predictor(S_i, f_i, z_i, dt))
    if scheme == "euler":
        return pe, pi
    g_e, g_i = deriv(pe, pi)
    return _clamp(corrector(S_e, f_e, g_e, z_e, dt)), _clamp(corrector(S_i, f_i, g_i, z_i, dt))


def integrator_step(p: NodeParams, ec: EffectiveCoupling, h: Integrator, st: IntegratorState, z: tuple):
    """Advance one step of ``h.dt`` ms; ``z = (z_e, z_i)`` noise increments, (N,) or None.

    Returns the new state and the firing rates (r_e, r_i) in Hz at the old one.
    """
    step = st.step + 1
    history = st.S_e[None] if st.history is None else st.history
    c_lre, c_ffi = afferent(ec, history, step)
    z_e, z_i = z
    f_e, f_i, r_e, r_i = dfun_and_rates(st.S_e, st.S_i, c_lre, c_ffi, p)
    S_e, S_i = scheme_step(lambda e, i: dfun(e, i, c_lre, c_ffi, p), st.S_e, st.S_i, f_e, f_i, z_e, z_i,
                           h.dt, h.scheme)
    if st.history is not None:
        history = history_write(st.history, S_e, step, ec.horizon)
    else:
        history = None
    return IntegratorState(S_e=S_e, S_i=S_i, history=history, step=step), (r_e, r_i)


def integrate(
    p: NodeParams, ec: EffectiveCoupling, h: Integrator, st: IntegratorState, z: tuple, n_steps: int,
    rates: bool = False,
) -> tuple[IntegratorState, tuple[jax.Array, ...]]:
    """Run ``n_steps`` steps in one ``lax.scan``.

    Args:
        z: (z_e, z_i) from :func:`draw_noise`, each (n_steps, N) or None.
        rates: also return the firing rates (Hz) at the start of every step.

    Returns:
        The final state and the trajectory (S_e, S_i), each (n_steps, N),
        followed by (r_e, r_i) when ``rates``.
    """

    def body(carry, z_t):
        nxt, (r_e, r_i) = integrator_step(p, ec, h, carry, z_t)
        return nxt, ((nxt.S_e, nxt.S_i, r_e, r_i) if rates else (nxt.S_e, nxt.S_i))

    return jax.lax.scan(body, st, z, length=n_steps)
