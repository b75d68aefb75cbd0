"""Tutorial 07: a cohort in one call: twins with a known truth, tuned in one batch over subjects and seeds.

What it teaches:
  * making twin subjects: a target FC simulated from ground-truth J_i, wLRE, wFFI on a real
    connectome (dk_average), each twin with its own SC;
  * ``eib.tune_cohort``: every subject x noise seed tuned in one batched, compiled run (the batch is
    spread over all local JAX devices: ``eib.use_host_devices()`` makes one per CPU core), results
    with ``subject`` and ``seed`` dims;
  * analysing the cohort with xarray: the fit per subject and seed, how much a tuned matrix
    depends on the noise seed;
  * the recovery report: does tuning find the truth it never saw? And the consensus of a twin's
    seeds: does pooling runs over noise recover it better?
  * with ``--dask``: the same cohort on a 2-worker Dask LocalCluster, written subject by subject
    to a folder, and resumed.

Run:  python tutorials/07_cohort.py [--quick] [--dask] [--out DIR]
(--quick: 2 twins x 2 seeds with short runs, about a minute; the full run: 4 twins x 2 seeds with
the reference workflow's FIC 200 + FIC+EIB 2000, a few minutes on 2 cores.)
"""

from __future__ import annotations

import os
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore", message="Geodesic distance module is unavailable")

from tutorial_args import parse_tutorial_args  # noqa: E402
import tvb_eib_plugin as eib  # noqa: E402

ROUTINES = ("fic", "fic_eib")


def settings(quick: bool) -> dict:
    if quick:
        return dict(transient_ms=36_000.0, eval_ms=72_000.0, routines=ROUTINES,
                    routine_settings={"fic": {"n_iterations": 100}, "fic_eib": {"n_iterations": 300, "window": 100}})
    return dict(routines=ROUTINES)


def main():
    args = parse_tutorial_args(__doc__, "2 twins, short runs (about a minute)",
                               lambda p: p.add_argument("--dask", action="store_true",
                                                        help="also run the cohort on a 2-worker Dask LocalCluster"))
    import matplotlib.pyplot as plt

    n_twins, seeds = (2, (0, 1)) if args.quick else (4, (0, 1))
    if not args.dask:  # Dask's workers are processes of their own: each keeps one device
        # one JAX device per CPU core, before the first computation: the batch then runs on every core
        print(f"0. JAX devices: {eib.use_host_devices()} (CPU split into one device per core)")
    dk = eib.load_dataset("dk_average")
    print(f"1. {n_twins} twins of dk_average: a known truth each, its own SC, and the FC it produces")
    t0 = time.perf_counter()
    twins, truths = eib.twin_cohort(dk, n_twins, sc_spread=0.2, duration_ms=144_000.0 if args.quick else 1_200_000.0)
    print(f"   made in {time.perf_counter() - t0:.0f} s; true log(wLRE/wFFI) sd over edges: "
          + ", ".join(f"{np.std(truths[t.name].log_ratio):.2f}" for t in twins))

    print(f"\n2. All {n_twins} twins x {len(seeds)} seeds in one batched run")
    kw = settings(args.quick)
    t0 = time.perf_counter()
    tree = eib.tune_cohort(subjects=twins, seeds=seeds, **kw)
    print(f"   {n_twins * len(seeds)} tunings in {time.perf_counter() - t0:.0f} s")
    eib.save_results(tree, os.path.join(args.out, "07_cohort.nc"), overwrite=True)

    print("\n3. The cohort as xarray: fit per subject (rows) and seed (columns)")
    fit = tree["fic_eib/evaluation"]["fc_corr"]
    print(fit.to_pandas().round(4).to_string())
    w = tree["fic_eib"]["wLRE"] / tree["fic_eib"]["wFFI"]
    ratio = np.log(w.where(tree["weights"] > 0))
    between_seeds = [float(np.corrcoef(*_pair(ratio.sel(subject=s), seeds))[0, 1]) for s in tree["subject"].values]
    print("   log(wLRE/wFFI) of seed 0 vs seed 1, r per subject: " + ", ".join(f"{r:.2f}" for r in between_seeds))

    print("\n4. Recovery of each twin's truth (r of tuned vs true log(wLRE/wFFI); J_i; FC fit)")
    print("   (seed 'pooled': the consensus of a twin's seeds, geometric mean of wLRE and wFFI; not simulated)")
    rows = eib.cohort_recovery(tree, truths, pooled=True)
    for r in rows:
        scored = f", fc_corr {r['fc_corr']:.4f}" if "fc_corr" in r else ""
        print(f"   {r['subject']} seed {r['seed']}: edges {r['ratio_corr']:.3f}, regions {r['region_ratio_corr']:.3f}, "
              f"J_i {r['J_i_corr']:.3f}{scored}")

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for i, s in enumerate(tree["subject"].values):
        truth = truths[str(s)]
        true_region = np.array([np.log(truth.wLRE / truth.wFFI)[j][truth.edges[j]].mean() for j in range(84)])
        tuned = ratio.sel(subject=s, seed=seeds[0]).mean("region_j").values
        axes[0].scatter(true_region, tuned, s=10, label=str(s), color=f"C{i}")
    axes[0].set(xlabel="true mean log(wLRE/wFFI) of a region", ylabel="tuned", title="Recovery by region (seed 0)")
    axes[0].legend(fontsize=7)
    fit.plot.imshow(ax=axes[1], cmap="viridis", add_colorbar=True)
    axes[1].set_title("evaluated fc_corr (subject x seed)")
    axes[1].set_xticks(list(seeds))
    h = tree["fic_eib/history"]["fc_corr"]
    for i, s in enumerate(tree["subject"].values):
        for k in seeds:
            h.sel(subject=s, seed=k).plot(ax=axes[2], color=f"C{i}", lw=0.8, alpha=0.8)
    axes[2].set(title="window fc_corr during FIC+EIB", xlabel="iteration", ylabel="fc_corr")
    fig.tight_layout()
    path = os.path.join(args.out, "07_cohort.png")
    fig.savefig(path, dpi=110)
    print(f"\n   figure: {path}")

    if args.dask:
        print("\n5. The same cohort on a 2-worker Dask LocalCluster, one subject per batch")
        folder = os.path.join(args.out, "07_cohort_runs")
        t0 = time.perf_counter()
        on_dask = eib.tune_cohort_distributed(subjects=twins, seeds=seeds, out_dir=folder, batch_size=1, **kw)
        print(f"   {time.perf_counter() - t0:.0f} s; largest difference from the single batch: "
              f"{float(abs(on_dask['fic_eib']['wLRE'] - tree['fic_eib']['wLRE']).max()):.2g} (float32)")
        print("   run again: every subject is already in the folder, nothing is tuned")
        eib.tune_cohort_distributed(subjects=twins, seeds=seeds, out_dir=folder, batch_size=1, **kw)


def _pair(ratio, seeds):
    """The SC-edge values of two seeds' matrices, side by side."""
    a, b = (np.ravel(ratio.sel(seed=k).values) for k in seeds[:2])
    ok = np.isfinite(a) & np.isfinite(b)
    return a[ok], b[ok]


if __name__ == "__main__":
    main()
