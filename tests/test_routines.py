"""Tuning routines: registry, update rules, invariants."""

import jax.numpy as jnp
import numpy as np
import pytest

from tvb_eib_plugin._validation import InputError
from tvb.basic.neotraits.ex import TraitValueError

import tvb_eib_plugin as eib
from tvb_eib_plugin.routines import (
    FIC,
    FICEIB,
    Routine,
    StageResult,
    TuningState,
    dependency_order,
    eib_update,
    fic_update,
    get_routine,
    register,
    registered_routines,
)
from tvb_eib_plugin.routines.schedule import warmup_rate


def test_registry_lists_fic_and_fic_eib_in_dependency_order():
    assert {"fic", "fic_eib"} <= set(registered_routines())
    assert get_routine("fic_eib").depends_on == ("fic",)
    assert dependency_order(["fic_eib"]) == ["fic", "fic_eib"]
    with pytest.raises(eib.InputError, match="registered"):
        get_routine("nope")


def test_hyperparameters_have_defaults_bounds_and_docs():
    fic = FIC()
    assert (fic.eta, fic.target, fic.n_iterations) == (0.5, 0.25, 200)
    assert FIC.eta.doc and FIC.eta.lo == 0.0
    assert (FICEIB().eta_eib, FICEIB().window, FICEIB().n_iterations) == (0.005, 150, 2000)
    with pytest.raises(TraitValueError, match="within"):
        FIC(eta=-1.0)
    with pytest.raises(TraitValueError, match="within"):
        FICEIB(target=150.0)
    with pytest.raises(InputError, match="gating rule's target"):
        FICEIB(target=1.5).check_plan({})  # a rate in Hz needs rule='rate'
    FICEIB(rule="rate", target=4.0).check_plan({})
    with pytest.raises(TraitValueError):
        FIC(rule="voltage")


def test_dependency_cycles_are_refused():
    @register
    class A(Routine):
        name = "cycle_a"
        depends_on = ("cycle_b",)

    @register
    class B(Routine):
        name = "cycle_b"
        depends_on = ("cycle_a",)

    with pytest.raises(ValueError, match="cycle"):
        dependency_order(["cycle_a"])


def test_fic_update_moves_J_i_against_the_excitation_error():
    J = jnp.ones(3)
    new = fic_update(J, jnp.array([0.35, 0.25, 0.15]), jnp.array([0.1, 0.1, 0.1]), 0.5, 0.25)
    np.testing.assert_allclose(new, [1.005, 1.0, 0.995])


def test_eib_update_signs_and_bounds():
    fc_t = jnp.array([[0.0, 0.5], [0.5, 0.0]])
    fc_s = jnp.array([[0.0, 0.1], [0.1, 0.0]])  # too little FC
    lre, ffi = eib_update(jnp.ones((2, 2)), jnp.ones((2, 2)), fc_s, fc_t, 0.1)
    assert lre[0, 1] > 1 and ffi[0, 1] < 1 and lre[0, 0] == 1
    # a huge step clips at zero, never below
    lre, ffi = eib_update(jnp.ones((2, 2)), jnp.ones((2, 2)), fc_s, fc_t, 1e3)
    assert float(ffi.min()) == 0.0 and float(lre.min()) >= 0.0
    np.testing.assert_allclose(warmup_rate(jnp.arange(3), 2000, 0.005), [2.5e-6, 5e-6, 7.5e-6])


@pytest.fixture(scope="module")
def warm(dk):
    net = eib.network_from_connectome(dk, delays=False)
    state = eib.simulate(net, eib.initial_state(net, 0), 36000.0).state
    return TuningState(net, state)


def test_fic_brings_mean_excitation_to_target_and_is_reproducible(warm, dk):
    logs = []
    a = FIC(n_iterations=60).run(warm, dk.fc_target, {}, logs.append)
    b = FIC(n_iterations=60).run(warm, dk.fc_target, {}, lambda _: None)
    np.testing.assert_array_equal(a.history["J_i"], b.history["J_i"])
    assert a.history["mean_S_e"].shape == (60, dk.n_regions)
    before = a.history["mean_S_e"][0].mean()
    after = a.history["mean_S_e"][-20:].mean()
    assert before > 0.35 and abs(after - 0.25) < 0.01
    chunks = [ln for ln in logs if ln.lstrip()[:1].isdigit()]  # one progress line per 10-iteration chunk
    assert len(chunks) == 6 and chunks[0].startswith("  10/60: mean_S_e=") and "ETA" in chunks[0], logs
    assert logs[0].startswith("Running fic") and logs[1] == "  compiling..." and logs[-1] == "fic complete!", logs
    c = FIC(n_iterations=60, seed=1).run(warm, dk.fc_target, {}, lambda _: None)
    assert not np.array_equal(a.history["J_i"], c.history["J_i"])


def test_fic_eib_refuses_a_window_longer_than_fic(warm, dk):
    fic = FIC(n_iterations=20)
    with pytest.raises(eib.InputError, match="at least 150"):
        FICEIB().check_plan({"fic": fic})
    prev = {"fic": fic.run(warm, dk.fc_target, {}, lambda _: None)}
    with pytest.raises(ValueError, match="150 BOLD samples"):
        FICEIB(n_iterations=5).run(prev["fic"].state, dk.fc_target, prev, lambda _: None)


def test_fic_eib_keeps_weights_non_negative_and_records_history(warm, dk):
    prev = {"fic": FIC(n_iterations=30).run(warm, dk.fc_target, {}, lambda _: None)}
    res = FICEIB(n_iterations=50, window=30, eta_eib=0.5, log_every=25).run(
        prev["fic"].state, dk.fc_target, prev, lambda _: None)
    c = res.state.model.coupling
    assert float(c.wLRE.min()) >= 0 and float(c.wFFI.min()) >= 0
    assert float(jnp.abs(c.wLRE - 1).max()) > 0.01  # the matrices moved
    for key in ("fc_corr", "fc_rmse", "fc_mean", "mean_S_e", "mean_S_i", "bold", "J_i"):
        assert len(res.history[key]) == 50
    assert np.all(np.abs(res.history["fc_corr"]) <= 1)


def test_users_can_register_their_own_routine(dk):
    @register
    class Freeze(Routine):
        """A routine that changes nothing: shows the extension point."""

        name = "freeze"
        depends_on = ("fic",)
        summary = "keeps the parameters it is given"

        def run(self, start, target_fc, previous, log):
            log("frozen")
            return StageResult(self.name, start, {}, self.settings())

    from tvb_eib_plugin._experiments.experiment import run_experiment

    lines = []
    tree = run_experiment(routines=["freeze"], routine_settings={"fic": {"n_iterations": 10}},
                          transient_ms=7200.0, eval_ms=36000.0, log=lines.append)
    assert "frozen" in lines and list(tree.children) == ["integration", "fic", "freeze"]
    np.testing.assert_array_equal(tree["freeze"]["J_i"], tree["fic"]["J_i"])
