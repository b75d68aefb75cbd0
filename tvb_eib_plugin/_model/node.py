"""Two-population reduced Wong-Wang node dynamics with dual (EIB) coupling.

The equations are those of TVB's ``ReducedWongWangExcInh`` (Deco et al. 2014)
except that long-range input arrives in two streams: long-range excitation
``c_lre`` onto the excitatory pool and feedforward inhibition ``c_ffi`` onto the
inhibitory pool (Schirner, Deco & Ritter 2023)::

    x_e = a_e (w_p J_N S_e - J_i S_i + W_e I_o + J_N c_lre + I_ext) - b_e
    x_i = a_i (J_N S_e - S_i + W_i I_o + lamda J_N c_ffi) - b_i
    dS_e/dt = -S_e / tau_e + (1 - S_e) gamma_e H(x_e, d_e)
    dS_i/dt = -S_i / tau_i + gamma_i H(x_i, d_i)

with the transfer function ``H(x, d) = x / (1 - exp(-d x))`` (Hz).  With
``c_lre = c_ffi = G * sum_j W_ij S_e_j`` this is TVB's model with coupling
strength ``G``.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._x64 import ensure_x64


class ParameterSpec(NamedTuple):
    """Declaration of one model parameter: default, plausible range, unit, doc."""

    default: float
    lo: float
    hi: float
    unit: str
    doc: str


#: Every node parameter, with TVB's defaults except ``lamda`` (1 here, 0 in TVB),
#: which the reference workflow sets so that feedforward inhibition is on.
PARAMETERS: dict[str, ParameterSpec] = {
    "a_e": ParameterSpec(310.0, 0.0, 500.0, "nC^-1", "excitatory gain"),
    "b_e": ParameterSpec(125.0, 0.0, 200.0, "Hz", "excitatory threshold shift"),
    "d_e": ParameterSpec(0.160, 0.0, 0.2, "s", "excitatory curvature"),
    "gamma_e": ParameterSpec(0.641e-3, 0.0, 1e-3, "1", "excitatory kinetic factor"),
    "tau_e": ParameterSpec(100.0, 50.0, 150.0, "ms", "NMDA decay time"),
    "w_p": ParameterSpec(1.4, 0.0, 2.0, "1", "recurrent excitation weight"),
    "W_e": ParameterSpec(1.0, 0.0, 2.0, "1", "external input scaling, excitatory"),
    "J_N": ParameterSpec(0.15, 0.001, 0.5, "nA", "NMDA synaptic coupling"),
    "a_i": ParameterSpec(615.0, 0.0, 1000.0, "nC^-1", "inhibitory gain"),
    "b_i": ParameterSpec(177.0, 0.0, 200.0, "Hz", "inhibitory threshold shift"),
    "d_i": ParameterSpec(0.087, 0.0, 0.2, "s", "inhibitory curvature"),
    "gamma_i": ParameterSpec(1e-3, 0.0, 2e-3, "1", "inhibitory kinetic factor"),
    "tau_i": ParameterSpec(10.0, 5.0, 100.0, "ms", "GABA decay time"),
    "W_i": ParameterSpec(0.7, 0.0, 1.0, "1", "external input scaling, inhibitory"),
    "J_i": ParameterSpec(1.0, 0.001, 2.0, "nA", "local inhibitory coupling (tuned by FIC)"),
    "I_o": ParameterSpec(0.382, 0.0, 1.0, "nA", "effective external input"),
    "I_ext": ParameterSpec(0.0, 0.0, 0.5, "nA", "external stimulus current"),
    "lamda": ParameterSpec(1.0, 0.0, 1.0, "1", "feedforward-inhibition scaling"),
}


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class NodeParams:
    """Node parameters; each field is a scalar or a per-region array of shape (N,)."""

    a_e: jax.Array
    b_e: jax.Array
    d_e: jax.Array
    gamma_e: jax.Array
    tau_e: jax.Array
    w_p: jax.Array
    W_e: jax.Array
    J_N: jax.Array
    a_i: jax.Array
    b_i: jax.Array
    d_i: jax.Array
    gamma_i: jax.Array
    tau_i: jax.Array
    W_i: jax.Array
    J_i: jax.Array
    I_o: jax.Array
    I_ext: jax.Array
    lamda: jax.Array

    def replace(self, **changes) -> "NodeParams":
        return dataclasses.replace(self, **changes)

    def astype(self, dtype) -> "NodeParams":
        return jax.tree_util.tree_map(lambda x: jnp.asarray(x, dtype), self)


def node_params(n_regions: int, dtype=jnp.float64, **overrides) -> NodeParams:
    """Node parameters with defaults from :data:`PARAMETERS`.

    ``J_i`` is always per region, shape (n_regions,), because FIC tunes it.
    Any other parameter may be given as a scalar or an (n_regions,) array.
    """
    ensure_x64()
    unknown = set(overrides) - set(PARAMETERS)
    if unknown:
        raise ValueError(f"unknown node parameter(s) {sorted(unknown)}; known: {sorted(PARAMETERS)}")
    values = {}
    for name, spec in PARAMETERS.items():
        value = np.asarray(overrides.get(name, spec.default), dtype=np.float64)
        if value.ndim > 1 or (value.ndim == 1 and value.size not in (1, n_regions)):
            raise ValueError(
                f"parameter {name} has shape {value.shape}; expected a scalar or ({n_regions},)")
        if not np.all(np.isfinite(value)):
            raise ValueError(f"parameter {name} contains NaN or inf")
        if value.ndim == 1 and value.size == 1:
            value = value[0]
        if name == "J_i":
            value = np.broadcast_to(value, (n_regions,)).copy()
        values[name] = jnp.asarray(value, dtype)
    return NodeParams(**values)


def _guard(x, d, xp):
    """x moved off the removable singularity at 0, and ``d x`` floored at -60 (see :func:`transfer`)."""
    x = xp.where(x == 0, 1e-12, x)
    return x, xp.maximum(d * x, -60.0)


def transfer(x: jax.Array, d: jax.Array, xp=jnp) -> jax.Array:
    """Population transfer function H(x) = x / (1 - exp(-d x)) in Hz.

    ``expm1`` keeps H accurate for small |x|, so only x exactly 0 (the
    removable singularity, limit 1/d) needs care: it is moved to 1e-12, where
    H equals 1/d to 12 digits.  A Taylor branch near 0 would be cleaner on
    paper but costs half the simulation's time on CPU.  ``d x`` is floored at
    -60 because there H is below 1e-24 Hz and exp(-d x) would overflow float32.
    ``xp``: the array namespace (``numpy`` inside TVB's simulator).
    """
    x, dx = _guard(x, d, xp)
    return x / (-xp.expm1(-dx))


def transfer_and_slope(x: jax.Array, d: jax.Array) -> tuple[jax.Array, jax.Array]:
    """H(x) of :func:`transfer` (the same operations, so the same bits) and dH/dx.

    H'(x) = (1 - d H(x) exp(-d x)) / (1 - exp(-d x)); the closed form cancels
    near 0, where the Taylor form 1/2 + d x / 6 is used instead.
    """
    x, dx = _guard(x, d, jnp)
    D = -jnp.expm1(-dx)
    H = x / D
    small = jnp.abs(dx) < 1e-3
    slope = jnp.where(small, 0.5 + dx / 6.0, (1.0 - d * H * jnp.exp(-dx)) / jnp.where(small, 1.0, D))
    return H, slope


def input_currents(S_e, S_i, c_lre, c_ffi, p: NodeParams) -> tuple[jax.Array, jax.Array]:
    """Shifted, scaled input currents x_e, x_i (Hz) of both pools.

    Only the arrays' own operators: the same code runs on jax arrays and, in
    the TVB export, on numpy arrays of shape (N, modes).
    """
    x_e = p.a_e * (p.w_p * p.J_N * S_e - p.J_i * S_i + p.W_e * p.I_o + p.J_N * c_lre + p.I_ext) - p.b_e
    x_i = p.a_i * (p.J_N * S_e - S_i + p.W_i * p.I_o + p.lamda * p.J_N * c_ffi) - p.b_i
    return x_e, x_i


def gating_derivatives(S_e, S_i, r_e, r_i, p: NodeParams) -> tuple[jax.Array, jax.Array]:
    """dS_e/dt, dS_i/dt (1/ms) given the firing rates r_e, r_i (Hz); array-agnostic."""
    dS_e = -S_e / p.tau_e + (1.0 - S_e) * r_e * p.gamma_e
    dS_i = -S_i / p.tau_i + r_i * p.gamma_i
    return dS_e, dS_i


def dfun(
    S_e: jax.Array, S_i: jax.Array, c_lre: jax.Array, c_ffi: jax.Array, p: NodeParams, xp=jnp
) -> tuple[jax.Array, jax.Array]:
    """Time derivatives (per ms) of the gating variables.

    Args:
        S_e, S_i: excitatory / inhibitory gating, shape (N,), dimensionless.
        c_lre: long-range excitatory input sum_j W_ij wLRE_ij S_e_j, shape (N,).
        c_ffi: feedforward-inhibition input sum_j W_ij wFFI_ij S_e_j, shape (N,).
        p: node parameters.
        xp: the array namespace (``numpy`` for the TVB export).

    Returns:
        (dS_e/dt, dS_i/dt), each shape (N,), in 1/ms.
    """
    dS_e, dS_i, _, _ = dfun_and_rates(S_e, S_i, c_lre, c_ffi, p, xp)
    return dS_e, dS_i


def dfun_and_rates(S_e, S_i, c_lre, c_ffi, p: NodeParams, xp=jnp) -> tuple[jax.Array, ...]:
    """(dS_e/dt, dS_i/dt, r_e, r_i): :func:`dfun` and the firing rates (Hz) it uses."""
    r_e, r_i = firing_rates(S_e, S_i, c_lre, c_ffi, p, xp)
    dS_e, dS_i = gating_derivatives(S_e, S_i, r_e, r_i, p)
    return dS_e, dS_i, r_e, r_i


def firing_rates(
    S_e: jax.Array, S_i: jax.Array, c_lre: jax.Array, c_ffi: jax.Array, p: NodeParams, xp=jnp
) -> tuple[jax.Array, jax.Array]:
    """Excitatory and inhibitory firing rates H(x_e), H(x_i) in Hz, shape (N,) each."""
    x_e, x_i = input_currents(S_e, S_i, c_lre, c_ffi, p)
    return transfer(x_e, p.d_e, xp), transfer(x_i, p.d_i, xp)


# -- the transposed Jacobian of dfun, for the hand-written adjoint (adjoint.py) -------------------
#
# For f = (f_e, f_i) = dfun(e, i, c) and a cotangent (w_e, w_i) on f, with
# q_e = w_e (1 - e) gamma_e H'(x_e) a_e and q_i = w_i gamma_i H'(x_i) a_i::
#
#     de = w_e (-1/tau_e - gamma_e H(x_e)) + q_e w_p J_N + q_i J_N
#     di = -q_e J_i - w_i / tau_i - q_i
#     dc_lre = q_e J_N,  dc_ffi = q_i lamda J_N,  dJ_i = -q_e i
#
# The partial derivatives of input_currents and gating_derivatives above, by hand.


def dfun_linearised(e, i, c_lre, c_ffi, p: NodeParams):
    """dfun at (e, i) and what its transposed Jacobian needs: (f_e, f_i), (k_e, k_i, H_e)
    with k_e = (1 - e) gamma_e H'(x_e) a_e and k_i = gamma_i H'(x_i) a_i."""
    x_e, x_i = input_currents(e, i, c_lre, c_ffi, p)
    H_e, s_e = transfer_and_slope(x_e, p.d_e)
    H_i, s_i = transfer_and_slope(x_i, p.d_i)
    f_e, f_i = gating_derivatives(e, i, H_e, H_i, p)
    return (f_e, f_i), ((1.0 - e) * p.gamma_e * s_e * p.a_e, p.gamma_i * s_i * p.a_i, H_e)


def dfun_vjp(i, lin, p: NodeParams, w_e, w_i):
    """Transpose of dfun's Jacobian at the point ``lin`` of :func:`dfun_linearised` (whose
    S_i was ``i``) applied to (w_e, w_i): (de, di, dc_lre, dc_ffi, dJ_i)."""
    k_e, k_i, H_e = lin
    q_e, q_i = w_e * k_e, w_i * k_i
    de = w_e * (-1.0 / p.tau_e - p.gamma_e * H_e) + q_e * p.w_p * p.J_N + q_i * p.J_N
    di = -q_e * p.J_i - w_i / p.tau_i - q_i
    return de, di, q_e * p.J_N, q_i * p.lamda * p.J_N, -q_e * i
