"""tvboptim: the EI_Tuning tutorial's FIC and FIC+EIB Python loops (Part 1 and Part 2)."""

from __future__ import annotations

import functools
import time

from .common import TR_MS, _versions
from .tvboptim import _after_transient, _solver, _tvboptim, _tvboptim_network


def time_tvboptim_tuning_loop(n_fic: int = 10, n_fic_eib: int = 10, jit: bool = False,
                              n_warmup: int = 2, transient_ms: float = 20000.0,
                              window_size: int = 150, eta_fic: float = 0.5,
                              eta_fic_eib: float = 0.1, eta_eib: float = 0.005, target: float = 0.25,
                              dt: float = 4.0, extrapolate_fic: int = 200,
                              extrapolate_fic_eib: int = 2000,
                              data_dir=None) -> dict:
    """Time the EI tutorial's Python loops (Part 1 FIC, Part 2 FIC+EIB).

    tvboptim does not ship FIC/EIB: the tutorial writes them as a Python loop
    around ``model_short = prepare(network, BoundedSolver(Heun()), t1=720)``.
    Per iteration (tutorial order): simulate one TR; HRFBold monitor with a
    rolling 20 s history -> one BOLD sample; roll the monitor history; set the
    next initial state; draw new noise (injected via
    ``state._internal.noise_samples``); FIC update of J_i.  FIC+EIB adds: roll
    the 150-sample BOLD window, ``compute_fc``, the wLRE/wFFI update (row-wise
    RMSE, clipped at 0, eta ramped (i+1)/N), ``fc_corr`` and RMSE tracking.

    jit=False: exactly that (eager jax, as the tutorial runs it).
    jit=True: the same iteration body as one ``jax.jit`` function, Python loop
    around it.  ``n_warmup`` iterations of each phase are run (untimed) first.
    Returns ms per iteration and the extrapolation to
    extrapolate_fic FIC + extrapolate_fic_eib FIC+EIB iterations.
    """
    T = _tvboptim()
    jax, jnp, eqx = T["jax"], T["jnp"], T["eqx"]
    compute_fc, fc_corr, rmse = T["compute_fc"], T["fc_corr"], T["rmse"]

    t_setup = time.perf_counter()
    net, fc_target, n = _tvboptim_network("eib", data_dir)
    solver = _solver(T, True)
    result_init = _after_transient(T, net, solver, transient_ms, dt)  # tutorial: 5 min; here transient_ms
    model_short, state = T["prepare"](net, solver, t1=TR_MS, dt=dt)
    n_steps = int(round(TR_MS / dt))
    monitor = T["HRFBold"](period=TR_MS, downsample_period=dt, voi=0,
                           history=result_init)
    hist0 = monitor.history
    setup_s = time.perf_counter() - t_setup

    def fic_rule(J_i, data, eta):
        m_i = jnp.mean(data[:, 1], axis=0)
        m_e = jnp.mean(data[:, 0], axis=0)
        return J_i + eta * (m_i * m_e - target * m_i)

    def eib_rule(wLRE, wFFI, fc_pred, eta):
        diff = fc_target - fc_pred
        r = rmse(fc_target, fc_pred, axis=1)[:, None]
        return (jnp.clip(wLRE + eta * diff * r, 0, None),
                jnp.clip(wFFI - eta * diff * r, 0, None))

    noise_shape = (n_steps, 1, n)

    # ---- one iteration, written once; used eagerly or under jax.jit -------
    def iteration(cfg, hist, window, key, eta, do_eib):
        cfg = cfg.copy()
        mon = eqx.tree_at(lambda m: m.history, monitor, hist)
        raw = model_short(cfg)
        bold = mon(raw).ys[0, 0, :]
        k = raw.data.shape[0]
        hist = jnp.roll(hist, -k, axis=0).at[-k:, :, :].set(raw.data[:, 0:1, :])
        cfg.initial_state.dynamics = raw.data[-1]
        key, sub = jax.random.split(key)
        cfg._internal.noise_samples = jax.random.normal(sub, noise_shape)
        cfg.dynamics.J_i = fic_rule(cfg.dynamics.J_i, raw.data,
                                    eta_fic_eib if do_eib else eta_fic)
        mean_se = jnp.mean(raw.data[:, 0, :])
        metrics = (mean_se,)
        if do_eib:
            window = jnp.roll(window, -1, axis=0).at[-1, 0, :].set(bold)
            fc_pred = compute_fc(window)
            cc = cfg.coupling.coupling
            cc.wLRE, cc.wFFI = eib_rule(cc.wLRE, cc.wFFI, fc_pred, eta)
            metrics = (mean_se, fc_corr(fc_pred, fc_target),
                       jnp.sqrt(jnp.mean((fc_pred - fc_target) ** 2)))
        return cfg, hist, window, key, bold, metrics

    if jit:
        fic_step = jax.jit(functools.partial(iteration, do_eib=False))
        eib_step = jax.jit(functools.partial(iteration, do_eib=True))
    else:
        fic_step = functools.partial(iteration, do_eib=False)
        eib_step = functools.partial(iteration, do_eib=True)

    key = jax.random.key(42)
    key, sub = jax.random.split(key)
    state._internal.noise_samples = jax.random.normal(sub, noise_shape)
    hist = hist0
    # BOLD window: tutorial fills it with the last 150 FIC-phase BOLD samples;
    # we fill it with small random values (content does not affect timing).
    window = 0.01 * jax.random.normal(jax.random.key(7), (window_size, 1, n))
    dummy_window = jnp.zeros((1, 1, n))

    def run_phase(step, n_iter, cfg, hist, window, key, eib, total):
        bolds, mets = [], []
        for i in range(n_iter):
            eta = jnp.asarray(((i + 1) / total) * eta_eib)
            cfg, hist, w, key, bold, m = step(
                cfg, hist, window if eib else dummy_window, key, eta)
            if eib:
                window = w
            bolds.append(bold)
            mets.append(m)
        jax.block_until_ready((cfg, hist, window, bolds, mets))
        return cfg, hist, window, key, mets

    # warm-up (compilation for jit=True; first-call costs for eager)
    t0 = time.perf_counter()
    state, hist, _, key, _ = run_phase(fic_step, n_warmup, state, hist, window, key, False, 1)
    warm_fic_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    run_phase(eib_step, n_warmup, state, hist, window, key, True, extrapolate_fic_eib)
    warm_eib_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    state, hist, _, key, mets_fic = run_phase(fic_step, n_fic, state, hist, window, key, False, 1)
    fic_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    state, hist, window, key, mets_eib = run_phase(eib_step, n_fic_eib, state, hist, window,
                                                   key, True, extrapolate_fic_eib)
    eib_s = time.perf_counter() - t0

    fic_ms = fic_s / max(n_fic, 1) * 1e3
    eib_ms = eib_s / max(n_fic_eib, 1) * 1e3
    total = extrapolate_fic * fic_ms / 1e3 + extrapolate_fic_eib * eib_ms / 1e3
    return dict(
        peer="tvboptim EI_Tuning tutorial loop (Python loop over prepare()'d model)",
        model="EIBWongWang + EIBCoupling (wLRE, wFFI edge params), J_i per region",
        n_regions=n, dt_ms=dt, tr_ms=TR_MS, n_steps_per_iteration=n_steps,
        window_size=window_size,
        solver="BoundedSolver(Heun(), 0, 1)",
        bold="tvboptim HRFBold(period=720, downsample_period=4, voi=0) with rolling "
             "20 s history (first-order Volterra HRF convolution, = tvboptim Bold)",
        precision="float64 (jax_enable_x64)", jit=jit,
        how=("one jax.jit'd iteration function (sim + BOLD + updates) in a Python loop"
             if jit else "eager Python loop calling model_short(state) etc., as the tutorial")
        + f"; {n_warmup} untimed warm-up iterations per phase, then {n_fic} FIC and "
          f"{n_fic_eib} FIC+EIB timed iterations",
        setup_s=setup_s, transient_ms=transient_ms,
        warmup_fic_s=warm_fic_s, warmup_fic_eib_s=warm_eib_s,
        n_fic=n_fic, n_fic_eib=n_fic_eib,
        ms_per_fic_iteration=fic_ms, ms_per_fic_eib_iteration=eib_ms,
        us_per_step_fic=fic_ms * 1e3 / n_steps,
        extrapolated_iterations=f"{extrapolate_fic} FIC + {extrapolate_fic_eib} FIC+EIB",
        extrapolated_seconds=total,
        last_mean_S_e=float(mets_eib[-1][0]) if mets_eib else None,
        versions=_versions(),
    )
