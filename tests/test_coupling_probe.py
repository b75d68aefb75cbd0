"""The coupling chosen after a short FIC+EIB at each G, and the fast preset that chooses it by default (issue 17).

An 8-region toy with the fast preset's model (sqrt(W) / max / 10 SC, rate FIC, Balloon BOLD, Heun dt 4; without
its delays, to keep compilation short: the sweep runs whatever network the experiment builds); sweeps of 3 values
with a few dozen TRs each: the mechanics, not the fit (benchmarks/bench_coupling_choice.py ``fast`` and fast_fit.py's table measure the fit).
"""

import json

import numpy as np
import pytest

import tvb_eib_plugin as eib
from tvb_eib_plugin._io.data import Connectome
from tvb_eib_plugin._experiments.experiment import experiment_network, get_experiment, run_experiment
from tvb_eib_plugin._model.network import initial_state
from tvb_eib_plugin._validation import InputError

# the private pieces this file checks, in one place
from tvb_eib_plugin.routines.eib_sweep import eib_at_each
from tvb_eib_plugin.routines.global_coupling import fic_at_each
from tvb_eib_plugin.routines.registry import stage_key

N = 8
pytestmark = pytest.mark.filterwarnings("ignore:the best coupling of the sweep")  # a toy's best at an end: no news
FAST = get_experiment("Schirner2023Fast")
TINY_EIB_SETTINGS = dict(rule="rate", target=4.0, eta_fic=0.001, mask="sc", rmse_diagonal="one_but_last",
                         schedule=eib.annealing_schedule(1, 40, window=10))
TINY_EIB = eib.FICEIB(**TINY_EIB_SETTINGS)


def tiny_eib(**changes):
    return eib.FICEIB(**dict(TINY_EIB_SETTINGS, **changes))
SWEEP = dict(values=(1.0, 2.5, 6.0), fic=eib.FIC(rule="rate", target=4.0, eta=0.001, n_iterations=10),
             eib=TINY_EIB, eib_trs=30, score_trs=30, discard=5, log_every=10)


def toy() -> Connectome:
    rng = np.random.default_rng(5)
    w = np.triu(rng.uniform(0, 1, (N, N)) * (rng.uniform(size=(N, N)) < 0.7), 1)
    lengths = np.triu(rng.uniform(20, 120, (N, N)), 1)
    fc = np.corrcoef(rng.standard_normal((N, 40)))
    return Connectome(labels=tuple(f"r{i}" for i in range(N)), weights=w + w.T, tract_lengths=lengths + lengths.T,
                      fc_target=fc, name="toy")


@pytest.fixture(scope="module")
def start():
    con = toy()
    net = experiment_network(FAST.replace(coupling=1.0, delays=False), con)
    return con, net, eib.simulate(net, initial_state(net, 0), 20 * 720.0).state


def test_the_fast_preset_chooses_its_coupling_after_a_short_tuning_the_others_keep_theirs():
    """Before: Schirner2023Fast ran at the fixed G = 2.5 (auto, FIC alone, picked G = 4 on dk_average: 0.486)."""
    assert FAST.coupling == "auto" and FAST.coupling_sweep["eib_trs"] > FAST.pipeline()[-1].stages()[0].window
    assert get_experiment("Schirner2023").coupling == 2.5 and get_experiment("Schirner2023").coupling_sweep == {}
    assert get_experiment("EI_Tuning_FIC_EIB_Optimization").coupling == 1.0
    # a change of the sweep's values keeps the preset's other options (merged, as routine_settings are)
    assert FAST.replace(coupling_sweep={"values": (1.0, 2.0, 4.0)}).coupling_sweep == dict(
        FAST.coupling_sweep, values=(1.0, 2.0, 4.0))


def test_the_start_keeps_the_J_i_of_fic_alone_and_the_score_sees_the_tuning(start):
    con, net, state = start
    alone = eib.choose_coupling(net, state, con.fc_target, **dict(SWEEP, eib_trs=0))
    tuned = eib.choose_coupling(net, state, con.fc_target, **SWEEP)
    # the chosen start is FIC's J_i at wLRE = wFFI = G (the sweep's noise), where tuning starts; not the J_i after
    # the short EIB, whose weights are thrown away
    fic_only, _, _ = fic_at_each(net, state.with_key(stage_key(0, "coupling_choice")), tuned.values, feedforward=1.0,
                                 rule="rate", eta=0.001, target=4.0, fic_iterations=10, log_every=10,
                                 log=lambda _: None, name="check")
    assert np.array_equal(tuned.J_i, np.asarray(fic_only.node.J_i[list(tuned.values).index(tuned.G)]))
    assert not np.allclose(alone.fc_rmse, tuned.fc_rmse)  # the EIB moved the weights before the score
    record = json.loads(json.dumps(tuned.record(), allow_nan=False))
    assert record["eib_trs"] == 30 and record["rmse_per_coupling"] == 0.0 and alone.record()["eib_trs"] == 0


def test_the_row_rmse_scale_can_follow_each_coupling(start):
    """rmse_per_coupling: the member at G takes the step of a routine whose rmse_scale is that times G."""
    con, net, state = start
    quiet = dict(log_every=10, log=lambda _: None, name="check")
    fic = dict(feedforward=1.0, rule="rate", eta=0.001, target=4.0, fic_iterations=10, **quiet)

    def tuned(G, routine, per):
        models, sims, _ = fic_at_each(net, state, G, **fic)
        return eib_at_each(models, sims, con.fc_target, G, routine, iterations=30, rmse_per_coupling=per,
                           **quiet)[0].coupling.wLRE

    both = tuned([1.0, 3.0], TINY_EIB, 0.5)
    for k, G in enumerate((1.0, 3.0)):
        np.testing.assert_allclose(both[k], tuned([G], tiny_eib(rmse_scale=0.5 * G), 0.0)[0], rtol=1e-6)
    assert not np.allclose(both[1], tuned([3.0], TINY_EIB, 0.0)[0], rtol=1e-3)  # the routine's own 1.0 differs


@pytest.mark.parametrize("kwargs, match", [
    (dict(eib_trs=10), "eib_trs=10 TRs of FIC\\+EIB hold EIB while the first window \\(10 TRs\\) fills"),
    (dict(eib=eib.FIC()), "eib must be a FICEIB routine"),
    (dict(rmse_per_coupling=-1.0), "rmse_per_coupling must be finite and >= 0"),
    (dict(eib=tiny_eib(rule="gating", target=4.0)), "gating rule's target"),
])
def test_bad_probe_arguments_name_the_fix(start, kwargs, match):
    con, net, state = start
    with pytest.raises(InputError, match=match):
        eib.choose_coupling(net, state, con.fc_target, **dict(SWEEP, **kwargs))


def test_a_twin_needs_a_number_for_its_truths_coupling():
    """Before: the fast preset's coupling was 2.5 and twins were drawn around it; "auto" is no truth."""
    with pytest.raises(InputError, match=r"coupling='auto' .* e.g. twin_subject\(..., coupling=2.5\)"):
        eib.twin_cohort(toy(), 1, experiment="Schirner2023Fast", duration_ms=7200.0)


#: the fast preset cut to a few TRs everywhere, on the toy; the sweep of 3 values, 30 TRs of FIC+EIB
TINY_RUN = dict(transient_ms=10 * 720.0, eval_ms=30 * 720.0, eval_discard=5, delays=False,
                coupling_sweep={"values": (1.0, 2.5, 6.0), "eib_trs": 30, "score_trs": 30, "discard": 5,
                                "log_every": 10},
                routine_settings={"fic": {"n_iterations": 10, "log_every": 10},
                                  "fic_eib": {"schedule": eib.annealing_schedule(2, 20, window=5), "lead_in": 2,
                                              "log_every": 10, "record_every": 10}})


@pytest.fixture(scope="module")
def alone():
    """The tiny fast preset, coupling chosen by its default "auto", on the toy at seed 1."""
    return run_experiment("Schirner2023Fast", connectome=toy(), log=None, seed=1, **TINY_RUN)


def test_the_fast_preset_runs_with_its_chosen_coupling_records_it_and_counts_its_cost(alone):
    G = alone.attrs["coupling_chosen"]
    assert G in (1.0, 2.5, 6.0) and alone.attrs["eib_trs"] == 30 and alone.attrs["eib_rate"] == 0.0125
    assert np.allclose(alone["integration"].wLRE.values, G) and np.allclose(alone["integration"].wFFI.values, G)
    assert json.loads(alone.attrs["settings"])["coupling_sweep"]["eib_trs"] == 30  # the preset's options, merged
    # cost: 10 FIC + 40 EIB TRs of tuning, and the sweep's 3 x (10 FIC + 30 FIC+EIB + 30 scored) TRs
    np.testing.assert_allclose(alone.attrs["coupling_choice_simulated_h"], 3 * 70 * 720.0 / 3.6e6)
    np.testing.assert_allclose(alone.attrs["simulated_tuning_h"], (50 + 3 * 70) * 720.0 / 3.6e6)


def test_a_cohort_chooses_each_members_coupling_as_its_run_alone_does(alone):
    """Before: coupling='auto' in a cohort was refused (and the fast preset's default is auto)."""
    tree = eib.tune_cohort("Schirner2023Fast", [toy()], seeds=(0, 1), log=None, **TINY_RUN)
    chosen = json.loads(tree.attrs["coupling_chosen"])
    assert chosen["toy"]["1"] == alone.attrs["coupling_chosen"] and set(chosen["toy"]) == {"0", "1"}
    member = dict(subject="toy", seed=1)
    np.testing.assert_allclose(tree["integration"].wLRE.sel(member).values, alone["integration"].wLRE.values)
    # the cohort's cost counts each member's sweep as the run alone does (it was left out before)
    np.testing.assert_allclose(float(tree.attrs["simulated_tuning_h"]), alone.attrs["simulated_tuning_h"])
    np.testing.assert_allclose(tree["fic_eib"].wLRE.sel(member).values, alone["fic_eib"].wLRE.values,
                               rtol=1e-4, atol=1e-6)
