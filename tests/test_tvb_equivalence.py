"""The plugin's dynamics equal TVB's own ReducedWongWangExcInh and Simulator."""

import numpy as np
import pytest
from tvb.simulator import coupling, integrators, models, monitors, simulator

import tvb_eib_plugin as eib
from tvb_eib_plugin._model.coupling import afferent, effective


def _tvb_model(n, rng=None, **kw):
    params = dict(G=np.array([1.7]), lamda=np.array([0.8]))
    if rng is not None:  # heterogeneous J_i and I_o, as after FIC
        params["J_i"] = rng.uniform(0.5, 1.5, n)
        params["I_o"] = rng.uniform(0.3, 0.45, n)
    params.update(kw)
    m = models.ReducedWongWangExcInh(**params)
    m.configure()
    return m


def test_dfun_equals_tvb_on_random_states(dk):
    rng = np.random.default_rng(0)
    n = dk.n_regions
    tvb_model = _tvb_model(n, rng)
    net = eib.network_from_tvb(dk, tvb_model, normalise="max", delays=False)
    for trial in range(20):
        S = rng.uniform(0, 1, (2, n))
        S_e_remote = rng.uniform(0, 1, n)
        c = net.coupling.weights @ S_e_remote  # TVB's Linear(a=1) coupling sum
        ours = np.stack(eib.dfun(S[0], S[1], *afferent(effective(net.coupling), S_e_remote[None], 1), net.node))
        theirs = tvb_model.dfun(S[..., None], c[None, :, None])[..., 0]
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-300)


def test_transfer_is_finite_and_continuous_at_its_singularity():
    d = 0.16
    x = np.array([-1e-3, -1e-9, 0.0, 1e-9, 1e-3])
    h = np.asarray(eib.transfer(x, d))
    assert np.all(np.isfinite(h))
    np.testing.assert_allclose(h[2], 1 / d, rtol=1e-10)
    np.testing.assert_allclose(h, 1 / d + x / 2, rtol=1e-6)


def _tvb_raw_run(conn, tvb_model, dt, length_ms, speed):
    n = conn.number_of_regions
    horizon = int(np.rint(conn.tract_lengths / speed / dt).max()) + 1
    sim = simulator.Simulator(
        connectivity=conn,
        model=tvb_model,
        coupling=coupling.Linear(a=np.array([1.0 / conn.weights.max()])),
        integrator=integrators.HeunDeterministic(dt=dt),
        monitors=(monitors.Raw(),),
        conduction_speed=speed,
        initial_conditions=np.full((horizon, 2, n, 1), 0.001),
        simulation_length=length_ms,
    )
    sim.configure()
    (t, y), = sim.run()
    return t, y[:, :, :, 0], sim


@pytest.mark.parametrize("speed", [np.inf, 3.0], ids=["no-delays", "delays"])
def test_noise_free_integration_equals_tvb_simulator(conn76, speed):
    """10 s of HeunDeterministic on connectivity_76 agree within 1e-6 absolute.

    The difference left (about 1.5e-7) is TVB's: its history buffer and
    coupling weights are float32 (``SparseHistory``), so its long-range input
    carries 1e-8 relative rounding from the first step on.
    """
    dt, length = 1.0, 10000.0
    n = conn76.number_of_regions
    tvb_model = _tvb_model(n, np.random.default_rng(1))
    conn76.speed = np.array([speed])
    t, tvb_states, sim = _tvb_raw_run(conn76, tvb_model, dt, length, speed)
    assert (sim.connectivity.idelays.max() > 0) == np.isfinite(speed)
    net = eib.network_from_simulator(sim, normalise="none")
    assert net.coupling.horizon == sim.connectivity.horizon
    _, ours = eib.trajectory(net, eib.initial_state(net, 0, S0=0.001), n_steps=len(t))
    ours = np.asarray(ours)
    err_t = np.abs(ours - tvb_states).max(axis=(1, 2))
    err = err_t.max()
    print(f"speed={speed}: max |ours - TVB| = {err_t[:100].max():.1e} over the first 100 steps, "
          f"{err:.1e} over all {len(t)} steps")
    assert err < 1e-6
    # a trajectory that moved: the comparison is not between two constants
    assert np.ptp(tvb_states[:, 0]) > 0.05


def test_bold_equals_tvb_bold_monitor_on_the_same_input(dk):
    """TVB's Bold monitor and ours on one S_e series: equal up to TVB's wrap term."""
    net = eib.network_from_connectome(dk, delays=False)
    sim = eib.simulate(net, eib.initial_state(net, 3), 60 * 720.0, record_trace=True)
    S_e = sim.S_e_trace  # (steps, N), dt = 4 ms

    mon = monitors.Bold(period=720.0)
    mon.dt, mon.istep = 4.0, 180
    mon.voi = np.array([0])
    mon.compute_hrf()
    mon._interim_stock = np.zeros((mon._interim_istep, 1, dk.n_regions, 1))
    mon._stock = np.zeros((mon._stock_steps, 1, dk.n_regions, 1))
    tvb_bold = []
    for step in range(1, len(S_e) + 1):
        out = mon.sample(step, S_e[step - 1][None, :, None])
        if out is not None:
            tvb_bold.append(out[1][0, :, 0])
    tvb_bold = np.array(tvb_bold)

    ours = sim.bold
    assert ours.shape == tvb_bold.shape
    # TVB's stock starts at zero, ours at the initial state: compare once 20 s
    # (the kernel's length, 28 TRs) of real input fill both buffers.
    err = np.abs(ours[29:] - tvb_bold[29:]).max()
    print(f"max |BOLD ours - TVB| = {err:.2e} (BOLD range {np.ptp(ours[29:]):.2e})")
    assert err < 1e-7
