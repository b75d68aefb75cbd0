"""tvboptim: one simulation through its ``prepare(...)`` solve function."""

from __future__ import annotations

import time

from .common import SIGMA, _stats, _versions
from .tvboptim import _solver, _tvboptim, _tvboptim_network


def time_tvboptim_simulation(dt: float = 4.0, duration_ms: float = 300000.0,
                             jit: bool = True, variant: str = "eib",
                             bounded: bool = True, n_repeat: int = 3,
                             data_dir=None) -> dict:
    """Time tvboptim's ``prepare(network, solver, t1, dt)`` solve function.

    jit=False calls ``model(state)`` directly, as the EI tutorial does (its
    scan body is re-traced and re-lowered on every call, so every call pays a
    fixed overhead); jit=True times ``jax.jit(model)(state)``.  Each is timed
    ``n_repeat`` times after one untimed warm-up call (reported as
    ``first_call_s``).  variant: "eib" (tutorial model, default) or "stock"
    (tvboptim's WongWangExcInh + LinearCoupling).  bounded: wrap Heun in
    ``BoundedSolver(low=0, high=1)`` as the tutorial does.
    """
    T = _tvboptim()
    jax = T["jax"]
    net, _, n = _tvboptim_network(variant, data_dir)
    solver = _solver(T, bounded)
    t0 = time.perf_counter()
    model, state = T["prepare"](net, solver, t1=duration_ms, dt=dt)
    prepare_s = time.perf_counter() - t0
    fn = jax.jit(model) if jit else model

    t0 = time.perf_counter()
    res = jax.block_until_ready(fn(state))
    first = time.perf_counter() - t0
    samples = []
    for _ in range(n_repeat):
        t0 = time.perf_counter()
        res = jax.block_until_ready(fn(state))
        samples.append(time.perf_counter() - t0)
    n_steps = int(res.data.shape[0])
    s = _stats(samples)
    return dict(
        peer="tvboptim.experimental.network_dynamics (prepare/solve)",
        variant=variant,
        model=("EIBWongWang (tutorial-style AbstractDynamics subclass) + "
               "EIBCoupling(EDGE_PARAMS wLRE,wFFI = ones)") if variant == "eib"
        else "tvboptim WongWangExcInh(G=1, lamda=1) + LinearCoupling(S_e, G=1)",
        connectivity="dk_average, DenseGraph(W/max), no delays",
        n_regions=n, dt_ms=dt, duration_ms=duration_ms, n_steps=n_steps,
        solver="BoundedSolver(Heun(), 0, 1)" if bounded else "Heun()",
        noise=f"AdditiveNoise(sigma={SIGMA}, apply_to='S_e') "
              "(= TVB nsig 5e-5; Heun applies the same increment in predictor and corrector)",
        monitor="none (raw states S_e,S_i of every step returned)",
        precision="float64 (jax_enable_x64)",
        jit=jit,
        how=("jax.jit(model)(state)" if jit else "model(state) called eagerly, as in the tutorial")
        + f"; 1 untimed warm-up call, then {n_repeat} timed calls (block_until_ready)",
        prepare_s=prepare_s, first_call_s=first,
        seconds=s["min"], seconds_median=s["median"], seconds_all=samples,
        us_per_step=s["min"] / n_steps * 1e6,
        us_per_step_median=s["median"] / n_steps * 1e6,
        output_MB=float(res.data.size * res.data.dtype.itemsize / 2**20),
        final_mean_S_e=float(res.data[-1, 0].mean()),
        versions=_versions(),
    )
