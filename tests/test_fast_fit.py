"""The fast preset (Schirner2023Fast): the paper's preset with only its documented changes, and a tiny run."""

import json

import numpy as np
import pytest

from tvb_eib_plugin._experiments.experiment import EXPERIMENTS, get_experiment, run_experiment
from tvb_eib_plugin._experiments.fast_fit import FAST_COUPLING_SWEEP, schirner2023_fast_settings
from tvb_eib_plugin.routines import annealing_schedule
from tvb_eib_plugin._experiments.schirner2023 import schirner2023_settings
from tvb_eib_plugin._validation import InputError

#: what the fast preset changes, and nothing else (fast_fit's docstring says why, with the measurements)
CHANGED = {"name": "Schirner2023Fast", "dt": 4.0, "scheme": "heun", "coupling": "auto",
           "coupling_sweep": FAST_COUPLING_SWEEP}


def test_fast_preset_is_the_paper_preset_but_for_its_step_and_scheme():
    fast, paper = schirner2023_fast_settings(), schirner2023_settings(5, 4000)
    assert get_experiment("Schirner2023Fast") == EXPERIMENTS["Schirner2023Fast"]
    assert {k: fast[k] for k in CHANGED} == CHANGED
    assert {k: v for k, v in fast.items() if k not in CHANGED} == {k: v for k, v in paper.items() if k not in CHANGED}
    assert fast["routine_settings"]["fic_eib"]["schedule"] == annealing_schedule(5, 4000)
    # the plan is accepted as registered (pipeline checks it): every 4000-TR stage outlasts its window + 50 TRs
    eib_stage = [r for r in get_experiment("Schirner2023Fast").pipeline() if r.name == "fic_eib"][0]
    assert eib_stage.restart == "per_stage" and eib_stage.stages() == annealing_schedule(5, 4000)


def test_short_stages_need_the_continuous_run():
    """The docstring's shorter schedule: per-stage restarts refuse 1000-TR stages whose windows outgrow them
    (stage 4's window is 1200 TRs); with restart='continuous' the plan is accepted."""
    fast = get_experiment("Schirner2023Fast")
    with pytest.raises(InputError, match="window"):
        fast.with_routine("fic_eib", schedule=annealing_schedule(7, 1000)).pipeline()
    short = fast.with_routine("fic_eib", schedule=annealing_schedule(7, 1000), restart="continuous").pipeline()
    assert [r for r in short if r.name == "fic_eib"][0].stages() == annealing_schedule(7, 1000)


def test_fast_preset_runs_a_tiny_version_end_to_end_and_records_its_cost(dk):
    tiny = dict(transient_ms=10 * 720.0, eval_ms=30 * 720.0, eval_discard=5, coupling=2.5,
                routine_settings={"fic": {"n_iterations": 20, "log_every": 10},
                                  "fic_eib": {"schedule": annealing_schedule(2, 20, window=5), "lead_in": 2,
                                              "log_every": 10, "record_every": 10}})
    tree = run_experiment("Schirner2023Fast", log=None, seed=0, **tiny)
    settings = json.loads(tree.attrs["settings"])
    assert settings["name"] == "Schirner2023Fast" and settings["dt"] == 4.0 and settings["scheme"] == "heun"
    assert settings["routine_settings"]["fic_eib"]["restart"] == "per_stage"
    # G fixed by the user: no sweep ran (tests/test_coupling_probe.py runs the preset's default, coupling="auto")
    assert settings["coupling"] == 2.5 and "coupling_chosen" not in tree.attrs
    assert np.allclose(tree["integration"].wLRE.values, 2.5)
    ev = tree["fic_eib/evaluation"]
    assert len(ev["bold"]) - ev.attrs["bold_discarded"] == 25
    assert np.isfinite(float(ev.fc_corr)) and np.isfinite(float(ev.fc_rmse))
    assert len(tree["fic_eib/history"]["iteration"]) == 4  # 40 TRs, a record every 10
    # cost in the provenance: 20 FIC + 40 EIB TRs of tuning
    np.testing.assert_allclose(tree.attrs["simulated_tuning_h"], 60 * 720.0 / 3.6e6)
    assert tree.attrs["wall_time_s"] > 0 and tree.attrs["cpu_time_s"] > 0
