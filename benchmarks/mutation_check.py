"""Mutation check of the numerical core: do the fast tests catch plausible one-line bugs?

A curated list of mutants (sign flips, transposes, off-by-one in delays and windows, swapped
arguments, changed constants) of the model, integration, coupling, BOLD (HRF and Balloon-Windkessel),
FC window, metrics and the FIC / EIB / gradient update rules.  Each mutant is applied to a copy of
``tvb_eib_plugin/`` and ``tests/`` in a temporary folder (the working tree is never touched); the fast
tests run there with ``PYTHONPATH`` set to the copy (checked: the copy is what gets imported) and stop
at the first failure, which names the killer.  Prints a table and the score over non-equivalent mutants.

    python benchmarks/mutation_check.py                    # every mutant (about 20-40 minutes on 2 cores)
    python benchmarks/mutation_check.py --list             # the mutants and whether each still applies
    python benchmarks/mutation_check.py -k kappa eib_row   # only mutants whose name contains one of these
    python benchmarks/mutation_check.py --json out.json --timeout 300

A mutant whose source line is no longer in the package is reported as ``stale``: update its snippet.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: the fast tests, cheapest and most specific first (so the killer named is the most telling one);
#: the pinned runs (15 s and 20 s) come last and catch whatever moves the published numbers
FAST_TESTS = [
    "tests/test_update_rules.py",
    "tests/test_independent_references.py",
    "tests/test_export_results_cli.py::"
    "test_exported_simulator_gets_nsig_half_sigma_squared_and_follows_the_plugins_noisy_run",
    "tests/test_routines.py::test_fic_update_moves_J_i_against_the_excitation_error",
    "tests/test_routines.py::test_eib_update_signs_and_bounds",
    "tests/test_schirner.py::test_balloon_reaches_its_analytic_steady_state_and_rests_at_zero",
    "tests/test_schirner.py::test_euler_maruyama_step_and_firing_rates_are_what_they_say",
    "tests/test_schirner.py::test_fc_window_moments_equal_the_fc_of_the_samples_through_wraps_and_length_changes",
    "tests/test_schirner.py::test_schedules_are_data",
    "tests/test_tvb_equivalence.py::test_dfun_equals_tvb_on_random_states",
    "tests/test_tvb_equivalence.py::test_transfer_is_finite_and_continuous_at_its_singularity",
    "tests/test_tvb_equivalence.py::test_bold_equals_tvb_bold_monitor_on_the_same_input",
    "tests/test_simulation.py::test_noise_follows_tvb_additive_convention",
    "tests/test_simulation.py::test_states_stay_in_bounds_and_shapes_are_labelled_by_tr",
    "tests/test_gradient.py::test_hand_written_adjoint_equals_autodiff",
    "tests/test_pinned.py::test_reference_run_float32_is_pinned",
    "tests/test_pinned.py::test_short_schirner2023_run_is_pinned_stage_by_stage",
]


@dataclasses.dataclass(frozen=True)
class Mutant:
    name: str
    path: str  # relative to the repository root
    old: str  # must occur exactly once in the file
    new: str
    what: str
    equivalent: str | None = None  # why it cannot be caught (it computes the same), if so: left out of the score


def _m(name, module, old, new, what, equivalent=None):
    return Mutant(name, f"tvb_eib_plugin/{module}", old, new, what, equivalent)


MUTANTS = [
    # -- the three the issue demonstrated ------------------------------------------------------------
    _m("eib_row_scaling_sender", "routines/eib.py", "(rmse_scale * row_rmse)[:, None]",
       "(rmse_scale * row_rmse)[None, :]", "EIB step scaled by the sending region's RMSE"),
    _m("eib_fc_win_target_swapped", "routines/eib.py",
       "eib_update(model.coupling.wLRE, model.coupling.wFFI, fc_win, fc_target, eta, mask,",
       "eib_update(model.coupling.wLRE, model.coupling.wFFI, fc_target, fc_win, eta, mask,",
       "fc_win and fc_target swapped in the FIC+EIB chunk: every step pushes FC away from the target"),
    _m("balloon_kappa_0.41", "_model/balloon.py", "kappa: float = 1 / 0.65,", "kappa: float = 1 / 0.41,",
       "Balloon-Windkessel signal decay kappa 1/0.65 -> 1/0.41"),
    # -- node model ----------------------------------------------------------------------------------
    _m("model_J_i_sign", "_model/node.py",
       "p.w_p * p.J_N * S_e - p.J_i * S_i + p.W_e", "p.w_p * p.J_N * S_e + p.J_i * S_i + p.W_e",
       "local inhibition excites"),
    _m("model_lamda_dropped", "_model/node.py", "p.lamda * p.J_N * c_ffi", "p.J_N * c_ffi",
       "feedforward inhibition without lamda"),
    _m("model_c_ffi_into_excitation", "_model/node.py", "p.J_N * c_lre + p.I_ext", "p.J_N * c_ffi + p.I_ext",
       "excitatory pool fed by the FFI stream"),
    _m("model_gating_S_i", "_model/node.py", "(1.0 - S_e) * r_e * p.gamma_e", "(1.0 - S_i) * r_e * p.gamma_e",
       "NMDA saturation on the wrong population"),
    _m("model_tau_e_for_i", "_model/node.py", "dS_i = -S_i / p.tau_i", "dS_i = -S_i / p.tau_e", "GABA decays with tau_e"),
    _m("model_transfer_floor", "_model/node.py", "xp.maximum(d * x, -60.0)", "xp.maximum(d * x, -6.0)",
       "transfer function floor moved into the working range"),
    # -- integration ---------------------------------------------------------------------------------
    _m("heun_no_noise_in_predictor", "_model/integrate.py", "pe, pi = _clamp(predictor(S_e, f_e, z_e, dt)),",
       "pe, pi = _clamp(predictor(S_e, f_e, None, dt)),", "predictor without the noise increment"),
    _m("heun_predictor_unclamped", "_model/integrate.py", "pe, pi = _clamp(predictor(S_e, f_e, z_e, dt)),",
       "pe, pi = predictor(S_e, f_e, z_e, dt),", "predictor not clamped to [0, 1]"),
    _m("heun_full_step_corrector", "_model/integrate.py", "half = 0.5 * dt", "half = dt",
       "corrector with dt instead of dt/2"),
    _m("noise_dt_not_sqrt", "_model/integrate.py", "h.sigma[i] * jnp.sqrt(jnp.asarray(h.dt, dtype))",
       "h.sigma[i] * jnp.asarray(h.dt, dtype)", "noise increment sigma dt instead of sigma sqrt(dt)"),
    _m("noise_same_key_both", "_model/integrate.py", "draw = jax.random.normal(keys[i],", "draw = jax.random.normal(keys[0],",
       "S_e and S_i get the same noise draws"),
    # -- coupling and delays -------------------------------------------------------------------------
    _m("coupling_transposed", "_model/coupling.py",
       "c = ec.stacked @ history[0]", "c = jnp.swapaxes(ec.stacked, 1, 2) @ history[0]",
       "W^T: region i receives what it sends"),
    _m("coupling_ffi_uses_wLRE", "_model/coupling.py", "c.weights * c.wFFI]", "c.weights * c.wLRE]",
       "FFI stream scaled by wLRE"),
    _m("delay_off_by_one", "_model/coupling.py",
       "base = ((c.horizon - c.idelays) * n", "base = ((c.horizon - 1 - c.idelays) * n",
       "every delayed source one step late"),
    _m("delay_row_of_step", "_model/coupling.py", "((step - 1) % ec.horizon) * n", "(step % ec.horizon) * n",
       "delayed read relative to the wrong step"),
    _m("delay_floor_not_rint", "_model/coupling.py", "np.rint(np.asarray(delays_ms, dtype=np.float64) / dt)",
       "np.floor(np.asarray(delays_ms, dtype=np.float64) / dt)", "delays truncated instead of rounded as TVB does"),
    _m("history_one_copy", "_model/coupling.py",
       "    return jax.lax.dynamic_update_slice(history, S_e, ((row + horizon) * n,))", "    return history",
       "history ring written once, not in both rows"),
    # -- BOLD: HRF kernel and Balloon-Windkessel ------------------------------------------------------
    _m("hrf_lag_off_by_one", "_model/bold.py", "by_lag[1 : n_kernel + 1] = kernel", "by_lag[0:n_kernel] = kernel",
       "kernel paired with lags one stock sample early"),
    _m("hrf_no_minus_one", "_model/bold.py",
       "bold = cfg.k1_V0 * (weights @ buffer - 1.0)", "bold = cfg.k1_V0 * (weights @ buffer)",
       "BOLD without TVB's -1 offset"),
    _m("hrf_kernel_decay", "_model/bold.py", "np.exp(-0.5 * t_s / tau_s)", "np.exp(-t_s / tau_s)",
       "HRF kernel decays twice as fast"),
    _m("balloon_gamma_0.65", "_model/balloon.py", "gamma: float = 1 / 0.41,", "gamma: float = 1 / 0.65,",
       "flow elimination gamma 1/0.41 -> 1/0.65 (kappa and gamma swapped)"),
    _m("balloon_tau_0.89", "_model/balloon.py", "tau: float = 0.98,", "tau: float = 0.89,", "transit time 0.98 -> 0.89 s"),
    _m("balloon_k3_sign", "_model/balloon.py", "k3=c(2 * rho - 0.2)", "k3=c(2 * rho + 0.2)", "k3 = 2 rho + 0.2"),
    _m("balloon_alpha_not_inverse", "_model/balloon.py", "v_alpha = jnp.power(st.v, 1.0 / cfg.alpha)",
       "v_alpha = jnp.power(st.v, cfg.alpha)", "outflow v^alpha instead of v^(1/alpha)"),
    _m("balloon_extraction_exponent", "_model/balloon.py", "jnp.power(1.0 - cfg.rho, 1.0 / st.f)",
       "jnp.power(1.0 - cfg.rho, st.f)", "oxygen extraction (1 - rho)^f"),
    _m("balloon_step_units", "_model/balloon.py", "h = cfg.step_ms / 1000.0", "h = cfg.step_ms / 100.0",
       "Euler step in units of 0.1 s"),
    # -- FC window and metrics -----------------------------------------------------------------------
    _m("window_leaving_off_by_one", "_simulation/window.py", "w.ring[(w.count - w.length) % w.capacity]",
       "w.ring[(w.count - w.length + 1) % w.capacity]", "the wrong sample leaves the window"),
    _m("window_full_strict", "_simulation/window.py", "full = (w.count >= w.length)", "full = (w.count > w.length)",
       "window keeps one sample too many once full"),
    _m("window_rebuild_size", "_simulation/window.py", "inside = (age < size)", "inside = (age <= size)",
       "rebuilt window one sample longer"),
    _m("window_cov_unbiased_mix", "_simulation/window.py", "cov = w.outer / size - jnp.outer(mean, mean)",
       "cov = w.outer / (size - 1) - jnp.outer(mean, mean)", "covariance with mixed normalisations"),
    _m("fc_global_mean", "_simulation/metrics.py", "x = bold - bold.mean(axis=0)", "x = bold - bold.mean()",
       "FC of signals centred on the grand mean"),
    _m("fc_corr_with_diagonal", "_simulation/metrics.py", "iu = jnp.triu_indices(fc_sim.shape[-1], k=1)",
       "iu = jnp.triu_indices(fc_sim.shape[-1], k=0)", "fc_corr over the upper triangle with its zero diagonal"),
    _m("fc_rmse_sum", "_simulation/metrics.py", "return jnp.sqrt(jnp.mean((fc_sim - fc_target) ** 2))",
       "return jnp.sqrt(jnp.sum((fc_sim - fc_target) ** 2))", "RMSE as a root sum of squares"),
    _m("rowwise_rmse_columns", "_simulation/metrics.py", "(fc_target - fc_sim) ** 2, axis=1)", "(fc_target - fc_sim) ** 2, axis=0)",
       "per-region RMSE over columns (the same for symmetric FCs; wrong for any other input)"),
    # -- FIC and EIB rules and the FIC+EIB loop --------------------------------------------------------
    _m("fic_target_times_S_e", "routines/fic.py", "- target * mean_S_i)", "- target * mean_S_e)",
       "gating FIC: target times S_e instead of S_i"),
    _m("fic_gating_populations_swapped", "routines/fic.py", "rec.mean_S[0], rec.mean_S[1], eta, target",
       "rec.mean_S[1], rec.mean_S[0], eta, target", "gating FIC reads S_i as S_e"),
    _m("fic_rate_populations_swapped", "routines/fic.py", "rec.mean_rate[0], rec.mean_rate[1], eta, target",
       "rec.mean_rate[1], rec.mean_rate[0], eta, target", "rate FIC reads r_I as r_E"),
    _m("fic_rate_no_floor", "routines/fic.py",
       "return jnp.maximum(J_i + eta * (rate_i * rate_e - target * rate_i), 0.0)",
       "return J_i + eta * (rate_i * rate_e - target * rate_i)", "rate FIC lets J_i go negative"),
    _m("eib_wFFI_sign", "routines/eib.py", "jnp.maximum(wFFI - step, 0.0)", "jnp.maximum(wFFI + step, 0.0)",
       "wFFI moves with wLRE"),
    _m("eib_mask_transposed", "routines/eib.py", "return step if mask is None else step * mask",
       "return step if mask is None else step * mask.T",
       "update mask transposed (the same for a symmetric SC such as dk_average; TVB's may be directed)"),
    _m("eib_warmup_off_by_one", "routines/schedule.py",
       "return (k + 1) / n_iterations * eta_eib", "return k / n_iterations * eta_eib",
       "warm-up ramp starts at 0"),
    _m("eib_warmup_branches_swapped", "routines/eib.py",
       "jnp.where(hp.warmup, warmup_rate(k, hp.iterations, hp.eta), hp.eta)",
       "jnp.where(hp.warmup, hp.eta, warmup_rate(k, hp.iterations, hp.eta))",
       "warm-up on the stages without it"),
    _m("eib_fic_rate_and_target_swapped", "routines/eib.py",
       "fic_step(rule, model.node.J_i, rec, hp.eta_fic, hp.target)",
       "fic_step(rule, model.node.J_i, rec, hp.target, hp.eta_fic)",
       "FIC in the loop with eta and target swapped"),
    _m("eib_no_push", "routines/eib.py", "window = window_push(window, rec.bold)", "window = window",
       "the BOLD sample never enters the FC window (the window never advances)"),
    _m("annealing_rate_harmonic", "routines/schedule.py", "EIBStage(n, eta / 2**s, window * 2**s)",
       "EIBStage(n, eta / (s + 1), window * 2**s)", "annealing rate eta/(s+1) instead of halving"),
    _m("annealing_window_off_by_one", "routines/schedule.py", "EIBStage(n, eta / 2**s, window * 2**s)",
       "EIBStage(n, eta / 2**s, window * 2**(s + 1))", "annealing window doubled once too often"),
    # -- gradient fitting and its adjoint --------------------------------------------------------------
    _m("gradient_adjoint_with_delays", "routines/gradient.py",
       'fast = adjoint and ec.horizon == 1 and model.integrator.scheme == "heun"',
       'fast = adjoint and model.integrator.scheme == "heun"', "the delay-free adjoint used with delays"),
    _m("gradient_activity_first_steps", "routines/gradient.py", "S_e[-min(tail_steps, S_e.shape[0]):].mean(axis=0)",
       "S_e[:min(tail_steps, S_e.shape[0])].mean(axis=0)", "activity penalty on the first steps instead of the last"),
    _m("eib_hold_one_more", "routines/eib.py", "jnp.where(k < hp.hold,", "jnp.where(k <= hp.hold,",
       "EIB held one TR longer after a restart than window + lead-in"),
    _m("eib_restart_keeps_state", "routines/eib.py", "return initial_state(model, sim.key), empty",
       "return sim, empty", "a per-stage restart that does not reset the simulation state"),
    _m("adjoint_J_i_sign", "_model/node.py",
       "di = -q_e * p.J_i - w_i / p.tau_i - q_i", "di = q_e * p.J_i - w_i / p.tau_i - q_i",
       "adjoint: sign of the J_i path into S_i"),
    _m("adjoint_coupling_transposed", "_simulation/adjoint.py", 'jnp.einsum("tkn,tm->knm", ct_c, prev_e)',
       'jnp.einsum("tkn,tm->kmn", ct_c, prev_e)', "adjoint: coupling gradient transposed"),
    # -- evaluation and per-TR records ---------------------------------------------------------------
    _m("evaluation_corr_all_swapped", "_simulation/evaluation.py", 'fc_corr(fc_sim, target), fc_corr(fc_sim, target, "all")',
       'fc_corr(fc_sim, target, "all"), fc_corr(fc_sim, target)', "fc_corr and fc_corr_all swapped"),
    _m("tr_mean_S_swapped", "_simulation/simulate.py", "mean_S = jnp.stack([S_e.mean(axis=0), S_i.mean(axis=0)])",
       "mean_S = jnp.stack([S_i.mean(axis=0), S_e.mean(axis=0)])", "per-TR means of S_e and S_i swapped"),
]


def _copy_tree(dest: str, root: str = ROOT) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for name in ("tvb_eib_plugin", "tests"):
        shutil.copytree(os.path.join(root, name), os.path.join(dest, name), ignore=ignore)
    shutil.copy(os.path.join(root, "pyproject.toml"), dest)


def applies(m: Mutant, root: str = ROOT) -> bool:
    with open(os.path.join(root, m.path)) as fh:
        return fh.read().count(m.old) == 1


def _env(copy: str, cache: str | None) -> dict:
    env = dict(os.environ, PYTHONPATH=copy, MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1")
    env.pop("XLA_FLAGS", None)
    if cache:  # functions the mutant does not touch compile once for the whole check
        env.update(JAX_COMPILATION_CACHE_DIR=cache, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                   JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    return env


def _imported_from(copy: str, env: dict) -> str | None:
    """Where ``tvb_eib_plugin`` is imported from under ``env``: inside ``copy``, or None when the copy
    does not import (a mutant that breaks the import); anything else is an error of the set-up."""
    out = subprocess.run([sys.executable, "-c", "import tvb_eib_plugin; print(tvb_eib_plugin.__file__)"],
                         cwd=copy, env=env, capture_output=True, text=True, timeout=300)
    inside = os.path.realpath(copy) + os.sep
    if out.returncode != 0 and inside in out.stderr:
        return None
    path = (out.stdout.strip().splitlines() or [""])[-1]
    if not os.path.realpath(path).startswith(inside):
        raise RuntimeError(f"the copy in {copy} is not what gets imported ({path!r}): {out.stderr[-500:]}")
    return path


def run_tests(copy: str, env: dict, timeout: float, tests=FAST_TESTS, every: bool = False) -> tuple[str, str, float]:
    """(status, killer or detail, seconds): status 'survived', 'killed', 'timeout' or 'error'.
    ``every``: run all the tests, not only up to the first failure, and name every killer."""
    cmd = [sys.executable, "-m", "pytest", *([] if every else ["-x"]), "-q", "-p", "no:cacheprovider", "--tb=line",
           "-rfE", *tests]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", f"no verdict within {timeout:.0f} s", time.perf_counter() - t0
    seconds = time.perf_counter() - t0
    out = proc.stdout + proc.stderr
    if proc.returncode == 0:
        return "survived", "", seconds
    # a test that fails, or one whose fixture raises (e.g. the package's own divergence check)
    failed = re.findall(r"^FAILED (\S+)", out, re.M)
    failed += [f"{t} (error)" for t in re.findall(r"^ERROR (\S+::\S+)", out, re.M)]
    if proc.returncode == 1 and failed:
        return "killed", ", ".join(f.split("::", 1)[-1] for f in failed), seconds
    errors = re.findall(r"^(?:ERROR|E) +(.+)$", out, re.M)
    return "error", (errors[0] if errors else out.strip().splitlines()[-1])[:120], seconds


def check(mutants, timeout: float, cache: bool, log=print, root: str = ROOT, tests=FAST_TESTS,
          every: bool = False) -> list[dict]:
    work = tempfile.mkdtemp(prefix="tvb_eib_mutation_")
    cache_dir = os.path.join(work, "jax_cache") if cache else None
    rows = []
    try:
        base = os.path.join(work, "unmutated")
        _copy_tree(base, root)
        env = _env(base, cache_dir)
        log(f"copies of {root} under {work}; the copy imported: {_imported_from(base, env)}")
        status, detail, seconds = run_tests(base, env, timeout * 3, tests)
        if status != "survived":
            raise RuntimeError(f"the fast tests do not pass on the unmutated copy ({status}: {detail})")
        log(f"unmutated: the fast tests pass in {seconds:.0f} s")
        for m in mutants:
            row = {"name": m.name, "file": m.path, "what": m.what, "equivalent": m.equivalent}
            if not applies(m, base):
                rows.append(dict(row, status="stale", killer="snippet not found once in the source", seconds=0.0))
                log(f"{m.name:34s} stale")
                continue
            copy = os.path.join(work, m.name)
            shutil.copytree(base, copy)
            target = os.path.join(copy, m.path)
            with open(target) as fh:
                text = fh.read()
            with open(target, "w") as fh:
                fh.write(text.replace(m.old, m.new))
            env = _env(copy, cache_dir)
            if _imported_from(copy, env) is None:
                status, killer, seconds = "error", "the mutated package does not import", 0.0
            else:
                status, killer, seconds = run_tests(copy, env, timeout, tests, every)
            rows.append(dict(row, status=status, killer=killer, seconds=seconds))
            log(f"{m.name:34s} {status:9s} {seconds:6.0f} s  {killer}")
            shutil.rmtree(copy, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def score(rows: list[dict]) -> tuple[int, int]:
    """(killed, non-equivalent mutants that ran): a timeout or an error (a fixture raising) counts as detected."""
    counted = [r for r in rows if r["status"] != "stale" and not r["equivalent"]]
    return sum(r["status"] in ("killed", "timeout", "error") for r in counted), len(counted)


def table(rows: list[dict]) -> str:
    lines = ["| mutant | file | what | killed by | status | s |", "|---|---|---|---|---|---|"]
    for r in rows:
        status = r["status"] + (" (equivalent: " + r["equivalent"] + ")" if r["equivalent"] else "")
        lines.append(f"| {r['name']} | {r['file'].replace('tvb_eib_plugin/', '')} | {r['what']} | {r['killer']} | "
                     f"{status} | {r['seconds']:.0f} |")
    killed, total = score(rows)
    lines.append(f"\nscore: {killed}/{total} non-equivalent mutants killed ({100 * killed / max(total, 1):.0f}%)")
    survivors = [r["name"] for r in rows if r["status"] == "survived"]
    if survivors:
        lines.append("survivors: " + ", ".join(survivors))
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-k", nargs="+", help="only mutants whose name contains one of these")
    p.add_argument("--list", action="store_true", help="list the mutants and whether each applies")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per mutant (default 300)")
    p.add_argument("--no-cache", action="store_true", help="no shared JAX compilation cache between mutants")
    p.add_argument("--json", help="also write the rows here")
    p.add_argument("--root", default=ROOT, help="the checkout to copy (default: this one), e.g. an older commit's "
                                                "export, to score its tests")
    p.add_argument("--every-killer", action="store_true", help="run every fast test on each mutant (slower) and name "
                                                                "all that fail, not only the first")
    p.add_argument("--tests", nargs="+", default=FAST_TESTS, help="the tests to run (default: the fast selection)")
    args = p.parse_args(argv)
    mutants = [m for m in MUTANTS if not args.k or any(k in m.name for k in args.k)]
    if args.list:
        for m in mutants:
            print(f"{m.name:34s} {'applies' if applies(m) else 'STALE  '}  {m.path}: {m.what}")
        return 0 if all(applies(m) for m in mutants) else 1
    rows = check(mutants, args.timeout, not args.no_cache, root=args.root, tests=args.tests, every=args.every_killer)
    print(table(rows))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    killed, total = score(rows)
    return 0 if total and killed >= 0.9 * total else 1


if __name__ == "__main__":
    sys.exit(main())
