"""Gradient fitting: correct gradients, bounded parameters, optax in the loop."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import tvb_eib_plugin as eib
from tvb_eib_plugin._model.bold import bold_from_steps
from tvb_eib_plugin.routines import GradientEIB, TuningState
from tvb_eib_plugin import TunedParams
from tvb_eib_plugin.routines.gradient import loss, loss_terms


@pytest.fixture(scope="module")
def setup(dk):
    net = eib.network_from_connectome(dk, delays=False)
    state = eib.simulate(net, eib.initial_state(net, 0), 36000.0).state
    rng = np.random.default_rng(0)
    p = net.tuned
    p = TunedParams(p.J_i * rng.uniform(0.9, 1.2, 84), p.wLRE * rng.uniform(0.5, 1.5, (84, 84)), p.wFFI)
    ls = GradientEIB(duration_ms=14400.0, discard=2).loss_settings(net)
    return net, state, p, ls, jnp.asarray(dk.fc_target)


def test_bold_from_a_whole_series_equals_the_streaming_bold(dk):
    net = eib.network_from_connectome(dk, delays=False)
    s0 = eib.simulate(net, eib.initial_state(net, 0), 21600.0).state
    r = eib.simulate(net, s0, 72000.0, record_trace=True)
    b = bold_from_steps(net.bold, s0.bold, jnp.asarray(r.S_e_trace))
    np.testing.assert_allclose(np.asarray(b), r.bold, rtol=0, atol=1e-12)


def test_hand_written_adjoint_equals_autodiff(setup):
    net, state, p, ls, fc_t = setup
    g_adj = jax.grad(lambda p: loss(p, net, state, fc_t, ls)[0])(p)
    g_auto = jax.grad(lambda p: loss(p, net, state, fc_t, dataclasses.replace(ls, adjoint=False))[0])(p)
    for k in ("J_i", "wLRE", "wFFI"):
        a, b = np.asarray(getattr(g_adj, k)), np.asarray(getattr(g_auto, k))
        assert np.abs(b).max() > 0
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9 * np.abs(b).max())


def test_gradient_matches_finite_differences_with_the_noise_fixed(setup):
    net, state, p, ls, fc_t = setup
    f = jax.jit(lambda p: loss(p, net, state, fc_t, ls)[0])
    g = jax.grad(lambda p: loss(p, net, state, fc_t, ls)[0])(p)
    h = 1e-6
    checks = [("J_i", (3,)), ("J_i", (40,)), ("wLRE", (0, 1)), ("wLRE", (10, 12)), ("wFFI", (5, 2))]
    for name, idx in checks:
        base = getattr(p, name)
        plus = dataclasses.replace(p, **{name: base.at[idx].add(h)})
        minus = dataclasses.replace(p, **{name: base.at[idx].add(-h)})
        fd = (float(f(plus)) - float(f(minus))) / (2 * h)
        ad = float(getattr(g, name)[idx])
        print(f"{name}{idx}: autodiff {ad:.6e}, finite difference {fd:.6e}")
        assert abs(ad - fd) <= 1e-4 * max(abs(fd), 1e-3), (name, idx, ad, fd)


def test_gradient_through_delays_uses_checkpointed_autodiff(dk):
    net = eib.network_from_connectome(dk, delays=True)
    assert net.coupling.horizon > 1
    state = eib.simulate(net, eib.initial_state(net, 0), 7200.0).state
    ls = GradientEIB(duration_ms=14400.0, discard=2).loss_settings(net)
    g = jax.grad(lambda p: loss(p, net, state, jnp.asarray(dk.fc_target), ls)[0])(net.tuned)
    assert np.all(np.isfinite(np.asarray(g.wLRE))) and float(jnp.abs(g.J_i).max()) > 0


def test_gradient_routine_lowers_the_loss_keeps_weights_non_negative_and_takes_any_optax(setup, dk):
    net, state, p, _, fc_t = setup
    start = TuningState(net.with_tuned(J_i=p.J_i, wLRE=p.wLRE), state)
    lines = []
    res = GradientEIB(duration_ms=36000.0, discard=5, n_steps=6, learning_rate=0.05).run(
        start, dk.fc_target, {}, lines.append)
    h = res.history
    assert set(h) >= {"loss", "fc_rmse", "activity", "fc_corr"} and len(h["loss"]) == 6
    np.testing.assert_allclose(h["loss"], h["fc_rmse"] + h["activity"], rtol=1e-10)
    assert h["loss"][-1] < h["loss"][0]
    c = res.state.model.coupling
    assert float(c.wLRE.min()) >= 0 and float(c.wFFI.min()) >= 0 and float(res.state.model.node.J_i.min()) >= 0
    steps = [ln for ln in lines if ln.startswith("Step ")]  # between them: the compile lines (progress.py)
    assert steps[0].startswith("Step 0: ") and "1/6 steps" in steps[0] and res.history_dim == "step"
    sgd = GradientEIB(duration_ms=36000.0, discard=5, n_steps=2, optimizer=optax.sgd(1e-3))
    assert sgd.run(start, dk.fc_target, {}, lambda _: None).history["loss"].shape == (2,)


def test_noise_samples_average_the_loss_over_realisations(setup):
    net, state, p, ls, fc_t = setup
    two = loss_terms(p, net, state, fc_t, dataclasses.replace(ls, noise_samples=2))
    one = dataclasses.replace(ls, noise_samples=1)
    keys = jax.random.split(state.key, 2)
    singles = [loss_terms(p, net, eib.SimState(state.integ, state.bold, k), fc_t, one)["loss"] for k in keys]
    np.testing.assert_allclose(float(two["loss"]), np.mean([float(x) for x in singles]), rtol=1e-10)
    assert abs(float(singles[0]) - float(singles[1])) > 1e-4  # the realisations differ
