"""Timing functions for the *peers* of tvb-eib-plugin (not for the plugin).

Peers:

* TVB's own simulator (``tvb.simulator.simulator.Simulator``) with
  ``ReducedWongWangExcInh``;
* tvboptim 0.4 (``tvboptim.experimental.network_dynamics``), built the way its
  "Excitation-Inhibition Balance Tuning" tutorial (docs/workflows/EI_Tuning.qmd)
  builds the two-population reduced Wong-Wang network.

Every public ``time_*`` function returns a plain ``dict`` of numbers and short
strings (seconds, microseconds per integration step or milliseconds per
iteration, n_regions, n_steps, precision, how it was run).  Timings are taken
after compilation / warm-up, in float64.  See ``benchmarks/README_peers.md``
for how each peer is constructed and where it deviates from our model.

tvb and tvboptim are imported lazily: importing this module never needs them.
A missing peer raises ``PeerUnavailable`` (a subclass of ``ImportError``) from
the function that needs it.

``python benchmarks/peers.py`` runs every function once with its defaults and
prints the dicts (a few minutes on 2 CPU cores).
"""

from __future__ import annotations

import functools
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

__all__ = [
    "PeerUnavailable",
    "MODEL_PARAMS",
    "load_dk_average",
    "time_tvb_simulator",
    "time_tvboptim_simulation",
    "time_tvboptim_tuning_loop",
    "time_tvboptim_gradient",
    "run_isolated",
]


class PeerUnavailable(ImportError):
    """A peer package (tvb-library / tvb-data / tvboptim) is not installed."""


# --------------------------------------------------------------------------
# Shared model / network definition
# --------------------------------------------------------------------------

#: Reduced Wong-Wang exc/inh parameters shared by all peers (= our model).
MODEL_PARAMS = dict(
    a_e=310.0, b_e=125.0, d_e=0.160, gamma_e=0.641e-3, tau_e=100.0,
    w_p=1.4, W_e=1.0,
    a_i=615.0, b_i=177.0, d_i=0.087, gamma_i=1e-3, tau_i=10.0, W_i=0.7,
    J_N=0.15, J_i=1.0, I_o=0.382, I_ext=0.0, lamda=1.0,
)
G = 1.0            # global coupling
SIGMA = 0.01       # additive noise std on S_e (tvboptim convention)
NSIG = SIGMA ** 2 / 2.0  # TVB convention: nsig = sigma**2 / 2 = 5e-5
TR_MS = 720.0      # BOLD repetition time
INITIAL_STATE = 0.001

_DK_PREFIX = "atlas-DesikanKilliany_meas-"
_DK_FILES = dict(
    weights=_DK_PREFIX + "streamlineCount_relmat.dense.tsv",
    lengths=_DK_PREFIX + "tractLength_relmat.dense.tsv",
    fc=_DK_PREFIX + "BoldCorrelation_relmat.dense.tsv",
    labels="atlas-DesikanKilliany_nodeindices.tsv",
)


def _dk_average_dir(data_dir=None) -> Path | None:
    cands = []
    if data_dir is not None:
        cands.append(Path(data_dir))
    if os.environ.get("TVB_EIB_DK_AVERAGE"):
        cands.append(Path(os.environ["TVB_EIB_DK_AVERAGE"]))
    here = Path(__file__).resolve()
    cands += [here.parents[2] / "shared" / "data" / "dk_average",   # /work/shared
              here.parents[1] / "shared" / "data" / "dk_average",
              Path("/work/shared/data/dk_average")]
    for c in cands:
        if (c / _DK_FILES["weights"]).exists():
            return c
    return None


def load_dk_average(data_dir=None):
    """Return ``(weights/max, tract_lengths_mm, fc_target, labels)`` (numpy).

    Reads the BIDS relmat TSVs (no header, tab separated).  ``data_dir``
    defaults to ``$TVB_EIB_DK_AVERAGE`` or ``/work/shared/data/dk_average``.
    Falls back to tvboptim's bundled copy (identical data up to float32
    rounding) when the TSVs are not found.
    """
    d = _dk_average_dir(data_dir)
    if d is not None:
        w = np.loadtxt(d / _DK_FILES["weights"], delimiter="\t")
        lengths = np.loadtxt(d / _DK_FILES["lengths"], delimiter="\t")
        fc = np.loadtxt(d / _DK_FILES["fc"], delimiter="\t")
        labels = [ln.split("\t")[3] for ln in
                  (d / _DK_FILES["labels"]).read_text().splitlines()[1:] if ln]
    else:  # pragma: no cover - fallback only
        try:
            from tvboptim.data import (load_functional_connectivity,
                                       load_structural_connectivity)
        except ImportError as e:
            raise FileNotFoundError(
                "dk_average TSVs not found (set TVB_EIB_DK_AVERAGE)") from e
        w, lengths, labels = load_structural_connectivity("dk_average")
        fc = load_functional_connectivity("dk_average")
        w, lengths, fc = (np.asarray(x, dtype=np.float64) for x in (w, lengths, fc))
    w = np.asarray(w, dtype=np.float64)
    return w / w.max(), np.asarray(lengths, float), np.asarray(fc, float), list(labels)


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------

def _stats(samples):
    return dict(min=min(samples), median=statistics.median(samples))


def _peak_rss_mb() -> float:
    """Peak resident set size of *this* process (Linux: ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _current_rss_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def _versions(*mods):
    out = {}
    for m in mods:
        try:
            mod = __import__(m)
            out[m] = getattr(mod, "__version__", "?")
        except Exception:  # noqa: BLE001
            pass
    try:
        from importlib.metadata import version
        for dist in ("tvboptim", "tvb-library", "tvb-data", "jax"):
            try:
                out[dist] = version(dist)
            except Exception:  # noqa: BLE001
                pass
    except ImportError:  # pragma: no cover
        pass
    return out


# --------------------------------------------------------------------------
# 1. TVB simulator
# --------------------------------------------------------------------------

def _tvb_imports():
    try:
        from tvb.datatypes.connectivity import Connectivity
        from tvb.simulator import (coupling, integrators, models, monitors,
                                   noise, simulator)
    except ImportError as e:
        raise PeerUnavailable(f"tvb-library is not installed: {e}") from e
    return Connectivity, coupling, integrators, models, monitors, noise, simulator


def time_tvb_simulator(connectivity: str = "connectivity_76", dt: float = 4.0,
                       duration_ms: float = 20000.0, noise: bool = True,
                       monitor: str = "bold", warmup_ms: float = 2000.0,
                       delays: bool | None = None, n_repeat: int = 3,
                       data_dir=None) -> dict:
    """Time TVB's own ``Simulator`` running ``ReducedWongWangExcInh``.

    connectivity: a tvb-data connectivity zip name (``"connectivity_76"``,
        ``"connectivity_192"``, ... or a path to a zip), or ``"dk_average"``
        (84 regions, our reference network built from the TSVs).
    monitor: ``"bold"`` (``monitors.Bold(period=720)``, HRF convolution, the
        model's variables_of_interest set to S_e only) or ``"raw"``.
    delays: None -> True for zip connectivities (their own conduction speed,
        3 mm/ms for connectivity_76), False for dk_average.  False sets
        speed=inf, i.e. all delays are 0 steps (TVB still runs its history
        buffer code path).
    The simulator is configured, run for ``warmup_ms`` (not timed), then
    ``run()`` of ``duration_ms`` is timed ``n_repeat`` times (each continues
    from the previous state).  Returns us per integration step (min/median).
    """
    (Connectivity, coupling, integrators, models, monitors, noise_mod,
     simulator) = _tvb_imports()

    if connectivity == "dk_average":
        w, lengths, _, labels = load_dk_average(data_dir)
        n = w.shape[0]
        use_delays = bool(delays) if delays is not None else False
        conn = Connectivity(weights=w, tract_lengths=lengths,
                            centres=np.zeros((n, 3)),
                            region_labels=np.array(labels),
                            speed=np.array([3.0 if use_delays else np.inf]))
        conn_desc = "dk_average TSVs (84 regions), weights/max"
    else:
        name = connectivity if connectivity.endswith(".zip") else connectivity + ".zip"
        try:
            conn = Connectivity.from_file(name)
        except Exception as e:  # tvb-data missing or bad name
            raise PeerUnavailable(f"cannot load TVB connectivity {name!r}: {e}") from e
        conn.weights = conn.weights / conn.weights.max()
        use_delays = True if delays is None else bool(delays)
        if not use_delays:
            conn.speed = np.array([np.inf])
        conn_desc = f"tvb-data {name}, weights/max"

    p = {k: np.array([v]) for k, v in MODEL_PARAMS.items()}
    voi = ("S_e",) if monitor == "bold" else ("S_e", "S_i")
    model = models.ReducedWongWangExcInh(G=np.array([G]), variables_of_interest=voi, **p)
    if noise:
        integ = integrators.HeunStochastic(
            dt=dt, noise=noise_mod.Additive(nsig=np.array([NSIG, 0.0])))
    else:
        integ = integrators.HeunDeterministic(dt=dt)
    if monitor == "bold":
        mon = monitors.Bold(period=TR_MS)
    elif monitor == "raw":
        mon = monitors.Raw()
    else:
        raise ValueError("monitor must be 'bold' or 'raw'")

    t0 = time.perf_counter()
    sim = simulator.Simulator(model=model, connectivity=conn,
                              coupling=coupling.Linear(a=np.array([1.0])),
                              integrator=integ, monitors=(mon,),
                              simulation_length=warmup_ms)
    sim.configure()
    # initial state 0.001 everywhere (TVB otherwise draws random ICs from
    # state_variable_range): full-horizon initial_conditions, then reconfigure
    sim.initial_conditions = np.full(
        (sim.connectivity.horizon, 2, sim.connectivity.number_of_regions, 1),
        INITIAL_STATE)
    if noise:  # configure() reshaped nsig to (2, 1, 1); give it back as passed
        sim.integrator.noise.nsig = np.array([NSIG, 0.0])
    sim.configure()
    configure_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    sim.run()
    warmup_s = time.perf_counter() - t0

    n_steps = int(round(duration_ms / dt))
    sim.simulation_length = duration_ms
    samples = []
    for _ in range(n_repeat):
        t0 = time.perf_counter()
        out = sim.run()
        samples.append(time.perf_counter() - t0)
    n_out = None if out[0][1] is None else int(out[0][1].shape[0])
    s = _stats(samples)
    return dict(
        peer="tvb.simulator.simulator.Simulator",
        model="ReducedWongWangExcInh",
        connectivity=conn_desc,
        n_regions=int(sim.connectivity.number_of_regions),
        dt_ms=dt, duration_ms=duration_ms, n_steps=n_steps,
        noise=f"HeunStochastic + Additive(nsig=[{NSIG:g}, 0])" if noise
        else "HeunDeterministic (no noise)",
        monitor=f"Bold(period={TR_MS:g}) on S_e" if monitor == "bold" else "Raw",
        monitor_samples_per_run=n_out,
        delays=("on, speed %g mm/ms, max %d steps"
                % (float(sim.connectivity.speed[0]), int(sim.connectivity.idelays.max()))
                if use_delays else "off (speed=inf, all delays 0 steps)"),
        precision="float64 (numpy)",
        how=(f"configure + {warmup_ms:g} ms warm-up run (untimed), then "
             f"{n_repeat} timed sim.run() of {duration_ms:g} ms, continuing state"),
        configure_s=configure_s, warmup_s=warmup_s,
        seconds=s["min"], seconds_median=s["median"], seconds_all=samples,
        us_per_step=s["min"] / n_steps * 1e6,
        us_per_step_median=s["median"] / n_steps * 1e6,
        final_mean_S_e=float(np.mean(sim.current_state[0])),
        versions=_versions("numpy"),
    )


# --------------------------------------------------------------------------
# tvboptim: network construction (its public API; EIB pieces are our own
# subclasses of its public base classes, as its EI tutorial does)
# --------------------------------------------------------------------------

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


# --------------------------------------------------------------------------
# 2. tvboptim simulation
# --------------------------------------------------------------------------

def time_tvboptim_simulation(dt: float = 4.0, duration_ms: float = 300000.0,
                             jit: bool = True, variant: str = "eib",
                             bounded: bool = True, n_repeat: int = 3,
                             data_dir=None) -> dict:
    """Time tvboptim's ``prepare(network, solver, t1, dt)`` solve function.

    jit=False calls ``model(state)`` directly, as the EI tutorial does (its
    scan body is re-traced and re-lowered on every call, so every call pays a
    fixed overhead); jit=True times ``jax.jit(model)(state)``.  Each is timed
    ``n_repeat`` times after one untimed warm-up call (reported as
    ``first_call_s``).  variant: "eib" (tutorial model, default) or "stock"
    (tvboptim's WongWangExcInh + LinearCoupling).  bounded: wrap Heun in
    ``BoundedSolver(low=0, high=1)`` as the tutorial does.
    """
    T = _tvboptim()
    jax = T["jax"]
    net, _, n = _tvboptim_network(variant, data_dir)
    solver = _solver(T, bounded)
    t0 = time.perf_counter()
    model, state = T["prepare"](net, solver, t1=duration_ms, dt=dt)
    prepare_s = time.perf_counter() - t0
    fn = jax.jit(model) if jit else model

    t0 = time.perf_counter()
    res = jax.block_until_ready(fn(state))
    first = time.perf_counter() - t0
    samples = []
    for _ in range(n_repeat):
        t0 = time.perf_counter()
        res = jax.block_until_ready(fn(state))
        samples.append(time.perf_counter() - t0)
    n_steps = int(res.data.shape[0])
    s = _stats(samples)
    return dict(
        peer="tvboptim.experimental.network_dynamics (prepare/solve)",
        variant=variant,
        model=("EIBWongWang (tutorial-style AbstractDynamics subclass) + "
               "EIBCoupling(EDGE_PARAMS wLRE,wFFI = ones)") if variant == "eib"
        else "tvboptim WongWangExcInh(G=1, lamda=1) + LinearCoupling(S_e, G=1)",
        connectivity="dk_average, DenseGraph(W/max), no delays",
        n_regions=n, dt_ms=dt, duration_ms=duration_ms, n_steps=n_steps,
        solver="BoundedSolver(Heun(), 0, 1)" if bounded else "Heun()",
        noise=f"AdditiveNoise(sigma={SIGMA}, apply_to='S_e') "
              "(= TVB nsig 5e-5; Heun applies the same increment in predictor and corrector)",
        monitor="none (raw states S_e,S_i of every step returned)",
        precision="float64 (jax_enable_x64)",
        jit=jit,
        how=("jax.jit(model)(state)" if jit else "model(state) called eagerly, as in the tutorial")
        + f"; 1 untimed warm-up call, then {n_repeat} timed calls (block_until_ready)",
        prepare_s=prepare_s, first_call_s=first,
        seconds=s["min"], seconds_median=s["median"], seconds_all=samples,
        us_per_step=s["min"] / n_steps * 1e6,
        us_per_step_median=s["median"] / n_steps * 1e6,
        output_MB=float(res.data.size * res.data.dtype.itemsize / 2**20),
        final_mean_S_e=float(res.data[-1, 0].mean()),
        versions=_versions(),
    )


# --------------------------------------------------------------------------
# 3. tvboptim FIC / FIC+EIB tuning loop (tutorial Part 1 and Part 2)
# --------------------------------------------------------------------------

def time_tvboptim_tuning_loop(n_fic: int = 10, n_fic_eib: int = 10, jit: bool = False,
                              n_warmup: int = 2, transient_ms: float = 20000.0,
                              window_size: int = 150, eta_fic: float = 0.5,
                              eta_fic_eib: float = 0.1, eta_eib: float = 0.005, target: float = 0.25,
                              dt: float = 4.0, extrapolate_fic: int = 200,
                              extrapolate_fic_eib: int = 2000,
                              data_dir=None) -> dict:
    """Time the EI tutorial's Python loops (Part 1 FIC, Part 2 FIC+EIB).

    tvboptim does not ship FIC/EIB: the tutorial writes them as a Python loop
    around ``model_short = prepare(network, BoundedSolver(Heun()), t1=720)``.
    Per iteration (tutorial order): simulate one TR; HRFBold monitor with a
    rolling 20 s history -> one BOLD sample; roll the monitor history; set the
    next initial state; draw new noise (injected via
    ``state._internal.noise_samples``); FIC update of J_i.  FIC+EIB adds: roll
    the 150-sample BOLD window, ``compute_fc``, the wLRE/wFFI update (row-wise
    RMSE, clipped at 0, eta ramped (i+1)/N), ``fc_corr`` and RMSE tracking.

    jit=False: exactly that (eager jax, as the tutorial runs it).
    jit=True: the same iteration body as one ``jax.jit`` function, Python loop
    around it.  ``n_warmup`` iterations of each phase are run (untimed) first.
    Returns ms per iteration and the extrapolation to
    extrapolate_fic FIC + extrapolate_fic_eib FIC+EIB iterations.
    """
    T = _tvboptim()
    jax, jnp, eqx = T["jax"], T["jnp"], T["eqx"]
    compute_fc, fc_corr, rmse = T["compute_fc"], T["fc_corr"], T["rmse"]

    t_setup = time.perf_counter()
    net, fc_target, n = _tvboptim_network("eib", data_dir)
    solver = _solver(T, True)
    # initial transient (tutorial: 5 min; here transient_ms, untimed)
    model_tr, state_tr = T["prepare"](net, solver, t1=transient_ms, dt=dt)
    result_init = jax.block_until_ready(jax.jit(model_tr)(state_tr))
    net.update_history(result_init)
    model_short, state = T["prepare"](net, solver, t1=TR_MS, dt=dt)
    n_steps = int(round(TR_MS / dt))
    monitor = T["HRFBold"](period=TR_MS, downsample_period=dt, voi=0,
                           history=result_init)
    hist0 = monitor.history
    setup_s = time.perf_counter() - t_setup

    def fic_rule(J_i, data, eta):
        m_i = jnp.mean(data[:, 1], axis=0)
        m_e = jnp.mean(data[:, 0], axis=0)
        return J_i + eta * (m_i * m_e - target * m_i)

    def eib_rule(wLRE, wFFI, fc_pred, eta):
        diff = fc_target - fc_pred
        r = rmse(fc_target, fc_pred, axis=1)[:, None]
        return (jnp.clip(wLRE + eta * diff * r, 0, None),
                jnp.clip(wFFI - eta * diff * r, 0, None))

    noise_shape = (n_steps, 1, n)

    # ---- one iteration, written once; used eagerly or under jax.jit -------
    def iteration(cfg, hist, window, key, eta, do_eib):
        cfg = cfg.copy()
        mon = eqx.tree_at(lambda m: m.history, monitor, hist)
        raw = model_short(cfg)
        bold = mon(raw).ys[0, 0, :]
        k = raw.data.shape[0]
        hist = jnp.roll(hist, -k, axis=0).at[-k:, :, :].set(raw.data[:, 0:1, :])
        cfg.initial_state.dynamics = raw.data[-1]
        key, sub = jax.random.split(key)
        cfg._internal.noise_samples = jax.random.normal(sub, noise_shape)
        cfg.dynamics.J_i = fic_rule(cfg.dynamics.J_i, raw.data,
                                    eta_fic_eib if do_eib else eta_fic)
        mean_se = jnp.mean(raw.data[:, 0, :])
        metrics = (mean_se,)
        if do_eib:
            window = jnp.roll(window, -1, axis=0).at[-1, 0, :].set(bold)
            fc_pred = compute_fc(window)
            cc = cfg.coupling.coupling
            cc.wLRE, cc.wFFI = eib_rule(cc.wLRE, cc.wFFI, fc_pred, eta)
            metrics = (mean_se, fc_corr(fc_pred, fc_target),
                       jnp.sqrt(jnp.mean((fc_pred - fc_target) ** 2)))
        return cfg, hist, window, key, bold, metrics

    if jit:
        fic_step = jax.jit(functools.partial(iteration, do_eib=False))
        eib_step = jax.jit(functools.partial(iteration, do_eib=True))
    else:
        fic_step = functools.partial(iteration, do_eib=False)
        eib_step = functools.partial(iteration, do_eib=True)

    key = jax.random.key(42)
    key, sub = jax.random.split(key)
    state._internal.noise_samples = jax.random.normal(sub, noise_shape)
    hist = hist0
    # BOLD window: tutorial fills it with the last 150 FIC-phase BOLD samples;
    # we fill it with small random values (content does not affect timing).
    window = 0.01 * jax.random.normal(jax.random.key(7), (window_size, 1, n))
    dummy_window = jnp.zeros((1, 1, n))

    def run_phase(step, n_iter, cfg, hist, window, key, eib, total):
        bolds, mets = [], []
        for i in range(n_iter):
            eta = jnp.asarray(((i + 1) / total) * eta_eib)
            cfg, hist, w, key, bold, m = step(
                cfg, hist, window if eib else dummy_window, key, eta)
            if eib:
                window = w
            bolds.append(bold)
            mets.append(m)
        jax.block_until_ready((cfg, hist, window, bolds, mets))
        return cfg, hist, window, key, mets

    # warm-up (compilation for jit=True; first-call costs for eager)
    t0 = time.perf_counter()
    state, hist, _, key, _ = run_phase(fic_step, n_warmup, state, hist, window, key, False, 1)
    warm_fic_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    run_phase(eib_step, n_warmup, state, hist, window, key, True, extrapolate_fic_eib)
    warm_eib_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    state, hist, _, key, mets_fic = run_phase(fic_step, n_fic, state, hist, window, key, False, 1)
    fic_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    state, hist, window, key, mets_eib = run_phase(eib_step, n_fic_eib, state, hist, window,
                                                   key, True, extrapolate_fic_eib)
    eib_s = time.perf_counter() - t0

    fic_ms = fic_s / max(n_fic, 1) * 1e3
    eib_ms = eib_s / max(n_fic_eib, 1) * 1e3
    total = extrapolate_fic * fic_ms / 1e3 + extrapolate_fic_eib * eib_ms / 1e3
    return dict(
        peer="tvboptim EI_Tuning tutorial loop (Python loop over prepare()'d model)",
        model="EIBWongWang + EIBCoupling (wLRE, wFFI edge params), J_i per region",
        n_regions=n, dt_ms=dt, tr_ms=TR_MS, n_steps_per_iteration=n_steps,
        window_size=window_size,
        solver="BoundedSolver(Heun(), 0, 1)",
        bold="tvboptim HRFBold(period=720, downsample_period=4, voi=0) with rolling "
             "20 s history (first-order Volterra HRF convolution, = tvboptim Bold)",
        precision="float64 (jax_enable_x64)", jit=jit,
        how=("one jax.jit'd iteration function (sim + BOLD + updates) in a Python loop"
             if jit else "eager Python loop calling model_short(state) etc., as the tutorial")
        + f"; {n_warmup} untimed warm-up iterations per phase, then {n_fic} FIC and "
          f"{n_fic_eib} FIC+EIB timed iterations",
        setup_s=setup_s, transient_ms=transient_ms,
        warmup_fic_s=warm_fic_s, warmup_fic_eib_s=warm_eib_s,
        n_fic=n_fic, n_fic_eib=n_fic_eib,
        ms_per_fic_iteration=fic_ms, ms_per_fic_eib_iteration=eib_ms,
        us_per_step_fic=fic_ms * 1e3 / n_steps,
        extrapolated_iterations=f"{extrapolate_fic} FIC + {extrapolate_fic_eib} FIC+EIB",
        extrapolated_seconds=total,
        last_mean_S_e=float(mets_eib[-1][0]) if mets_eib else None,
        versions=_versions(),
    )


# --------------------------------------------------------------------------
# 4. tvboptim gradient step (tutorial Part 3)
# --------------------------------------------------------------------------

def _gradient_worker(duration_ms=60000.0, n_steps=4, jit=False, dt=4.0,
                     transient_ms=20000.0, target=0.25, learning_rate=0.033,
                     data_dir=None):
    T = _tvboptim()
    jax, jnp = T["jax"], T["jnp"]
    try:
        import optax
        from tvboptim.optim.optax import OptaxOptimizer
        from tvboptim.types import BoundedParameter, Parameter
        from tvboptim.types.stateutils import combine_state, partition_state
    except ImportError as e:
        raise PeerUnavailable(f"tvboptim optim / optax not importable: {e}") from e

    compute_fc, rmse = T["compute_fc"], T["rmse"]
    net, fc_target, n = _tvboptim_network("eib", data_dir)
    solver = _solver(T, True)
    model_tr, state_tr = T["prepare"](net, solver, t1=transient_ms, dt=dt)
    result_init = jax.block_until_ready(jax.jit(model_tr)(state_tr))
    net.update_history(result_init)
    model_opt, state_opt = T["prepare"](net, solver, t1=duration_ms, dt=dt)
    bold_monitor = T["HRFBold"](period=TR_MS, downsample_period=dt, voi=0,
                                history=result_init)
    n_bold = int(duration_ms // TR_MS)
    skip_t = 30 if n_bold > 40 else max(n_bold // 4, 1)

    def loss(state):
        ts = model_opt(state)
        bold = bold_monitor(ts)
        fc_pred = compute_fc(bold, skip_t=skip_t)
        fc_loss = rmse(fc_pred, fc_target)
        mean_act = jnp.mean(ts.data[-500:, 0, :], axis=0)
        return fc_loss + jnp.mean((mean_act - target) ** 2)

    state_opt.dynamics.J_i = Parameter(state_opt.dynamics.J_i)
    state_opt.coupling.coupling.wLRE = BoundedParameter(jnp.ones((n, n)), low=0.0, high=jnp.inf)
    state_opt.coupling.coupling.wFFI = BoundedParameter(jnp.ones((n, n)), low=0.0, high=jnp.inf)
    rss_before = _current_rss_mb()

    stamps, losses, finite = [], [], []
    if not jit:
        # tutorial: OptaxOptimizer(loss, optax.adamaxw(0.033)).run(state, max_steps)
        def timing_cb(step, diff_state, static_state, fitting_data, aux, loss_value, grads):
            jax.block_until_ready((diff_state, loss_value))
            stamps.append(time.perf_counter())
            losses.append(float(loss_value))
            finite.append(bool(all(bool(jnp.all(jnp.isfinite(g)))
                                   for g in jax.tree.leaves(grads))))
            return False, diff_state, static_state

        opt = OptaxOptimizer(loss, optax.adamaxw(learning_rate=learning_rate),
                             callback=timing_cb)
        t_start = time.perf_counter()
        opt.run(state_opt, max_steps=1 + n_steps)
        how = ("tvboptim OptaxOptimizer(loss, optax.adamaxw(0.033)).run(state, "
               f"max_steps={1 + n_steps}) (jax.jit(loss) inside, value_and_grad and "
               "optax update outside jit, per-step Python loop); step 0 = compile")
    else:
        diff, static = partition_state(state_opt)
        tx = optax.adamaxw(learning_rate=learning_rate)
        opt_state = tx.init(diff)

        @jax.jit
        def step(diff, opt_state):
            val, grads = jax.value_and_grad(
                lambda d: loss(combine_state(d, static)))(diff)
            upd, opt_state = tx.update(grads, opt_state, diff)
            return optax.apply_updates(diff, upd), opt_state, val, grads

        t_start = time.perf_counter()
        for _ in range(1 + n_steps):
            diff, opt_state, val, grads = jax.block_until_ready(step(diff, opt_state))
            stamps.append(time.perf_counter())
            losses.append(float(val))
            finite.append(bool(all(bool(jnp.all(jnp.isfinite(g)))
                                   for g in jax.tree.leaves(grads))))
        how = ("jax.jit(value_and_grad(loss) + optax.adamaxw update) called in a "
               f"Python loop, {1 + n_steps} steps; step 0 = compile")

    per_step = [b - a for a, b in zip(stamps[:-1], stamps[1:])]
    s = _stats(per_step) if per_step else dict(min=float("nan"), median=float("nan"))
    sim_steps = int(round(duration_ms / dt))
    return dict(
        peer="tvboptim gradient (EI_Tuning tutorial Part 3)",
        model="EIBWongWang + EIBCoupling; params J_i (84), wLRE, wFFI (84x84, "
              "BoundedParameter low=0)",
        loss=f"rmse(compute_fc(HRFBold(ts), skip_t={skip_t}), FC_target) + "
             "mean((mean(S_e[-500:]) - 0.25)**2)",
        n_regions=n, dt_ms=dt, duration_ms=duration_ms, n_steps=sim_steps,
        n_bold_samples=n_bold, n_opt_steps_timed=n_steps,
        solver="BoundedSolver(Heun(), 0, 1), default (no checkpointing / blocking)",
        precision="float64 (jax_enable_x64)", jit=jit, how=how,
        first_step_s=stamps[0] - t_start,
        s_per_step=s["min"], s_per_step_median=s["median"], s_per_step_all=per_step,
        us_per_sim_step=s["min"] / sim_steps * 1e6,
        loss_first=losses[0], loss_last=losses[-1], grads_finite=all(finite),
        rss_before_first_step_MB=rss_before,
        peak_rss_MB=_peak_rss_mb(),
        versions=_versions(),
    )


def time_tvboptim_gradient(duration_ms: float = 60000.0, n_steps: int = 4,
                           jit: bool = False, isolated: bool = True,
                           **kwargs) -> dict:
    """Seconds per value-and-gradient(+optimizer) step and peak memory.

    Loss as in the tutorial's Part 3: RMSE(FC(BOLD), FC_target) + activity
    penalty, w.r.t. J_i, wLRE, wFFI, through a ``duration_ms`` simulation.
    jit=False (default) uses tvboptim's ``OptaxOptimizer(...).run`` as the
    tutorial does; jit=True wraps value_and_grad + optax update in jax.jit.
    Runs in a fresh subprocess (``isolated=True``) so that ``peak_rss_MB``
    (the child's own ru_maxrss) is the peak of this measurement alone
    (it includes XLA compilation).  ``n_steps`` timed steps follow 1 compile step.
    """
    kw = dict(duration_ms=duration_ms, n_steps=n_steps, jit=jit, **kwargs)
    if isolated:
        return run_isolated("_gradient_worker", **kw)
    return _gradient_worker(**kw)


# --------------------------------------------------------------------------
# Fresh-subprocess runner (for memory figures)
# --------------------------------------------------------------------------

_CHILD_MARK = "@@PEERS_RESULT@@"


def run_isolated(func_name: str, timeout: float | None = 1800, **kwargs) -> dict:
    """Run ``func_name(**kwargs)`` of this module in a fresh Python process.

    Returns its dict plus ``peak_rss_MB`` (the child's own ru_maxrss, i.e.
    the peak resident memory of that measurement including imports and JIT
    compilation), ``peak_rss_children_MB`` (parent-side
    ``getrusage(RUSAGE_CHILDREN).ru_maxrss``; a max over all children so far,
    kept only as a cross-check) and ``subprocess_wall_s``.
    Raises ``PeerUnavailable`` if the child reports a missing peer.
    """
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", func_name,
           json.dumps(kwargs)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t0
    payload = None
    for line in proc.stdout.splitlines():
        if line.startswith(_CHILD_MARK):
            payload = json.loads(line[len(_CHILD_MARK):])
    if payload is None:
        raise RuntimeError(f"child {func_name} failed (rc={proc.returncode}):\n"
                           f"{proc.stderr[-4000:]}")
    if "__error__" in payload:
        err = payload["__error__"]
        if payload.get("__unavailable__"):
            raise PeerUnavailable(err)
        raise RuntimeError(f"child {func_name} raised: {err}")
    payload.setdefault("peak_rss_MB", payload.pop("__peak_rss_MB__", None))
    payload.pop("__peak_rss_MB__", None)
    payload["peak_rss_children_MB"] = (
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0)
    payload["subprocess_wall_s"] = wall
    payload["isolated"] = True
    return payload


def _child_main(func_name: str, kwargs_json: str) -> int:
    kwargs = json.loads(kwargs_json)
    try:
        res = globals()[func_name](**kwargs)
        res = dict(res)
        res["__peak_rss_MB__"] = _peak_rss_mb()
    except PeerUnavailable as e:
        res = {"__error__": str(e), "__unavailable__": True}
    except Exception as e:  # noqa: BLE001
        import traceback
        res = {"__error__": f"{type(e).__name__}: {e}\n{traceback.format_exc()}"}
    print(_CHILD_MARK + json.dumps(res, default=float), flush=True)
    return 0


# --------------------------------------------------------------------------
# Self-check
# --------------------------------------------------------------------------

def _fmt(d):
    keys = [k for k in d if k not in ("versions",)]
    out = []
    for k in keys:
        v = d[k]
        if isinstance(v, float):
            v = f"{v:.4g}"
        elif isinstance(v, list):
            v = "[" + ", ".join(f"{x:.4g}" if isinstance(x, float) else str(x) for x in v) + "]"
        out.append(f"    {k}: {v}")
    return "\n".join(out)


def _self_check():
    checks = [
        ("time_tvb_simulator()", lambda: time_tvb_simulator()),
        ("time_tvb_simulator('dk_average')", lambda: time_tvb_simulator("dk_average")),
        ("time_tvboptim_simulation(jit=False)", lambda: time_tvboptim_simulation(jit=False)),
        ("time_tvboptim_simulation(jit=True)", lambda: time_tvboptim_simulation(jit=True)),
        ("time_tvboptim_tuning_loop(jit=False)", lambda: time_tvboptim_tuning_loop(jit=False)),
        ("time_tvboptim_tuning_loop(jit=True)", lambda: time_tvboptim_tuning_loop(jit=True)),
        ("time_tvboptim_gradient()", lambda: time_tvboptim_gradient()),
    ]
    for name, fn in checks:
        t0 = time.perf_counter()
        try:
            res = fn()
        except PeerUnavailable as e:
            print(f"{name}: SKIPPED ({e})", flush=True)
            continue
        print(f"{name}  [{time.perf_counter() - t0:.1f} s wall]\n{_fmt(res)}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "--child":
        sys.exit(_child_main(sys.argv[2], sys.argv[3]))
    _self_check()
