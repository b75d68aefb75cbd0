"""tvboptim's network, built in one place the way its EI_Tuning tutorial builds it: the EIB dynamics and
coupling (our subclasses of its public base classes, as the tutorial's notebook defines them), the
dk_average DenseGraph, the noise and the bounded Heun solver.  Every tvboptim timing builds from here."""

from __future__ import annotations

import functools

from .common import G, INITIAL_STATE, MODEL_PARAMS, SIGMA, PeerUnavailable, load_dk_average


@functools.lru_cache(maxsize=None)
def _tvboptim():
    """Import tvboptim lazily and define the EIB dynamics/coupling subclasses.

    Returns a namespace dict.  Enables jax float64.
    """
    try:
        import jax
        jax.config.update("jax_enable_x64", True)
        import equinox as eqx
        import jax.numpy as jnp
        from tvboptim.experimental.network_dynamics import Network, prepare
        from tvboptim.experimental.network_dynamics.core.bunch import Bunch
        from tvboptim.experimental.network_dynamics.coupling import (
            InstantaneousCoupling, LinearCoupling)
        from tvboptim.experimental.network_dynamics.dynamics.base import \
            AbstractDynamics
        from tvboptim.experimental.network_dynamics.dynamics.tvb import \
            WongWangExcInh
        from tvboptim.experimental.network_dynamics.graph import DenseGraph
        from tvboptim.experimental.network_dynamics.noise import AdditiveNoise
        from tvboptim.experimental.network_dynamics.solvers import (
            BoundedSolver, Heun)
        from tvboptim.observations.observation import (compute_fc, fc_corr,
                                                       rmse)
        from tvboptim.observations.tvb_monitors.bold import HRFBold
    except ImportError as e:
        raise PeerUnavailable(f"tvboptim (and jax/equinox) not importable: {e}") from e

    class EIBWongWang(AbstractDynamics):
        """Reduced Wong-Wang exc/inh with two coupling inputs (LRE, FFI).

        Same equations as tvboptim's WongWangExcInh / TVB's
        ReducedWongWangExcInh, except that the excitatory population gets
        J_N * sum_j W_ij wLRE_ij S_e_j and the inhibitory one
        lamda * J_N * sum_j W_ij wFFI_ij S_e_j (G is folded into wLRE/wFFI).
        """

        STATE_NAMES = ("S_e", "S_i")
        INITIAL_STATE = (INITIAL_STATE, INITIAL_STATE)
        AUXILIARY_NAMES = ("H_e", "H_i")
        DEFAULT_PARAMS = Bunch(**MODEL_PARAMS)
        COUPLING_INPUTS = {"coupling": 2}

        def dynamics(self, t, state, params, coupling, external):
            p = params
            s_e, s_i = state[0], state[1]
            lre = p.J_N * coupling.coupling[0]
            ffi = p.J_N * coupling.coupling[1]
            x_e = p.a_e * (p.w_p * p.J_N * s_e - p.J_i * s_i + p.W_e * p.I_o
                           + lre + p.I_ext) - p.b_e
            x_i = p.a_i * (p.J_N * s_e - s_i + p.W_i * p.I_o + p.lamda * ffi) - p.b_i
            h_e = x_e / (1.0 - jnp.exp(-p.d_e * x_e))
            h_i = x_i / (1.0 - jnp.exp(-p.d_i * x_i))
            ds_e = -s_e / p.tau_e + (1.0 - s_e) * h_e * p.gamma_e
            ds_i = -s_i / p.tau_i + h_i * p.gamma_i
            return jnp.stack([ds_e, ds_i]), jnp.stack([h_e, h_i])

    class EIBCoupling(InstantaneousCoupling):
        """Instantaneous coupling with per-edge wLRE / wFFI (declared EDGE_PARAMS)."""

        N_OUTPUT_STATES = 2
        DEFAULT_PARAMS = Bunch(wLRE=1.0, wFFI=1.0)
        EDGE_PARAMS = ("wLRE", "wFFI")

        def pre(self, incoming_states, local_states, params):
            s_e = incoming_states[0]
            return jnp.stack([s_e * params.wLRE, s_e * params.wFFI], axis=0)

        def post(self, summed_inputs, local_states, params):
            return summed_inputs

    return dict(jax=jax, jnp=jnp, eqx=eqx, Network=Network, prepare=prepare,
                Bunch=Bunch, LinearCoupling=LinearCoupling,
                WongWangExcInh=WongWangExcInh, DenseGraph=DenseGraph,
                AdditiveNoise=AdditiveNoise, BoundedSolver=BoundedSolver,
                Heun=Heun, compute_fc=compute_fc, fc_corr=fc_corr, rmse=rmse,
                HRFBold=HRFBold, EIBWongWang=EIBWongWang,
                EIBCoupling=EIBCoupling)


def _tvboptim_network(variant="eib", data_dir=None, seed=0):
    """Build the 84-region dk_average network the way the EI tutorial does.

    variant "eib": EIBWongWang + EIBCoupling(wLRE=wFFI=ones(84,84)),
        J_i = ones(84) (per-region), DenseGraph(W/max), no delays,
        AdditiveNoise(sigma=0.01, apply_to="S_e").
    variant "stock": tvboptim's own WongWangExcInh(G=1, lamda=1, ...) with
        LinearCoupling(incoming_states="S_e", G=1) on its "instant" input
        (mathematically identical to "eib" with wLRE=wFFI=1).
    """
    T = _tvboptim()
    jnp = T["jnp"]
    w, _, fc, labels = load_dk_average(data_dir)
    n = w.shape[0]
    graph = T["DenseGraph"](jnp.asarray(w), region_labels=labels)
    noise = T["AdditiveNoise"](sigma=SIGMA, apply_to="S_e",
                               key=T["jax"].random.key(seed))
    if variant == "eib":
        dyn = T["EIBWongWang"](J_i=jnp.ones(n))
        coup = {"coupling": T["EIBCoupling"](incoming_states=["S_e"],
                                             wLRE=jnp.ones((n, n)),
                                             wFFI=jnp.ones((n, n)))}
    elif variant == "stock":
        dyn = T["WongWangExcInh"](G=G, **MODEL_PARAMS)
        coup = {"instant": T["LinearCoupling"](incoming_states="S_e", G=1.0)}
    else:
        raise ValueError("variant must be 'eib' or 'stock'")
    net = T["Network"](dynamics=dyn, coupling=coup, graph=graph, noise=noise)
    return net, jnp.asarray(fc), n


def _solver(T, bounded=True):
    return T["BoundedSolver"](T["Heun"](), low=0.0, high=1.0) if bounded else T["Heun"]()


def _after_transient(T, net, solver, transient_ms, dt):
    """The tutorial's initial transient (untimed), its end made the network's history; returns its result."""
    import jax

    model_tr, state_tr = T["prepare"](net, solver, t1=transient_ms, dt=dt)
    result = jax.block_until_ready(jax.jit(model_tr)(state_tr))
    net.update_history(result)
    return result
