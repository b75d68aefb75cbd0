"""Adapters from TVB objects to the plugin's pytrees.

TVB's ``ReducedWongWangExcInh`` with coupling strength G and ``Linear(a, b=0)``
coupling is the dual model with ``wLRE = wFFI = G`` and weights ``a * W``.
Every TVB model parameter is carried over, scalar or per region.
"""

from __future__ import annotations

import os

import jax.numpy as jnp
import numpy as np

from .bold import HRFBold, hrf_bold
from .coupling import dual_coupling
from .data import Connectome, normalise_weights
from .integrate import Heun
from .model import PARAMETERS, node_params
from .network import NetworkModel
from .validation import InputError


def tvb_connectivity(name_or_path: str):
    """A configured TVB ``Connectivity``: a tvb-data name (``connectivity_76``) or a zip path."""
    from tvb.datatypes.connectivity import Connectivity

    source = name_or_path if os.path.exists(name_or_path) else (
        name_or_path if name_or_path.endswith(".zip") else name_or_path + ".zip")
    try:
        conn = Connectivity.from_file(source)
    except Exception as err:  # TVB raises assorted errors for missing files
        raise InputError(f"cannot load TVB connectivity {name_or_path!r}: {err}") from None
    conn.configure()
    return conn


def connectome_from_tvb(conn, speed: float | None = None, fc=None) -> Connectome:
    """A :class:`Connectome` from a TVB ``Connectivity`` (weights as stored, not normalised)."""
    speed = float(np.ravel(conn.speed)[0]) if speed is None else float(speed)
    return Connectome(
        labels=tuple(str(x) for x in conn.region_labels),
        weights=np.asarray(conn.weights, dtype=np.float64),
        tract_lengths=np.asarray(conn.tract_lengths, dtype=np.float64),
        fc_target=fc,
        speed=speed,
        name=f"tvb:{getattr(conn, 'title', None) or conn.number_of_regions}",
    )


def _model_overrides(model, n: int) -> tuple[dict, np.ndarray]:
    from tvb.simulator.models import ReducedWongWangExcInh

    if not isinstance(model, ReducedWongWangExcInh):
        raise InputError(f"the model must be TVB's ReducedWongWangExcInh, got {type(model).__name__}")
    values = {}
    for name in PARAMETERS:
        v = np.asarray(getattr(model, name), dtype=np.float64).ravel()
        if v.size not in (1, n):
            raise InputError(f"model.{name} has {v.size} values; expected 1 or {n} (one per region)")
        values[name] = v if v.size == n else v[0]
    G = np.asarray(model.G, dtype=np.float64).ravel()
    if G.size not in (1, n):
        raise InputError(f"model.G has {G.size} values; expected 1 or {n}")
    return values, G


def _coupling_scale(coupling) -> float:
    from tvb.simulator.coupling import Linear

    if coupling is None:
        return 1.0
    if type(coupling) is not Linear:
        raise InputError(f"only TVB's Linear coupling maps onto the dual coupling, got {type(coupling).__name__}")
    if np.any(np.asarray(coupling.b) != 0):
        raise InputError("Linear coupling with b != 0 has no dual-coupling equivalent; use b = 0")
    return float(np.ravel(coupling.a)[0])


def heun_from_tvb(integrator, n: int, dtype=jnp.float64) -> Heun:
    """``HeunStochastic`` (Additive noise) or ``HeunDeterministic`` to :class:`Heun`."""
    from tvb.simulator.integrators import HeunDeterministic, HeunStochastic
    from tvb.simulator.noise import Additive

    dt = float(integrator.dt)
    if type(integrator) is HeunDeterministic:
        return Heun(sigma=jnp.zeros((2, 1), dtype), dt=dt, noisy=(False, False))
    if type(integrator) is not HeunStochastic:
        raise InputError(f"integrator must be HeunStochastic or HeunDeterministic, got {type(integrator).__name__}")
    if type(integrator.noise) is not Additive:
        raise InputError(f"only Additive noise is supported, got {type(integrator.noise).__name__}")
    nsig = np.asarray(integrator.noise.nsig, dtype=np.float64)
    if nsig.size == 1:
        nsig = np.full((2, 1), nsig.ravel()[0])
    elif nsig.shape[0] == 2 and nsig.size in (2, 2 * n):
        nsig = nsig.reshape(2, -1)
    elif nsig.size == n:
        nsig = np.broadcast_to(nsig.reshape(1, n), (2, n))
    else:
        raise InputError(f"noise.nsig has shape {nsig.shape}; expected (1,), (2,), ({n},) or (2, {n})")
    if (nsig < 0).any():
        raise InputError("noise.nsig must be >= 0")
    sigma = np.sqrt(2.0 * nsig)
    return Heun(sigma=jnp.asarray(sigma, dtype), dt=dt, noisy=(bool(sigma[0].any()), bool(sigma[1].any())))


def bold_from_tvb(monitor, dt: float, dtype=jnp.float64) -> HRFBold:
    """TVB ``Bold`` monitor with the first-order Volterra kernel to :class:`HRFBold`."""
    from tvb.datatypes.equations import FirstOrderVolterra
    from tvb.simulator.monitors import Bold

    if monitor is None:
        return hrf_bold(dt=dt, dtype=dtype)
    if not isinstance(monitor, Bold):
        raise InputError(f"the monitor must be TVB's Bold, got {type(monitor).__name__}")
    if not isinstance(monitor.hrf_kernel, FirstOrderVolterra):
        raise InputError(f"only the FirstOrderVolterra HRF kernel is supported, got {type(monitor.hrf_kernel).__name__}")
    k = monitor.hrf_kernel.parameters
    return hrf_bold(dt=dt, period_ms=float(monitor.period), hrf_length_ms=float(monitor.hrf_length),
                    tau_s=k["tau_s"], tau_f=k["tau_f"], k_1=k["k_1"], V_0=k["V_0"], dtype=dtype)


def network_from_tvb(
    connectivity,
    model,
    *,
    normalise: str,
    coupling=None,
    integrator=None,
    monitor=None,
    delays: bool = True,
    dtype=jnp.float64,
) -> NetworkModel:
    """A :class:`NetworkModel` equal to TVB's simulation of these objects.

    Args:
        connectivity: TVB ``Connectivity`` (or a :class:`Connectome`).
        model: TVB ``ReducedWongWangExcInh``; G becomes wLRE = wFFI = G.
        normalise: how to scale the weights first: ``"max"`` (W / max W, the
            reference workflow) or ``"none"`` (as TVB uses them). Required,
            because the two give different dynamics.
        coupling: TVB ``Linear`` (its ``a`` scales the weights); None: a = 1.
        integrator: ``HeunStochastic`` with ``Additive`` noise or
            ``HeunDeterministic``; None: stochastic Heun, dt 4 ms, sigma 0.01 on S_e.
        monitor: TVB ``Bold`` (Volterra kernel); None: TR 720 ms.
        delays: use tract_lengths / speed as conduction delays (as TVB does).
    """
    con = connectivity if isinstance(connectivity, Connectome) else connectome_from_tvb(connectivity)
    n = con.n_regions
    overrides, G = _model_overrides(model, n)
    weights = normalise_weights(con.weights, normalise) * _coupling_scale(coupling)
    if integrator is None:
        from .integrate import heun

        h = heun(dtype=dtype)
    else:
        h = heun_from_tvb(integrator, n, dtype)
    G_matrix = np.broadcast_to(G.reshape(-1, 1), (n, n))
    delays_ms = con.delays_ms() if delays else None
    return NetworkModel(
        node=node_params(n, dtype=dtype, **overrides),
        coupling=dual_coupling(weights, G_matrix, G_matrix, delays_ms=delays_ms, dt=h.dt, dtype=dtype),
        integrator=h,
        bold=bold_from_tvb(monitor, h.dt, dtype),
    )


def network_from_simulator(simulator, *, normalise: str, dtype=jnp.float64) -> NetworkModel:
    """A :class:`NetworkModel` from a configured (or configurable) TVB ``Simulator``.

    Uses its connectivity (with the simulator's conduction speed), model,
    coupling, integrator and its Bold monitor when it has one.
    """
    from tvb.simulator.monitors import Bold

    bolds = [m for m in simulator.monitors if isinstance(m, Bold)]
    speed = float(np.ravel(simulator.conduction_speed)[0])
    con = connectome_from_tvb(simulator.connectivity, speed=speed)
    return network_from_tvb(con, simulator.model, normalise=normalise, coupling=simulator.coupling,
                            integrator=simulator.integrator, monitor=bolds[0] if bolds else None, dtype=dtype)
