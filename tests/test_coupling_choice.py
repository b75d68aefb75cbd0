"""choose_coupling: the starting G chosen for the data by a vmapped sweep with FIC at each value (issue 17).

An 8-region toy whose target FC is a twin made at a known G (spread 0: wLRE = wFFI = G on every edge, J_i by
the reference FIC), 20 minutes of BOLD; sweeps of 3 to 7 values with 100 FIC TRs and 800 scored TRs each.
"""

import json
import warnings

import numpy as np
import pytest

import tvb_eib_plugin as eib
from tvb_eib_plugin._experiments.coupling_choice import choose_coupling
from tvb_eib_plugin._io.data import Connectome
from tvb_eib_plugin._experiments.experiment import experiment_network, get_experiment, run_experiment
from tvb_eib_plugin._model.network import initial_state
from tvb_eib_plugin.routines import FIC, TuningState
from tvb_eib_plugin._cohorts.twins import twin_subject
from tvb_eib_plugin._validation import InputError, InputWarning

N = 8
VALUES = np.geomspace(0.125, 8.0, 7)  # a factor 2 apart
FAST = dict(score_trs=800, fic=FIC(n_iterations=100))


def toy() -> Connectome:
    rng = np.random.default_rng(3)
    w = np.triu(rng.uniform(0, 1, (N, N)) * (rng.uniform(size=(N, N)) < 0.6), 1)
    return Connectome(labels=tuple(f"r{i}" for i in range(N)), weights=w + w.T, fc_target=None, name="toy")


def settings(G: float):
    return get_experiment("EI_Tuning_FIC_EIB_Optimization").replace(coupling=G, transient_ms=36000.0)


def twin_at(G: float, seed: int = 0) -> Connectome:
    twin, _ = twin_subject(toy(), seed=seed, spread=0.0, experiment=settings(G), duration_ms=1200000.0,
                           fic_iterations=200)
    return twin


def start(twin: Connectome):
    """The network at the reference start (G = 1, float32) and its state after a 50-TR transient."""
    net = experiment_network(settings(1.0), twin)
    return net, eib.simulate(net, initial_state(net, 0), 36000.0).state


@pytest.fixture(scope="module")
def twin2():
    return twin_at(2.0)


@pytest.mark.parametrize("truth, criterion", [(2.0, "fc_corr"), (2.0, "fc_rmse"), (0.25, "fc_rmse")])
def test_the_sweep_picks_the_coupling_that_made_the_target(truth, criterion):
    """Before: no choice at all, every run started at G = 1 whatever the data.  On this toy the FC correlation
    is flat from G = 0.25 to 2 (so a truth at 0.25 is found by the RMSE only, which also weighs the FC's
    magnitude), and both criteria find a truth at G = 2."""
    twin = twin_at(truth)
    net, state = start(twin)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)  # the best is inside the range: no warning
        choice = choose_coupling(net, state, twin.fc_target, values=VALUES, criterion=criterion, **FAST)
    assert choice.G == pytest.approx(truth) and choice.criterion == criterion
    assert choice.J_i.shape == (N,) and np.all(np.isfinite(choice.J_i))
    assert net.dtype == np.float32  # the experiments' precision, as the sweep ran


def test_the_chosen_network_and_its_record(twin2):
    net, state = start(twin2)
    choice = choose_coupling(net, TuningState(net, state), twin2.fc_target, values=VALUES[3:6], **FAST)
    tuned = choice.apply(net)
    assert np.all(np.asarray(tuned.coupling.wLRE) == np.float32(choice.G))
    assert np.all(np.asarray(tuned.coupling.wFFI) == np.float32(choice.G))
    assert np.array_equal(np.asarray(tuned.node.J_i), choice.J_i)
    record = json.loads(json.dumps(choice.record(), allow_nan=False))  # plain, strict JSON, for provenance
    assert record["coupling_chosen"] == choice.G and record["sweep"]["G"] == list(VALUES[3:6])
    assert record["criterion"] == "fc_rmse" and len(record["sweep"]["saturated"]) == 3


@pytest.mark.parametrize("values, way", [(VALUES[:3], "further up"), (VALUES[4:], "further down")])
def test_a_best_value_at_an_end_of_the_range_warns_which_way_to_widen_it(twin2, values, way):
    """Before: a sweep (the global-coupling routine's) whose best value sat at an end of its range said nothing."""
    net, state = start(twin2)
    with pytest.warns(InputWarning, match=f"at its (upper|lower) end: the best fit may lie {way}; widen the range"):
        choose_coupling(net, state, twin2.fc_target, values=values, criterion="fc_rmse", **FAST)


def test_a_sweep_where_every_value_saturates_is_refused_with_the_fix(twin2):
    """Without FIC (eta 0) at couplings 25-100x the truth, every region is pinned at S_e = 1."""
    net, state = start(twin2)
    with pytest.raises(InputError, match=r"every coupling of the sweep G in \[50, 200\] saturates .*sweep lower "
                                         r"couplings \(values=np.geomspace\(3.125, 50, 8\)\)"):
        choose_coupling(net, state, twin2.fc_target, values=[50.0, 100.0, 200.0], score_trs=20, discard=0,
                        fic=FIC(n_iterations=1, eta=0.0))


def test_a_saturated_value_is_excluded_and_recorded_as_none(twin2):
    """The global-coupling sweep's rule, shared: a value whose activity is pinned is never the best."""
    net, state = start(twin2)
    with pytest.warns(InputWarning, match="lower end"):  # without FIC G = 1 fits best, then 2; 100 is pinned
        choice = choose_coupling(net, state, twin2.fc_target, values=[1.0, 2.0, 100.0],
                                 fic=FIC(n_iterations=1, eta=0.0), score_trs=40, discard=0)
    assert list(choice.saturated) == [False, False, True] and choice.G != 100.0
    record = json.loads(json.dumps(choice.record(), allow_nan=False))
    assert record["sweep"]["fc_corr"][2] is None and record["sweep"]["saturated"] == [False, False, True]


def test_the_choice_is_reproducible_for_a_seed(twin2):
    net, state = start(twin2)
    run = lambda seed: choose_coupling(net, state, twin2.fc_target, values=VALUES[3:6], seed=seed, **FAST)
    a, b, c = run(0), run(0), run(1)
    for name in ("fc_corr", "fc_rmse", "J_i"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert a.G == b.G and not np.array_equal(a.fc_corr, c.fc_corr)  # the seed is the sweep's noise


@pytest.mark.parametrize("kwargs, match", [
    (dict(values=[1.0, 2.0]), "at least 3 couplings"),
    (dict(values=[1.0, 0.5, 2.0]), "increasing"),
    (dict(values=[0.0, 1.0, 2.0]), "> 0"),
    (dict(criterion="corr"), "criterion must be one of"),
    (dict(score_trs=25, discard=20), "leaves 5 BOLD samples"),
    (dict(feedforward=-1.0), "feedforward"),
    (dict(fic=FIC(target=4.0)), "gating rule's target"),
])
def test_bad_arguments_name_the_fix(twin2, kwargs, match):
    net, state = start(twin2)
    with pytest.raises(InputError, match=match):
        choose_coupling(net, state, twin2.fc_target, **kwargs)


def test_a_target_of_another_size_is_refused(twin2):
    net, state = start(twin2)
    with pytest.raises(InputError, match="regions"):
        choose_coupling(net, state, np.eye(N + 1), values=VALUES[:3])


def test_coupling_auto_starts_the_routines_at_the_chosen_coupling_and_records_it():
    """Before: coupling was a number only; every run started at G = 1 (this twin was made at G = 2)."""
    twin = twin_at(2.0)
    tree = run_experiment(connectome=twin, coupling="auto", transient_ms=36000.0, eval_ms=36000.0, log=None,
                          routines=("fic",), routine_settings={"fic": {"n_iterations": 100}},
                          coupling_sweep={"values": tuple(VALUES), "score_trs": 800})
    assert tree.attrs["coupling_chosen"] == pytest.approx(2.0) and tree.attrs["criterion"] == "fc_rmse"
    assert json.loads(tree.attrs["sweep"])["G"] == list(VALUES)
    assert np.allclose(tree["integration"].wLRE.values, 2.0) and np.allclose(tree["fic"].wFFI.values, 2.0)
