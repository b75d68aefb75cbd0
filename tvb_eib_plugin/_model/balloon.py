"""BOLD from S_e through the Balloon-Windkessel model, in streaming form.

The haemodynamic model of Friston et al. (2000) with the constants and the
BOLD equation of Stephan et al. (2007), as used by Schirner et al. (2023),
driven by the excitatory gating ``z = S_e``; time in seconds::

    ds/dt = z - kappa s - gamma (f - 1)             (vasodilatory signal)
    df/dt = s                                       (blood inflow)
    dv/dt = (f - v^(1/alpha)) / tau                 (blood volume)
    dq/dt = (f (1 - (1 - rho)^(1/f)) / rho - v^(1/alpha) q / v) / tau
    BOLD  = V_0 (k_1 (1 - q) + k_2 (1 - q / v) + k_3 (1 - v))

integrated with forward Euler.  The state starts at rest (s = 0, f = v = q = 1);
a transient of a minute or more (the paper discards 50 TRs) washes that out.

The Euler step is ``"simultaneous"`` (every derivative at the old state, the
default) or ``"sequential"`` as the authors' released C program has it: the new
s feeds f, and the new v feeds q (f in v and q is still the old one).  The two
differ by O(h) over a run, 1e-3 of the signal at h = 1 ms.  (The program also
scales BOLD by 100 / rho, a percent signal; FC does not see the factor.)
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

BALLOON_ORDERS = ("simultaneous", "sequential")


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class BalloonBold:
    """Balloon-Windkessel settings (rates in 1/s, tau in s, all dimensionless otherwise).

    Attributes:
        kappa: signal decay rate (1/0.65 1/s); gamma: flow-dependent elimination (1/0.41 1/s);
        tau: haemodynamic transit time (0.98 s); alpha: Grubb's exponent (0.32);
        rho: resting oxygen extraction fraction (0.34); V_0: resting blood volume fraction (0.02);
        k1, k2, k3: BOLD coefficients (7 rho, 2, 2 rho - 0.2).
        period_ms: static; TR in ms.
        steps_per_update: static; integration steps averaged into one Euler step of the ODE.
        updates_per_tr: static; Euler steps of the ODE per TR.
        step_ms: static; the ODE's Euler step in ms.
        order: static; ``"simultaneous"`` or ``"sequential"`` Euler step (see the module doc).
    """

    kappa: jax.Array
    gamma: jax.Array
    tau: jax.Array
    alpha: jax.Array
    rho: jax.Array
    V_0: jax.Array
    k1: jax.Array
    k2: jax.Array
    k3: jax.Array
    period_ms: float = dataclasses.field(metadata=dict(static=True), default=720.0)
    steps_per_update: int = dataclasses.field(metadata=dict(static=True), default=1)
    updates_per_tr: int = dataclasses.field(metadata=dict(static=True), default=720)
    step_ms: float = dataclasses.field(metadata=dict(static=True), default=1.0)
    order: str = dataclasses.field(metadata=dict(static=True), default="simultaneous")

    @property
    def steps_per_tr(self) -> int:
        return self.steps_per_update * self.updates_per_tr


def balloon_bold(
    dt: float = 1.0,
    period_ms: float = 720.0,
    step_ms: float | None = None,
    kappa: float = 1 / 0.65,
    gamma: float = 1 / 0.41,
    tau: float = 0.98,
    alpha: float = 0.32,
    rho: float = 0.34,
    V_0: float = 0.02,
    order: str = "simultaneous",
    dtype=jnp.float64,
) -> BalloonBold:
    """Balloon-Windkessel BOLD settings with the constants of Schirner et al. (2023).

    Args:
        dt: the neural integration step (ms).
        step_ms: the ODE's Euler step (ms), a whole multiple of ``dt`` dividing the TR;
            None: ``dt`` (the ODE steps with the neural model).
        order: ``"simultaneous"`` Euler step, or ``"sequential"`` (the released C program's).
    """
    if order not in BALLOON_ORDERS:
        raise ValueError(f"the Balloon-Windkessel update order must be one of {BALLOON_ORDERS}, got {order!r}")
    step_ms = dt if step_ms is None else step_ms
    per_update = int(round(step_ms / dt))
    per_tr = int(round(period_ms / step_ms))
    if per_update < 1 or abs(per_update * dt - step_ms) > 1e-9 or abs(per_tr * step_ms - period_ms) > 1e-9:
        raise ValueError(f"the Balloon-Windkessel step ({step_ms} ms) must be a whole multiple of dt ({dt} ms) "
                         f"and divide the TR ({period_ms} ms)")
    c = lambda x: jnp.asarray(x, dtype)
    return BalloonBold(kappa=c(kappa), gamma=c(gamma), tau=c(tau), alpha=c(alpha), rho=c(rho), V_0=c(V_0),
                       k1=c(7 * rho), k2=c(2.0), k3=c(2 * rho - 0.2), period_ms=float(period_ms),
                       steps_per_update=per_update, updates_per_tr=per_tr, step_ms=float(step_ms), order=order)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class BalloonState:
    """(N,) s, f, v, q."""

    s: jax.Array
    f: jax.Array
    v: jax.Array
    q: jax.Array


def balloon_init(cfg: BalloonBold, S_e0: jax.Array) -> BalloonState:
    """The haemodynamic state at rest, for regions shaped like ``S_e0`` (N,)."""
    one = jnp.ones_like(S_e0)
    return BalloonState(s=jnp.zeros_like(S_e0), f=one, v=one, q=one)


def _derivatives(cfg: BalloonBold, st: BalloonState, z: jax.Array):
    v_alpha = jnp.power(st.v, 1.0 / cfg.alpha)
    extraction = (1.0 - jnp.power(1.0 - cfg.rho, 1.0 / st.f)) / cfg.rho
    ds = z - cfg.kappa * st.s - cfg.gamma * (st.f - 1.0)
    dv = (st.f - v_alpha) / cfg.tau
    dq = (st.f * extraction - v_alpha * st.q / st.v) / cfg.tau
    return ds, st.s, dv, dq


def balloon_signal(cfg: BalloonBold, st: BalloonState) -> jax.Array:
    """BOLD (N,), fractional signal change, from the haemodynamic state."""
    return cfg.V_0 * (cfg.k1 * (1.0 - st.q) + cfg.k2 * (1.0 - st.q / st.v) + cfg.k3 * (1.0 - st.v))


def _sequential_step(cfg: BalloonBold, st: BalloonState, z: jax.Array, h) -> BalloonState:
    """One Euler step in the released C program's order: s, then f from the new s, v from the
    old f, q from the old f and the new v."""
    ds, _, dv, _ = _derivatives(cfg, st, z)
    s, v = st.s + h * ds, st.v + h * dv
    dq = _derivatives(cfg, dataclasses.replace(st, v=v), z)[3]  # the old f and q, the new v
    return BalloonState(s=s, f=st.f + h * s, v=v, q=st.q + h * dq)


def balloon_update(cfg: BalloonBold, state: BalloonState, S_e_steps: jax.Array) -> tuple[BalloonState, jax.Array]:
    """Drive the ODE with one TR of S_e, (steps_per_tr, N); return the new state and BOLD (N,)."""
    n = S_e_steps.shape[-1]
    drive = S_e_steps.reshape(cfg.updates_per_tr, cfg.steps_per_update, n).mean(axis=1).astype(state.s.dtype)
    h = cfg.step_ms / 1000.0

    def body(st, z):
        if cfg.order == "sequential":
            return _sequential_step(cfg, st, z, h), None
        ds, df, dv, dq = _derivatives(cfg, st, z)
        return BalloonState(s=st.s + h * ds, f=st.f + h * df, v=st.v + h * dv, q=st.q + h * dq), None

    state, _ = jax.lax.scan(body, state, drive)
    return state, balloon_signal(cfg, state)
