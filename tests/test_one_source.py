"""One source for each equation: the forward model, the adjoint and the TVB export share it."""

import jax
import jax.numpy as jnp
import numpy as np

import tvb_eib_plugin as eib
from tvb_eib_plugin._simulation.adjoint import heun_trajectory
from tvb_eib_plugin._model.coupling import effective
from tvb_eib_plugin._model.integrate import draw_noise, integrate
from tvb_eib_plugin._model.node import transfer, transfer_and_slope
from tvb_eib_plugin.tvb._export import tvb_model


def _net(n=5, seed=0, **kw):
    rng = np.random.default_rng(seed)
    w = rng.uniform(0, 1, (n, n))
    np.fill_diagonal(w, 0)
    return eib.network_model(w / w.max(), wLRE=rng.uniform(0.5, 2, (n, n)), wFFI=rng.uniform(0.5, 2, (n, n)),
                             J_i=rng.uniform(0.8, 1.3, n), **kw)


def test_the_adjoints_slope_is_the_derivative_of_the_transfer_function_it_sits_next_to():
    d = 0.16
    x = jnp.concatenate([jnp.linspace(-300.0, 300.0, 601), jnp.asarray([0.0, 1e-9, -1e-9, 5e-3, -5e-3])])
    H, slope = transfer_and_slope(x, d)
    np.testing.assert_array_equal(np.asarray(H), np.asarray(transfer(x, d)))  # the same bits as the forward
    auto = jax.vmap(jax.grad(lambda v: transfer(v, d)))(x)
    far = np.abs(d * np.asarray(x)) > 1e-2  # where autodiff of the closed form does not cancel
    np.testing.assert_allclose(np.asarray(slope)[far], np.asarray(auto)[far], rtol=1e-12)
    near = ~far  # the Taylor branch: H'(x) = 1/2 + d x / 6 + O((d x)^3)
    np.testing.assert_allclose(np.asarray(slope)[near], 0.5 + d * np.asarray(x)[near] / 6, rtol=0, atol=1e-7)


def test_the_adjoints_forward_pass_is_the_integrators_heun_step_bit_for_bit():
    net = _net(sigma_e=0.02)
    st = eib.initial_state(net, 1, S0=0.1)
    n_steps, n = 40, net.n_regions
    z = draw_noise(net.integrator, jax.random.key(3), n_steps, n, net.dtype)
    _, (S_e, S_i) = integrate(net.node, effective(net.coupling), net.integrator, st.integ, z, n_steps)
    a_e, a_i = heun_trajectory(net.node, effective(net.coupling).stacked, net.dt, st.integ.S_e, st.integ.S_i,
                               z[0], jnp.zeros((n_steps, n), net.dtype))
    np.testing.assert_array_equal(np.asarray(a_e), np.asarray(S_e))
    np.testing.assert_array_equal(np.asarray(a_i), np.asarray(S_i))


def test_the_tvb_export_runs_the_plugins_dfun_even_at_the_transfer_functions_singularity():
    # a_e (W_e I_o + I_ext) - b_e = 0 exactly at S = 0, c = 0: x_e sits on H's removable singularity,
    # where TVB's stock form x / (1 - exp(-d x)) gives 0/0
    net = _net(a_e=1.0, b_e=0.5, I_o=0.25, I_ext=0.25)
    m = tvb_model(net)
    assert type(m).__name__ == "ReducedWongWangExcInhEIB"
    rng = np.random.default_rng(1)
    n = net.n_regions
    S = np.concatenate([np.zeros((2, n, 1)), rng.uniform(0, 1, (2, n, 1))], axis=2)  # mode 0 at the singularity
    c = np.concatenate([np.zeros((2, n, 1)), rng.uniform(0, 2, (2, n, 1))], axis=2)
    theirs = m.dfun(S, c)
    assert np.all(np.isfinite(theirs))
    for mode in range(2):
        ours = np.stack(eib.dfun(*(jnp.asarray(a[:, mode]) for a in (S[0], S[1], c[0], c[1])), net.node))
        np.testing.assert_allclose(theirs[..., mode], ours, rtol=1e-14, atol=0)
