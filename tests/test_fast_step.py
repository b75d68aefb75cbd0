"""The faster delayed coupling computes the delayed sum to float rounding; the cost model counts the step.

Bound: the delayed input c_i = sum_j A_ij S_j(t - 1 - d_ij) is a sum of N rounded products, so in a
precision with unit roundoff u any order of summation is within (N + 1) u sum_j |A_ij S_j| of the exact
sum (Higham, Accuracy and Stability, eq. 3.5).  The tests hold each precision to that bound against a
float64 loop over the edges written from the definition.
"""

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tvb_eib_plugin as eib
from tvb_eib_plugin._model.coupling import afferent, dual_coupling, effective, history_init, history_write
from tvb_eib_plugin._simulation.simulate import run_trs

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.join(HERE, "..", "benchmarks")


def _coupling(n=7, seed=0, dtype=jnp.float64):
    rng = np.random.default_rng(seed)
    w = rng.uniform(0, 1, (n, n)) * (rng.uniform(size=(n, n)) > 0.3)
    delays = rng.uniform(0, 9, (n, n))
    return dual_coupling(w, rng.uniform(0.5, 2, (n, n)), rng.uniform(0.5, 2, (n, n)), delays_ms=delays, dt=1.0,
                         dtype=dtype), rng


def _ring(c, past, dtype):
    """The history ring after writing ``past`` (T, N) as steps 1..T, from a rest state at past[0]."""
    h = history_init(jnp.asarray(past[0], dtype), c.horizon)
    for k, s in enumerate(past, start=1):
        h = history_write(h, jnp.asarray(s, dtype), jnp.int32(k), c.horizon)
    return h


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_delayed_input_is_the_sum_over_edges_to_float_rounding(dtype):
    c, rng = _coupling(dtype=dtype)
    n, H = c.n_regions, c.horizon
    past = rng.uniform(0, 1, (3 * H, n))  # more steps than the ring holds: every row wraps around
    A = np.stack([np.asarray(c.weights * c.wLRE, np.float64), np.asarray(c.weights * c.wFFI, np.float64)])
    d = np.asarray(c.idelays)
    u = np.finfo(dtype).eps / 2
    ec = effective(c)
    for T in range(H, 3 * H):  # the input to step T + 1 reads the state of step T - d
        stored = np.asarray(jnp.asarray(past[:T], dtype), np.float64)  # what the ring holds, exactly
        got = np.stack(afferent(ec, _ring(c, past[:T], dtype), jnp.int32(T + 1)))
        src = stored[T - 1 - d, np.arange(n)[None, :]]  # S_j at step T - d_ij (stored[k] is step k + 1)
        exact = (A * src[None]).sum(-1)
        bound = (n + 1) * u * (np.abs(A) * np.abs(src)[None]).sum(-1)
        assert np.all(np.abs(got - exact) <= bound), f"T={T}: {np.max(np.abs(got - exact) / bound):.2f} x bound"


def test_a_batch_of_delayed_couplings_equals_each_alone():
    members = [_coupling(n=6, seed=s)[0] for s in range(3)]
    H = max(m.horizon for m in members)
    members = [m.replace(horizon=H) for m in members]
    past = np.random.default_rng(9).uniform(0, 1, (2 * H, 6))
    rings = [_ring(m, past, jnp.float64) for m in members]
    alone = np.stack([np.stack(afferent(effective(m), r, jnp.int32(2 * H + 1))) for m, r in zip(members, rings)])
    batch = jax.tree_util.tree_map(lambda *x: jnp.stack(x), *members)
    together = jax.vmap(lambda m, r: jnp.stack(afferent(effective(m), r, jnp.int32(2 * H + 1))))(batch, jnp.stack(rings))
    np.testing.assert_allclose(np.asarray(together), alone, rtol=1e-13, atol=0)


def test_cost_model_counts_the_coupling_and_the_loop_kernels():
    sys.path.insert(0, BENCH)
    import cost_model

    n = 6
    rng = np.random.default_rng(0)
    net = eib.network_model(rng.uniform(0, 1, (n, n)), delays_ms=rng.uniform(1, 5, (n, n)), dt=1.0, scheme="euler",
                            bold="balloon", tr_ms=8.0, dtype=jnp.float32)
    state = eib.initial_state(net, 0)
    cost = cost_model.step_cost(net, state, None)
    assert cost["flops"] >= 4 * n * n  # two streams' multiply-adds over every edge, at least
    assert cost["bytes accessed"] >= 2 * n * n * 4  # the (2, N, N) coupling is read every step
    kernels = cost_model.loop_kernels(jax.jit(lambda m, s: run_trs(m, s, 2)).lower(net, state).compile().as_text())
    assert 3 <= kernels <= 60  # a step is a few dozen kernels, and 0 would mean the body was not found
