"""Tutorial 06: the paper's own fit (Schirner, Deco & Ritter 2023), staged, checkpointed and compared.

What it teaches:
  * running the ``Schirner2023`` experiment: Euler-Maruyama at 1 ms with delays, Balloon-Windkessel
    BOLD, FIC on firing rates, EIB in annealing stages on SC edges only;
  * the schedule is data: ``eib.annealing_schedule(n_stages, iterations)`` or your own list of
    ``eib.EIBStage(iterations, eta, window)``;
  * reading the per-stage convergence, the firing rates FIC holds at 4 Hz, and the fit of the tuned
    model's FC to the target;
  * checkpoints: a run stopped mid-stage resumes from its file and ends exactly where the unbroken
    run ends;
  * the paper's Fig. 3c comparison: EI-tuning (wLRE and wFFI), E-tuning (wLRE only, wFFI held, and
    wFFI = 0) and the original model with one global coupling (full mode only).

Run:  python tutorials/06_paper_fit.py [--quick] [--out DIR]
(--quick: 2 short stages, about a minute; the full run: 5 stages of 4000 TRs and the four
variants, about 25 minutes on 2 cores.)
"""

from __future__ import annotations

import os
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore", message="Geodesic distance module is unavailable")

from tutorial_args import parse_tutorial_args  # noqa: E402
import tvb_eib_plugin as eib  # noqa: E402


class Stop(Exception):
    """Raised by our log function to stop a run part-way, as a killed job would."""


def settings(quick: bool) -> dict:
    if quick:
        return dict(transient_ms=14_400.0, eval_ms=144_000.0, eval_discard=20,
                    routine_settings={"fic": {"n_iterations": 30, "log_every": 10},
                                      # each stage restarts and holds EIB for its window + 50 TRs: 120 TRs leave
                                      # stage 2 (window 60) ten TRs of tuning
                                      "fic_eib": {"schedule": eib.annealing_schedule(2, 120, 0.1, 30),
                                                  "log_every": 20, "record_every": 10, "checkpoint_every": 20}})
    return dict(routine_settings={"fic_eib": {"schedule": eib.annealing_schedule(5, 4000)}})


def main():
    args = parse_tutorial_args(__doc__, "two short stages (about a minute)")
    import matplotlib.pyplot as plt

    kw = settings(args.quick)
    schedule = kw["routine_settings"]["fic_eib"]["schedule"]
    print("1. The schedule is data, one EIBStage per stage:")
    for i, st in enumerate(schedule):
        print(f"   stage {i + 1}: {st.iterations} TRs, eta {st.eta:g}, FC window {st.window} TRs")

    print("\n2. EI-tuning, the paper's procedure (progress lines every chunk)")
    t0 = time.perf_counter()
    tree = eib.run_experiment("Schirner2023", **kw)
    saved = eib.save_results(tree, os.path.join(args.out, "06_EI.nc"), overwrite=True)  # a rerun replaces its own
    print(f"   {time.perf_counter() - t0:.0f} s; results saved to {saved}")

    h, ev = tree["fic_eib/history"], tree["fic_eib/evaluation"]
    fig, ax = plt.subplots(1, 3, figsize=(16, 4.6), layout="constrained")
    stage = h["stage"].values
    for s in np.unique(stage):
        sel = stage == s
        ax[0].plot(h["iteration"].values[sel], h["fc_corr"].values[sel], lw=1.5,
                   label=f"stage {int(s) + 1}: eta {schedule[int(s)].eta:g}, window {schedule[int(s)].window}")
    ax[0].set(xlabel="FIC+EIB iteration (TR)", ylabel="fc_corr of the window FC", title="Convergence by stage")
    ax[0].legend(fontsize=8)
    rate = h["rate_e"]
    ax[1].plot(h["iteration"], rate.mean("region"), color="k", label="mean over regions")
    ax[1].fill_between(h["iteration"], rate.quantile(0.05, "region"), rate.quantile(0.95, "region"), alpha=0.3,
                       label="5-95 % of regions")
    ax[1].axhline(4.0, ls="--", color="tab:orange", label="FIC target 4 Hz")
    ax[1].set(xlabel="FIC+EIB iteration (TR)", ylabel="excitatory rate (Hz)", title="Rate-based FIC")
    ax[1].legend(fontsize=8)
    upper = np.triu_indices(tree.sizes["region"], 1)
    ax[2].scatter(tree["fc_target"].values[upper], ev["fc"].values[upper], s=3, alpha=0.4)
    ax[2].plot([-0.2, 1], [-0.2, 1], color="0.5", lw=1)
    ax[2].set(xlabel="target FC", ylabel="simulated FC (fresh run)",
              title=f"Fit: fc_corr {float(ev.fc_corr):.3f}, fc_rmse {float(ev.fc_rmse):.3f}")
    path = os.path.join(args.out, "06_paper_fit.png")
    fig.savefig(path, dpi=110)
    print(f"   evaluated fc_corr {float(ev.fc_corr):.4f}, fc_rmse {float(ev.fc_rmse):.4f}; figure {path}")

    print("\n3. Checkpoints: stop a run in its second stage, then resume it from the file")
    ckpt = os.path.join(args.out, "06_checkpoint.npz")
    if os.path.exists(ckpt):
        os.remove(ckpt)
    rs = kw["routine_settings"]
    resumable = dict(kw, routine_settings=dict(rs, fic_eib=dict(rs["fic_eib"], checkpoint=ckpt)))
    progress = {"in_stage_2": False, "lines": 0, "last": ""}

    def stop_in_stage_two(line):
        if "stage 2/" in line:
            progress["in_stage_2"] = True
        elif progress["in_stage_2"] and "fc_corr=" in line:
            progress["lines"] += 1
            progress["last"] = line.strip()
            if progress["lines"] == 2:  # the second chunk of stage 2: a checkpoint lies behind us
                raise Stop()

    try:
        eib.run_experiment("Schirner2023", log=stop_in_stage_two, **resumable)
    except Stop:
        print(f"   stopped at: {progress['last']}")
    resumed = eib.run_experiment("Schirner2023", log=lambda line: print("   " + line) if "resuming" in line else None,
                                 **resumable)
    same = all(np.array_equal(tree["fic_eib"][k].values, resumed["fic_eib"][k].values) for k in ("J_i", "wLRE", "wFFI"))
    print(f"   resumed run ends with the unbroken run's J_i, wLRE and wFFI, bit for bit: {same}")
    if not same:
        raise SystemExit("resume did not reproduce the unbroken run")

    if args.quick:
        return
    print("\n4. The paper's Fig. 3c: EI-tuning against E-tuning and the original model's global coupling")
    rows = [("EI", tree)]
    for variant in ("E", "E_noFFI", "global"):
        rows.append((variant, eib.run_experiment("Schirner2023", variant=variant, log=None,
                                                 **(kw if variant != "global" else {}))))
    print(f"   {'variant':8s}{'fc_corr':>9s}{'fc_rmse':>9s}")
    for name, t in rows:
        last = list(t.children)[-1]
        print(f"   {name:8s}{float(t[last + '/evaluation'].fc_corr):9.4f}{float(t[last + '/evaluation'].fc_rmse):9.4f}")


if __name__ == "__main__":
    main()
