"""Simulation invariants: seeds, bounds, chunking, dtypes, divergence."""

import jax.numpy as jnp
import numpy as np
import pytest

import tvb_eib_plugin as eib


@pytest.fixture(scope="module")
def net(dk):
    return eib.network_from_connectome(dk, delays=False)


def _run(net, seed, seconds=36.0, **kw):
    return eib.simulate(net, eib.initial_state(net, seed), seconds * 1000.0, **kw)


def test_same_seed_same_result_other_seed_other_noise(net):
    a, b, c = _run(net, 7), _run(net, 7), _run(net, 8)
    np.testing.assert_array_equal(a.bold, b.bold)
    np.testing.assert_array_equal(a.mean_S, b.mean_S)
    assert np.abs(a.bold - c.bold).max() > 1e-3


def test_chunking_does_not_change_the_result(net):
    a = _run(net, 1, chunk_trs=50)
    b = _run(net, 1, chunk_trs=7)
    np.testing.assert_allclose(a.bold, b.bold, rtol=0, atol=1e-12)


def test_states_stay_in_bounds_and_shapes_are_labelled_by_tr(net):
    r = _run(net, 2, seconds=7.2, record_trace=True)
    assert r.bold.shape == (10, net.n_regions)
    assert r.mean_S.shape == (10, 2, net.n_regions)
    assert r.trace.shape == (10 * 180, 2, net.n_regions)
    assert r.trace.min() >= 0.0 and r.trace.max() <= 1.0
    np.testing.assert_allclose(r.trace[:180].mean(axis=0), r.mean_S[0], rtol=1e-12)


def test_duration_is_cut_to_whole_trs(net):
    assert eib.simulate.__module__  # the public function
    from tvb_eib_plugin._simulation.simulate import n_trs

    assert n_trs(net, 300000.0) == 416
    with pytest.raises(ValueError, match="shorter than one TR"):
        n_trs(net, 100.0)


def test_float32_follows_float64(dk):
    r64 = _run(eib.network_from_connectome(dk, delays=False), 0, seconds=14.4)
    r32 = _run(eib.network_from_connectome(dk, delays=False, dtype=jnp.float32), 0, seconds=14.4)
    assert r32.bold.dtype == np.float32
    # same noise draws, so the trajectories agree to rounding: measured at most 1.5e-7 apart over the 20 TRs
    np.testing.assert_allclose(r32.mean_S, r64.mean_S, rtol=0, atol=1e-5)


def test_noise_follows_tvb_additive_convention():
    """TVB's Additive(nsig) is sigma = sqrt(2 nsig); the increment is sigma sqrt(dt) N(0, 1)."""
    from tvb.simulator import integrators, noise

    from tvb_eib_plugin._model.integrate import draw_noise

    tvb_heun = integrators.HeunStochastic(dt=4.0, noise=noise.Additive(nsig=np.array([5e-5, 0.0])))
    h = eib.heun_from_tvb(tvb_heun, 84)
    assert h.noisy == (True, False)
    np.testing.assert_allclose(np.asarray(h.sigma)[:, 0], [0.01, 0.0])
    import jax

    z_e, z_i = draw_noise(h, jax.random.key(0), 20000, 84, jnp.float64)
    assert z_i is None
    assert abs(float(z_e.std()) / (0.01 * 2.0) - 1) < 0.01
    assert abs(float(z_e.mean())) < 1e-4


def test_divergence_stops_with_a_clear_error(net):
    bad = net.with_tuned(J_i=np.full(net.n_regions, np.nan))
    with pytest.raises(eib.SimulationDiverged, match="NaN"):
        eib.simulate(bad, eib.initial_state(bad, 0), 7200.0)
