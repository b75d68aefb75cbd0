"""The numerical core against independent references: TVB's HeunStochastic on a shared noise stream,
the Balloon-Windkessel ODE against its analytic flow response and a tight scipy integration, the
metrics against numpy / scipy, and the delay-path gradient against finite differences."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.stats import pearsonr
from tvb.datatypes.connectivity import Connectivity
from tvb.simulator import coupling, integrators, models, monitors, noise, simulator  # noqa: F401

import tvb_eib_plugin as eib
from tvb_eib_plugin._model.balloon import balloon_bold, balloon_init, balloon_update
from tvb_eib_plugin._model.coupling import effective
from tvb_eib_plugin._model.integrate import draw_noise, integrate
from tvb_eib_plugin._simulation.metrics import fc, fc_corr, fc_rmse, rowwise_rmse
from tvb_eib_plugin import TunedParams
from tvb_eib_plugin.routines.gradient import LossSettings, loss


# -- stochastic Heun against TVB's own HeunStochastic, both driven by one noise stream ---------------

@pytest.mark.parametrize("speed", [np.inf, 3.0], ids=["no-delays", "delays"])
def test_stochastic_heun_equals_tvb_heun_stochastic_on_shared_noise(feed_tvb_noise, speed):
    """400 steps of HeunStochastic with Additive noise on S_e and S_i, 5 regions, asymmetric SC,
    per-region J_i: TVB's Simulator and the plugin agree to 1e-7 when both use one noise sequence.
    The noise is large enough that both clamp S at 0 (TVB clamps the predictor and the corrector)."""
    rng = np.random.default_rng(2)
    n, dt, steps, sigma = 5, 1.0, 400, np.array([0.01, 0.01])
    tl = rng.uniform(5, 40, (n, n))
    conn = Connectivity(weights=rng.uniform(0, 1, (n, n)) * (1 - np.eye(n)), tract_lengths=(tl + tl.T) / 2,
                        region_labels=np.array([f"r{i}" for i in range(n)]), centres=np.zeros((n, 3)),
                        speed=np.array([speed]))
    conn.configure()
    horizon = int(np.rint(conn.tract_lengths / speed / dt).max()) + 1
    model = models.ReducedWongWangExcInh(G=np.array([1.3]), lamda=np.array([0.7]), J_i=rng.uniform(0.8, 1.2, n))
    sim = simulator.Simulator(
        connectivity=conn, model=model, coupling=coupling.Linear(a=np.array([1.0])),
        integrator=integrators.HeunStochastic(dt=dt, noise=noise.Additive(nsig=sigma**2 / 2)),
        monitors=(monitors.Raw(),), conduction_speed=speed, initial_conditions=np.full((horizon, 2, n, 1), 0.001),
        simulation_length=steps * dt)
    sim.configure()
    net = eib.network_from_simulator(sim, normalise="none")
    assert net.coupling.horizon == horizon and (horizon > 1) == np.isfinite(speed)
    np.testing.assert_allclose(np.asarray(net.integrator.sigma).ravel(), sigma, rtol=1e-12)

    z = draw_noise(net.integrator, jax.random.key(0), steps, n, jnp.float64)
    start = eib.initial_state(net, 0, S0=0.001)
    _, (S_e, S_i) = integrate(net.node, effective(net.coupling), net.integrator, start.integ, z, steps)
    ours = np.stack([np.asarray(S_e), np.asarray(S_i)], axis=1)

    calls = feed_tvb_noise(z, sigma)
    (_, y), = sim.run()
    assert len(calls) == steps  # TVB drew exactly our sequence, once per step
    err = np.abs(ours - y[..., 0]).max()
    print(f"speed={speed}: max |plugin - TVB| = {err:.1e}")
    assert err < 1e-7  # TVB keeps its history in float32: differences of 1e-8 remain
    assert (y[:, :, :, 0] == 0).any() and np.ptp(y[:, 0]) > 0.3  # clamped at 0, and a trajectory that moved


# -- Balloon-Windkessel against independent references ------------------------------------------------

#: Schirner et al. (2023) / Deco et al. (2013): tau_s = 0.65 s (kappa = 1/tau_s), tau_f = 0.41 s
#: (gamma = 1/tau_f), tau_0 = 0.98 s, alpha = 0.32, rho = 0.34, V_0 = 0.02; k1 = 7 rho, k2 = 2, k3 = 2 rho - 0.2
TAU_S, TAU_F, TAU_0, ALPHA, RHO, V0 = 0.65, 0.41, 0.98, 0.32, 0.34, 0.02


def _balloon_run(drive_per_tr):
    """The plugin's Balloon-Windkessel (dt = 1 ms, TR 720 ms) driven TR by TR; (f - 1, BOLD) per TR."""
    cfg = balloon_bold(dt=1.0, period_ms=720.0)
    st = balloon_init(cfg, jnp.zeros(1))
    update = jax.jit(balloon_update)
    flow, bold = [], []
    for drive in drive_per_tr:
        st, b = update(cfg, st, jnp.asarray(drive, jnp.float64).reshape(720, 1))
        flow.append(float(st.f[0]) - 1.0)
        bold.append(float(b[0]))
    return np.array(flow), np.array(bold)


def test_balloon_flow_impulse_response_is_the_damped_oscillator():
    """s and f are linear: f'' + kappa f' + gamma (f - 1) = z, so an impulse of area a gives
    f - 1 = a exp(-kappa t / 2) sin(w t) / w, w = sqrt(gamma - kappa^2 / 4).  The impulse is z = 1 for
    the first 1 ms Euler step (area 1e-3 s); forward Euler at 1 ms is within 0.1% of the exact curve."""
    drives = [np.zeros(720) for _ in range(20)]
    drives[0][0] = 1.0
    flow, _ = _balloon_run(drives)
    kappa, gamma = 1 / TAU_S, 1 / TAU_F
    w = math.sqrt(gamma - kappa**2 / 4)
    t = 0.72 * np.arange(1, 21) - 0.001  # the impulse ends after the first step
    exact = 1e-3 * np.exp(-kappa * t / 2) * np.sin(w * t) / w
    err = np.abs(flow - exact).max() / np.abs(exact).max()
    print(f"flow impulse response: max error {err:.1e} of its peak")
    assert err < 5e-3


def test_balloon_bold_equals_a_tight_integration_of_the_published_equations():
    """A 1.44 s block of z = 0.3 from rest, then 20 s of relaxation: the BOLD at every TR agrees with
    scipy's RK45 at rtol 1e-10 on the equations with the published constants, written out here."""

    def rhs(t, y):
        s, f, v, q = y
        z = 0.3 if t < 1.44 else 0.0
        return [z - s / TAU_S - (f - 1) / TAU_F, s, (f - v ** (1 / ALPHA)) / TAU_0,
                (f * (1 - (1 - RHO) ** (1 / f)) / RHO - v ** (1 / ALPHA) * q / v) / TAU_0]

    times = 0.72 * np.arange(1, 31)
    first = solve_ivp(rhs, (0, 1.44), [0, 1, 1, 1], rtol=1e-10, atol=1e-12, dense_output=True)
    rest = solve_ivp(rhs, (1.44, times[-1]), first.y[:, -1], rtol=1e-10, atol=1e-12, dense_output=True)
    s, f, v, q = np.array([first.sol(t) if t <= 1.44 else rest.sol(t) for t in times]).T
    exact = V0 * (7 * RHO * (1 - q) + 2 * (1 - q / v) + (2 * RHO - 0.2) * (1 - v))
    _, bold = _balloon_run([np.full(720, 0.3 if k < 2 else 0.0) for k in range(30)])
    err = np.abs(bold - exact).max() / np.abs(exact).max()
    print(f"BOLD: max error {err:.1e} of its peak {np.abs(exact).max():.2e}")
    assert err < 5e-3
    assert exact.min() < 0 < exact.max()  # the undershoot is in the compared range


# -- metrics against numpy and scipy ----------------------------------------------------------------

def test_fc_and_fit_metrics_equal_numpy_and_scipy():
    rng = np.random.default_rng(11)
    bold = rng.normal(size=(60, 7)) + rng.normal(size=(60, 1)) * np.linspace(0, 2, 7)
    ours = np.asarray(fc(jnp.asarray(bold)))
    np.testing.assert_allclose(ours, np.corrcoef(bold.T) * (1 - np.eye(7)), rtol=0, atol=1e-13)
    const = bold.copy()
    const[:, 3] = 0.5
    got = np.asarray(fc(jnp.asarray(const)))
    assert np.all(got[3] == 0) and np.all(got[:, 3] == 0) and np.all(np.isfinite(got))

    target = np.corrcoef(rng.normal(size=(7, 30))) * (1 - np.eye(7))
    iu = np.triu_indices(7, 1)
    assert float(fc_corr(jnp.asarray(ours), jnp.asarray(target))) == pytest.approx(
        pearsonr(ours[iu], target[iu])[0], abs=1e-13)
    assert float(fc_corr(jnp.asarray(ours), jnp.asarray(target), "all")) == pytest.approx(
        pearsonr(ours.ravel(), target.ravel())[0], abs=1e-13)
    # RMSE over every entry, and per row (region i against all j): on asymmetric matrices rows and columns differ
    a, b = rng.normal(size=(7, 7)), rng.normal(size=(7, 7))
    assert float(fc_rmse(jnp.asarray(a), jnp.asarray(b))) == pytest.approx(np.sqrt(np.mean((a - b) ** 2)), abs=1e-14)
    rows = [math.sqrt(sum((b[i, j] - a[i, j]) ** 2 for j in range(7)) / 7) for i in range(7)]
    np.testing.assert_allclose(rowwise_rmse(jnp.asarray(a), jnp.asarray(b)), rows, rtol=1e-13)


# -- the delay path's gradient against finite differences ----------------------------------------------

def test_gradient_through_delays_matches_finite_differences():
    """With delays the loss is differentiated by checkpointed autodiff (the hand-written adjoint has
    no delays): 6 regions, delays of 1 to 8 steps, 14 TRs with the noise fixed; central differences
    of h = 1e-6 agree to 1e-5 relative."""
    rng = np.random.default_rng(5)
    n = 6
    net = eib.network_model(rng.uniform(0, 1, (n, n)) * (1 - np.eye(n)), delays_ms=rng.uniform(4, 30, (n, n)))
    assert net.coupling.horizon > 5
    state = eib.simulate(net, eib.initial_state(net, 1), 20 * 720.0).state
    x = rng.normal(size=(n, 40))
    target = jnp.asarray(np.corrcoef(x + x[:1]) * (1 - np.eye(n)))
    ls = LossSettings(n_tr=14, discard=2, activity_steps=200)
    p = net.tuned
    p = TunedParams(p.J_i * rng.uniform(0.9, 1.1, n), p.wLRE * rng.uniform(0.7, 1.3, (n, n)),
                  p.wFFI * rng.uniform(0.7, 1.3, (n, n)))
    f = jax.jit(lambda p: loss(p, net, state, target, ls)[0])
    g = jax.jit(jax.grad(lambda p: loss(p, net, state, target, ls)[0]))(p)
    h = 1e-6
    for name, idx in [("J_i", (2,)), ("wLRE", (0, 3)), ("wLRE", (3, 0)), ("wFFI", (4, 1))]:
        base = getattr(p, name)
        plus, minus = (dataclasses.replace(p, **{name: base.at[idx].add(s * h)}) for s in (1, -1))
        fd = (float(f(plus)) - float(f(minus))) / (2 * h)
        ad = float(getattr(g, name)[idx])
        print(f"{name}{idx}: autodiff {ad:.9e}, finite difference {fd:.9e}")
        assert abs(ad - fd) <= 1e-5 * max(abs(fd), 1e-3), (name, idx, ad, fd)


@pytest.mark.parametrize("delays", [False, True], ids=["no-delays-adjoint", "delays-autodiff"])
def test_the_gradient_loss_simulates_what_simulate_does(delays):
    """The loss's own forward pass (the hand-written adjoint's Heun without delays, scan with delays)
    gives the S_e trajectory of :func:`simulate` from the same state and key, and its terms are the
    FC RMSE of that run's BOLD and the squared distance of the last steps' mean S_e from the target."""
    from tvb_eib_plugin.routines.gradient import loss_terms, simulate_S_e

    rng = np.random.default_rng(8)
    n = 6
    net = eib.network_model(rng.uniform(0, 1, (n, n)) * (1 - np.eye(n)),
                            delays_ms=rng.uniform(4, 30, (n, n)) if delays else None)
    state = eib.simulate(net, eib.initial_state(net, 2), 10 * 720.0).state
    run = eib.simulate(net, state, 12 * 720.0, record_trace=True)
    S_e = np.asarray(simulate_S_e(net, state, 12))
    np.testing.assert_allclose(S_e, run.S_e_trace, rtol=0, atol=1e-12)
    target = np.corrcoef(rng.normal(size=(n, 30))) * (1 - np.eye(n))
    ls = LossSettings(n_tr=12, discard=2, activity_steps=300, activity_weight=0.5, target=0.3)
    terms = {k: float(v) for k, v in loss_terms(net.tuned, net, state, jnp.asarray(target), ls).items()}
    sim_fc = np.corrcoef(run.bold[2:].T) * (1 - np.eye(n))
    assert terms["fc_rmse"] == pytest.approx(np.sqrt(np.mean((sim_fc - target) ** 2)), abs=1e-9)
    assert terms["activity"] == pytest.approx(np.mean((run.S_e_trace[-300:].mean(axis=0) - 0.3) ** 2), abs=1e-12)
    assert terms["loss"] == pytest.approx(terms["fc_rmse"] + 0.5 * terms["activity"], abs=1e-12)


def test_noise_on_both_populations_is_independent_with_each_ones_sigma():
    """Noise on S_e and S_i (the paper's setting) comes from independent draws, each with its own
    sigma sqrt(dt): 160 000 draws per population, their correlation within 4 standard errors of 0."""
    h = eib.integrator("euler", dt=1.0, sigma_e=0.01, sigma_i=0.03)
    z_e, z_i = (np.asarray(z) for z in draw_noise(h, jax.random.key(5), 20000, 8, jnp.float64))
    assert abs(z_e.std() / 0.01 - 1) < 0.01 and abs(z_i.std() / 0.03 - 1) < 0.01
    assert abs(np.corrcoef(z_e.ravel(), z_i.ravel())[0, 1]) < 4 / np.sqrt(z_e.size)
