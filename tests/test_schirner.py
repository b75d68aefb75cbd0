"""The paper's procedure: each new option checked on its own, then the experiment end to end (short)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tvb_eib_plugin as eib
from tvb_eib_plugin._model.balloon import balloon_bold, balloon_init, balloon_update
from tvb_eib_plugin._model.coupling import effective
from tvb_eib_plugin._experiments.experiment import run_experiment
from tvb_eib_plugin._model.integrate import draw_noise, integrate
from tvb_eib_plugin._simulation.metrics import fc
from tvb_eib_plugin._model.node import dfun, firing_rates
from tvb_eib_plugin.routines import FICEIB, TuningState, annealing_schedule
from tvb_eib_plugin.routines.fic import fic_rate_update
from tvb_eib_plugin.routines.schedule import EIBStage, as_schedule
from tvb_eib_plugin._validation import InputError
from tvb_eib_plugin._simulation.window import window_fc, window_init, window_push, window_rebuild


def test_balloon_reaches_its_analytic_steady_state_and_rests_at_zero():
    cfg = balloon_bold(dt=1.0, period_ms=720.0)
    z = jnp.array([0.0, 0.1, 0.3])
    st = balloon_init(cfg, z)
    for _ in range(120):  # 86 s: ten times the slowest time constant
        st, bold = balloon_update(cfg, st, jnp.broadcast_to(z, (720, 3)))
    # steady state: s = 0, f = 1 + z / gamma, v = f^alpha, q = v (1 - (1 - rho)^(1/f)) / rho
    f = 1 + z / (1 / 0.41)
    v = f ** 0.32
    q = v * (1 - (1 - 0.34) ** (1 / f)) / 0.34
    np.testing.assert_allclose(st.f, f, rtol=1e-6)
    np.testing.assert_allclose(st.v, v, rtol=1e-6)
    np.testing.assert_allclose(st.q, q, rtol=1e-6)
    rho = 0.34
    expected = 0.02 * (7 * rho * (1 - q) + 2 * (1 - q / v) + (2 * rho - 0.2) * (1 - v))
    np.testing.assert_allclose(bold, expected, rtol=1e-6, atol=1e-12)
    assert float(bold[0]) == 0.0 and float(bold[2]) > float(bold[1]) > 0  # more drive, more signal


def test_balloon_step_of_4_ms_tracks_the_1_ms_ode():
    rng = np.random.default_rng(0)
    drive = jnp.asarray(np.repeat(rng.uniform(0.1, 0.4, (40, 1, 5)), 720, axis=1))  # a step every TR
    out = {}
    for step in (1.0, 4.0):
        cfg = balloon_bold(dt=1.0, step_ms=step)
        st = balloon_init(cfg, drive[0, 0])
        series = []
        for tr in range(40):
            st, b = balloon_update(cfg, st, drive[tr])
            series.append(b)
        out[step] = np.asarray(series)
    assert np.max(np.abs(out[4.0] - out[1.0])) < 0.01 * np.max(np.abs(out[1.0]))


def test_euler_maruyama_step_and_firing_rates_are_what_they_say(dk):
    net = eib.network_from_connectome(dk, delays=False, dt=1.0, scheme="euler", sigma_e=0.01, sigma_i=0.01)
    st = eib.initial_state(net, 0, S0=0.2)
    z = draw_noise(net.integrator, jax.random.key(1), 3, net.n_regions, net.dtype)
    ec = effective(net.coupling)
    _, (S_e, S_i, r_e, r_i) = integrate(net.node, ec, net.integrator, st.integ, z, 3, rates=True)
    c = ec.stacked @ st.integ.S_e
    f_e, f_i = dfun(st.integ.S_e, st.integ.S_i, c[0], c[1], net.node)
    np.testing.assert_allclose(S_e[0], np.clip(st.integ.S_e + 1.0 * f_e + z[0][0], 0, 1), rtol=1e-12)
    np.testing.assert_allclose(S_i[0], np.clip(st.integ.S_i + 1.0 * f_i + z[1][0], 0, 1), rtol=1e-12)
    h_e, h_i = firing_rates(st.integ.S_e, st.integ.S_i, c[0], c[1], net.node)
    np.testing.assert_allclose(r_e[0], h_e, rtol=1e-12)  # rates at the state a step starts from
    np.testing.assert_allclose(r_i[0], h_i, rtol=1e-12)
    with pytest.raises(ValueError, match="scheme"):
        eib.integrator("rk4")


def test_rate_fic_moves_toward_the_target_and_keeps_J_i_non_negative():
    J = jnp.array([1.0, 1.0, 0.001])
    new = fic_rate_update(J, rate_e=jnp.array([6.0, 2.0, 0.5]), rate_i=jnp.array([10.0, 10.0, 10.0]),
                          eta=0.001, target=4.0)
    np.testing.assert_allclose(new[:2], [1.02, 0.98])
    assert float(new[2]) == 0.0


def test_fc_window_moments_equal_the_fc_of_the_samples_through_wraps_and_length_changes():
    rng = np.random.default_rng(3)
    x = rng.normal(0.5, 0.1, (400, 6)) + rng.normal(0, 0.05, (400, 1))
    w = window_init(x[:20], capacity=64, length=30)  # fewer samples than the window: FC over all 20
    np.testing.assert_allclose(window_fc(w), fc(jnp.asarray(x[:20])), atol=1e-12)
    for k in range(20, 300):
        w = window_push(w, jnp.asarray(x[k]))
    np.testing.assert_allclose(window_fc(w), fc(jnp.asarray(x[270:300])), atol=1e-10)
    w = window_rebuild(w, 64)  # a later stage's longer window
    for k in range(300, 400):
        w = window_push(w, jnp.asarray(x[k]))
    np.testing.assert_allclose(window_fc(w), fc(jnp.asarray(x[336:400])), atol=1e-10)


def test_schedules_are_data():
    s = annealing_schedule(6, 50000)
    assert [st.eta for st in s] == [0.1, 0.05, 0.025, 0.0125, 0.00625, 0.003125]
    assert [st.window for st in s] == [150, 300, 600, 1200, 2400, 4800]
    assert as_schedule([{"iterations": 10, "eta": 0.1, "window": 20}, (5, 0.05, 40)]) == (
        EIBStage(10, 0.1, 20), EIBStage(5, 0.05, 40))
    with pytest.raises(InputError):
        EIBStage(10, -0.1, 20)


def _short_paper_model(dk):
    return eib.network_from_connectome(dk, delays=True, dt=1.0, scheme="euler", sigma_e=0.01, sigma_i=0.01,
                                       bold="balloon", bold_step_ms=4.0, dtype=jnp.float32)


def _fic_eib(**kw):
    return FICEIB(rule="rate", eta_fic=0.001, target=4.0, mask="sc", log_every=10, record_every=5,
                  schedule=annealing_schedule(3, 20, 0.1, 10), **kw)


class _Stop(Exception):
    pass


def test_a_resumed_staged_run_equals_the_unbroken_run(dk, tmp_path):
    net = _short_paper_model(dk)
    state = eib.simulate(net, eib.initial_state(net, 0), 30 * 720.0)
    start = TuningState(net, state.state).with_bold(state.bold)
    previous = {}
    whole = _fic_eib().run(start, dk.fc_target, previous, lambda _: None)

    path = str(tmp_path / "ckpt.npz")
    lines = []

    def stop_in_stage_two(line):
        lines.append(line)
        if sum("fc_corr=" in x for x in lines) == 4:  # in stage 2's second chunk; its first was checkpointed
            raise _Stop()

    with pytest.raises(_Stop):
        _fic_eib(checkpoint=path, checkpoint_every=10).run(start, dk.fc_target, previous, stop_in_stage_two)
    resumed_log = []
    resumed = _fic_eib(checkpoint=path, checkpoint_every=10).run(start, dk.fc_target, previous, resumed_log.append)
    assert any("resuming" in line and "stage 2, 10 iterations into it" in line for line in resumed_log)
    for a, b in [(whole.state.model.coupling.wLRE, resumed.state.model.coupling.wLRE),
                 (whole.state.model.coupling.wFFI, resumed.state.model.coupling.wFFI),
                 (whole.state.model.node.J_i, resumed.state.model.node.J_i),
                 (whole.state.sim.integ.S_e, resumed.state.sim.integ.S_e)]:
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for key in whole.history:
        np.testing.assert_array_equal(whole.history[key], resumed.history[key])
    assert list(whole.history["iteration"]) == [5 * k for k in range(1, 13)]
    # the mask: pairs without an SC edge keep their starting value
    no_edge = np.asarray(net.coupling.weights) == 0
    assert no_edge.any() and np.all(np.asarray(whole.state.model.coupling.wLRE)[no_edge] == 1.0)
    assert float(whole.state.model.node.J_i.min()) >= 0.0
    with pytest.raises(InputError, match="other settings"):
        _fic_eib(checkpoint=path, rmse_scale=0.5).run(start, dk.fc_target, previous, lambda _: None)


def test_the_schirner2023_experiment_and_its_variants_run_end_to_end(dk):
    short = dict(transient_ms=7200.0, eval_ms=72000.0, eval_discard=20,
                 routine_settings={"fic": {"n_iterations": 20, "log_every": 10},
                                   "fic_eib": {"schedule": annealing_schedule(2, 20, 0.1, 10), "log_every": 10,
                                               "record_every": 10},
                                   })
    lines = []  # the continuous preset: this schedule's stages are too short for the code preset's restarts
    tree = run_experiment("Schirner2023Text", log=lines.append, **short)
    settings = json.loads(tree.attrs["settings"])
    assert (settings["scheme"], settings["bold"], settings["dt"], settings["delays"]) == ("euler", "balloon", 1.0,
                                                                                         True)
    assert any("stage 2/2: 20 iterations, eta=0.05, window=20" in line for line in lines)
    assert "rate_e" in tree["fic_eib/history"]
    assert not any("(0.689" in line for line in lines)  # the reference's published numbers are not this one's

    e_tree = run_experiment("Schirner2023Text", variant="E", log=None, **short)
    assert np.all(e_tree["fic_eib"]["wFFI"].values == 1.0)
    assert not np.all(e_tree["fic_eib"]["wLRE"].values == 1.0)

    g = dict(short, routine_settings={"fic": {"n_iterations": 20, "log_every": 10},
                                      "global_coupling": {"n_values": 3, "fic_iterations": 20, "score_iterations": 30,
                                                          "discard": 5, "log_every": 10}})
    g_tree = run_experiment("Schirner2023Text", variant="global", log=None, **g)
    h = g_tree["global_coupling/history"]
    assert list(h.G.values) == [0.5, 2.25, 4.0]
    best = float(h.G[int(np.argmax(h.fc_corr.values))])
    w = g_tree["global_coupling"]
    assert np.allclose(w["wLRE"].values, best) and np.all(w["wFFI"].values == 0.0)
    with pytest.raises(InputError, match="no variant"):
        run_experiment("Schirner2023", variant="I", log=None)


def test_gradient_fitting_refuses_the_balloon_model_and_the_cli_builds_schedules(dk):
    from tvb_eib_plugin._cli.main import _overrides, _parser
    from tvb_eib_plugin.routines import GradientEIB

    net = _short_paper_model(dk)
    with pytest.raises(InputError, match="bold='hrf'"):
        GradientEIB().run(TuningState(net, eib.initial_state(net, 0)), dk.fc_target, {}, lambda _: None)
    args = _parser().parse_args(["run", "--experiment", "Schirner2023", "--variant", "E", "--stages", "3",
                                 "--stage-iterations", "500", "--checkpoint", "c.npz"])
    fic_eib = _overrides(args)["routine_settings"]["fic_eib"]
    assert fic_eib["schedule"] == annealing_schedule(3, 500) and fic_eib["checkpoint"] == "c.npz"
    args = _parser().parse_args(["run", "--stage-iterations", "100", "100", "200"])
    assert [s.iterations for s in _overrides(args)["routine_settings"]["fic_eib"]["schedule"]] == [100, 100, 200]
