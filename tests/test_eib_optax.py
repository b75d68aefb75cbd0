"""The EIB step through optax: the plain step is optax.sgd(1.0) up to rounding, other transformations
(momentum) chain onto the same direction, and the driver's batching and checkpoints carry their state."""

import numpy as np
import optax
import pytest

import tvb_eib_plugin as eib
from tvb_eib_plugin._simulation.batch import stack_models, stack_trees
from tvb_eib_plugin.routines import TuningState


@pytest.fixture(scope="module")
def start():
    dk = eib.load_dataset("dk_average")
    net = eib.network_from_connectome(dk, delays=False)
    run = eib.simulate(net, eib.initial_state(net, 2), 30 * 720.0)
    return TuningState(net, run.state).with_bold(run.bold), dk.fc_target


def _eib(**kw):
    return eib.FICEIB(n_iterations=40, window=20, eta_eib=0.05, log_every=20, mask="sc", **kw)


def test_the_plain_step_is_optax_sgd_of_the_eib_direction(start):
    state, fc = start
    plain = _eib().run(state, fc)
    sgd = _eib(optimizer=optax.sgd(1.0)).run(state, fc)
    a, b = plain.state.model.coupling, sgd.state.model.coupling
    moved = np.abs(np.asarray(a.wLRE) - 1.0).max()
    assert moved > 1e-3  # the weights did move
    np.testing.assert_allclose(b.wLRE, a.wLRE, rtol=0, atol=1e-12)  # eta * (d r) vs (eta d) r: rounding only
    np.testing.assert_allclose(b.wFFI, a.wFFI, rtol=0, atol=1e-12)
    # momentum on the same direction: another path, still >= 0 and on SC edges only
    mom = _eib(optimizer=optax.sgd(1.0, momentum=0.9)).run(state, fc).state.model.coupling
    assert np.abs(np.asarray(mom.wLRE) - np.asarray(a.wLRE)).max() > 1e-4
    assert float(np.min(mom.wLRE)) >= 0 and float(np.min(mom.wFFI)) >= 0
    off = np.asarray(state.model.coupling.weights) == 0
    assert np.all(np.asarray(mom.wLRE)[off] == 1.0)
    with pytest.raises(Exception):
        _eib(optimizer="adam")  # a transformation, not a name: refused when built


def test_an_optimizers_state_is_batched_and_checkpointed(start, tmp_path):
    state, fc = start
    opt = optax.sgd(1.0, momentum=0.9)
    alone = _eib(optimizer=opt).run(state, fc)
    batch = TuningState(stack_models([state.model] * 2), stack_trees([state.sim] * 2), (0, 0),
                        window=stack_trees([state.window] * 2))
    both = _eib(optimizer=opt).run(batch, np.stack([fc, fc]))
    np.testing.assert_allclose(both.state.model.coupling.wLRE[1], alone.state.model.coupling.wLRE, rtol=1e-9)

    path = str(tmp_path / "m.npz")

    class Stop(Exception):
        pass

    def stop(line):
        if "40/40" in line:
            raise Stop

    with pytest.raises(Stop):
        _eib(optimizer=opt, checkpoint=path).run(state, fc, {}, stop)
    resumed = _eib(optimizer=opt, checkpoint=path).run(state, fc)  # from iteration 20, momentum restored
    np.testing.assert_array_equal(resumed.state.model.coupling.wLRE, alone.state.model.coupling.wLRE)
