"""tvboptim: one value-and-gradient + optimizer step of the EI_Tuning tutorial's Part 3, and its peak memory."""

from __future__ import annotations

import time

from .common import TR_MS, PeerUnavailable, _current_rss_mb, _peak_rss_mb, _stats, _versions
from .isolated import run_isolated
from .tvboptim import _after_transient, _solver, _tvboptim, _tvboptim_network


def _gradient_worker(duration_ms=60000.0, n_steps=4, jit=False, dt=4.0,
                     transient_ms=20000.0, target=0.25, learning_rate=0.033,
                     data_dir=None):
    T = _tvboptim()
    jax, jnp = T["jax"], T["jnp"]
    try:
        import optax
        from tvboptim.optim.optax import OptaxOptimizer
        from tvboptim.types import BoundedParameter, Parameter
        from tvboptim.types.stateutils import combine_state, partition_state
    except ImportError as e:
        raise PeerUnavailable(f"tvboptim optim / optax not importable: {e}") from e

    compute_fc, rmse = T["compute_fc"], T["rmse"]
    net, fc_target, n = _tvboptim_network("eib", data_dir)
    solver = _solver(T, True)
    result_init = _after_transient(T, net, solver, transient_ms, dt)
    model_opt, state_opt = T["prepare"](net, solver, t1=duration_ms, dt=dt)
    bold_monitor = T["HRFBold"](period=TR_MS, downsample_period=dt, voi=0,
                                history=result_init)
    n_bold = int(duration_ms // TR_MS)
    skip_t = 30 if n_bold > 40 else max(n_bold // 4, 1)

    def loss(state):
        ts = model_opt(state)
        bold = bold_monitor(ts)
        fc_pred = compute_fc(bold, skip_t=skip_t)
        fc_loss = rmse(fc_pred, fc_target)
        mean_act = jnp.mean(ts.data[-500:, 0, :], axis=0)
        return fc_loss + jnp.mean((mean_act - target) ** 2)

    state_opt.dynamics.J_i = Parameter(state_opt.dynamics.J_i)
    state_opt.coupling.coupling.wLRE = BoundedParameter(jnp.ones((n, n)), low=0.0, high=jnp.inf)
    state_opt.coupling.coupling.wFFI = BoundedParameter(jnp.ones((n, n)), low=0.0, high=jnp.inf)
    rss_before = _current_rss_mb()

    stamps, losses, finite = [], [], []
    if not jit:
        # tutorial: OptaxOptimizer(loss, optax.adamaxw(0.033)).run(state, max_steps)
        def timing_cb(step, diff_state, static_state, fitting_data, aux, loss_value, grads):
            jax.block_until_ready((diff_state, loss_value))
            stamps.append(time.perf_counter())
            losses.append(float(loss_value))
            finite.append(bool(all(bool(jnp.all(jnp.isfinite(g)))
                                   for g in jax.tree.leaves(grads))))
            return False, diff_state, static_state

        opt = OptaxOptimizer(loss, optax.adamaxw(learning_rate=learning_rate),
                             callback=timing_cb)
        t_start = time.perf_counter()
        opt.run(state_opt, max_steps=1 + n_steps)
        how = ("tvboptim OptaxOptimizer(loss, optax.adamaxw(0.033)).run(state, "
               f"max_steps={1 + n_steps}) (jax.jit(loss) inside, value_and_grad and "
               "optax update outside jit, per-step Python loop); step 0 = compile")
    else:
        diff, static = partition_state(state_opt)
        tx = optax.adamaxw(learning_rate=learning_rate)
        opt_state = tx.init(diff)

        @jax.jit
        def step(diff, opt_state):
            val, grads = jax.value_and_grad(
                lambda d: loss(combine_state(d, static)))(diff)
            upd, opt_state = tx.update(grads, opt_state, diff)
            return optax.apply_updates(diff, upd), opt_state, val, grads

        t_start = time.perf_counter()
        for _ in range(1 + n_steps):
            diff, opt_state, val, grads = jax.block_until_ready(step(diff, opt_state))
            stamps.append(time.perf_counter())
            losses.append(float(val))
            finite.append(bool(all(bool(jnp.all(jnp.isfinite(g)))
                                   for g in jax.tree.leaves(grads))))
        how = ("jax.jit(value_and_grad(loss) + optax.adamaxw update) called in a "
               f"Python loop, {1 + n_steps} steps; step 0 = compile")

    per_step = [b - a for a, b in zip(stamps[:-1], stamps[1:])]
    s = _stats(per_step) if per_step else dict(min=float("nan"), median=float("nan"))
    sim_steps = int(round(duration_ms / dt))
    return dict(
        peer="tvboptim gradient (EI_Tuning tutorial Part 3)",
        model="EIBWongWang + EIBCoupling; params J_i (84), wLRE, wFFI (84x84, "
              "BoundedParameter low=0)",
        loss=f"rmse(compute_fc(HRFBold(ts), skip_t={skip_t}), FC_target) + "
             "mean((mean(S_e[-500:]) - 0.25)**2)",
        n_regions=n, dt_ms=dt, duration_ms=duration_ms, n_steps=sim_steps,
        n_bold_samples=n_bold, n_opt_steps_timed=n_steps,
        solver="BoundedSolver(Heun(), 0, 1), default (no checkpointing / blocking)",
        precision="float64 (jax_enable_x64)", jit=jit, how=how,
        first_step_s=stamps[0] - t_start,
        s_per_step=s["min"], s_per_step_median=s["median"], s_per_step_all=per_step,
        us_per_sim_step=s["min"] / sim_steps * 1e6,
        loss_first=losses[0], loss_last=losses[-1], grads_finite=all(finite),
        rss_before_first_step_MB=rss_before,
        peak_rss_MB=_peak_rss_mb(),
        versions=_versions(),
    )


def time_tvboptim_gradient(duration_ms: float = 60000.0, n_steps: int = 4,
                           jit: bool = False, isolated: bool = True,
                           **kwargs) -> dict:
    """Seconds per value-and-gradient(+optimizer) step and peak memory.

    Loss as in the tutorial's Part 3: RMSE(FC(BOLD), FC_target) + activity
    penalty, w.r.t. J_i, wLRE, wFFI, through a ``duration_ms`` simulation.
    jit=False (default) uses tvboptim's ``OptaxOptimizer(...).run`` as the
    tutorial does; jit=True wraps value_and_grad + optax update in jax.jit.
    Runs in a fresh subprocess (``isolated=True``) so that ``peak_rss_MB``
    (the child's own ru_maxrss) is the peak of this measurement alone
    (it includes XLA compilation).  ``n_steps`` timed steps follow 1 compile step.
    """
    kw = dict(duration_ms=duration_ms, n_steps=n_steps, jit=jit, **kwargs)
    if isolated:
        return run_isolated("_gradient_worker", **kw)
    return _gradient_worker(**kw)
