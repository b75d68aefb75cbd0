"""A starting coupling chosen for the data (``choose_coupling``) against the fixed G = 1, on twins.

A twin (``tvb_eib_plugin._cohorts.twins``) of a parcellation has a target FC simulated
(``--twin-ms``, 20 minutes by default) from a known truth made at coupling
``--truth-g`` (log-ratio spread 1 around it, J_i by FIC).  For each
parcellation, all in float32 with the reference workflow's model and FIC:

- ceiling: the true model's own fit, a fresh run of the truth (other noise, as long as the
  twin's) scored against the twin's FC;
- G = 1 and chosen G: the model at wLRE = wFFI = G after the reference FIC (200 TRs) at that G,
  scored on a fresh run as long as the twin's (before any EIB);
- with ``--eib N``: the reference FIC + FIC+EIB (N iterations) from each start
  (``run_experiment(coupling=G)``), evaluated as long as the twin's FC.

    python benchmarks/bench_coupling_choice.py ceiling --parcellation connectivity_192 --truth-g 0.125 0.25 0.5 1
    python benchmarks/bench_coupling_choice.py choice --parcellation connectivity_68 --truth-g 0.5 2 --eib 2000
    python benchmarks/bench_coupling_choice.py choice --parcellation dk_average --real --eib 2000 --twin-ms 3456000

``--real`` scores against the data set's own FC (dk_average's) instead of a twin's; its evaluations are
``--twin-ms`` long (57.6 minutes above, as Schirner2023's).

``fast``: the fast preset (``Schirner2023Fast``: its own model, sqrt(W) / max / 10 SC, delays, rate FIC,
Balloon BOLD) on a twin made with that model at ``--truth-g``: the whole preset run with its fixed G
(``--fixed-g``, the measured 2.5) and with ``coupling="auto"`` (its sweep, scored after a short FIC+EIB),
each evaluated as long as the twin's FC, against the true model's ceiling; one table row per twin:
parcellation | G chosen | fit fixed G | fit auto | ceiling | ratio (auto / ceiling) | CPU s.  Twins are
cached in ``--cache`` so that runs of one row can be split (``--runs fixed`` then ``--runs auto``).

    python benchmarks/bench_coupling_choice.py fast --parcellation connectivity_68 --truth-g 5
    python benchmarks/bench_coupling_choice.py fast --parcellation connectivity_192 --truth-g 1 --runs auto
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import tempfile
import time
import warnings

import jax.numpy as jnp
import numpy as np

import tvb_eib_plugin as eib
from tvb_eib_plugin._experiments.coupling_choice import DEFAULT_VALUES, choose_coupling
from tvb_eib_plugin._experiments.experiment import get_experiment, experiment_network
from tvb_eib_plugin._simulation.metrics import fc, fc_corr
from tvb_eib_plugin._model.network import initial_state
from tvb_eib_plugin.routines import FIC, TuningState
from tvb_eib_plugin.routines.registry import stage_key
from tvb_eib_plugin._cohorts.twins import twin_subject

EXPERIMENT = "EI_Tuning_FIC_EIB_Optimization"


def load(name: str):
    with warnings.catch_warnings():  # connectivity_192's two isolated regions: known, and said in the README
        warnings.simplefilter("ignore", eib.InputWarning)
        return eib.load_dataset(name) if name == "dk_average" else eib.load_connectome(name)


def fresh_fit(net, sim, target, duration_ms: float, seed: int, discard: int = 20) -> float:
    """fc_corr of a fresh run of ``net`` from ``sim`` (noise ``seed``) against ``target``."""
    run = eib.simulate(net, sim.with_key(stage_key(seed, "bench evaluation")), duration_ms)
    return float(fc_corr(fc(jnp.asarray(run.bold[discard:], jnp.float64)), jnp.asarray(target, jnp.float64)))


def twin(con, truth_g: float, twin_ms: float, seed: int = 0):
    settings = get_experiment(EXPERIMENT).replace(coupling=truth_g)
    return settings, twin_subject(con, seed=seed, experiment=settings, duration_ms=twin_ms)


def ceiling(con, settings, twin_con, truth, twin_ms: float, seed: int = 1) -> float:
    """The truth's own fit: the true model run again with other noise, scored against the twin's FC."""
    net = experiment_network(settings, twin_con).with_tuned(truth.params)
    start = eib.simulate(net, initial_state(net, stage_key(seed, "bench transient")), settings.transient_ms).state
    return fresh_fit(net, start, twin_con.fc_target, twin_ms, seed)


def start_fit(settings, twin_con, G: float, twin_ms: float, J_i=None, seed: int = 0) -> float:
    """The fit at wLRE = wFFI = G after the reference FIC there (or with ``J_i`` given), before EIB."""
    s = settings.replace(coupling=G)
    net = experiment_network(s, twin_con)
    state = eib.simulate(net, initial_state(net, stage_key(seed, "transient")), s.transient_ms).state
    if J_i is None:
        done = FIC().run(TuningState(net, state), None, {}, lambda _: None).state
        net, state = done.model, done.sim
    else:
        net = net.with_tuned(J_i=J_i)
    return fresh_fit(net, state, twin_con.fc_target, twin_ms, seed + 7)


def tuned_fit(twin_con, G: float, iterations: int, twin_ms: float) -> tuple[float | str, float]:
    """FIC + FIC+EIB from wLRE = wFFI = G; a run that diverges reports the stage it failed in."""
    t0 = time.perf_counter()
    try:
        tree = eib.run_experiment(EXPERIMENT, connectome=twin_con, coupling=G, routines=("fic", "fic_eib"),
                                  eval_ms=twin_ms, routine_settings={"fic_eib": {"n_iterations": iterations}},
                                  log=None)
    except eib.SimulationDiverged as err:
        return f"{type(err).__name__} in {err.stage}", time.perf_counter() - t0
    return float(tree["fic_eib/evaluation"].fc_corr), time.perf_counter() - t0


def cmd_ceiling(args) -> list[dict]:
    con, rows = load(args.parcellation), []
    for g in args.truth_g:
        t0 = time.perf_counter()
        settings, (twin_con, truth) = twin(con, g, args.twin_ms)
        row = dict(parcellation=args.parcellation, truth_G=g, ceiling=ceiling(con, settings, twin_con, truth,
                                                                              args.twin_ms),
                   seconds=time.perf_counter() - t0)
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def cmd_choice(args) -> list[dict]:
    con, rows = load(args.parcellation), []
    values = tuple(args.values) if args.values else DEFAULT_VALUES
    for g in args.truth_g:
        if args.real:  # the data set's own FC: no truth, no ceiling
            settings, twin_con = get_experiment(EXPERIMENT), con
            row = dict(parcellation=args.parcellation, target="its own FC")
        else:
            settings, (twin_con, truth) = twin(con, g, args.twin_ms)
            row = dict(parcellation=args.parcellation, truth_G=g,
                       ceiling=ceiling(con, settings, twin_con, truth, args.twin_ms))
        net = experiment_network(settings.replace(coupling=1.0), twin_con)
        state = eib.simulate(net, initial_state(net, stage_key(0, "transient")), settings.transient_ms).state
        row["fit_G1"] = start_fit(settings, twin_con, 1.0, args.twin_ms)
        if args.eib:
            row["eib_G1"], row["eib_G1_s"] = tuned_fit(twin_con, 1.0, args.eib, args.twin_ms)
        for criterion in args.criteria:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", eib.InputWarning)
                choice = choose_coupling(net, state, twin_con.fc_target, values=values, score_trs=args.score_trs,
                                         criterion=criterion)
            row.setdefault("sweep", {f"{v:.3g}": None if np.isnan(c) else (round(float(c), 3), round(float(r), 3))
                                     for v, c, r in zip(choice.values, choice.fc_corr, choice.fc_rmse)})
            out = dict(G=choice.G, sweep_seconds=round(choice.seconds, 1),
                       warnings=[str(w.message)[:60] for w in caught],
                       fit=start_fit(settings, twin_con, choice.G, args.twin_ms),
                       fit_sweep_J=start_fit(settings, twin_con, choice.G, args.twin_ms, J_i=choice.J_i))
            if args.eib:
                out["eib"], out["eib_s"] = tuned_fit(twin_con, choice.G, args.eib, args.twin_ms)
            row[f"by_{criterion}"] = out
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


FAST = "Schirner2023Fast"


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def fast_twin(con, truth_g: float, twin_ms: float, cache: str):
    """A twin of ``con`` made by the fast preset's model at ``truth_g`` (spread 1), cached on disk."""
    path = os.path.join(cache, f"{con.name}_fast_G{truth_g:g}_{twin_ms:g}ms.pkl")
    if os.path.exists(path):
        with open(path, "rb") as f:
            return pickle.load(f)
    made = twin_subject(con, seed=0, experiment=FAST, coupling=truth_g, duration_ms=twin_ms)
    os.makedirs(cache, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(made, f)
    return made


def fast_fit(twin_con, coupling, twin_ms: float) -> dict:
    """The whole fast preset on the twin at ``coupling`` (a number or "auto"), evaluated as long as its FC."""
    t0, c0 = time.perf_counter(), cpu_seconds()
    tree = eib.run_experiment(FAST, connectome=twin_con, coupling=coupling, eval_ms=twin_ms + 50 * 720.0,
                              log=None)
    out = dict(fit=float(tree["fic_eib/evaluation"].fc_corr), G=tree.attrs.get("coupling_chosen", coupling),
               wall_s=round(time.perf_counter() - t0, 1), cpu_s=round(cpu_seconds() - c0, 1))
    if "sweep" in tree.attrs:  # the chosen G's sweep: fit after the short FIC+EIB at each value
        sweep = json.loads(tree.attrs["sweep"])
        out["sweep"] = {f"{g:.3g}": c if c is None else round(c, 3) for g, c in zip(sweep["G"], sweep["fc_corr"])}
        out["sweep_s"] = round(float(tree.attrs["seconds"]), 1)
    return out


def cmd_fast(args) -> list[dict]:
    con, rows = load(args.parcellation), []
    for g in args.truth_g:
        twin_con, truth = fast_twin(con, g, args.twin_ms, args.cache)
        row = dict(parcellation=args.parcellation, truth_G=g)
        if "ceiling" in args.runs:
            row["ceiling"] = ceiling(con, get_experiment(FAST).replace(coupling=g), twin_con, truth, args.twin_ms)
        if "fixed" in args.runs:
            row["fixed"] = fast_fit(twin_con, args.fixed_g, args.twin_ms)
        if "auto" in args.runs:
            row["auto"] = fast_fit(twin_con, "auto", args.twin_ms)
        if "ceiling" in row and "auto" in row:
            row["ratio_auto"] = row["auto"]["fit"] / row["ceiling"]
        if "ceiling" in row and "fixed" in row:
            row["ratio_fixed"] = row["fixed"]["fit"] / row["ceiling"]
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("ceiling", "choice", "fast"))
    p.add_argument("--parcellation", default="connectivity_68")
    p.add_argument("--truth-g", type=float, nargs="+", default=[1.0])
    p.add_argument("--twin-ms", type=float, default=1200000.0, help="BOLD of the twin's FC and of every evaluation")
    p.add_argument("--values", type=float, nargs="*", help="the sweep (default: DEFAULT_VALUES)")
    p.add_argument("--score-trs", type=int, default=400)
    p.add_argument("--criteria", nargs="+", default=["fc_corr", "fc_rmse"], help="choose_coupling's criterion")
    p.add_argument("--real", action="store_true", help="the data set's own target FC (dk_average) instead of twins")
    p.add_argument("--eib", type=int, default=0, help="FIC+EIB iterations from each start (0: none)")
    p.add_argument("--runs", nargs="+", choices=("ceiling", "fixed", "auto"), default=["ceiling", "fixed", "auto"],
                   help="fast: what to run for each twin")
    p.add_argument("--fixed-g", type=float, default=2.5, help="fast: the preset's fixed G (schirner2023.G_CODE)")
    p.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "tvb_eib_twins"),
                   help="fast: where twins are kept")
    p.add_argument("--json", help="write the rows here")
    args = p.parse_args()
    rows = {"ceiling": cmd_ceiling, "choice": cmd_choice, "fast": cmd_fast}[args.what](args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
