"""Adapters from TVB objects to the plugin's pytrees.

TVB's ``ReducedWongWangExcInh`` with coupling strength G and ``Linear(a, b=0)``
coupling is the dual model with ``wLRE = wFFI = G`` and weights ``a * W``.
Every TVB model parameter is carried over, scalar or per region.
"""

from __future__ import annotations

import dataclasses
import os
import warnings

import jax.numpy as jnp
import numpy as np

from .._x64 import ensure_x64
from .._model.bold import HRFBold, hrf_bold
from .._model.coupling import dual_coupling
from .._io.data import SHIPPED, Connectome, load_dataset, normalise_weights
from .._model.integrate import Heun
from .._model.node import PARAMETERS, node_params
from .._model.network import NetworkModel, SimState, initial_state
from .._validation import InputError


def tvb_connectivity(source):
    """A configured TVB ``Connectivity``.

    Args:
        source: a data set name (tvb-data's ``"connectivity_76"`` or the shipped
            ``"dk_average"``), a zip path (absolute or
            relative to the working directory), or a :class:`Connectome` (e.g.
            ``load_dataset("dk_average")``: its weights, tract lengths, labels and speed).
    """
    from tvb.datatypes.connectivity import Connectivity

    if isinstance(source, Connectome):
        n = source.n_regions
        tl = np.zeros((n, n)) if source.tract_lengths is None else source.tract_lengths
        return connectivity_of(source.weights, tl, source.labels, source.speed)
    name = os.fspath(source)
    if name in SHIPPED and not os.path.exists(name):  # every name `tvb-eib list` shows, not only tvb-data's zips
        return tvb_connectivity(load_dataset(name))
    if os.path.exists(name):
        path = os.path.abspath(name)  # TVB reads a relative name inside the tvb-data package
    else:
        path = name if name.endswith(".zip") else name + ".zip"
    try:
        conn = Connectivity.from_file(path)
    except Exception as err:  # TVB raises assorted errors for missing files
        raise InputError(f"cannot load TVB connectivity {name!r}: {err}") from None
    conn.configure()
    return conn


def connectivity_of(weights, tract_lengths, labels, speed: float):
    """A configured TVB ``Connectivity`` of plain arrays (centres unknown: zeros)."""
    from tvb.datatypes.connectivity import Connectivity

    n = np.shape(weights)[0]
    conn = Connectivity(weights=np.asarray(weights, np.float64), tract_lengths=np.asarray(tract_lengths, np.float64),
                        region_labels=np.array([str(x) for x in labels]), centres=np.zeros((n, 3)),
                        speed=np.array([float(speed)]))
    conn.configure()
    return conn


def tvb_speed(conn) -> float:
    """The conduction speed TVB 2.10 uses for ``conn``'s delays (``tract_lengths / connectivity.speed``)."""
    speed = np.ravel(np.asarray([3.0] if conn.speed is None else conn.speed, np.float64))  # TVB's default
    if speed.size == 0 or not np.all(speed == speed[0]):
        raise InputError("the connectivity has a speed per edge; the plugin takes one conduction speed: "
                         "set connectivity.speed to a single value")
    return float(speed[0])


def connectome_from_tvb(conn, speed: float | None = None, fc=None, name: str | None = None) -> Connectome:
    """A :class:`Connectome` from a TVB ``Connectivity`` (weights as stored, not normalised), called
    ``name`` (default: from the Connectivity's title, which TVB fills with its gid)."""
    speed = tvb_speed(conn) if speed is None else float(speed)
    return Connectome(
        labels=tuple(str(x) for x in conn.region_labels),
        weights=np.asarray(conn.weights, dtype=np.float64),
        tract_lengths=np.asarray(conn.tract_lengths, dtype=np.float64),
        fc_target=fc,
        speed=speed,
        name=name or f"tvb:{getattr(conn, 'title', None) or conn.number_of_regions}",
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
    ensure_x64()
    con = connectivity if isinstance(connectivity, Connectome) else connectome_from_tvb(connectivity)
    n = con.n_regions
    overrides, G = _model_overrides(model, n)
    weights = normalise_weights(con.weights, normalise) * _coupling_scale(coupling)
    if integrator is None:
        from .._model.integrate import heun

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

    Uses its connectivity, model, coupling, integrator and its Bold monitor
    when it has one.  Delays are TVB 2.10's: ``rint(tract_lengths /
    connectivity.speed / dt)``; ``Simulator.conduction_speed`` sets no delays
    in TVB (a warning says so when it differs from ``connectivity.speed``).
    Start the plugin from the Simulator's ``initial_conditions`` with
    :func:`initial_state_from_tvb`.
    """
    from tvb.simulator.monitors import Bold

    bolds = [m for m in simulator.monitors if isinstance(m, Bold)]
    speed = tvb_speed(simulator.connectivity)
    ignored = simulator.conduction_speed
    if ignored is not None and float(ignored) != speed:
        warnings.warn(
            f"Simulator.conduction_speed ({float(ignored):g} mm/ms) differs from connectivity.speed "
            f"({speed:g} mm/ms): TVB 2.10 computes its delays from connectivity.speed and ignores "
            "conduction_speed, and so does the plugin; set connectivity.speed to change the delays",
            UserWarning, stacklevel=2)
    con = connectome_from_tvb(simulator.connectivity, speed=speed)
    return network_from_tvb(con, simulator.model, normalise=normalise, coupling=simulator.coupling,
                            integrator=simulator.integrator, monitor=bolds[0] if bolds else None, dtype=dtype)


def tvb_history_rows(initial_conditions, n_regions: int, horizon: int) -> np.ndarray:
    """The (horizon, 2, N) states, oldest first, that TVB's Simulator starts from.

    ``initial_conditions`` is TVB's: (T, 2, N, 1) or (T, 2, N), time x (S_e, S_i)
    x region.  TVB 2.10 (``SparseHistory.from_simulator``) keeps the last
    ``horizon`` rows and sets its current step to T - 1, so it reads a longer
    history rotated by T mod horizon (mirrored here, and warned).  Refused: fewer
    rows than the horizon (TVB would pad them with random ``model.initial()``
    values) and values outside [0, 1] (TVB would clip them).
    """
    ic = np.asarray(initial_conditions, dtype=np.float64)
    if ic.ndim == 4 and ic.shape[3] == 1:
        ic = ic[..., 0]
    if ic.ndim != 3 or ic.shape[1:] != (2, n_regions):
        raise InputError(f"a TVB initial history must have shape (T, 2, {n_regions}, 1): time, (S_e, S_i), "
                         f"region, mode; got shape {np.shape(initial_conditions)}")
    T = ic.shape[0]
    if T < horizon:
        raise InputError(
            f"the initial history has {T} rows but the delays need at least {horizon} rows (1 + the longest "
            f"delay in steps); TVB would fill the rest with random values: give at least {horizon} rows, oldest first")
    if not np.isfinite(ic).all() or ic.min() < 0.0 or ic.max() > 1.0:
        raise InputError("the initial history has values outside [0, 1] (or NaN): S_e and S_i are gating "
                         "fractions, and TVB would silently clip them; pass np.clip(history, 0, 1) if that is meant")
    shift = T % horizon
    if shift:
        warnings.warn(
            f"the initial history has {T} rows for a horizon of {horizon}: TVB keeps the last {horizon} and, "
            f"{T} not being a multiple of {horizon}, reads them rotated by {shift} steps (its current-step "
            f"arithmetic), as the plugin does here; give exactly {horizon} rows to have them read in order",
            UserWarning, stacklevel=3)
    return np.roll(ic[T - horizon:], -shift, axis=0)


def initial_state_from_tvb(model: NetworkModel, initial_conditions, seed: int = 0) -> SimState:
    """The plugin's state for a TVB initial history: a run from it is TVB's run.

    Args:
        model: the network (its delays fix the horizon TVB reads).
        initial_conditions: TVB's ``Simulator.initial_conditions`` (T, 2, N, 1),
            T >= horizon (see :func:`tvb_history_rows`).  TVB reads S_e of every
            row (the delayed coupling) and S_i of the current row only.
        seed: the noise key, as :func:`network.initial_state`.

    The BOLD buffer starts at rest at the current S_e (TVB's monitors keep no
    history of their own in ``initial_conditions``).
    """
    H = model.coupling.horizon
    rows = jnp.asarray(tvb_history_rows(initial_conditions, model.n_regions, H), model.dtype)
    state = initial_state(model, seed, S0=rows[-1])
    if H == 1:
        return state
    # the plugin starts at step 0 and keeps step k's S_e in ring rows k % H and k % H + H;
    # row t of `rows` is step t - (H - 1), i.e. ring row (t + 1) % H
    ring = jnp.roll(rows[:, 0], 1, axis=0).reshape(-1)
    return dataclasses.replace(state, integ=dataclasses.replace(state.integ, history=jnp.concatenate([ring, ring])))
