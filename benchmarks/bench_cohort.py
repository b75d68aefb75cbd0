"""Cohort tuning: subjects per hour one by one, batched, and on a 2-worker Dask LocalCluster; cost per
iteration against region count; twin recovery.

Throughput (subjects per hour): the reference pipeline (5-minute transient, FIC 200, FIC+EIB 2000,
a 5-minute evaluation after each stage) for ``--subjects`` subjects of one
parcellation, each with its own SC (the base SC with log-normal noise, sd 0.2)
and the base FC (dk_average's empirical FC; for tvb-data's connectivities, a
twin FC simulated from the model).  Three ways, in one process, each timed
from the call to the results (compilation, and for Dask the cluster start,
included):

- one by one: ``run_experiment`` per subject (later subjects reuse the compilation);
- batched: one ``tune_cohort`` call, all subjects in one batch;
- Dask: ``tune_cohort_distributed`` on a 2-worker LocalCluster, two batches.

Each way runs two cohorts of the same shape: "cold" (the first call, compiling)
and "warm" (the rate a long cohort sees once compiled).

    python benchmarks/bench_cohort.py throughput --regions 84 192 --subjects 8 4 --json benchmarks/results/cohort_throughput.json

Cost: microseconds per FIC+EIB iteration (one TR, 180 Heun steps) of the
reference model after compilation, for one network and per member of a batch.

    python benchmarks/bench_cohort.py cost --regions 68 84 96 192 379 --batch 4 --json benchmarks/results/cohort_cost.json

Twins: ``--twins`` twins of dk_average, tuned in one batch by the reference
workflow; recovery of the true log(wLRE / wFFI) and the FC fit reached.

    python benchmarks/bench_cohort.py twins --twins 4 --json benchmarks/results/cohort_twins.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

import tvb_eib_plugin as eib
from tvb_eib_plugin.batch import stack_models, stack_trees
from tvb_eib_plugin.cohort import tune_cohort
from tvb_eib_plugin.distributed import tune_cohort_distributed
from tvb_eib_plugin.experiment import run_experiment
from tvb_eib_plugin.routines import FICEIB, TuningState
from tvb_eib_plugin.twins import cohort_recovery, twin_cohort, twin_subject

ROUTINES = ("fic", "fic_eib")


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def perturbed(base, k: int, seed: int = 0) -> list:
    """``k`` subjects of ``base``'s parcellation, each with its own SC (log-normal noise, sd 0.2, symmetric)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(k):
        z = np.triu(rng.standard_normal(base.weights.shape), 1)
        out.append(dataclasses.replace(base, weights=base.weights * np.exp(0.2 * (z + z.T)),
                                       name=f"{base.name}-sub{i:02d}"))
    return out


def base_connectome(n: int):
    # imported here, not at the top: Dask's worker processes re-import this script without its folder on the path
    from bench_schirner import _connectome

    return _connectome(n)


def cohort_of(n: int, k: int, seed: int = 0) -> list:
    """``k`` subjects of the ``n``-region parcellation with the base FC (a twin's where there is none)."""
    base = base_connectome(n)
    if base.fc_target is None:
        base, _ = twin_subject(base, seed=seed, spread=0.5, duration_ms=300000.0)
    return perturbed(base, k, seed)


def _timed(run, subjects) -> tuple[float, list[float]]:
    t0 = time.perf_counter()
    fits = run(subjects)
    return time.perf_counter() - t0, fits


def throughput(args) -> list[dict]:
    from dask.distributed import Client, LocalCluster

    rows = []
    for n, k in zip(args.regions, args.subjects * len(args.regions) if len(args.subjects) == 1 else args.subjects):
        # two cohorts of the same shape: the first call compiles, the second shows the steady rate
        cold, warm = cohort_of(n, k, seed=0), cohort_of(n, k, seed=1)
        print(f"{n} regions, {k} subjects", flush=True)

        def one_by_one(subjects):
            return [float(run_experiment(connectome=s, routines=ROUTINES, log=None)["fic_eib/evaluation"]["fc_corr"])
                    for s in subjects]

        def batched(subjects):
            tree = tune_cohort(subjects=subjects, routines=ROUTINES, log=None)
            return tree["fic_eib/evaluation"]["fc_corr"].values.ravel().tolist()

        modes = {"one_by_one": one_by_one, "batched": batched}
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
                Client(cluster) as client:

            def dask_2_workers(subjects):
                with tempfile.TemporaryDirectory() as out_dir:
                    tree = tune_cohort_distributed(subjects=subjects, routines=ROUTINES, out_dir=out_dir, client=client,
                                                   batch_size=-(-len(subjects) // 2), log=None)
                return tree["fic_eib/evaluation"]["fc_corr"].values.ravel().tolist()

            modes["dask_2_workers"] = dask_2_workers
            timings = {name: (_timed(run, cold), _timed(run, warm)) for name, run in modes.items()}
        row = dict(regions=n, source=cold[0].name.rsplit("-sub", 1)[0], subjects=k)
        for name, ((t_cold, fits_cold), (t_warm, fits_warm)) in timings.items():
            row[name] = dict(cold_s=t_cold, warm_s=t_warm, subjects_per_hour_cold=3600 * k / t_cold,
                             subjects_per_hour_warm=3600 * k / t_warm, fc_corr_warm=fits_warm)
        for name in ("batched", "dask_2_workers"):
            row[f"{name}_speedup_warm"] = timings["one_by_one"][1][0] / timings[name][1][0]
            row[f"{name}_speedup_cold"] = timings["one_by_one"][0][0] / timings[name][0][0]
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def _start(subjects, batched: bool, n_tr: int = 20):
    """A tuning start (after ``n_tr`` TRs) and its BOLD, for one network or a batch."""
    nets = [eib.network_from_connectome(s, delays=False, dtype=jnp.float32) for s in subjects]
    if not batched:
        sim = eib.simulate(nets[0], eib.initial_state(nets[0], 0), n_tr * 720.0)
        return TuningState(nets[0], sim.state), sim.bold
    net = stack_models(nets)
    sim = eib.simulate(net, stack_trees([eib.initial_state(m, i) for i, m in enumerate(nets)]), n_tr * 720.0)
    return TuningState(net, sim.state, tuple(range(len(nets)))), sim.bold


def cost(args) -> list[dict]:
    rows = []
    for n in args.regions:
        base = base_connectome(n)
        subjects = perturbed(base, args.batch)
        fc_target = np.stack([np.corrcoef(np.random.default_rng(i).normal(size=(n, 300))) * (1 - np.eye(n))
                              for i in range(args.batch)])
        routine = FICEIB(n_iterations=args.iterations, window=20, log_every=args.iterations)
        timings = {}
        for label, members in (("single", 1), ("batched", args.batch)):
            start, bold = _start(subjects[:members], members > 1)
            target = fc_target[:members] if members > 1 else fc_target[0]
            previous = {"fic": type("FICResult", (), {"history": {"bold": bold}})()}
            routine.run(start, target, previous, lambda _: None)  # compiles
            t0, c0 = time.perf_counter(), _cpu_seconds()
            routine.run(start, target, previous, lambda _: None)
            wall, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
            timings[label] = dict(us_per_iteration=1e6 * wall / args.iterations,
                                  us_per_member_iteration=1e6 * wall / args.iterations / members,
                                  cpu_us_per_member_iteration=1e6 * cpu / args.iterations / members)
        row = dict(regions=n, source=base.name, batch=args.batch, iterations=args.iterations,
                   **{f"{k}_{m}": v for k, t in timings.items() for m, v in t.items()},
                   batch_gain=timings["single"]["us_per_member_iteration"] / timings["batched"]["us_per_member_iteration"])
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def twins(args) -> list[dict]:
    dk = eib.load_dataset("dk_average")
    t0 = time.perf_counter()
    cohort, truths = twin_cohort(dk, args.twins, spread=args.spread)
    made = time.perf_counter() - t0
    t0 = time.perf_counter()
    tree = tune_cohort(subjects=cohort, routines=ROUTINES, log=None)
    tuned = time.perf_counter() - t0
    rows = cohort_recovery(tree, truths)
    for r in rows:
        r.update(fic_fc_corr=float(tree["fic/evaluation"]["fc_corr"].sel(subject=r["subject"], seed=r["seed"])),
                 truth_fc_corr=_truth_fit(next(c for c in cohort if c.name == r["subject"]), truths[r["subject"]]),
                 twin_seconds=made / args.twins, tuning_seconds_batch=tuned)
        print(json.dumps(r), flush=True)
    keys = ("ratio_corr", "region_ratio_corr", "J_i_corr", "fc_corr", "fc_rmse", "truth_fc_corr")
    summary = {k: dict(mean=float(np.mean([r[k] for r in rows])), min=float(np.min([r[k] for r in rows])),
                       max=float(np.max([r[k] for r in rows]))) for k in keys}
    print(json.dumps(summary, indent=1))
    return rows + [dict(summary=summary)]


def _truth_fit(twin, truth) -> float:
    """The ceiling: fc_corr of the true model itself, evaluated as the tuned ones are (another noise
    realisation, 5-minute transient, 5 minutes of BOLD, first 20 samples dropped)."""
    from tvb_eib_plugin.evaluation import evaluate
    from tvb_eib_plugin.experiment import experiment_network, get_experiment

    settings = get_experiment("EI_Tuning_FIC_EIB_Optimization")
    net = experiment_network(settings, twin).with_tuned(J_i=truth.J_i, wLRE=truth.wLRE, wFFI=truth.wFFI)
    state = eib.simulate(net, eib.initial_state(net, 123), settings.transient_ms).state
    return evaluate(net, state, twin.fc_target, jax.random.key(7), settings.eval_ms, settings.eval_discard).fc_corr


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("throughput")
    p.add_argument("--regions", type=int, nargs="+", default=[84, 192])
    p.add_argument("--subjects", type=int, nargs="+", default=[8, 4], help="subjects per parcellation")
    p = sub.add_parser("cost")
    p.add_argument("--regions", type=int, nargs="+", default=[68, 84, 96, 192, 379])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--iterations", type=int, default=100)
    p = sub.add_parser("twins")
    p.add_argument("--twins", type=int, default=4)
    p.add_argument("--spread", type=float, default=1.0)
    for p in sub.choices.values():
        p.add_argument("--json", help="write the rows here")
    args = parser.parse_args(argv)
    rows = dict(throughput=throughput, cost=cost, twins=twins)[args.what](args)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(dict(jax=jax.__version__, devices=len(jax.devices()), rows=rows), f, indent=1)


if __name__ == "__main__":
    main()
