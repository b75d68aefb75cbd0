"""Every tuning update rule checked in direction and size against a hand computation on an asymmetric case.

Asymmetric on purpose: with equal rows or symmetric inputs a transposed scaling (the sending region's
RMSE instead of the receiving one's), a swapped S_e / S_i or an off-by-one in a ramp gives the same
numbers and passes.  Each expected value is computed here by plain Python loops or written out.
"""

import math
from types import SimpleNamespace

import jax.numpy as jnp
import numpy as np
import pytest

import tvb_eib_plugin as eib
from tvb_eib_plugin._simulation.metrics import fc
from tvb_eib_plugin.routines.eib import EIBPhase, eib_update, fic_eib_chunk, stage_rate
from tvb_eib_plugin.routines.schedule import warmup_rate
from tvb_eib_plugin.routines.fic import fic_rate_update, fic_step, fic_update
from tvb_eib_plugin.routines.schedule import EIBStage, annealing_schedule, warmup_schedule
from tvb_eib_plugin._simulation.window import window_init

# target and simulated FC of 3 regions, symmetric as FCs are, with rows of very different error:
# d = target - sim = [[0, .5, -.1], [.5, 0, 0], [-.1, 0, 0]]
FC_T = np.array([[0.0, 0.6, 0.2], [0.6, 0.0, 0.4], [0.2, 0.4, 0.0]])
FC_S = np.array([[0.0, 0.1, 0.3], [0.1, 0.0, 0.4], [0.3, 0.4, 0.0]])


def _expected_step(fc_sim, fc_target, eta, scale=1.0):
    """eta * d_ij * scale * RMSE_i, RMSE_i = sqrt(mean_j d_ij^2) of the receiving region i (row), by loops."""
    n = len(fc_sim)
    d = [[fc_target[i][j] - fc_sim[i][j] for j in range(n)] for i in range(n)]
    rmse = [math.sqrt(sum(x * x for x in row) / n) for row in d]
    return np.array([[eta * d[i][j] * scale * rmse[i] for j in range(n)] for i in range(n)])


def test_eib_step_is_scaled_by_the_receiving_regions_rmse():
    lre, ffi = eib_update(jnp.ones((3, 3)), jnp.ones((3, 3)), jnp.asarray(FC_S), jnp.asarray(FC_T), 0.1)
    step = _expected_step(FC_S, FC_T, 0.1)
    np.testing.assert_allclose(lre, 1.0 + step, rtol=0, atol=1e-15)
    np.testing.assert_allclose(ffi, 1.0 - step, rtol=0, atol=1e-15)
    # written out: edge 2 -> 0 is scaled by region 0's RMSE sqrt(0.26 / 3), edge 0 -> 2 by region 2's sqrt(0.01 / 3)
    assert float(lre[0, 2]) == pytest.approx(1 - 0.1 * 0.1 * math.sqrt(0.26 / 3), abs=1e-15)
    assert float(lre[2, 0]) == pytest.approx(1 - 0.1 * 0.1 * math.sqrt(0.01 / 3), abs=1e-15)
    # direction: FC too low on 0-1 -> more excitation, less feedforward inhibition; too high on 0-2 -> the reverse
    assert lre[0, 1] > 1 > ffi[0, 1] and lre[0, 2] < 1 < ffi[0, 2]
    assert float(lre[1, 2]) == 1.0 and float(ffi[1, 2]) == 1.0  # no error, no change


def test_eib_mask_tune_lre_scale_and_clipping_at_zero():
    mask = jnp.asarray([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])  # only edges 1 -> 0 and 0 -> 2
    start_lre = jnp.asarray([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    start_ffi = start_lre / 10
    lre, ffi = eib_update(start_lre, start_ffi, jnp.asarray(FC_S), jnp.asarray(FC_T), 0.3, mask, rmse_scale=0.5)
    step = _expected_step(FC_S, FC_T, 0.3, 0.5) * np.asarray(mask)
    np.testing.assert_allclose(lre, np.asarray(start_lre) + step, rtol=0, atol=1e-15)
    np.testing.assert_allclose(ffi, np.asarray(start_ffi) - step, rtol=0, atol=1e-15)
    assert np.array_equal(np.asarray(lre)[np.asarray(mask) == 0], np.asarray(start_lre)[np.asarray(mask) == 0])

    lre, ffi = eib_update(start_lre, start_ffi, jnp.asarray(FC_S), jnp.asarray(FC_T), 0.3, tune="lre")
    np.testing.assert_allclose(lre, np.asarray(start_lre) + _expected_step(FC_S, FC_T, 0.3), rtol=0, atol=1e-15)
    assert np.array_equal(np.asarray(ffi), np.asarray(start_ffi))  # E-tuning leaves wFFI alone

    # a step larger than the value clips at 0 (wFFI on 0-1, wLRE on 0-2), the others move by the full step
    small = jnp.full((3, 3), 0.01)
    lre, ffi = eib_update(small, small, jnp.asarray(FC_S), jnp.asarray(FC_T), 1.0)
    step = _expected_step(FC_S, FC_T, 1.0)
    np.testing.assert_allclose(lre, np.maximum(0.01 + step, 0.0), rtol=0, atol=1e-15)
    np.testing.assert_allclose(ffi, np.maximum(0.01 - step, 0.0), rtol=0, atol=1e-15)
    assert float(ffi[0, 1]) == 0.0 and float(lre[0, 2]) == 0.0 and float(lre[0, 1]) > 0.1


def test_gating_fic_rule_by_hand():
    J = jnp.asarray([1.0, 0.8, 1.2])
    S_e, S_i = jnp.asarray([0.35, 0.25, 0.10]), jnp.asarray([0.2, 0.05, 0.4])
    # J + eta S_i (S_e - target): 1 + .5 * .2 * .1, .8 + 0, 1.2 + .5 * .4 * (-.15)
    np.testing.assert_allclose(fic_update(J, S_e, S_i, 0.5, 0.25), [1.01, 0.8, 1.17], rtol=0, atol=1e-15)


def test_rate_fic_rule_by_hand_and_kept_non_negative():
    J = jnp.asarray([1.0, 0.8, 0.002])
    r_e, r_i = jnp.asarray([6.0, 3.0, 1.0]), jnp.asarray([10.0, 20.0, 5.0])
    # J + eta r_I (r_E - target), floored at 0: 1 + .001 * 10 * 2, .8 - .001 * 20 * 1, max(0, .002 - .001 * 5 * 3)
    np.testing.assert_allclose(fic_rate_update(J, r_e, r_i, 0.001, 4.0), [1.02, 0.78, 0.0], rtol=0, atol=1e-15)


def test_fic_step_reads_the_right_population_for_each_rule():
    rec = SimpleNamespace(mean_S=jnp.asarray([[0.35, 0.25, 0.10], [0.2, 0.05, 0.4]]),
                          mean_rate=jnp.asarray([[6.0, 3.0, 1.0], [10.0, 20.0, 5.0]]))
    J = jnp.asarray([1.0, 0.8, 1.2])
    np.testing.assert_allclose(fic_step("gating", J, rec, 0.5, 0.25), [1.01, 0.8, 1.17], rtol=0, atol=1e-15)
    np.testing.assert_allclose(fic_step("rate", J, rec, 0.001, 4.0), [1.02, 0.78, 1.185], rtol=0, atol=1e-15)


def test_annealing_halves_the_rate_and_doubles_the_window_per_stage():
    s = annealing_schedule(4, [10, 20, 30, 40], eta=0.3, window=20)
    assert [(x.iterations, x.eta, x.window, x.warmup) for x in s] == [
        (10, 0.3, 20, False), (20, 0.15, 40, False), (30, 0.075, 80, False), (40, 0.0375, 160, False)]
    assert [x.iterations for x in annealing_schedule(3, 7)] == [7, 7, 7]


def test_warmup_ramps_linearly_to_eta_at_the_last_iteration():
    assert warmup_schedule(10, 0.02, 30) == (EIBStage(10, 0.02, 30, warmup=True),)
    # (k + 1) / n * eta at 0-based k: the first iteration already moves, the last reaches eta
    np.testing.assert_allclose(warmup_rate(jnp.arange(4), 4, 0.02), [0.005, 0.01, 0.015, 0.02], rtol=1e-15)
    hp = _hp(0.02, True, 4, 30)
    np.testing.assert_allclose(stage_rate(jnp.arange(4), hp), [0.005, 0.01, 0.015, 0.02], rtol=1e-15)
    np.testing.assert_allclose(stage_rate(jnp.arange(4), _hp(0.02, False, 4, 30)), [0.02] * 4)


@pytest.fixture(scope="module")
def small_net():
    """6 regions, asymmetric SC, float64; 40 TRs of BOLD so the HRF history is filled, and a target FC."""
    rng = np.random.default_rng(7)
    w = rng.uniform(0.0, 1.0, (6, 6)) * (1 - np.eye(6))
    net = eib.network_model(w / w.max(), wLRE=1.0, wFFI=1.0)
    run = eib.simulate(net, eib.initial_state(net, 3), 40 * 720.0)
    x = rng.normal(size=(6, 50))
    target = np.corrcoef(x + 0.8 * x[:1]) * (1 - np.eye(6))
    return net, run, target


def _hp(eta, warmup, iterations, window):
    f = lambda x: jnp.asarray(x, jnp.float64)  # noqa: E731
    return EIBPhase(eta=f(eta), warmup=jnp.asarray(warmup), iterations=f(iterations),
                    window=jnp.asarray(window, jnp.int32), stage=jnp.asarray(0, jnp.int32),
                    eta_fic=f(0.1), target=f(0.25), rmse_scale=f(1.0), hold=jnp.asarray(0, jnp.int32))


def test_one_fic_eib_iteration_moves_the_weights_toward_the_target_fc(small_net):
    """One iteration of the compiled chunk equals the hand computation from its own records: the window
    gains the new BOLD sample and drops the oldest, d = target - window FC, and wLRE grows by
    eta_k d_ij RMSE_i where the target is above the window's FC."""
    net, run, target = small_net
    samples = run.bold[-20:]
    window = window_init(samples, capacity=20, length=20)
    first, eta = 4, 0.5  # the 5th iteration of a 10-iteration warm-up: eta_k = 5 / 10 * 0.5
    (model, _, _), rec = fic_eib_chunk(("gating", "both", "all", "given", None), (net, run.state, window), jnp.asarray([first]),
                                       _hp(eta, True, 10, 20), jnp.asarray(target))
    fc_win = np.asarray(fc(jnp.asarray(np.concatenate([samples[1:], rec["bold"]]))))
    np.testing.assert_allclose(rec["fc_corr"][0], np.corrcoef(fc_win[np.triu_indices(6, 1)],
                                                              target[np.triu_indices(6, 1)])[0, 1], atol=1e-10)
    assert float(rec["eta_eib"][0]) == pytest.approx(0.25, abs=1e-15)
    step = _expected_step(fc_win, target, 0.25)
    new_lre, new_ffi = np.asarray(model.coupling.wLRE), np.asarray(model.coupling.wFFI)
    np.testing.assert_allclose(new_lre, np.maximum(1.0 + step, 0), rtol=0, atol=1e-10)
    np.testing.assert_allclose(new_ffi, np.maximum(1.0 - step, 0), rtol=0, atol=1e-10)
    higher = target > fc_win + 1e-3
    assert higher.sum() >= 4 and (~higher).sum() >= 10  # the case has both directions
    assert np.all(new_lre[higher] > 1) and np.all(new_ffi[higher] < 1)
    lower = target < fc_win - 1e-3
    assert np.all(new_lre[lower] < 1) and np.all(new_ffi[lower] > 1)
    # FIC in the same iteration: the gating rule on the TR's means
    expected_J = np.asarray(net.node.J_i) + 0.1 * rec["mean_S_i"][0] * (rec["mean_S_e"][0] - 0.25)
    np.testing.assert_allclose(model.node.J_i, expected_J, rtol=0, atol=1e-14)
    np.testing.assert_allclose(rec["J_i"][0], expected_J, rtol=0, atol=1e-14)



def test_rate_schedule_is_the_rate_fic_eib_steps_at():
    """eib.rate_schedule (an optax schedule) gives the eta_eib FIC+EIB records at every iteration: a warm-up
    stage then two constant stages, float64 on 6 regions; and it drives an optax optimizer as any schedule."""
    import optax

    import tvb_eib_plugin as eib

    stages = (eib.EIBStage(5, 0.02, 3, warmup=True), eib.EIBStage(4, 0.01, 3), eib.EIBStage(3, 0.004, 4))
    rng = np.random.default_rng(0)
    w = rng.uniform(0, 1, (6, 6))
    np.fill_diagonal(w, 0)
    fc_target = np.corrcoef(rng.normal(size=(6, 40)))
    net = eib.network_model(w / w.max(), dtype=jnp.float64)
    tree = eib.run_experiment(network=net, fc_target=fc_target, log=None, transient_ms=1440.0, eval_ms=7200.0,
                              eval_discard=2, routines=(eib.FIC(n_iterations=3), eib.FICEIB(schedule=stages)))
    recorded = tree["fic_eib/history"].ds["eta_eib"].values
    schedule = eib.rate_schedule(stages)
    expected = np.array([schedule(k) for k in range(12)])
    np.testing.assert_allclose(recorded, expected, rtol=1e-15)
    assert expected[0] == 0.02 / 5 and expected[4] == 0.02 and expected[5] == 0.01 and expected[-1] == 0.004
    # and it is an optax schedule: sgd at it steps by -rate * gradient
    opt = optax.sgd(schedule)
    state = opt.init(jnp.zeros(1))
    steps = []
    for _ in range(7):
        u, state = opt.update(jnp.ones(1), state)
        steps.append(-float(u[0]))
    np.testing.assert_allclose(steps, expected[:7], rtol=1e-6)
