"""One driver for every routine: a new routine written as an init/chunk pair for one network gets
chunking, progress, batching, checks, checkpoints and a place in experiments without more code;
experiments take routine objects."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tvb.basic.neotraits.api import Attr
from tvb.basic.neotraits.ex import TraitValueError

import tvb_eib_plugin as eib
from tvb_eib_plugin._simulation.batch import stack_models, stack_trees
from tvb_eib_plugin._model.coupling import effective
from tvb_eib_plugin._validation import InputError
from tvb_eib_plugin.routines import FICEIB, BoundedFloat, BoundedInt, TuningState
from tvb_eib_plugin.routines.driver import IterativeRoutine, Phase
from tvb_eib_plugin._simulation.simulate import tr_step
from tvb_eib_plugin._simulation.window import (window_empty, window_fc, window_init, window_push, window_resized,
                                                window_samples)


# --- the example routine of the README's architecture section: 20 lines -----------------------------------
class HomeostaticCoupling(IterativeRoutine):
    """Scale every wLRE each TR so that the network's mean S_e approaches a target."""

    name = "homeostatic_coupling"
    eta = BoundedFloat(0.5, 0.0, 10.0, doc="rate of the scaling")
    target = BoundedFloat(0.2, 0.01, 0.99, doc="target network mean S_e")
    n_iterations = BoundedInt(12, 1, 10**6, doc="iterations, one TR each")
    log_every = BoundedInt(4, 1, 10**6, doc="iterations per compiled chunk")
    checkpoint = Attr(field_type=str, default=None, required=False, doc="checkpoint file")

    def init(self, start, target_fc):
        window = start.window if start.window is not None else window_empty(3, start.model.n_regions)
        return start.model, start.sim, window

    def phases(self, dtype):
        return (Phase(self.n_iterations, (jnp.asarray(self.eta, dtype), jnp.asarray(self.target, dtype))),)

    @staticmethod
    def chunk(config, carry, ks, params, target_fc):
        eta, target = params

        def body(carry, _):
            model, sim, window = carry
            sim, rec = tr_step(model, effective(model.coupling), sim)
            wLRE = model.coupling.wLRE * (1 + eta * (target - rec.mean_S[0].mean()))
            return (model.with_tuned(wLRE=wLRE), sim, window_push(window, rec.bold)), {"mean_S_e": rec.mean_S[0]}

        return jax.lax.scan(body, carry, ks)
# ------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nets():
    rng = np.random.default_rng(3)
    out = []
    for k in range(2):
        w = rng.uniform(0, 1, (5, 5)) * (1 - np.eye(5))
        out.append(eib.network_model(w / w.max(), wLRE=1.0 + 0.3 * k, wFFI=1.0))
    return out


def _start(net, seed):
    return TuningState(net, eib.simulate(net, eib.initial_state(net, seed), 3 * 720.0).state)


def test_a_new_routine_gets_chunks_progress_and_checks_from_the_driver(nets):
    lines = []
    res = HomeostaticCoupling(eta=0.5, target=0.2).run(_start(nets[0], 0), None, {}, lines.append)
    assert res.history["mean_S_e"].shape == (12, 5)
    assert [ln for ln in lines if "/12" in ln][:1] and sum("/12" in ln for ln in lines) == 3  # a line per chunk
    assert "homeostatic_coupling complete!" in lines
    # it moved the network mean toward the target: wLRE scaled down from 1 where S_e was above 0.2
    first, last = res.history["mean_S_e"][0].mean(), res.history["mean_S_e"][-1].mean()
    assert abs(last - 0.2) < abs(first - 0.2)
    assert res.state.window is not None and int(res.state.window.count) == 12  # BOLD handed on
    with pytest.raises(eib.ActivitySaturated, match="pinned at 1"):  # the driver's checks
        HomeostaticCoupling(eta=10.0, target=0.99, n_iterations=40).run(_start(nets[0], 0), None, {}, lambda _: None)
    with pytest.raises(TraitValueError, match="within"):  # parameters validate themselves when set
        HomeostaticCoupling(eta=1e9)


def test_a_new_routine_runs_batched_as_each_member_alone(nets):
    alone = [HomeostaticCoupling(seed=s).run(_start(n, s), None) for s, n in zip((4, 9), nets)]
    start = TuningState(stack_models(nets), stack_trees([_start(n, s).sim for s, n in zip((4, 9), nets)]), (4, 9))
    batch = HomeostaticCoupling().run(start, None)
    for b in range(2):
        np.testing.assert_allclose(batch.state.model.coupling.wLRE[b], alone[b].state.model.coupling.wLRE,
                                   rtol=1e-9, atol=0)
        np.testing.assert_allclose(batch.history["mean_S_e"][:, b], alone[b].history["mean_S_e"], rtol=1e-9, atol=0)


class _Stop(Exception):
    pass


def test_a_new_routine_gets_checkpoints_and_resumes_bit_for_bit(nets, tmp_path):
    whole = HomeostaticCoupling().run(_start(nets[0], 1), None)
    path = str(tmp_path / "h.npz")

    def stop_at_8(line):
        if "8/12" in line:
            raise _Stop

    with pytest.raises(_Stop):
        HomeostaticCoupling(checkpoint=path, log_every=4).run(_start(nets[0], 1), None, {}, stop_at_8)
    lines = []
    resumed = HomeostaticCoupling(checkpoint=path).run(_start(nets[0], 1), None, {}, lines.append)
    assert any("resuming from" in ln and "4 iterations into it" in ln for ln in lines)  # the last chunk written
    np.testing.assert_array_equal(resumed.state.model.coupling.wLRE, whole.state.model.coupling.wLRE)
    np.testing.assert_array_equal(resumed.history["mean_S_e"], whole.history["mean_S_e"])
    with pytest.raises(eib.InputError, match="other settings"):  # bound to its settings
        HomeostaticCoupling(checkpoint=path, eta=0.4).run(_start(nets[0], 1), None)


SHORT = dict(transient_ms=1440.0, eval_ms=14400.0, eval_discard=2, precision="float64", log=None)


def test_an_experiment_takes_routine_objects_and_a_users_own_routine():
    by_object = eib.run_experiment(routines=(eib.FIC(n_iterations=12, log_every=6),
                                             eib.FICEIB(n_iterations=8, window=10, log_every=4)), **SHORT)
    by_name = eib.run_experiment(routines=("fic", "fic_eib"),
                                 routine_settings={"fic": {"n_iterations": 12, "log_every": 6},
                                                   "fic_eib": {"n_iterations": 8, "window": 10, "log_every": 4}},
                                 **SHORT)
    for stage in ("fic", "fic_eib"):
        np.testing.assert_array_equal(by_object[stage].wLRE.values, by_name[stage].wLRE.values)
        assert float(by_object[stage]["evaluation"]["fc_corr"]) == float(by_name[stage]["evaluation"]["fc_corr"])
    recorded = json.loads(by_object.attrs["settings"])
    assert recorded["routines"] == ["fic", "fic_eib"]
    assert recorded["routine_settings"]["fic"]["n_iterations"] == 12  # every routine's full settings
    assert recorded["routine_settings"]["fic_eib"]["schedule"][0]["iterations"] == 8

    own = eib.run_experiment(routines=(eib.FIC(n_iterations=6, log_every=6), HomeostaticCoupling()), **SHORT)
    assert list(own.children) == ["integration", "fic", "homeostatic_coupling"]
    # routine_settings change a routine object's parameters on top (what --set builds)
    changed = eib.run_experiment(routines=(HomeostaticCoupling(),),
                                 routine_settings={"homeostatic_coupling": {"n_iterations": 4}}, **SHORT)
    assert changed["homeostatic_coupling/history"].sizes["iteration"] == 4


def test_an_experiment_refuses_ambiguous_routines():
    with pytest.raises(eib.InputError, match="seed"):
        eib.run_experiment(routines=(eib.FIC(n_iterations=6, seed=5),), **SHORT)
    with pytest.raises(eib.InputError, match="twice"):
        eib.run_experiment(routines=(eib.FIC(n_iterations=6), "fic"), **SHORT)
    with pytest.raises(eib.InputError, match="does not include"):
        eib.run_experiment(routines=("fic",), routine_settings={"fic_eib": {"window": 10}}, **SHORT)
    with pytest.raises(eib.InputError, match="bad settings"):
        eib.run_experiment(routines=("fic",), routine_settings={"fic": {"eta": -1.0}}, **SHORT)


def test_fic_eibs_first_window_holds_the_newest_samples_the_previous_routine_left():
    """init builds the window with array indices (so that a batch maps it in one call): the same ring and
    count as the samples read out one by one, for capacities below, at and above the old one's."""
    rng = np.random.default_rng(5)
    for count, old_capacity, capacity in ((3, 8, 5), (8, 8, 5), (13, 8, 5), (13, 8, 12), (4, 8, 12), (13, 8, 8)):
        w = window_empty(old_capacity, 4)
        for x in rng.normal(size=(count, 4)):
            w = window_push(w, jnp.asarray(x))
        length = min(capacity, 3)
        got, want = window_resized(w, capacity, length), window_init(window_samples(w)[-capacity:], capacity, length)
        np.testing.assert_array_equal(got.ring, want.ring, err_msg=f"{count} samples, {old_capacity} -> {capacity}")
        assert int(got.count) == int(want.count) == min(count, old_capacity, capacity)
        np.testing.assert_allclose(window_fc(got), window_fc(want), rtol=1e-12, atol=1e-14)


def test_a_batch_whose_window_is_too_short_is_refused_before_any_compute(nets):
    """The check that needs values (samples held) runs on the whole batch before the traced init."""
    start = TuningState(stack_models(nets), stack_trees([_start(n, s).sim for s, n in zip((4, 9), nets)]), (4, 9))
    start = start.with_bold(np.random.default_rng(0).normal(size=(4, 2, 5)))  # 4 samples per member
    fc = np.stack([np.corrcoef(np.random.default_rng(b).normal(size=(5, 40))) * (1 - np.eye(5)) for b in range(2)])
    with pytest.raises(InputError, match="starting state holds 4: run it after FIC"):
        FICEIB(window=10, n_iterations=20, restart="continuous").run(start, fc)
