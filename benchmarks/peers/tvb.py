"""TVB's own simulator (``tvb.simulator.simulator.Simulator``) running ``ReducedWongWangExcInh``: its whole
construction and timing in :func:`time_tvb_simulator`."""

from __future__ import annotations

import time

import numpy as np

from .common import G, INITIAL_STATE, MODEL_PARAMS, NSIG, TR_MS, PeerUnavailable, _stats, _versions, load_dk_average


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
