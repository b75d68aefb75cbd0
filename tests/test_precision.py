"""Every matrix product the package compiles runs at full precision.

On NVIDIA GPUs since Ampere, JAX may compute a float32 product at its default precision in TF32 (10
mantissa bits): a 1e-3 error in the coupling, the BOLD or the gradient that no CPU test would see.  The package names full precision on each product (``_precision.FULL``); these tests trace
the compiled paths (simulation with and without delays, HRF and Balloon BOLD, FIC+EIB with its FC
window and metrics, the gradient with its adjoint) and fail on any product that does not.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tvb_eib_plugin as eib
from tvb_eib_plugin._precision import FULL
from tvb_eib_plugin._simulation.simulate import run_trs
from tvb_eib_plugin.routines import FICEIB, TuningState
from tvb_eib_plugin.routines.eib import fic_eib_chunk
from tvb_eib_plugin.routines.gradient import GradientEIB, value_and_grad

N = 6


def _products(jaxpr, found=None):
    """Every dot_general in a jaxpr and the jaxprs inside it (scan, cond, jit, custom VJP)."""
    found = [] if found is None else found
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            found.append(eqn)
        for value in eqn.params.values():
            for sub in value if isinstance(value, (tuple, list)) else (value,):
                inner = getattr(sub, "jaxpr", sub)  # a ClosedJaxpr holds its Jaxpr
                if hasattr(inner, "eqns"):
                    _products(inner, found)
    return found


def _not_full(closed) -> list[str]:
    products = _products(closed.jaxpr)
    assert products, "the traced path has no matrix product: the test would pass vacuously"
    return [str(e.params["precision"]) for e in products if e.params["precision"] != (FULL, FULL)]


@pytest.fixture(scope="module")
def networks():
    rng = np.random.default_rng(0)
    w = rng.uniform(0, 1, (N, N)) * (1 - np.eye(N))
    delays = rng.uniform(5, 25, (N, N))  # ms: a delay ring of 26 steps at dt 1 ms
    reference = eib.network_model(w / w.max(), dtype=jnp.float32)
    paper = eib.network_model(w / w.max(), delays_ms=(delays + delays.T) / 2, dt=1.0, scheme="euler", bold="balloon",
                              dtype=jnp.float32)
    return {"reference": reference, "paper": paper}


@pytest.mark.parametrize("which", ["reference", "paper"])
def test_the_simulation_computes_every_product_at_full_precision(networks, which):
    net = networks[which]
    assert which == "reference" or net.coupling.horizon > 1  # the delayed gather and its product are traced
    closed = jax.make_jaxpr(functools.partial(run_trs, n_tr=2))(net, eib.initial_state(net, 0))
    assert _not_full(closed) == []


def test_fic_eib_with_its_window_and_metrics_computes_every_product_at_full_precision(networks):
    net = networks["reference"]
    sim = eib.simulate(net, eib.initial_state(net, 0), 12 * net.bold.period_ms)
    start = TuningState(net, sim.state).with_bold(sim.bold)
    routine = FICEIB(n_iterations=4, window=10, log_every=4)
    fc_target = jnp.asarray(np.corrcoef(np.random.default_rng(1).normal(size=(N, 50))) * (1 - np.eye(N)))
    carry = routine.init(start, fc_target)
    phase = routine.phases(net.dtype)[0]
    chunk = functools.partial(fic_eib_chunk, routine.config(net))
    closed = jax.make_jaxpr(chunk)(carry, jnp.arange(4, dtype=jnp.int32), phase.params, fc_target)
    assert _not_full(closed) == []


def test_the_gradient_and_its_adjoint_compute_every_product_at_full_precision(networks):
    net = networks["reference"]
    sim = eib.simulate(net, eib.initial_state(net, 0), 4 * net.bold.period_ms).state
    ls = GradientEIB(duration_ms=16 * net.bold.period_ms, discard=2).loss_settings(net)
    fc_target = jnp.asarray(np.corrcoef(np.random.default_rng(2).normal(size=(N, 50))) * (1 - np.eye(N)))
    closed = jax.make_jaxpr(lambda p: value_and_grad(p, net, sim, fc_target, ls))(net.tuned)
    assert _not_full(closed) == []
