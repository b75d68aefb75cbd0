"""Back to TVB: the tuned model as TVB objects that TVB's own Simulator runs.

TVB's ``ReducedWongWangExcInh`` has one coupling stream (G times the SC sum
into excitation, lamda times it into inhibition), so it can carry tuned J_i
but not two different coupling matrices.  For the dual weights we chose two
small TVB subclasses rather than an approximation:

- :class:`EIBLinear`, a TVB ``Coupling`` that returns two streams from the
  (delayed) S_e history: ``sum_j W_ij wLRE_ij S_e_j`` and ``sum_j W_ij wFFI_ij S_e_j``;
- :class:`ReducedWongWangExcInhEIB`, TVB's model with ``cvar = [0, 0]`` (both
  streams read S_e) whose dfun sends stream 0 to excitation and stream 1,
  times lamda, to inhibition.

With uniform wLRE = wFFI = G the stock TVB model is returned instead.
"""

from __future__ import annotations

import numpy as np

from .model import PARAMETERS
from .network import NetworkModel


def _tvb_classes():
    from tvb.basic.neotraits.api import NArray
    from tvb.simulator import coupling, models

    class EIBLinear(coupling.Coupling):
        """Dual linear coupling: stream 0 scaled by wLRE, stream 1 by wFFI (both (N, N))."""

        wLRE = NArray(label="wLRE", default=np.ones((1, 1)), doc="long-range excitation scaling of edge j -> i")
        wFFI = NArray(label="wFFI", default=np.ones((1, 1)), doc="feedforward inhibition scaling of edge j -> i")

        def __call__(self, step, history):
            _, delayed = history.query(step)  # (to, cvar, from, mode), zero where weights are zero
            w = history.weights[:, :, None]
            c_lre = np.sum(w * self.wLRE[:, :, None] * delayed[:, 0], axis=1)
            c_ffi = np.sum(w * self.wFFI[:, :, None] * delayed[:, 1], axis=1)
            return np.stack([c_lre, c_ffi])  # (2, to, mode)

    class ReducedWongWangExcInhEIB(models.ReducedWongWangExcInh):
        """ReducedWongWangExcInh fed by two coupling streams (see :class:`EIBLinear`)."""

        cvar = np.array([0, 0], dtype=np.int32)

        def dfun(self, x, c, local_coupling=0.0, **kwargs):
            S_e, S_i = x[0], x[1]
            c_lre = self.G[:, None] * (c[0] + local_coupling * S_e)
            c_ffi = self.G[:, None] * (c[1] + local_coupling * S_e)
            p = {k: np.asarray(getattr(self, k)).reshape(-1, 1) for k in PARAMETERS}
            x_e = p["a_e"] * (p["w_p"] * p["J_N"] * S_e - p["J_i"] * S_i + p["W_e"] * p["I_o"]
                              + p["J_N"] * c_lre + p["I_ext"]) - p["b_e"]
            x_i = p["a_i"] * (p["J_N"] * S_e - S_i + p["W_i"] * p["I_o"] + p["lamda"] * p["J_N"] * c_ffi) - p["b_i"]
            h_e = x_e / (1 - np.exp(-p["d_e"] * x_e))
            h_i = x_i / (1 - np.exp(-p["d_i"] * x_i))
            dS_e = -S_e / p["tau_e"] + (1 - S_e) * h_e * p["gamma_e"]
            dS_i = -S_i / p["tau_i"] + h_i * p["gamma_i"]
            return np.stack([dS_e, dS_i])

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
    """A TVB ``Connectivity`` with the model's (normalised) weights."""
    from tvb.datatypes.connectivity import Connectivity

    n = model.n_regions
    tl = np.zeros((n, n)) if tract_lengths is None else np.asarray(tract_lengths, np.float64)
    conn = Connectivity(weights=np.asarray(model.coupling.weights, np.float64), tract_lengths=tl,
                        region_labels=np.array(labels), centres=np.zeros((n, 3)), speed=np.array([speed]))
    conn.configure()
    return conn


def tvb_simulator(model: NetworkModel, labels, tract_lengths=None, speed: float = np.inf,
                  deterministic: bool = False, monitors=None, simulation_length: float = 300000.0):
    """A configured TVB ``Simulator`` carrying the tuned model.

    Noise: ``Additive(nsig = sigma^2 / 2)`` per state variable and region, or
    ``HeunDeterministic`` with ``deterministic=True``.  Monitors default to a
    ``Bold`` at the model's TR.  The initial history is 0.001 everywhere;
    set ``initial_conditions`` to start elsewhere.
    """
    from tvb.simulator import integrators, noise, simulator
    from tvb.simulator import monitors as tvb_monitors

    dt, n = model.dt, model.n_regions
    if deterministic or not model.integrator.stochastic:
        integ = integrators.HeunDeterministic(dt=dt)
    else:
        sigma = np.broadcast_to(np.asarray(model.integrator.sigma, np.float64), (2, n))
        integ = integrators.HeunStochastic(dt=dt, noise=noise.Additive(nsig=sigma**2 / 2))
    conn = tvb_connectivity_from(model, labels, tract_lengths, speed)
    horizon = int(np.asarray(model.coupling.idelays).max()) + 1
    if monitors is None:
        monitors = (tvb_monitors.Bold(period=model.bold.period_ms),)
    sim = simulator.Simulator(
        connectivity=conn, model=tvb_model(model), coupling=tvb_coupling(model), integrator=integ,
        monitors=tuple(monitors), conduction_speed=float(speed),
        initial_conditions=np.full((horizon, 2, n, 1), 0.001), simulation_length=simulation_length)
    sim.configure()
    return sim
