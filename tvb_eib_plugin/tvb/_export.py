"""Back to TVB: the tuned model as TVB objects that TVB's own Simulator runs.

TVB's ``ReducedWongWangExcInh`` has one coupling stream (G times the SC sum
into excitation, lamda times it into inhibition), so it can carry tuned J_i
but not two different coupling matrices.  For the dual weights we chose two
small TVB subclasses rather than an approximation:

- :class:`EIBLinear`, a TVB ``Coupling`` that returns two streams from the
  (delayed) S_e history: ``sum_j W_ij wLRE_ij S_e_j`` and ``sum_j W_ij wFFI_ij S_e_j``;
- :class:`ReducedWongWangExcInhEIB`, TVB's model with ``cvar = [0]`` (TVB keeps
  the history of S_e alone, so both streams read S_e from any initial history)
  whose dfun sends stream 0 to excitation and stream 1, times lamda, to inhibition.

With uniform wLRE = wFFI = G the stock TVB model is returned instead.

The export carries the network's delays: :func:`tvb_simulator` takes the tract
lengths and speed, and refuses them unless TVB turns them into the network's own
integer delays.  :func:`tvb_initial_conditions` turns a plugin state into TVB's
``initial_conditions`` (and :func:`adapters.initial_state_from_tvb` back).
"""

from __future__ import annotations

import warnings

import numpy as np

from ._adapters import connectivity_of, tvb_history_rows
from .._model.node import PARAMETERS, NodeParams, dfun
from .._model.network import NetworkModel, SimState
from .._validation import InputError, check_square


def _tvb_classes():
    from tvb.basic.neotraits.api import NArray
    from tvb.simulator import coupling, models

    class EIBLinear(coupling.Coupling):
        """Dual linear coupling: stream 0 scaled by wLRE, stream 1 by wFFI (both (N, N))."""

        wLRE = NArray(label="wLRE", default=np.ones((1, 1)), doc="long-range excitation scaling of edge j -> i")
        wFFI = NArray(label="wFFI", default=np.ones((1, 1)), doc="feedforward inhibition scaling of edge j -> i")

        def __call__(self, step, history):
            _, delayed = history.query(step)  # (to, cvar, from, mode), zero where weights are zero
            S_e = delayed[:, 0]  # the one coupling variable: both streams are sums of delayed S_e
            w = history.weights[:, :, None]
            c_lre = np.sum(w * self.wLRE[:, :, None] * S_e, axis=1)
            c_ffi = np.sum(w * self.wFFI[:, :, None] * S_e, axis=1)
            return np.stack([c_lre, c_ffi])  # (2, to, mode)

    class ReducedWongWangExcInhEIB(models.ReducedWongWangExcInh):
        """ReducedWongWangExcInh fed by two coupling streams (see :class:`EIBLinear`).

        ``cvar = [0]``, not ``[0, 0]``: TVB keeps one history slot per cvar entry
        and fills each from ``initial_conditions`` by position, so a second slot
        would hold S_i's initial history for the first horizon steps.
        """

        cvar = np.array([0], dtype=np.int32)

        def dfun(self, x, c, local_coupling=0.0, **kwargs):
            S_e, S_i = x[0], x[1]
            c_lre = self.G[:, None] * (c[0] + local_coupling * S_e)
            c_ffi = self.G[:, None] * (c[1] + local_coupling * S_e)
            # the plugin's own equations, on numpy arrays of shape (N, modes)
            p = NodeParams(**{k: np.asarray(getattr(self, k)).reshape(-1, 1) for k in PARAMETERS})
            return np.stack(dfun(S_e, S_i, c_lre, c_ffi, p, xp=np))

    return EIBLinear, ReducedWongWangExcInhEIB


def _uniform(m: np.ndarray) -> bool:
    return bool(np.all(m == m.flat[0]))


def tvb_model(model: NetworkModel):
    """TVB model with every node parameter (J_i per region); the stock
    ``ReducedWongWangExcInh`` when wLRE = wFFI = G uniformly, else the EIB subclass."""
    from tvb.simulator import models

    wLRE, wFFI = np.asarray(model.coupling.wLRE, np.float64), np.asarray(model.coupling.wFFI, np.float64)
    params = {k: np.atleast_1d(np.asarray(getattr(model.node, k), np.float64)) for k in PARAMETERS}
    if _uniform(wLRE) and _uniform(wFFI) and wLRE.flat[0] == wFFI.flat[0]:
        m = models.ReducedWongWangExcInh(G=np.array([wLRE.flat[0]]), **params)
    else:
        m = _tvb_classes()[1](G=np.array([1.0]), **params)
    m.configure()
    return m


def tvb_coupling(model: NetworkModel):
    """``Linear(a=1)`` for a uniform coupling, else :class:`EIBLinear` with the tuned matrices."""
    from tvb.simulator import coupling

    wLRE, wFFI = np.asarray(model.coupling.wLRE, np.float64), np.asarray(model.coupling.wFFI, np.float64)
    if _uniform(wLRE) and _uniform(wFFI) and wLRE.flat[0] == wFFI.flat[0]:
        return coupling.Linear(a=np.array([1.0]))
    return _tvb_classes()[0](wLRE=wLRE, wFFI=wFFI)


def tvb_connectivity_from(model: NetworkModel, labels, tract_lengths=None, speed: float = np.inf):
    """A TVB ``Connectivity`` with the model's (normalised) weights (delays unchecked:
    :func:`tvb_simulator` checks them against the network's)."""
    n = model.n_regions
    tl = np.zeros((n, n)) if tract_lengths is None else np.asarray(tract_lengths, np.float64)
    return connectivity_of(model.coupling.weights, tl, labels, speed)


def _export_delays(model: NetworkModel, tract_lengths, speed) -> tuple[np.ndarray, float]:
    """(tract lengths, speed) to export; refused where TVB could not have the network's delays."""
    n, horizon = model.n_regions, model.coupling.horizon
    if tract_lengths is None:
        if horizon > 1:
            raise InputError(
                f"this network has conduction delays (up to {horizon - 1} steps of {model.dt:g} ms) but no "
                "tract lengths were given: pass tract_lengths= and speed= (those it was built with, e.g. "
                "con.tract_lengths and con.speed), or TVB would run it without delays")
        return np.zeros((n, n)), np.inf
    tl = check_square(tract_lengths, "tract_lengths")
    if tl.shape != (n, n) or (tl < 0).any():
        raise InputError(f"tract_lengths must be a non-negative ({n}, {n}) matrix, got shape {tl.shape}")
    if speed is None:
        if horizon > 1:
            raise InputError("tract_lengths were given without a speed: pass speed= (mm/ms, the one the network "
                             "was built with, e.g. con.speed)")
        speed = np.inf
    if not float(speed) > 0:
        raise InputError(f"speed must be > 0 mm/ms (np.inf for no delays), got {speed}")
    return tl, float(speed)


def _check_delays(model: NetworkModel, conn, force: bool) -> None:
    """TVB's integer delays (its own ``set_idelays``) against the network's."""
    conn.set_idelays(model.dt)
    ours, theirs = np.asarray(model.coupling.idelays), np.asarray(conn.idelays)
    differ = ours != theirs
    if not differ.any():
        return
    i, j = np.argwhere(differ)[0]
    what = ("this network has no conduction delays, but these tract lengths and speed give TVB delays"
            if model.coupling.horizon == 1 else "these tract lengths and speed give TVB delays that differ "
            "from the network's")
    msg = (f"{what} on {int(differ.sum())} edges (e.g. [{i}, {j}]: {theirs[i, j]} steps in TVB, {ours[i, j]} "
           f"in the network)")
    if not force:
        raise InputError(f"{msg}: pass the tract lengths and speed the network was built with (speed=np.inf "
                         "for none), or force_delays=True to export these delays instead")
    warnings.warn(f"{msg}; exported as forced: TVB's run will not be the plugin's", UserWarning, stacklevel=3)


def tvb_initial_conditions(model: NetworkModel, state: SimState) -> np.ndarray:
    """A plugin state as TVB's ``initial_conditions``: (horizon, 2, N, 1), oldest first.

    Rows hold S_e of the last ``horizon`` steps (what TVB's delayed coupling
    reads); S_i, of which the plugin keeps only the current value, is that
    value in every row (TVB reads S_i of the last row only).  The inverse of
    :func:`adapters.initial_state_from_tvb`.
    """
    integ, n, horizon = state.integ, model.n_regions, model.coupling.horizon
    S_e, S_i = np.asarray(integ.S_e, np.float64), np.asarray(integ.S_i, np.float64)
    if S_e.shape != (n,):
        raise InputError(f"the state has S_e of shape {S_e.shape}: export one state of {n} regions, not a batch")
    history = None if integ.history is None else np.asarray(integ.history, np.float64)
    if (history is None) != (horizon == 1) or (history is not None and history.shape != (2 * horizon * n,)):
        raise InputError("the state's delay history does not fit this network's delays: export a state of this network")
    if history is None:
        rows_e = S_e[None]
    else:  # step k's S_e is in ring row k % horizon
        steps = int(integ.step) - (horizon - 1) + np.arange(horizon)
        rows_e = history[: horizon * n].reshape(horizon, n)[steps % horizon]
    return np.stack([rows_e, np.broadcast_to(S_i, (horizon, n))], axis=1)[..., None]


def tvb_simulator(model: NetworkModel, labels, tract_lengths=None, speed: float | None = None,
                  deterministic: bool = False, monitors=None, simulation_length: float = 300000.0,
                  initial_conditions=None, force_delays: bool = False):
    """A configured TVB ``Simulator`` carrying the tuned model.

    Args:
        model, labels: the network and its region labels.
        tract_lengths, speed: required when the network has delays: TVB's delays
            ``rint(tract_lengths / speed / dt)`` must be the network's own (else
            InputError, or a warning with ``force_delays=True``).  Without delays
            they may be omitted (speed np.inf).
        deterministic: ``HeunDeterministic``; else ``HeunStochastic`` with
            ``Additive(nsig = sigma^2 / 2)`` per state variable and region.
        monitors: default a ``Bold`` at the model's TR.
        initial_conditions: a plugin :class:`SimState` (see
            :func:`tvb_initial_conditions`), a TVB history (T, 2, N, 1) with
            T >= the horizon, or None: 0.001 everywhere, as ``initial_state``.
            Pass it here: configuring a TVB Simulator again after setting its
            ``initial_conditions`` moves TVB's current step on by T - 1 again.
    """
    from tvb.simulator import integrators, noise, simulator
    from tvb.simulator import monitors as tvb_monitors

    dt, n = model.dt, model.n_regions
    if deterministic or not model.integrator.stochastic:
        integ = integrators.HeunDeterministic(dt=dt)
    else:
        sigma = np.broadcast_to(np.asarray(model.integrator.sigma, np.float64), (2, n))
        integ = integrators.HeunStochastic(dt=dt, noise=noise.Additive(nsig=sigma**2 / 2))
    tract_lengths, speed = _export_delays(model, tract_lengths, speed)
    conn = tvb_connectivity_from(model, labels, tract_lengths, speed)
    _check_delays(model, conn, force_delays)
    horizon = int(conn.idelays.max()) + 1
    if initial_conditions is None:
        initial_conditions = np.full((horizon, 2, n, 1), 0.001)
    elif isinstance(initial_conditions, SimState):
        # the last `horizon` rows, in order, even where forced delays shortened TVB's horizon
        initial_conditions = tvb_initial_conditions(model, initial_conditions)[-horizon:]
    tvb_history_rows(initial_conditions, n, horizon)  # refuses a bad shape, and what TVB would pad or clip
    initial_conditions = np.asarray(initial_conditions, np.float64)
    if initial_conditions.ndim == 3:
        initial_conditions = initial_conditions[..., None]  # TVB's mode axis
    if monitors is None:
        monitors = (tvb_monitors.Bold(period=model.bold.period_ms),)
    sim = simulator.Simulator(
        connectivity=conn, model=tvb_model(model), coupling=tvb_coupling(model), integrator=integ,
        monitors=tuple(monitors), conduction_speed=speed,
        initial_conditions=initial_conditions, simulation_length=simulation_length)
    sim.configure()
    return sim
