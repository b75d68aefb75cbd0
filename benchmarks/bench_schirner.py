"""The paper's fit (Schirner2023 experiment): quality and cost of a schedule, and cost against region count.

Quality: run the experiment's variants (EI: wLRE and wFFI tuned, E: wLRE only,
global: one global coupling) with a given annealing schedule on dk_average
and report the evaluated fc_corr / fc_rmse (a fresh simulation, first 50 TRs
dropped: FC over its first 20 minutes and over all of its 57.6 minutes), the
simulated hours of tuning, wall time and CPU seconds (all threads of this
process), and the iteration where the in-loop window FC first reached 0.90
and 0.95; beside the fresh fit, the in-loop one: the last window's (fc_corr_in_loop, what the authors'
program reports) and each annealing stage's (its last record: the mean of its last record_every TRs).
``--experiment Schirner2023Text`` runs the preset as the paper's text reads (one continuous run);
``--continuous`` runs the code preset without its per-stage restarts.  Each run's results tree is saved
beside the JSON.

    python benchmarks/bench_schirner.py quality --stages 5 --stage-iterations 4000 --variants EI E E_noFFI global \
        --json benchmarks/results/schirner_5x4000.json

Cost: seconds of FIC+EIB tuning per simulated hour (after compilation) on
dk_average (84 regions), tvb-data connectivities (68, 96, 192) and a
379-region synthetic SC (random positions in a brain-sized ellipsoid,
distance-dependent weights and tract lengths), with the paper's settings
(Euler-Maruyama, dt 1 ms, delays at 3 mm/ms, Balloon-Windkessel BOLD, rate
FIC); and the paper's whole schedule (6 stages of 10 h) extrapolated from
it, next to the 120 CPU-hours per subject the paper reports.

    python benchmarks/bench_schirner.py cost --regions 68 84 96 192 379 --iterations 200 [--cost]

``--cost`` also prints the per-step cost model of each size's simulation step (benchmarks/cost_model.py:
flops, bytes, kernels, measured time, implied GFLOP/s and GB/s), one network and a batch of 4.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import time

import jax
import jax.numpy as jnp
import numpy as np

import tvb_eib_plugin as eib
from tvb_eib_plugin._io.data import Connectome
from tvb_eib_plugin._experiments.experiment import get_experiment, run_experiment
from tvb_eib_plugin._simulation.metrics import fc, fc_corr, fc_rmse
from tvb_eib_plugin._io.results import save_results
from tvb_eib_plugin.routines import FICEIB, TuningState, annealing_schedule

PAPER_CPU_HOURS = 120.0  # per subject, 379 regions, as reported
PAPER_SIM_HOURS = 60.0  # 6 stages of 10 simulated hours


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def first_crossing(history, threshold: float):
    """The first recorded iteration whose window fc_corr reaches ``threshold`` (None if never)."""
    corr = np.asarray(history["fc_corr"].values)
    hit = np.nonzero(corr >= threshold)[0]
    return None if len(hit) == 0 else int(history["iteration"].values[hit[0]])


def stage_fits(history) -> list[float]:
    """Each annealing stage's last in-loop window fit record (the mean of its last ``record_every`` TRs)."""
    stage, corr = np.asarray(history["stage"].values), np.asarray(history["fc_corr"].values)
    return [float(corr[stage == s][-1]) for s in np.unique(stage)]


def quality(args) -> list[dict]:
    base = get_experiment(args.experiment)
    tr_h = base.tr_ms / 3.6e6
    rows = []
    lengths = args.stage_iterations * args.stages if len(args.stage_iterations) == 1 else args.stage_iterations
    schedule = annealing_schedule(len(lengths), lengths)
    name = "+".join(map(str, lengths)) if len(set(lengths)) > 1 else f"{len(lengths)}x{lengths[0]}"
    for variant in args.variants:
        rs = {"fic_eib": {"schedule": schedule}}
        if args.continuous:
            rs["fic_eib"]["restart"] = "continuous"
        if variant == "global":
            rs = {}
        t0, c0 = time.perf_counter(), _cpu_seconds()
        tree = run_experiment(args.experiment, variant=variant, seed=args.seed, log=print if args.verbose else None,
                              routine_settings=rs)
        wall, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
        last = list(tree.children)[-1]
        settings = json.loads(tree.attrs["settings"])
        fic_its = settings["routine_settings"]["fic"]["n_iterations"]
        if last == "fic_eib":
            tuned_trs = fic_its + sum(lengths)
            hist = tree["fic_eib/history"]
            cross = {t: first_crossing(hist, t) for t in (0.90, 0.95)}
            in_loop = dict(fc_corr_in_loop=float(tree["fic_eib"].fc_corr_in_loop),
                           fc_rmse_in_loop=float(tree["fic_eib"].fc_rmse_in_loop),
                           stage_window_fc_corr=stage_fits(hist))
        else:
            in_loop = dict(fc_corr_in_loop=None, fc_rmse_in_loop=None, stage_window_fc_corr=None)
            g = settings["routine_settings"]["global_coupling"]
            n_values = g.get("n_values", 8)
            tuned_trs = fic_its + n_values * (g.get("fic_iterations", 1000) + g.get("score_iterations", 600))
            cross = {0.90: None, 0.95: None}
        ev = tree[f"{last}/evaluation"]
        bold = jnp.asarray(ev["bold"].values[ev.attrs["bold_discarded"]:][:int(1200000 / base.tr_ms)], jnp.float64)
        fc20 = fc(bold)
        target = jnp.asarray(tree["fc_target"].values)
        if args.json:
            save_results(tree, args.json.replace(".json", f"_{variant}.nc"), overwrite=True)
        row = dict(experiment=args.experiment + (" continuous" if args.continuous else ""), variant=variant, stage=last,
                   schedule=name, **in_loop,
                   fc_corr=float(ev.fc_corr), fc_rmse=float(ev.fc_rmse),
                   eval_minutes=(len(ev["bold"]) - ev.attrs["bold_discarded"]) * base.tr_ms / 60000,
                   fc_corr_20min=float(fc_corr(fc20, target)), fc_rmse_20min=float(fc_rmse(fc20, target)),
                   tuned_sim_hours=tuned_trs * tr_h, wall_s=wall, cpu_s=cpu,
                   window_reached_0_90_at=cross[0.90], window_reached_0_95_at=cross[0.95],
                   seed=args.seed, tuning_wall_s=float(tree[last].attrs.get("wall_time_s", np.nan)))
        print(json.dumps(row))
        rows.append(row)
    print("\n| experiment | variant | schedule | fc_corr (57.6 min) | fc_rmse | in-loop r | in-loop rmse | "
          "fc_corr (20 min) | fc_rmse | tuned sim h | wall s | CPU s | window >= 0.90 / 0.95 at |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        loop = "| | |" if r["fc_corr_in_loop"] is None else f"| {r['fc_corr_in_loop']:.4f} | {r['fc_rmse_in_loop']:.4f} |"
        print(f"| {r['experiment']} | {r['variant']} | {r['schedule'] if r['stage'] == 'fic_eib' else 'G sweep'} | "
              f"{r['fc_corr']:.4f} | {r['fc_rmse']:.4f} {loop} {r['fc_corr_20min']:.4f} | {r['fc_rmse_20min']:.4f} | "
              f"{r['tuned_sim_hours']:.2f} | {r['wall_s']:.0f} | {r['cpu_s']:.0f} | "
              f"{r['window_reached_0_90_at']} / {r['window_reached_0_95_at']} |")
    return rows


def synthetic_connectome(n: int, seed: int = 0) -> Connectome:
    """An SC of ``n`` regions: positions in a 140 x 170 x 110 mm ellipsoid, weights decaying with
    distance (lognormal spread, the weakest 30 % of pairs absent), tract lengths 1.2 x distance."""
    rng = np.random.default_rng(seed)
    pts = []
    while len(pts) < n:
        p = rng.uniform(-1, 1, 3)
        if p @ p <= 1:
            pts.append(p * [70.0, 85.0, 55.0])
    pts = np.asarray(pts)
    dist = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
    w = np.exp(-dist / 40.0) * rng.lognormal(0, 1, (n, n))
    w = np.triu(w, 1)
    w = w + w.T
    w[w < np.quantile(w[w > 0], 0.3)] = 0.0
    return Connectome(name=f"synthetic_{n}", weights=w, tract_lengths=1.2 * dist,
                      labels=[f"r{i}" for i in range(n)], speed=3.0)


def _connectome(n: int) -> Connectome:
    if n == 84:
        return eib.load_dataset("dk_average")
    if n in (66, 68, 76, 96, 192):
        return dataclasses.replace(eib.load_dataset(f"connectivity_{n}"), name=f"connectivity_{n}")
    return synthetic_connectome(n)


def cost(args) -> list[dict]:
    s = get_experiment("Schirner2023")
    rows = []
    for n in args.regions:
        con = _connectome(n)
        net = eib.network_from_connectome(con, normalise="max", delays=True, dt=s.dt, sigma_e=s.sigma_e,
                                          sigma_i=s.sigma_i, scheme=s.scheme, bold=s.bold, dtype=jnp.float32)
        state = eib.simulate(net, eib.initial_state(net, 0), 20 * s.tr_ms)
        start = TuningState(net, state.state).with_bold(state.bold)
        previous = {}
        fc_target = np.corrcoef(np.random.default_rng(1).normal(size=(n, 300))) * (1 - np.eye(n))
        routine = FICEIB(**{**s.routine_settings["fic_eib"], "log_every": args.iterations // 2, "record_every": 1,
                            "schedule": annealing_schedule(1, args.iterations, 0.1, 10)})
        routine.run(start, fc_target, previous, lambda _: None)  # compiles
        t0, c0 = time.perf_counter(), _cpu_seconds()
        routine.run(start, fc_target, previous, lambda _: None)
        wall, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
        sim_h = args.iterations * s.tr_ms / 3.6e6
        row = dict(regions=n, source=con.name, horizon=net.coupling.horizon, iterations=args.iterations,
                   wall_s_per_sim_hour=wall / sim_h, cpu_s_per_sim_hour=cpu / sim_h,
                   us_per_step=wall / (args.iterations * net.bold.steps_per_tr) * 1e6,
                   paper_schedule_cpu_hours=cpu / sim_h * PAPER_SIM_HOURS / 3600)
        print(json.dumps(row))
        rows.append(row)
    print("\n| regions | source | wall s / sim h | CPU s / sim h | us / step | paper schedule (60 sim h): CPU h "
          f"(paper: {PAPER_CPU_HOURS:.0f} at 379) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['regions']} | {r['source']} | {r['wall_s_per_sim_hour']:.0f} | {r['cpu_s_per_sim_hour']:.0f} | "
              f"{r['us_per_step']:.1f} | {r['paper_schedule_cpu_hours']:.2f} |")
    if args.cost:
        import cost_model

        model_rows = [cost_model.cost_row(f"{n}d", b) for n in args.regions for b in (None, 4)]
        print("\nPer-step cost model of the simulation step (float32; tuning adds its per-TR work):")
        cost_model.print_table(model_rows)
        for r in rows:
            r["cost_model"] = [m for m in model_rows if m["regions"] == r["regions"]]
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    q = sub.add_parser("quality")
    q.add_argument("--stages", type=int, default=6)
    q.add_argument("--stage-iterations", type=int, nargs="+", default=[2000],
                   help="TRs per stage, or one number per stage (then --stages is their number)")
    q.add_argument("--variants", nargs="+", default=["EI", "E", "E_noFFI", "global"])
    q.add_argument("--experiment", default="Schirner2023", help="Schirner2023 (the released code's conventions) "
                                                                "or Schirner2023Text (the paper's text)")
    q.add_argument("--continuous", action="store_true", help="no per-stage restarts (restart='continuous')")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--verbose", action="store_true")
    c = sub.add_parser("cost")
    c.add_argument("--regions", type=int, nargs="+", default=[68, 84, 96, 192, 379])
    c.add_argument("--iterations", type=int, default=200)
    c.add_argument("--cost", action="store_true", help="print the per-step cost model too")
    for sp in (q, c):
        sp.add_argument("--json", help="write the rows here")
    args = p.parse_args()
    rows = quality(args) if args.what == "quality" else cost(args)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(dict(rows=rows, jax=jax.__version__, devices=str(jax.devices())), f, indent=1)


if __name__ == "__main__":
    main()
