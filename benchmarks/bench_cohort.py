"""Cohort tuning: subjects per hour one by one, batched, and on a 2-worker Dask LocalCluster; cost per
iteration against region count; twin recovery.

Throughput (subjects per hour): the reference pipeline (5-minute transient, FIC 200, FIC+EIB 2000,
a 5-minute evaluation after each stage) for ``--subjects`` subjects of one
parcellation, each with its own SC (the base SC with log-normal noise, sd 0.2)
and the base FC (dk_average's empirical FC; for tvb-data's connectivities, a
twin FC simulated from the model).  connectivity_192's max-normalised SC has
row sums about 8x dk_average's: at the reference G = 1 its model's own FC is
noise (the true model fits its twin FC at 0.04), so its cohort is made and
tuned at G = 0.3 (``COUPLING``; the true model then fits its twin at 0.44 over
a 5-minute evaluation).  Three ways, in one process, each timed
from the call to the results (compilation, and for Dask the cluster start,
included):

- one by one: ``run_experiment`` per subject (later subjects reuse the compilation);
- batched: one ``tune_cohort`` call, all subjects in one batch;
- Dask: ``tune_cohort_distributed`` on a 2-worker LocalCluster, two batches;
- batched on 2 host devices: one ``tune_cohort`` call in a child process started
  with the seed's ``XLA_FLAGS=--xla_force_host_platform_device_count=2``, so the
  batch is sharded over two CPU devices (the same user code).

Each way runs two cohorts of the same shape: "cold" (the first call, compiling)
and "warm" (the rate a long cohort sees once compiled).

    python benchmarks/bench_cohort.py throughput --regions 84 192 --subjects 8 4 --json benchmarks/results/cohort_throughput.json

Cost: microseconds per FIC+EIB iteration (one TR, 180 Heun steps) of the
reference model after compilation, for one network and per member of a batch
(spread over every local device; the second line splits the CPU into 2).  ``--model paper``
times the paper's model instead (720 Euler steps with delays per TR), and two ``--iterations``
values give the marginal cost per iteration, without the run's fixed part.

    python benchmarks/bench_cohort.py cost --regions 68 84 96 192 379 --batch 4 --json benchmarks/results/cohort_cost.json
    XLA_FLAGS=--xla_force_host_platform_device_count=2 python benchmarks/bench_cohort.py cost --json benchmarks/results/cohort_cost_2_host_devices.json
    python benchmarks/bench_cohort.py cost --model paper --regions 84 379 --batch 64 --iterations 100 300

Twins: ``--twins`` twins of dk_average, tuned in one batch by the reference
workflow (``--seeds``: each over several noise seeds, and their consensus);
recovery of the true log(wLRE / wFFI) and the FC fit reached, beside the fit
of each twin's true model.

    python benchmarks/bench_cohort.py twins --twins 4 --json benchmarks/results/cohort_twins.json
    python benchmarks/bench_cohort.py twins --twins 4 --seeds 0 1 2 3 --json benchmarks/results/cohort_twins_4seeds.json
    python benchmarks/bench_cohort.py twins --twins 4 --fic-eib-iterations 8000 --json benchmarks/results/cohort_twins_8000.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

import tvb_eib_plugin as eib
from tvb_eib_plugin._simulation.batch import shard_members, stack_models, stack_trees
from tvb_eib_plugin._cohorts.cohort import tune_cohort
from tvb_eib_plugin._cohorts.distributed import tune_cohort_distributed
from tvb_eib_plugin._experiments.experiment import get_experiment, run_experiment
from tvb_eib_plugin.routines import FICEIB, TuningState, annealing_schedule
from tvb_eib_plugin._cohorts.twins import cohort_recovery, twin_cohort, twin_subject

ROUTINES = ("fic", "fic_eib")
# the global coupling G of a parcellation whose SC is far stronger than dk_average's (see the docstring)
COUPLING = {192: 0.3}


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


def cohort_of(n: int, k: int, seed: int = 0) -> tuple[list, float | None]:
    """``k`` subjects of the ``n``-region parcellation with the base FC (a 20-minute twin's where there is
    none), and the fit of that twin's true model to its own FC (None for an empirical FC)."""
    base = base_connectome(n)
    ceiling = None
    if base.fc_target is None:
        base, truth = twin_subject(base, seed=seed, spread=0.5, coupling=COUPLING.get(n, 1.0))
        ceiling = _truth_fit(base, truth)
    return perturbed(base, k, seed), ceiling


def tuning_settings(n: int) -> dict:
    """The experiment overrides of an ``n``-region cohort: FIC + FIC+EIB, and the parcellation's G."""
    return dict(routines=ROUTINES, coupling=COUPLING.get(n, 1.0))


def tune_batched(subjects, settings: dict) -> list[float]:
    """One ``tune_cohort`` call over ``subjects``; the evaluated fc_corr of each."""
    tree = tune_cohort(subjects=subjects, log=None, **settings)
    return tree["fic_eib/evaluation"]["fc_corr"].values.ravel().tolist()


def _timed(run, subjects) -> tuple[float, list[float]]:
    t0 = time.perf_counter()
    fits = run(subjects)
    return time.perf_counter() - t0, fits


def throughput(args) -> list[dict]:
    from dask.distributed import Client, LocalCluster

    rows = []
    for n, k in zip(args.regions, args.subjects * len(args.regions) if len(args.subjects) == 1 else args.subjects):
        # two cohorts of the same shape: the first call compiles, the second shows the steady rate
        (cold, _), (warm, ceiling) = cohort_of(n, k, seed=0), cohort_of(n, k, seed=1)
        settings = tuning_settings(n)
        print(f"{n} regions, {k} subjects, G = {settings['coupling']}", flush=True)

        def one_by_one(subjects):
            return [float(run_experiment(connectome=s, log=None, **settings)["fic_eib/evaluation"]["fc_corr"])
                    for s in subjects]

        modes = {"one_by_one": one_by_one, "batched": lambda subjects: tune_batched(subjects, settings)}
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                          silence_logs=logging.WARNING) as cluster, \
                Client(cluster) as client:

            def dask_2_workers(subjects):
                with tempfile.TemporaryDirectory() as out_dir:
                    tree = tune_cohort_distributed(subjects=subjects, out_dir=out_dir, client=client,
                                                   batch_size=-(-len(subjects) // 2), log=None, **settings)
                return tree["fic_eib/evaluation"]["fc_corr"].values.ravel().tolist()

            modes["dask_2_workers"] = dask_2_workers
            timings = {name: (_timed(run, cold), _timed(run, warm)) for name, run in modes.items()}
        timings["batched_2_host_devices"] = _on_host_devices(n, k, 2)
        row = dict(regions=n, source=cold[0].name.rsplit("-sub", 1)[0], subjects=k, coupling=settings["coupling"],
                   twin_truth_fc_corr_warm=ceiling)
        for name, ((t_cold, fits_cold), (t_warm, fits_warm)) in timings.items():
            row[name] = dict(cold_s=t_cold, warm_s=t_warm, subjects_per_hour_cold=3600 * k / t_cold,
                             subjects_per_hour_warm=3600 * k / t_warm, fc_corr_warm=fits_warm)
        for name in ("batched", "dask_2_workers", "batched_2_host_devices"):
            row[f"{name}_speedup_warm"] = timings["one_by_one"][1][0] / timings[name][1][0]
            row[f"{name}_speedup_cold"] = timings["one_by_one"][0][0] / timings[name][0][0]
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def _on_host_devices(n: int, k: int, devices: int):
    """Cold and warm ``(seconds, fits)`` of the batched cohorts, timed in a child process with ``devices``
    CPU host devices (XLA reads the flag once, when the process starts its backend)."""
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "batched-child", "--regions", str(n),
                          "--subjects", str(k)], env=env, capture_output=True, text=True, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["devices"] == devices, got
    return tuple((got[f"{w}_s"], got[f"{w}_fits"]) for w in ("cold", "warm"))


def batched_child(args) -> list[dict]:
    """The batched cohorts of :func:`throughput` (same subjects), timed in this process; prints one JSON line."""
    n, k = args.regions[0], args.subjects[0]
    (cold, _), (warm, _) = cohort_of(n, k, seed=0), cohort_of(n, k, seed=1)
    row = dict(devices=len(jax.devices()))
    for name, subjects in (("cold", cold), ("warm", warm)):
        row[f"{name}_s"], row[f"{name}_fits"] = _timed(lambda c: tune_batched(c, tuning_settings(n)), subjects)
    print(json.dumps(row), flush=True)
    return [row]


def _network(con, model: str):
    """The reference model (Heun 4 ms, no delays, HRF BOLD) or the paper's (Schirner2023: Euler 1 ms,
    delays, Balloon BOLD), float32."""
    if model == "reference":
        return eib.network_from_connectome(con, delays=False, dtype=jnp.float32)
    s = get_experiment("Schirner2023")
    return eib.network_from_connectome(con, normalise="max", delays=True, dt=s.dt, sigma_e=s.sigma_e,
                                       sigma_i=s.sigma_i, scheme=s.scheme, bold=s.bold, dtype=jnp.float32)


def _routine(model: str, iterations: int) -> FICEIB:
    """FIC+EIB as the model's preset runs it, ``iterations`` in one compiled chunk."""
    if model == "reference":
        return FICEIB(n_iterations=iterations, window=20, log_every=iterations)
    s = get_experiment("Schirner2023")  # one restarted stage, as bench_schirner cost times it
    return FICEIB(**{**s.routine_settings["fic_eib"], "log_every": iterations, "record_every": 1,
                     "schedule": annealing_schedule(1, iterations, 0.1, 10)})


def _start(subjects, batched: bool, n_tr: int = 20, model: str = "reference"):
    """A tuning start (after ``n_tr`` TRs) and its BOLD, for one network or a batch."""
    nets = [_network(s, model) for s in subjects]
    tr = nets[0].bold.period_ms
    if not batched:
        sim = eib.simulate(nets[0], eib.initial_state(nets[0], 0), n_tr * tr)
        return TuningState(nets[0], sim.state), sim.bold
    net = shard_members(stack_models(nets))  # over every local device, as tune_cohort places a batch
    start = shard_members(stack_trees([eib.initial_state(m, i) for i, m in enumerate(nets)]))
    sim = eib.simulate(net, start, n_tr * tr)
    return TuningState(net, sim.state, tuple(range(len(nets)))), sim.bold


def cost(args) -> list[dict]:
    """Microseconds per FIC+EIB iteration, one network and per member of a batch.  With ``--iterations A B``
    it also gives the marginal cost, (t(B) - t(A)) / (B - A): the per-iteration cost without the run's
    fixed part (the start's window, the first carry, the records' transfer), which a short run inflates."""
    rows = []
    for n in args.regions:
        base = base_connectome(n)
        subjects = perturbed(base, args.batch)
        fc_target = np.stack([np.corrcoef(np.random.default_rng(i).normal(size=(n, 300))) * (1 - np.eye(n))
                              for i in range(args.batch)])
        timings = {}
        for label, members in (("single", 1), ("batched", args.batch)):
            start, bold = _start(subjects[:members], members > 1, model=args.model)
            start = start.with_bold(bold)
            target = fc_target[:members] if members > 1 else fc_target[0]
            walls, cpus = {}, {}
            for iterations in args.iterations:
                routine = _routine(args.model, iterations)
                routine.run(start, target, {}, lambda _: None)  # compiles
                t0, c0 = time.perf_counter(), _cpu_seconds()
                routine.run(start, target, {}, lambda _: None)
                walls[iterations], cpus[iterations] = time.perf_counter() - t0, _cpu_seconds() - c0
            first = args.iterations[0]  # the per-iteration figures are those of the first run
            timings[label] = dict(us_per_iteration=1e6 * walls[first] / first,
                                  us_per_member_iteration=1e6 * walls[first] / first / members,
                                  cpu_us_per_member_iteration=1e6 * cpus[first] / first / members)
            if len(args.iterations) > 1:
                a, b = args.iterations[0], args.iterations[-1]
                timings[label]["marginal_us_per_member_iteration"] = 1e6 * (walls[b] - walls[a]) / (b - a) / members
                timings[label]["fixed_ms"] = 1e3 * (walls[a] - a * (walls[b] - walls[a]) / (b - a))
        net = _network(base, args.model)
        row = dict(regions=n, source=base.name, model=args.model, steps_per_iteration=net.bold.steps_per_tr,
                   batch=args.batch, iterations=args.iterations, devices=len(jax.devices()),
                   device=jax.devices()[0].device_kind,
                   **{f"{k}_{m}": v for k, t in timings.items() for m, v in t.items()},
                   batch_gain=timings["single"]["us_per_member_iteration"] / timings["batched"]["us_per_member_iteration"])
        if len(args.iterations) > 1:
            row["marginal_batch_gain"] = (timings["single"]["marginal_us_per_member_iteration"]
                                          / timings["batched"]["marginal_us_per_member_iteration"])
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def twins(args) -> list[dict]:
    dk = eib.load_dataset("dk_average")
    t0 = time.perf_counter()
    cohort, truths = twin_cohort(dk, args.twins, spread=args.spread)
    made = time.perf_counter() - t0
    t0 = time.perf_counter()
    tree = tune_cohort(subjects=cohort, seeds=args.seeds, routines=ROUTINES, log=None,
                       routine_settings={"fic_eib": {"n_iterations": args.fic_eib_iterations}})
    tuned = time.perf_counter() - t0
    rows = cohort_recovery(tree, truths, pooled=len(args.seeds) > 1)
    ceiling = {c.name: _truth_fit(c, truths[c.name]) for c in cohort}
    for r in rows:
        r.update(truth_fc_corr=ceiling[r["subject"]], twin_seconds=made / args.twins, tuning_seconds_batch=tuned,
                 fic_eib_iterations=args.fic_eib_iterations)
        if r["seed"] != "pooled":
            r["fic_fc_corr"] = float(tree["fic/evaluation"]["fc_corr"].sel(subject=r["subject"], seed=r["seed"]))
        print(json.dumps(r), flush=True)
    summary = {}
    for label, group in (("per_seed", [r for r in rows if r["seed"] != "pooled"]),
                         ("pooled", [r for r in rows if r["seed"] == "pooled"])):
        keys = [k for k in ("ratio_corr", "region_ratio_corr", "J_i_corr", "ratio_rmse", "fc_corr", "fc_rmse",
                            "truth_fc_corr") if group and k in group[0]]
        summary[label] = {k: dict(mean=float(np.mean([r[k] for r in group])), min=float(np.min([r[k] for r in group])),
                                  max=float(np.max([r[k] for r in group]))) for k in keys}
    print(json.dumps(summary, indent=1))
    return rows + [dict(summary=summary)]


def _truth_fit(twin, truth) -> float:
    """The ceiling: fc_corr of the true model itself, evaluated as the tuned ones are (another noise
    realisation, 5-minute transient, 5 minutes of BOLD, first 20 samples dropped)."""
    from tvb_eib_plugin._simulation.evaluation import evaluate
    from tvb_eib_plugin._experiments.experiment import experiment_network, get_experiment

    settings = get_experiment("EI_Tuning_FIC_EIB_Optimization")
    net = experiment_network(settings, twin).with_tuned(truth.params)
    state = eib.simulate(net, eib.initial_state(net, 123), settings.transient_ms).state
    return evaluate(net, state, twin.fc_target, jax.random.key(7), settings.eval_ms, settings.eval_discard).fc_corr


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("throughput")
    p.add_argument("--regions", type=int, nargs="+", default=[84, 192])
    p.add_argument("--subjects", type=int, nargs="+", default=[8, 4], help="subjects per parcellation")
    p = sub.add_parser("batched-child", help="internal: the batched mode of throughput, in a child process")
    p.add_argument("--regions", type=int, nargs=1, required=True)
    p.add_argument("--subjects", type=int, nargs=1, required=True)
    p = sub.add_parser("cost")
    p.add_argument("--regions", type=int, nargs="+", default=[68, 84, 96, 192, 379])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--iterations", type=int, nargs="+", default=[100],
                   help="FIC+EIB iterations per timed run; two values also give the marginal cost")
    p.add_argument("--model", choices=("reference", "paper"), default="reference",
                   help="the reference model, or the paper's (Schirner2023: delays, Euler 1 ms, Balloon)")
    p = sub.add_parser("twins")
    p.add_argument("--twins", type=int, default=4)
    p.add_argument("--spread", type=float, default=1.0)
    p.add_argument("--fic-eib-iterations", type=int, default=2000, help="FIC+EIB iterations (reference: 2000)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="noise seeds per twin (several: also pooled)")
    for p in sub.choices.values():
        p.add_argument("--json", help="write the rows here")
    args = parser.parse_args(argv)
    rows = {"throughput": throughput, "cost": cost, "twins": twins, "batched-child": batched_child}[args.what](args)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(dict(jax=jax.__version__, devices=len(jax.devices()), rows=rows), f, indent=1)


if __name__ == "__main__":
    main()
