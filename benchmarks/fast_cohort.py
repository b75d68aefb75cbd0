"""``bench_fast_fit.py cohort``: a cohort of dk_average twins tuned in one batch by each preset (issue 17).

See bench_fast_fit.py's docstring for what it measures.  The twins (and each one's ceiling) are made one
per process in a pool, since each is a single long simulation of the faithful model; ``--twins-file`` keeps
them, so the presets can be re-measured on the same cohort (a file made with other twin settings is refused).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import os
import pickle
import sys
import time

import numpy as np

import tvb_eib_plugin as eib
# the one private name used here: a single twin (eib.twin_cohort makes them in a row; the pool makes one each)
from tvb_eib_plugin._cohorts.twins import twin_subject

#: the twins' truth and target FC: the faithful model's own (the model the paper fits); the target FC is as
#: long as the presets' evaluation (4850 TRs, the first 50 dropped), so target and evaluation are equally noisy
TWIN = dict(experiment="Schirner2023", spread=1.0, region_share=0.7, sc_spread=0.2, fic_iterations=1000,
            duration_ms=4850 * 720.0, discard=50)
#: the ceiling (the truth's own fit) draws its noise from seed CEILING_SEED + k, the twin's data from seed k
CEILING_SEED = 1000
#: tuning: the fast preset's schedule for both presets (the faithful one's default is the paper's 6 x 50 000)
STAGES, STAGE_ITERATIONS = 5, 4000

#: --tiny: 8 regions of dk_average, a few TRs everywhere (a smoke test of the whole path, not a measurement)
TINY_REGIONS = 8
#: (every simulation 30 TRs long: the transient, the twin's data and each evaluation share one compiled run)
TINY_TWIN = dict(TWIN, fic_iterations=20, duration_ms=30 * 720.0, discard=5, transient_ms=30 * 720.0)
TINY_TUNING = dict(transient_ms=30 * 720.0, eval_ms=30 * 720.0, eval_discard=5)
TINY_SCHEDULE = dict(stages=1, iterations=20, window=5, lead_in=2)  # one stage, one chunk: few compilations

PRESETS = {"fast": "Schirner2023Fast", "faithful": "Schirner2023"}


def base_connectome(tiny: bool) -> eib.Connectome:
    dk = eib.load_dataset("dk_average")
    if not tiny:
        return dk
    keep = slice(0, TINY_REGIONS)
    return eib.Connectome(labels=dk.labels[keep], weights=dk.weights[keep, keep],
                          tract_lengths=dk.tract_lengths[keep, keep], speed=dk.speed, name="dk_average-8")


def make_twin(base: eib.Connectome, k: int, twin: dict, evaluation: tuple[float, int]) -> dict:
    """Twin ``k`` of ``base``, its truth, and its ceiling: fc_corr of a fresh run of the truth (another noise
    seed, as long as the presets' evaluation) against the twin's target FC."""
    t0, c0 = time.perf_counter(), time.process_time()
    con, truth = twin_subject(base, seed=k, **twin)
    eval_ms, discard = evaluation
    again = dict(twin, sc_spread=0.0, duration_ms=eval_ms, discard=discard)  # the twin's own SC, used as is
    fresh, _ = twin_subject(con, seed=CEILING_SEED + k, truth=truth, **again)
    ceiling = float(eib.fc_corr(fresh.fc_target, con.fc_target))
    return dict(twin=con, truth=truth, ceiling=ceiling, wall_s=time.perf_counter() - t0,
                cpu_s=time.process_time() - c0)


def make_twins(base, n: int, twin: dict, evaluation, workers: int) -> list[dict]:
    if workers <= 1:
        return [make_twin(base, k, twin, evaluation) for k in range(n)]
    # spawn: a fresh JAX per worker (forking a process whose JAX runtime has started is unsafe)
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(make_twin, [base] * n, range(n), [twin] * n, [evaluation] * n))


def cached_twins(args, base, twin: dict, evaluation) -> list[dict]:
    """The twins from ``--twins-file`` when it was made with these settings, else made (and saved there)."""
    key = dict(base=base.name, n=args.twins, twin=twin, evaluation=list(evaluation), ceiling_seed=CEILING_SEED)
    if args.twins_file and os.path.exists(args.twins_file):
        with open(args.twins_file, "rb") as f:
            saved = pickle.load(f)
        if saved["key"] != key:
            raise SystemExit(f"{args.twins_file} holds other twins ({saved['key']}); remove it or give another path")
        print(f"twins from {args.twins_file}", flush=True)
        return saved["twins"]
    t0 = time.perf_counter()
    made = make_twins(base, args.twins, twin, evaluation, args.workers)
    print(f"{args.twins} twins made in {time.perf_counter() - t0:.0f} s wall ({args.workers} process(es)); "
          f"ceilings {[round(t['ceiling'], 4) for t in made]}", flush=True)
    if args.twins_file:
        with open(args.twins_file, "wb") as f:
            pickle.dump(dict(key=key, twins=made), f)
    return made


def tuning_overrides(args) -> dict:
    """The experiment overrides both presets run with: the schedule (and, with --tiny, short everything), and
    G fixed at 2.5, the twins' truth's: the table was measured so, and the fast preset's default
    coupling="auto" would add one sweep per member (about 35 CPU s each at 84 regions)."""
    return dict(_schedule_overrides(args), coupling=2.5)


def _schedule_overrides(args) -> dict:
    if args.tiny:
        t = TINY_SCHEDULE
        fic_eib = dict(schedule=eib.annealing_schedule(t["stages"], t["iterations"], window=t["window"]),
                       lead_in=t["lead_in"], log_every=t["iterations"], record_every=10)
        return dict(TINY_TUNING, routine_settings={"fic": {"n_iterations": 20, "log_every": 20}, "fic_eib": fic_eib})
    return dict(routine_settings={"fic_eib": {"schedule": eib.annealing_schedule(args.stages, args.stage_iterations)}})


def tune(preset: str, twins: list[dict], overrides: dict, log=None) -> tuple[list[dict], dict]:
    """One batched ``tune_cohort`` run of every twin; a row per member and the batch's cost."""
    subjects = [t["twin"] for t in twins]
    t0, c0 = time.perf_counter(), time.process_time()
    tree = eib.tune_cohort(PRESETS[preset], subjects=subjects, seeds=(0,), log=log, **overrides)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    truths = {t["twin"].name: t["truth"] for t in twins}
    ceilings = {t["twin"].name: t["ceiling"] for t in twins}
    rows = []
    for r in eib.cohort_recovery(tree, truths):
        in_loop = float(tree["fic_eib"]["fc_corr_in_loop"].sel(subject=r["subject"], seed=r["seed"]))
        rows.append(dict(r, preset=preset, experiment=PRESETS[preset], ceiling=ceilings[r["subject"]],
                         of_ceiling=r["fc_corr"] / ceilings[r["subject"]], fc_corr_in_loop=in_loop))
    cost = dict(preset=preset, experiment=PRESETS[preset], members=len(subjects), wall_s=wall, cpu_s=cpu,
                devices=int(tree.attrs["devices"]), simulated_tuning_h=float(tree.attrs["simulated_tuning_h"]),
                provenance_cpu_s=float(tree.attrs["cpu_time_s"]))
    cost.update(subjects_per_cpu_hour=3600 * len(subjects) / cpu, subjects_per_wall_hour=3600 * len(subjects) / wall)
    return rows, cost


def summary(rows: list[dict], costs: list[dict]) -> list[dict]:
    out = []
    for c in costs:
        sel = [r for r in rows if r["preset"] == c["preset"]]
        stat = lambda key: dict(mean=float(np.mean([r[key] for r in sel])), min=float(np.min([r[key] for r in sel])),
                                max=float(np.max([r[key] for r in sel])))
        out.append(dict(c, **{k: stat(k) for k in ("fc_corr", "of_ceiling", "ceiling", "J_i_corr", "ratio_corr",
                                                   "region_ratio_corr", "fc_corr_in_loop")}))
    return out


def table(summaries: list[dict]) -> None:
    print("\n| preset | members | wall s | CPU s | subjects/h (CPU, wall) | fc_corr mean (min-max) | "
          "% of ceiling mean (min-max) | J_i r | log(wLRE/wFFI) r: edge, region | sim h / member |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for s in summaries:
        f, p = s["fc_corr"], s["of_ceiling"]
        print(f"| {s['preset']} ({s['experiment']}) | {s['members']} | {s['wall_s']:.0f} | {s['cpu_s']:.0f} | "
              f"{s['subjects_per_cpu_hour']:.1f}, {s['subjects_per_wall_hour']:.1f} | "
              f"{f['mean']:.4f} ({f['min']:.4f}-{f['max']:.4f}) | {100 * p['mean']:.1f} ({100 * p['min']:.1f}-"
              f"{100 * p['max']:.1f}) | {s['J_i_corr']['mean']:.2f} | {s['ratio_corr']['mean']:.2f}, "
              f"{s['region_ratio_corr']['mean']:.2f} | {s['simulated_tuning_h']:.2f} |")
    c = summaries[0]["ceiling"]
    print(f"ceiling (the truth's own fresh fit): {c['mean']:.4f} ({c['min']:.4f}-{c['max']:.4f})")


def progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def cohort_main(argv) -> dict:
    p = argparse.ArgumentParser(prog="bench_fast_fit.py cohort", description=__doc__)
    p.add_argument("--twins", type=int, default=8)
    p.add_argument("--presets", nargs="*", choices=tuple(PRESETS), default=list(PRESETS),
                   help="presets to tune the cohort with (none: only make the twins, e.g. into --twins-file)")
    p.add_argument("--stages", type=int, default=STAGES)
    p.add_argument("--stage-iterations", type=int, default=STAGE_ITERATIONS)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes making the twins")
    p.add_argument("--twins-file", help="keep the twins here (pickle) and reuse them on the next run")
    p.add_argument("--tiny", action="store_true", help="8 regions, 2 twins, a few TRs: a smoke test")
    p.add_argument("--eval-minutes", type=float, help="a shorter evaluation of the tuned members (a scaled run; "
                   "default: the presets' 57.6 minutes, as the ceiling)")
    p.add_argument("--progress", action="store_true", help="the runs' progress lines on stderr")
    p.add_argument("--json", help="write the rows here")
    args = p.parse_args(argv)
    devices = eib.use_host_devices()  # before the first computation: a CPU device per core for the batch
    if args.tiny:
        args.twins, args.workers = min(args.twins, 2), 1
    base = base_connectome(args.tiny)
    twin = TINY_TWIN if args.tiny else TWIN
    overrides = tuning_overrides(args)
    # the ceiling is scored over the presets' own evaluation, whatever --eval-minutes asks of the tuning runs
    settings = eib.get_experiment("Schirner2023").replace(**(TINY_TUNING if args.tiny else {}))
    twins = cached_twins(args, base, twin, (settings.eval_ms, settings.eval_discard))
    if args.eval_minutes:  # a scaled run: a shorter (noisier) evaluation, the same discard
        scored = round(args.eval_minutes * 60000 / settings.tr_ms)
        overrides["eval_ms"] = (scored + settings.eval_discard) * settings.tr_ms
    rows, costs = [], []
    for preset in args.presets:
        got, cost = tune(preset, twins, overrides, progress if args.progress else None)
        print(json.dumps(cost), flush=True)
        rows, costs = rows + got, costs + [cost]
    summaries = summary(rows, costs)
    if summaries:
        table(summaries)
    result = dict(devices=devices, twin=twin, ceiling_seed=CEILING_SEED, tiny=args.tiny,
                  schedule=TINY_SCHEDULE if args.tiny else [args.stages, args.stage_iterations],
                  eval_ms=overrides.get("eval_ms", settings.eval_ms), ceiling_eval_ms=settings.eval_ms,
                  twin_seconds=[dict(wall_s=t["wall_s"], cpu_s=t["cpu_s"]) for t in twins],
                  summary=summaries, rows=rows)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return result
