"""The lean gradient (issue 18): noise drawn again rather than stored, one cotangent of S_e written in
place, noise samples one after another; every change keeps the numbers (to float rounding, bounded here)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tvb_eib_plugin as eib
from tvb_eib_plugin._simulation.adjoint import heun_noisy, heun_trajectory
from tvb_eib_plugin._model.bold import bold_from_steps
from tvb_eib_plugin._model.coupling import effective
from tvb_eib_plugin._model.integrate import draw_noise
from tvb_eib_plugin.routines import GradientEIB
from tvb_eib_plugin.routines.gradient import loss, observe, value_and_grad


def _net(n=6, seed=0, **kw):
    rng = np.random.default_rng(seed)
    w = rng.uniform(0, 1, (n, n))
    np.fill_diagonal(w, 0)
    return eib.network_model(w / w.max(), wLRE=rng.uniform(0.5, 2, (n, n)), wFFI=rng.uniform(0.5, 2, (n, n)),
                             J_i=rng.uniform(0.8, 1.3, n), **kw)


@pytest.fixture(scope="module")
def setup():
    net = _net(sigma_e=0.02)
    state = eib.simulate(net, eib.initial_state(net, 0), 7200.0).state
    fc_t = jnp.asarray(np.corrcoef(np.random.default_rng(1).normal(size=(6, 40))))
    return net, state, fc_t


def test_noise_drawn_again_on_the_way_back_is_the_noise_of_the_forward_pass():
    net = _net(sigma_e=0.02, sigma_i=0.01)
    st = eib.initial_state(net, 1, S0=0.1)
    stacked, key, n_steps = effective(net.coupling).stacked, jax.random.key(3), 40
    z = draw_noise(net.integrator, key, n_steps, net.n_regions, net.dtype)

    def given(p, c, e, i):
        return heun_trajectory(p, c, net.dt, e, i, *z)

    def drawn(p, c, e, i):
        return heun_noisy(p, c, net.integrator, e, i, key, n_steps)

    args = (net.node, stacked, st.integ.S_e, st.integ.S_i)
    ct = tuple(jax.random.normal(jax.random.key(k), (n_steps, net.n_regions)) for k in (4, 5))

    @jax.jit
    def both(args, ct):
        (out_g, vjp_g), (out_d, vjp_d) = jax.vjp(given, *args), jax.vjp(drawn, *args)
        return out_g + vjp_g(ct), out_d + vjp_d(ct)

    for a, b in zip(*both(args, ct)):
        for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("tail", [50, 180, 400, 10**6])
def test_observe_has_the_gradient_of_bold_and_the_tail_mean(setup, tail):
    net, state, _ = setup
    S_e = jax.random.uniform(jax.random.key(0), (4 * net.bold.steps_per_tr, net.n_regions), jnp.float64)
    w_bold, w_tail = jax.random.normal(jax.random.key(1), (4, net.n_regions)), jnp.arange(net.n_regions) - 2.0

    def ours(x):
        bold, mean = observe(net.bold, state.bold, x, tail)
        return jnp.sum(bold * w_bold) + jnp.sum(mean * w_tail)

    def plain(x):
        return jnp.sum(bold_from_steps(net.bold, state.bold, x) * w_bold) + jnp.sum(x[-tail:].mean(axis=0) * w_tail)

    (v_ours, g_ours), (v_plain, g_plain) = (jax.jit(jax.value_and_grad(f))(S_e) for f in (ours, plain))
    assert float(v_ours) == float(v_plain)
    np.testing.assert_array_equal(np.asarray(g_ours), np.asarray(g_plain))


def test_noise_samples_one_after_another_equal_the_side_by_side_mean_in_the_memory_of_one(setup):
    net, state, fc_t = setup
    ls = GradientEIB(duration_ms=36000.0, discard=2, noise_samples=2).loss_settings(net)
    p = net.tuned
    seq = jax.jit(lambda p, ls: value_and_grad(p, net, state, fc_t, ls), static_argnums=1)
    compiled = {ns: seq.lower(p, dataclasses.replace(ls, noise_samples=ns)).compile() for ns in (1, 2)}
    (v_seq, t_seq), g_seq = compiled[2](p)
    (v_vmap, t_vmap), g_vmap = jax.jit(lambda p: jax.value_and_grad(loss, has_aux=True)(p, net, state, fc_t, ls))(p)
    # the same samples, their mean taken in another order of operations: float64 rounding
    np.testing.assert_allclose(float(v_seq), float(v_vmap), rtol=1e-13)
    for k in t_seq:
        np.testing.assert_allclose(float(t_seq[k]), float(t_vmap[k]), rtol=1e-13, atol=1e-15)
    for k in ("J_i", "wLRE", "wFFI"):
        a, b = np.asarray(getattr(g_seq, k)), np.asarray(getattr(g_vmap, k))
        assert np.abs(b).max() > 0
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * np.abs(b).max())
    temp = {ns: c.memory_analysis().temp_size_in_bytes for ns, c in compiled.items()}
    assert temp[2] <= 1.2 * temp[1], temp  # side by side (vmap) it is twice
