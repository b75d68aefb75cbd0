"""The paper's fit as the authors ran it (issue 16, part B): per-stage restarts with the EIB-free lead-in,
the in-loop fit measure beside the fresh one, both E-tuning readings, and the two presets.

Small networks (6 regions of dk_average, TR 100 ms) and a few dozen TRs each: fast.
"""

from __future__ import annotations

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tvb_eib_plugin as eib
from tvb_eib_plugin._experiments.experiment import configure_routines, experiment_network, get_experiment, run_experiment
from tvb_eib_plugin._simulation.metrics import fc, fc_corr, fc_rmse
from tvb_eib_plugin._model.network import initial_state
from tvb_eib_plugin.routines import FICEIB, TuningState, annealing_schedule
from tvb_eib_plugin.routines.driver import compiled_chunk
from tvb_eib_plugin.routines.eib import fic_eib_chunk
from tvb_eib_plugin.routines.schedule import EIBStage
from tvb_eib_plugin._validation import InputError
from tvb_eib_plugin._simulation.window import window_samples

N = 6
TR = 100.0


@pytest.fixture(scope="module")
def small(dk):
    """The first 6 regions of dk_average (SC, tract lengths, target FC)."""
    cut = slice(0, N)
    fc_t = np.asarray(dk.fc_target)[cut, cut]
    return dataclasses.replace(dk, labels=dk.labels[:N], weights=np.asarray(dk.weights)[cut, cut],
                               tract_lengths=np.asarray(dk.tract_lengths)[cut, cut], fc_target=fc_t, name="dk6")


def _net(con, sigma=0.01):
    """The code-following model: sqrt_max10 SC, the program's delays and Balloon order, Euler at 1 ms."""
    return eib.network_from_connectome(con, normalise="sqrt_max10", delays=True, dt=1.0, scheme="euler",
                                       sigma_e=sigma, sigma_i=sigma, bold="balloon", tr_ms=TR,
                                       delay_convention="schirner2023_c", bold_order="sequential")


def _routine(**kw):
    settings = dict(rule="rate", eta_fic=0.001, target=4.0, mask="sc", log_every=10, record_every=1,
                    restart="per_stage", lead_in=5, rmse_scale=0.5, rmse_diagonal="one_but_last",
                    schedule=(EIBStage(20, 0.1, 5), EIBStage(20, 0.05, 6)))
    settings.update(kw)
    return FICEIB(**settings)


def _start(net, trs=10):
    sim = eib.simulate(net, eib.initial_state(net, 0), trs * TR)
    return TuningState(net, sim.state).with_bold(sim.bold)


def test_a_restart_puts_the_state_at_rest_and_keeps_the_noise_key_and_the_weights(small):
    net = _net(small)
    routine = _routine()
    start = _start(net)
    carry = (net.with_tuned(wLRE=2.0 * net.coupling.wLRE), start.sim, routine.init(start, small.fc_target)[2])
    model, sim, window = routine.phase_start(carry, 1)
    rest = initial_state(net, start.sim.key)  # S_e = S_i = 0.001, history 0.001, Balloon at rest
    for got, want in zip(jax.tree_util.tree_leaves((sim.integ, sim.bold)), jax.tree_util.tree_leaves((rest.integ,
                                                                                                      rest.bold))):
        np.testing.assert_array_equal(got, want)
    assert float(jnp.max(jnp.abs(start.sim.integ.S_e - 0.001))) > 0.01  # it was not at rest before
    assert np.all(np.asarray(sim.integ.history) == 0.001)
    np.testing.assert_array_equal(jax.random.key_data(sim.key), jax.random.key_data(start.sim.key))
    assert model is carry[0]  # weights and J_i carry on
    assert int(window.count) == 0 and int(window.length) == 6 and window.capacity == 6
    # the continuous run leaves the carry as it is
    assert _routine(restart="continuous").phase_start(carry, 1) is carry


def test_eib_is_held_during_window_plus_lead_in_and_fic_runs(small):
    net = _net(small)
    routine = _routine()
    start = _start(net)
    carry = routine.phase_start(routine.init(start, small.fc_target), 0)
    hp = routine.phases(net.dtype)[0].params
    config = routine.config(net)
    target = jnp.asarray(small.fc_target)
    chunk = compiled_chunk(fic_eib_chunk, False)  # the driver's own (compiled once for this test's run too)
    held, rec = chunk(config, carry, jnp.arange(10, dtype=jnp.int32), hp, target)  # window 5 + lead-in 5
    assert np.all(np.asarray(rec["eta_eib"]) == 0.0)
    np.testing.assert_array_equal(held[0].coupling.wLRE, net.coupling.wLRE)
    np.testing.assert_array_equal(held[0].coupling.wFFI, net.coupling.wFFI)
    assert not np.array_equal(held[0].node.J_i, net.node.J_i)  # FIC runs through the lead-in
    after, rec = chunk(config, held, jnp.arange(10, 20, dtype=jnp.int32), hp, target)
    assert np.all(np.asarray(rec["eta_eib"]) == pytest.approx(0.1))
    assert not np.array_equal(after[0].coupling.wLRE, net.coupling.wLRE)
    # through the driver: each stage's first window + lead_in TRs hold EIB, the rest tune
    result = routine.run(start, small.fc_target, {}, lambda _: None)
    eta, stage = result.history["eta_eib"], result.history["stage"]
    for s, hold in ((0, 10), (1, 11)):
        rates = eta[stage == s]
        assert np.all(rates[:hold] == 0.0) and np.all(rates[hold:] > 0.0), (s, rates)


def test_each_stage_starts_from_rest_through_the_driver(small):
    """Noise-free, nothing tuned (eta 0, eta_fic 0): restarted stages repeat the same TRs exactly;
    a continuous run does not."""
    net = _net(small, sigma=0.0)
    start = _start(net)
    frozen = dict(eta_fic=0.0, schedule=(EIBStage(12, 0.0, 5), EIBStage(12, 0.0, 5)))
    restarted = _routine(**frozen).run(start, small.fc_target, {}, lambda _: None).history
    first, second = (restarted["mean_S_e"][restarted["stage"] == s] for s in (0, 1))
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(restarted["bold"][:12], restarted["bold"][12:])
    continuous = _routine(restart="continuous", **frozen).run(start, small.fc_target, {}, lambda _: None).history
    assert not np.allclose(continuous["mean_S_e"][:12], continuous["mean_S_e"][12:])


def test_a_resumed_restarting_run_equals_the_unbroken_run(small, tmp_path):
    net = _net(small)
    start = _start(net)
    whole = _routine().run(start, small.fc_target, {}, lambda _: None)
    path = str(tmp_path / "ckpt.npz")

    class Stop(Exception):
        pass

    # stopped in stage 2's first chunk (last checkpoint: stage 1's end, before the restart: resuming restarts),
    # then in its second (last checkpoint: 10 TRs into stage 2, after the restart: resuming must not restart)
    for every, chunks, where in ((20, 3, "stage 2, 0 iterations"), (10, 4, "stage 2, 10 iterations")):
        lines = []

        def stop(line):
            lines.append(line)
            if sum("fc_corr=" in x for x in lines) == chunks:
                raise Stop()

        with pytest.raises(Stop):
            _routine(checkpoint=path, checkpoint_every=every).run(start, small.fc_target, {}, stop)
        log = []
        resumed = _routine(checkpoint=path, checkpoint_every=every).run(start, small.fc_target, {}, log.append)
        assert any(where in line for line in log), log
        np.testing.assert_array_equal(whole.state.model.coupling.wLRE, resumed.state.model.coupling.wLRE)
        np.testing.assert_array_equal(whole.state.sim.integ.S_e, resumed.state.sim.integ.S_e)
        for key in whole.history:
            np.testing.assert_array_equal(whole.history[key], resumed.history[key])
        os.remove(path)


def test_the_in_loop_fit_is_the_fit_of_the_final_window(small):
    net = _net(small)
    start = _start(net)
    result = _routine().run(start, small.fc_target, {}, lambda _: None)
    samples = np.asarray(window_samples(result.state.window))[-6:]  # the last stage's window: 6 samples
    by_hand = fc(jnp.asarray(samples))
    assert float(result.in_loop["fc_corr"]) == pytest.approx(float(fc_corr(by_hand, small.fc_target)), abs=1e-9)
    assert float(result.in_loop["fc_rmse"]) == pytest.approx(float(fc_rmse(by_hand, small.fc_target)), abs=1e-9)
    # and it is what the last record of the history saw (the weights move after the window is measured; the
    # compiled scan and this eager call round the same moments differently, by ~1e-13)
    assert float(result.in_loop["fc_corr"]) == pytest.approx(float(result.history["fc_corr"][-1]), abs=1e-9)


def _experiment_short(**kw):
    settings = dict(transient_ms=2000.0, eval_ms=30 * TR, eval_discard=5, tr_ms=TR, precision="float64",
                    routine_settings={"fic": {"n_iterations": 10, "log_every": 10},
                                      "fic_eib": {"schedule": annealing_schedule(2, 20, 0.1, 5), "lead_in": 5,
                                                  "log_every": 10, "record_every": 10}})
    settings.update(kw)
    return settings


def test_the_results_and_the_table_carry_both_fit_measures(small):
    lines = []
    tree = run_experiment("Schirner2023", connectome=small, log=lines.append, **_experiment_short())
    node = tree["fic_eib"]
    for name in ("fc_corr_in_loop", "fc_rmse_in_loop"):
        assert node[name].attrs["units"] == "1" and node[name].attrs["long_name"].startswith("in-loop window")
    assert "upper triangle" in node["fc_rmse_in_loop"].attrs["description"]  # says whose RMSE convention
    assert "fc_corr_in_loop" not in tree["fic"]  # FIC has no window fit of its own
    row = next(line for line in reversed(lines) if line.strip().startswith("fic_eib "))  # the closing table's
    assert f"{float(node.fc_corr_in_loop):.4f}" in row and f"{float(tree['fic_eib/evaluation'].fc_corr):.4f}" in row
    assert any("in-loop r" in line for line in lines)
    settings = json.loads(tree.attrs["settings"])
    assert (settings["normalise"], settings["delay_convention"], settings["bold_order"]) == (
        "sqrt_max10", "schirner2023_c", "sequential")
    assert json.loads(node.attrs["settings"])["restart"] == "per_stage"


def test_the_presets_and_their_variants_build(dk):
    code, text = get_experiment("Schirner2023"), get_experiment("Schirner2023Text")
    assert (text.normalise, text.delay_convention, text.bold_order, text.coupling) == ("max", "tvb", "simultaneous",
                                                                                      1.0)
    assert text.routine_settings["fic_eib"].get("restart", "continuous") == "continuous"
    eib_code = code.routine_settings["fic_eib"]
    assert (eib_code["restart"], eib_code["lead_in"], eib_code["rmse_diagonal"]) == ("per_stage", 50, "one_but_last")
    assert eib_code["rmse_scale"] == pytest.approx(0.5 * code.coupling)  # the code's 1/2, its step relative to G
    for preset in (code, text):
        for variant in ("EI", "E", "E_noFFI", "global"):
            settings = preset.with_variant(variant)
            routines = {r.name: r for r in configure_routines(settings)}
            net = experiment_network(settings, dk)
            if variant in ("E", "E_noFFI"):
                assert routines["fic_eib"].tune == "lre"
            ffi = np.asarray(net.coupling.wFFI)
            assert np.all(ffi == (0.0 if variant == "E_noFFI" else settings.coupling)), (preset.name, variant)


def test_a_restarted_stage_too_short_to_tune_is_refused():
    with pytest.raises(InputError, match=r"stage 6 restarts .* window \(4800\) \+ lead_in \(50\) TRs, but runs "
                                         r"4000.*more than 4850 iterations"):
        configure_routines(get_experiment("Schirner2023").replace(
            routine_settings={"fic_eib": {"schedule": annealing_schedule(7, 4000)}}))
    configure_routines(get_experiment("Schirner2023Text").replace(  # one continuous run: the window just grows
        routine_settings={"fic_eib": {"schedule": annealing_schedule(7, 4000)}}))


def test_model_settings_beside_a_given_network_are_refused(small):
    """A network passed in carries its own wFFI, delays and Balloon order: the settings would be ignored."""
    net = _net(small)
    for setting in (dict(feedforward=0.0), dict(delay_convention="tvb"), dict(bold_order="simultaneous")):
        with pytest.raises(InputError, match="come from the network you pass"):
            run_experiment("Schirner2023", network=net, fc_target=small.fc_target, log=None, **setting)
