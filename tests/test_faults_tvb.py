"""Issue 12, part 1: the TVB round trip is exact for everything a user can set.

Every test here failed on the code before the fix: the export
dropped the network's delays without a word, the EIB model read S_i's history in
its second coupling stream, ``network_from_simulator`` took its delays from a
speed TVB ignores, a TVB history could not be carried over, and a TVB zip given
by a relative path was looked for inside tvb-data.

Small synthetic connectomes (5 regions, delays of 2-13 steps) keep the file fast.
"""

import os
import shutil
import warnings

import numpy as np
import pytest
from test_tvb_equivalence import _tvb_model
from tvb.datatypes.connectivity import Connectivity
from tvb.simulator import coupling, integrators, monitors, simulator

import tvb_eib_plugin as eib
from tvb_eib_plugin.tvb import _adapters as adapters, _export as tvb_export

N, DT, SPEED = 5, 1.0, 3.0


def _connectome(seed=0) -> eib.Connectome:
    """5 regions, every one connected, a few absent edges, tract lengths 6-40 mm."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.2, 1.0, (N, N)) * (rng.uniform(size=(N, N)) > 0.2)
    np.fill_diagonal(w, 0.0)
    w[np.arange(N), (np.arange(N) + 1) % N] = 0.5  # a ring, so no region is isolated
    tl = np.triu(rng.uniform(6.0, 40.0, (N, N)), 1)
    return eib.Connectome(labels=tuple(f"r{i}" for i in range(N)), weights=w, tract_lengths=tl + tl.T,
                          speed=SPEED, name="synthetic")


@pytest.fixture(scope="module")
def con():
    return _connectome()


@pytest.fixture(scope="module")
def net(con):
    """A tuned-looking network with delays, noise off, float64: J_i, wLRE, wFFI per region / edge."""
    rng = np.random.default_rng(1)
    base = eib.network_from_connectome(con, delays=True, dt=DT, sigma_e=0.0)
    tuned = base.with_tuned(J_i=rng.uniform(0.8, 1.3, N), wLRE=rng.uniform(0.5, 2.0, (N, N)),
                            wFFI=rng.uniform(0.5, 2.0, (N, N)))
    assert tuned.coupling.horizon > 8  # real delays: the history matters for many steps
    return tuned


def _history(net, n_rows, seed=2) -> np.ndarray:
    """A TVB initial history (n_rows, 2, N, 1): per region and per step, S_i far from S_e."""
    rng = np.random.default_rng(seed)
    S_e = rng.uniform(0.05, 0.35, (n_rows, N))
    S_i = rng.uniform(0.5, 0.9, (n_rows, N))
    return np.stack([S_e, S_i], axis=1)[..., None]


def _export(net, con, **kw):
    return tvb_export.tvb_simulator(net, con.labels, tract_lengths=con.tract_lengths, speed=con.speed,
                                    deterministic=True, monitors=(monitors.Raw(),), **kw)


def _tvb_states(sim) -> np.ndarray:
    (_, y), = sim.run()
    return y[:, :, :, 0]


# ---------------------------------------------------------------------------------------------
# 1. Export carries the network's delays
# ---------------------------------------------------------------------------------------------

def test_export_of_a_network_with_delays_needs_its_tract_lengths(net, con):
    """Before: tvb_simulator(net, labels) exported a zero-delay TVB model without a word."""
    with pytest.raises(eib.InputError, match="conduction delays"):
        tvb_export.tvb_simulator(net, con.labels, deterministic=True)
    # tract lengths without their speed: before, speed defaulted to inf (zero delays)
    with pytest.raises(eib.InputError, match="speed"):
        tvb_export.tvb_simulator(net, con.labels, tract_lengths=con.tract_lengths, deterministic=True)
    sim = _export(net, con)
    np.testing.assert_array_equal(sim.connectivity.idelays, np.asarray(net.coupling.idelays))
    assert sim.connectivity.horizon == net.coupling.horizon


def test_export_with_other_delays_is_refused_unless_forced(net, con):
    """Before: any tract lengths / speed were exported as given, whatever the network's delays."""
    with pytest.raises(eib.InputError, match="force_delays"):
        tvb_export.tvb_simulator(net, con.labels, tract_lengths=con.tract_lengths, speed=2 * SPEED)
    with pytest.warns(UserWarning, match="differ from the network's"):
        sim = tvb_export.tvb_simulator(net, con.labels, tract_lengths=con.tract_lengths, speed=2 * SPEED,
                                       deterministic=True, force_delays=True)
    np.testing.assert_array_equal(sim.connectivity.idelays, np.rint(con.tract_lengths / (2 * SPEED) / DT))
    # a network without delays exports tract lengths only at a speed that keeps them at zero
    flat = net.replace(coupling=eib.dual_coupling(net.coupling.weights, net.coupling.wLRE, net.coupling.wFFI))
    sim = tvb_export.tvb_simulator(flat, con.labels, tract_lengths=con.tract_lengths, deterministic=True)
    assert not sim.connectivity.idelays.any()
    with pytest.raises(eib.InputError, match="no conduction delays"):
        tvb_export.tvb_simulator(flat, con.labels, tract_lengths=con.tract_lengths, speed=SPEED)


# ---------------------------------------------------------------------------------------------
# 2. The EIB model reads S_e in both coupling streams, whatever history the user sets
# ---------------------------------------------------------------------------------------------

def test_eib_export_reads_S_e_history_in_both_coupling_streams(net, con):
    """A user sets a per-region history with S_i != S_e on the exported Simulator.

    Before: ``cvar = [0, 0]`` made TVB keep S_i's history in the second slot, so the
    feedforward-inhibition stream summed S_i for the first horizon steps.
    """
    exported = _export(net, con)
    H = exported.connectivity.horizon
    ic = _history(net, H)
    # a fresh Simulator of the exported parts: configuring one twice with initial_conditions
    # shifts TVB's current_step by another H - 1 (hence tvb_simulator(initial_conditions=...))
    sim = simulator.Simulator(connectivity=exported.connectivity, model=exported.model, coupling=exported.coupling,
                              integrator=exported.integrator, monitors=(monitors.Raw(),), initial_conditions=ic)
    sim.configure()
    theirs = sim.coupling(sim.current_step + 1, sim.history)[..., 0]  # (streams, N)
    # the coupling both streams must see: S_e of region j, idelays[i, j] steps before the current row
    d = np.asarray(net.coupling.idelays)
    S_e_delayed = ic[H - 1 - d, 0, np.arange(N)[None, :], 0]  # (to i, from j)
    W = np.asarray(net.coupling.weights)
    for k, w in enumerate((net.coupling.wLRE, net.coupling.wFFI)):
        expected = (W * np.asarray(w) * S_e_delayed).sum(axis=1)
        np.testing.assert_allclose(theirs[k], expected, atol=1e-6, err_msg=f"coupling stream {k}")


# ---------------------------------------------------------------------------------------------
# 3. A TVB history in and out: TVB's Simulator and the plugin agree from any initial history
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("extra_rows", [0, 3], ids=["horizon-rows", "longer-history"])
def test_round_trip_from_a_per_region_history_with_delays_equals_tvb(net, con, extra_rows):
    """Noise-free, float64, delays on, S_i != S_e per region and per step: TVB's own
    Simulator and the plugin's trajectory agree within 1e-6 over 300 steps (TVB keeps its
    history in float32, which leaves ~1e-8).  A history longer than the horizon is used
    as TVB uses it."""
    H = net.coupling.horizon
    ic = _history(net, H + extra_rows)
    n_steps = 300
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the longer history's rotation warning (tested below)
        sim = _export(net, con, initial_conditions=ic, simulation_length=n_steps * DT)
        state = adapters.initial_state_from_tvb(net, ic)
    theirs = _tvb_states(sim)
    _, ours = eib.trajectory(net, state, n_steps)
    err = np.abs(np.asarray(ours) - theirs).max()
    print(f"rows={H + extra_rows} (horizon {H}): max |plugin - TVB| = {err:.1e}")
    assert err < 1e-6
    assert np.ptp(theirs[:, 0]) > 0.05  # the states moved: not a comparison of constants


def test_plugin_state_exports_to_tvb_initial_conditions_and_back(net, con):
    """Out: a plugin state mid-run (step not a multiple of the horizon) as TVB's
    initial_conditions; TVB continues it as the plugin does.  And back: history in,
    history out is the identity on what TVB reads (S_e of every row, S_i of the last)."""
    H = net.coupling.horizon
    ic = _history(net, H)
    state = adapters.initial_state_from_tvb(net, ic)
    back = tvb_export.tvb_initial_conditions(net, state)
    assert back.shape == (H, 2, N, 1)
    np.testing.assert_array_equal(back[:, 0], ic[:, 0])
    np.testing.assert_array_equal(back[-1, 1], ic[-1, 1])

    mid, _ = eib.trajectory(net, state, 2 * H + 3)
    n_steps = 200
    sim = _export(net, con, initial_conditions=mid, simulation_length=n_steps * DT)
    theirs = _tvb_states(sim)
    _, ours = eib.trajectory(net, mid, n_steps)
    assert np.abs(np.asarray(ours) - theirs).max() < 1e-6


def test_tvb_histories_the_plugin_cannot_reproduce_are_refused(net):
    """TVB pads a history shorter than its horizon with random model.initial() values;
    values outside [0, 1] it clips.  Neither is reproducible: both are refused, and a
    longer history's rotation (TVB's current_step arithmetic) is said."""
    H = net.coupling.horizon
    with pytest.raises(eib.InputError, match=f"at least {H} rows"):
        adapters.initial_state_from_tvb(net, _history(net, H - 1))
    bad = _history(net, H)
    bad[0, 0, 2, 0] = 1.5
    with pytest.raises(eib.InputError, match=r"\[0, 1\]"):
        adapters.initial_state_from_tvb(net, bad)
    with pytest.raises(eib.InputError, match="shape"):
        adapters.initial_state_from_tvb(net, _history(net, H)[:, :, :3])
    with pytest.warns(UserWarning, match="rotat"):
        adapters.initial_state_from_tvb(net, _history(net, H + 3))


# ---------------------------------------------------------------------------------------------
# 4. network_from_simulator takes the delays TVB uses: connectivity.speed
# ---------------------------------------------------------------------------------------------

def test_network_from_simulator_takes_delays_from_connectivity_speed(con):
    """TVB 2.10 computes delays as tract_lengths / connectivity.speed and ignores
    Simulator.conduction_speed.  Before: the plugin took conduction_speed."""
    conn = Connectivity(weights=con.weights, tract_lengths=con.tract_lengths, region_labels=np.array(con.labels),
                        centres=np.zeros((N, 3)), speed=np.array([SPEED]))
    model = _tvb_model(N, np.random.default_rng(3))
    sim = simulator.Simulator(connectivity=conn, model=model, coupling=coupling.Linear(a=np.array([0.5])),
                              integrator=integrators.HeunDeterministic(dt=DT), monitors=(monitors.Raw(),),
                              conduction_speed=10.0, simulation_length=200 * DT)
    sim.configure()
    assert not np.array_equal(sim.connectivity.idelays, np.rint(con.tract_lengths / 10.0 / DT))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net = adapters.network_from_simulator(sim, normalise="none")
    np.testing.assert_array_equal(np.asarray(net.coupling.idelays), sim.connectivity.idelays)
    assert any("conduction_speed" in str(w.message) for w in caught)  # the ignored setting is said
    # and so the trajectories agree, from TVB's own (constant, model.initial-free) history
    sim.initial_conditions = np.full((sim.connectivity.horizon, 2, N, 1), 0.2)
    sim.configure()
    theirs = _tvb_states(sim)
    _, ours = eib.trajectory(net, eib.initial_state(net, 0, S0=0.2), len(theirs))
    assert np.abs(np.asarray(ours) - theirs).max() < 1e-6


# ---------------------------------------------------------------------------------------------
# 5. TVB connectivities: a zip by relative path; a Connectome as TVB objects
# ---------------------------------------------------------------------------------------------

def test_tvb_connectivity_loads_a_zip_given_by_relative_path(tmp_path, monkeypatch):
    """Before: TVB resolved a relative path inside the tvb-data package: 'cannot load'."""
    import tvb_data

    source = os.path.join(os.path.dirname(tvb_data.__file__), "connectivity", "connectivity_68.zip")
    os.makedirs(tmp_path / "data")
    shutil.copy(source, tmp_path / "data" / "my_subject.zip")
    monkeypatch.chdir(tmp_path)
    conn = adapters.tvb_connectivity(os.path.join("data", "my_subject.zip"))
    assert conn.number_of_regions == 68
    monkeypatch.chdir(tmp_path / "data")
    assert adapters.tvb_connectivity("my_subject.zip").number_of_regions == 68


def test_tvb_connectivity_of_a_connectome_is_the_same_network(con):
    """A Connectome (the shipped data, a BIDS folder) as a TVB Connectivity: the network
    built from it through TVB objects is the one built from the Connectome."""
    conn = adapters.tvb_connectivity(con)
    assert [str(x) for x in conn.region_labels] == list(con.labels)
    via_tvb = adapters.network_from_tvb(conn, _tvb_model(N), normalise="max",
                                        coupling=coupling.Linear(a=np.array([1.0])),
                                        integrator=integrators.HeunDeterministic(dt=DT))
    direct = eib.network_from_connectome(con, delays=True, dt=DT)
    np.testing.assert_array_equal(np.asarray(via_tvb.coupling.weights), np.asarray(direct.coupling.weights))
    np.testing.assert_array_equal(np.asarray(via_tvb.coupling.idelays), np.asarray(direct.coupling.idelays))


def test_tvb_connectivity_takes_every_data_set_name_the_cli_lists():
    """`tvb-eib list` shows dk_average beside tvb-data's zips: both load as a TVB Connectivity."""
    con = eib.load_dataset("dk_average")
    conn = eib.tvb_connectivity("dk_average")
    np.testing.assert_array_equal(conn.weights, con.weights)
    np.testing.assert_array_equal(conn.tract_lengths, con.tract_lengths)
    assert list(conn.region_labels) == list(con.labels)
