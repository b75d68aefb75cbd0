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


def transfer(x: jax.Array, d: jax.Array) -> jax.Array:
    """Population transfer function H(x) = x / (1 - exp(-d x)) in Hz.

    ``expm1`` keeps H accurate for small |x|, so only x exactly 0 (the
    removable singularity, limit 1/d) needs care: it is moved to 1e-12, where
    H equals 1/d to 12 digits.  A Taylor branch near 0 would be cleaner on
    paper but costs half the simulation's time on CPU.  ``d x`` is floored at
    -60 because there H is below 1e-24 Hz and exp(-d x) would overflow float32.
    """
    x = jnp.where(x == 0, 1e-12, x)
    return x / (-jnp.expm1(-jnp.maximum(d * x, -60.0)))


def _inputs(S_e, S_i, c_lre, c_ffi, p: NodeParams) -> tuple[jax.Array, jax.Array]:
    """Shifted, scaled input currents x_e, x_i (Hz) of both pools."""
    x_e = p.a_e * (p.w_p * p.J_N * S_e - p.J_i * S_i + p.W_e * p.I_o + p.J_N * c_lre + p.I_ext) - p.b_e
    x_i = p.a_i * (p.J_N * S_e - S_i + p.W_i * p.I_o + p.lamda * p.J_N * c_ffi) - p.b_i
    return x_e, x_i


def dfun(
    S_e: jax.Array, S_i: jax.Array, c_lre: jax.Array, c_ffi: jax.Array, p: NodeParams
) -> tuple[jax.Array, jax.Array]:
    """Time derivatives (per ms) of the gating variables.

    Args:
        S_e, S_i: excitatory / inhibitory gating, shape (N,), dimensionless.
        c_lre: long-range excitatory input sum_j W_ij wLRE_ij S_e_j, shape (N,).
        c_ffi: feedforward-inhibition input sum_j W_ij wFFI_ij S_e_j, shape (N,).
        p: node parameters.

    Returns:
        (dS_e/dt, dS_i/dt), each shape (N,), in 1/ms.
    """
    dS_e, dS_i, _, _ = dfun_and_rates(S_e, S_i, c_lre, c_ffi, p)
    return dS_e, dS_i


def dfun_and_rates(S_e, S_i, c_lre, c_ffi, p: NodeParams) -> tuple[jax.Array, ...]:
    """(dS_e/dt, dS_i/dt, r_e, r_i): :func:`dfun` and the firing rates (Hz) it uses."""
    r_e, r_i = firing_rates(S_e, S_i, c_lre, c_ffi, p)
    dS_e = -S_e / p.tau_e + (1.0 - S_e) * r_e * p.gamma_e
    dS_i = -S_i / p.tau_i + r_i * p.gamma_i
    return dS_e, dS_i, r_e, r_i


def firing_rates(
    S_e: jax.Array, S_i: jax.Array, c_lre: jax.Array, c_ffi: jax.Array, p: NodeParams
) -> tuple[jax.Array, jax.Array]:
    """Excitatory and inhibitory firing rates H(x_e), H(x_i) in Hz, shape (N,) each."""
    x_e, x_i = _inputs(S_e, S_i, c_lre, c_ffi, p)
    return transfer(x_e, p.d_e), transfer(x_i, p.d_i)
