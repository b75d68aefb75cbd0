"""Fit against cost for the fast, faithful and reference presets on dk_average, in one run (issue 17).

Each preset runs end to end through ``run_experiment`` for every seed and is scored the same way: a
fresh 57.6-minute evaluation (4850 TRs, the first 50 dropped), fc_corr / fc_rmse against dk_average's FC.
Cost: wall and CPU seconds of the whole call (compilation and evaluations included; CPU: all threads of
this process, so on a shared machine judge by CPU seconds / cores too) and simulated hours of tuning
(from the results' provenance).

- fast: ``Schirner2023Fast`` (the faithful preset integrated by Heun at dt 4 ms, 5 stages of 4000 TRs, its
  starting coupling chosen for the data: ``coupling="auto"``); fast_fixed: the same at the faithful preset's
  G = 2.5 (``coupling=2.5``);
- faithful: ``Schirner2023`` (Euler dt 1 ms, per-stage restarts) with 5 stages of 4000 TRs (the README's
  schedule; the paper's 6 x 50 000 TRs is 60 simulated hours); ``--faithful-experiment Schirner2023Text
  --faithful-stages 7`` for the text's preset.  Minutes a seed on 2 cores: ``--quick`` skips it;
- reference: ``EI_Tuning_FIC_EIB_Optimization`` (FIC, FIC+EIB, gradient EIB), evaluated over 57.6 minutes
  too; every stage's fit is printed.

    python benchmarks/bench_fast_fit.py --seeds 0 1 2 --json benchmarks/results/fast_fit.json
    python benchmarks/bench_fast_fit.py --quick            # fast and reference only
    python benchmarks/bench_fast_fit.py --presets faithful --seeds 0
    python benchmarks/bench_fast_fit.py --presets fast fast_fixed --seeds 0 1 2   # coupling chosen / fixed

``cohort`` mode (issue 17: subjects per hour of a batched cohort): ``--twins`` twins of dk_average, each a
target FC simulated by the faithful model (``Schirner2023``: Euler dt 1 ms, delays, rate FIC, Balloon BOLD,
G 2.5) from a random truth (J_i, wLRE, wFFI; the twins' SC perturbed too), tuned in ONE ``tune_cohort`` call
per preset (all twins in one batch, sharded over one CPU device per core) with the same schedule, and scored
by each member's fresh 57.6-minute evaluation against its twin's target FC and against the ceiling: the
truth's own fit (the true model simulated afresh, as long, against the same target).  Subjects per hour:
members over the batch's wall and CPU seconds (compilation and evaluations included; the twins not).

    python benchmarks/bench_fast_fit.py cohort --twins-file twins8.pkl --json benchmarks/results/fast_cohort.json
    python benchmarks/bench_fast_fit.py cohort --twins-file twins8.pkl --presets faithful fast \
        --stages 3 --stage-iterations 1000 --eval-minutes 20        # the scaled pair (fast_fit.py's table)
    python benchmarks/bench_fast_fit.py cohort --tiny                   # 8-region smoke test, seconds

Making the 8 twins (each 1000 TRs of FIC, 57.6 minutes of BOLD and as much again for its ceiling, Euler dt 1)
costs 66-74 CPU s each, spread over ``--workers`` processes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tvb_eib_plugin._experiments.experiment import run_experiment  # noqa: E402
from tvb_eib_plugin.routines import annealing_schedule  # noqa: E402

#: the faithful preset's evaluation, given to the reference preset too so that all rows score alike
EVAL = dict(eval_ms=4850 * 720.0, eval_discard=50)


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def presets(args) -> dict:
    """preset label -> (experiment name, overrides)."""
    out = {"fast": ("Schirner2023Fast", {}), "fast_fixed": ("Schirner2023Fast", {"coupling": 2.5}),
           "faithful": (args.faithful_experiment, {"routine_settings": {"fic_eib": {
               "schedule": annealing_schedule(args.faithful_stages, args.faithful_iterations)}}}),
           "reference": ("EI_Tuning_FIC_EIB_Optimization", dict(EVAL))}
    wanted = [p for p in args.presets if not (args.quick and p == "faithful")]
    return {p: out[p] for p in wanted}


def run_one(label: str, experiment: str, overrides: dict, seed: int) -> list[dict]:
    """One run; a row per tuning stage (the last one is the preset's fit)."""
    t0, c0 = time.perf_counter(), _cpu_seconds()
    tree = run_experiment(experiment, seed=seed, log=None, **overrides)
    wall, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
    rows = []
    for stage in list(tree.children):
        if "evaluation" not in tree[stage].children:
            continue
        ev = tree[f"{stage}/evaluation"]
        rows.append(dict(preset=label, experiment=experiment, seed=seed, stage=stage,
                         fc_corr=float(ev.fc_corr), fc_rmse=float(ev.fc_rmse),
                         eval_minutes=(len(ev["bold"]) - ev.attrs["bold_discarded"]) * 0.72 / 60,
                         tuned_sim_hours=float(tree.attrs["simulated_tuning_h"]), wall_s=wall, cpu_s=cpu,
                         coupling=tree.attrs.get("coupling_chosen", json.loads(tree.attrs["settings"])["coupling"])))
    print(json.dumps(rows[-1]), flush=True)
    return rows


def table(rows: list[dict]) -> None:
    print("\n| preset | experiment | stage | seeds | fc_corr (57.6 min) mean | min | fc_rmse mean | tuned sim h | "
          "wall s / seed | CPU s / seed |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    keys = dict.fromkeys((r["preset"], r["stage"]) for r in rows)
    for preset, stage in keys:
        sel = [r for r in rows if r["preset"] == preset and r["stage"] == stage]
        corr = np.array([r["fc_corr"] for r in sel])
        print(f"| {preset} | {sel[0]['experiment']} | {stage} | {','.join(str(r['seed']) for r in sel)} | "
              f"{corr.mean():.4f} | {corr.min():.4f} | {np.mean([r['fc_rmse'] for r in sel]):.4f} | "
              f"{sel[0]['tuned_sim_hours']:.2f} | {np.mean([r['wall_s'] for r in sel]):.0f} | "
              f"{np.mean([r['cpu_s'] for r in sel]):.0f} |")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["cohort"]:
        from fast_cohort import cohort_main  # noqa: PLC0415 (the cohort mode splits the CPU into devices first)

        return cohort_main(argv[1:])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--quick", action="store_true", help="skip the faithful preset (about 5 minutes a seed)")
    p.add_argument("--presets", nargs="+", choices=("fast", "fast_fixed", "faithful", "reference"),
                   default=["fast", "faithful", "reference"])
    p.add_argument("--faithful-experiment", default="Schirner2023")
    p.add_argument("--faithful-stages", type=int, default=5)
    p.add_argument("--faithful-iterations", type=int, default=4000)
    p.add_argument("--json", help="write the rows here")
    args = p.parse_args(argv)
    rows = []
    for label, (experiment, overrides) in presets(args).items():
        for seed in args.seeds:
            rows += run_one(label, experiment, overrides, seed)
    table(rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
