"""Tutorial 04: analysing saved results with xarray.

What it teaches:
  * opening a results file (netCDF, one group per stage) as an xarray DataTree and finding
    your way in it: stages, histories, evaluations, the run's settings;
  * selecting by region label, iteration and time (``.sel``), and handing data to pandas;
  * plotting convergence, and comparing stages along a new ``stage`` dimension;
  * asking a question of the tuned model: how do the tuned E/I ratios wLRE / wFFI of the SC
    edges relate to the SC itself, to the target FC and to the simulated FC?

It reads tutorial 02's results (``<out>/02_results.nc``) or ``--results FILE``; without either it
first produces a results file (short runs, about a minute) and saves it as ``<out>/04_results.nc``.

Run:  python tutorials/04_xarray_analysis.py [--quick] [--out DIR] [--results FILE]
"""

from __future__ import annotations

import json
import os
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore", message="Geodesic distance module is unavailable")

import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402
from scipy import stats  # noqa: E402
from tutorial_args import parse_tutorial_args  # noqa: E402

import tvb_eib_plugin as eib  # noqa: E402

REGIONS = ["L.PCU", "R.PCU", "L.PrCG", "L.TH"]  # precuneus (both), left precentral gyrus, left thalamus


def produce(path, quick):
    """A results file with every stage, from short runs (the named experiment, shortened)."""
    if quick:
        kw = dict(transient_ms=36_000.0, eval_ms=72_000.0,
                  routine_settings={"fic": {"n_iterations": 150}, "fic_eib": {"n_iterations": 300},
                                    "gradient_eib": {"n_steps": 2, "duration_ms": 21_600.0, "discard": 5}})
    else:  # the reference FIC and FIC+EIB; a few short gradient steps
        kw = dict(routine_settings={"gradient_eib": {"n_steps": 5, "duration_ms": 72_000.0, "discard": 10}})
    print(f"   running the named experiment, shortened: {json.dumps(kw)}")
    tree = eib.run_experiment("EI_Tuning_FIC_EIB_Optimization", log=None, **kw)
    return eib.save_results(tree, path, overwrite=True)


def main():
    args = parse_tutorial_args(__doc__, "short runs when a results file must be made first",
                               extra=lambda p: p.add_argument(
                                   "--results", help="a results .nc file (default: <out>/02_results.nc, else one is made)"))
    import matplotlib.pyplot as plt

    started = time.perf_counter()
    # ------------------------------------------------------------------------------------------
    print("1. Open a results file")
    # ------------------------------------------------------------------------------------------
    path = args.results or os.path.join(args.out, "02_results.nc")
    if not os.path.exists(path):
        if args.results:
            raise SystemExit(f"no such results file: {path}")
        path = os.path.join(args.out, "04_results.nc")
        print(f"   no results from tutorial 02 in {args.out}: making {path} first")
        produce(path, args.quick)
    tree = eib.load_results(path)  # the whole tree, read into memory (xr.open_datatree reads lazily)
    print(f"   {path}")
    print(f"   experiment {tree.attrs['experiment']!r} on {tree.attrs['data_source']!r}, "
          f"created {tree.attrs['created']}, {tree.attrs['wall_time_s']:.0f} s")
    settings = json.loads(tree.attrs["settings"])  # attrs hold strings and numbers; settings are JSON
    print(f"   settings: transient {settings['transient_ms']:.0f} ms, evaluation {settings['eval_ms']:.0f} ms, "
          f"{settings['precision']}, routines {settings['routines']}")
    print("   groups and their variables:")
    for node in tree.subtree:
        own = node.to_dataset(inherit=False)  # without the coordinates inherited from the root
        dims = ", ".join(f"{k}={v}" for k, v in own.sizes.items())
        print(f"     {node.path:28s} {', '.join(own.data_vars) or '-':60s} ({dims})")
    stages = [name for name, node in tree.children.items() if "evaluation" in node.children]
    tuned_stage = stages[-1]
    print(f"   stages: {stages}; the last one, {tuned_stage!r}, is 'the tuned model' below")
    print(f"   units and meaning travel with the data: J_i is in {tree['fic'].J_i.attrs['units']}, "
          f"\"{tree['fic'].J_i.attrs['description']}\"")

    # ------------------------------------------------------------------------------------------
    print("\n2. Select by label, iteration and time")
    # ------------------------------------------------------------------------------------------
    fic, eib_ = tree["fic"], tree["fic_eib"]
    print("   J_i after FIC:", ", ".join(f"{r} {float(fic.J_i.sel(region=r)):.3f}" for r in REGIONS))
    w = eib_.wLRE.sel(region="L.PCU", region_j="R.PCU")
    print(f"   after FIC+EIB, R.PCU -> L.PCU: wLRE {float(w):.3f}, "
          f"wFFI {float(eib_.wFFI.sel(region='L.PCU', region_j='R.PCU')):.3f}")
    row = tree[f"{tuned_stage}/evaluation"].fc.sel(region="L.PCU").drop_sel(region_j="L.PCU")
    top = row.sortby(row, ascending=False).isel(region_j=slice(0, 5))
    print(f"   strongest simulated FC partners of L.PCU ({tuned_stage}): "
          + ", ".join(f"{r} {v:.2f}" for r, v in zip(top.region_j.values, top.values)))
    h = fic.history
    mid = int(h.iteration[len(h.iteration) // 2])
    its = (1, mid, int(h.iteration[-1]))
    print(f"   FIC history, mean S_e of L.TH at iterations {its[0]}, {its[1]} and {its[2]}: "
          + ", ".join(f"{float(h.mean_S_e.sel(region='L.TH', iteration=i)):.3f}" for i in its))
    tr = tree[f"{tuned_stage}/evaluation"].S_e_trace.sel(time=slice(0.0, 720.0), region=REGIONS)
    print(f"   S_e during the first TR of the evaluation (time in ms, {tr.sizes['time']} steps): "
          + ", ".join(f"{r} mean {float(tr.sel(region=r).mean()):.3f}" for r in REGIONS))
    # to pandas: a (stage x region) table of J_i, written as CSV
    J = xr.concat([tree[s].J_i for s in stages], dim=pd.Index(stages, name="stage"))
    csv = os.path.join(args.out, "04_J_i_by_stage.csv")
    J.to_pandas().T.to_csv(csv)
    print(f"   J_i of every stage and region as a table (pandas): {csv}")
    print(J.sel(region=REGIONS).to_pandas().round(3).to_string().replace("\n", "\n     ").join(["     ", ""]))

    # ------------------------------------------------------------------------------------------
    print("\n3. Compare stages")
    # ------------------------------------------------------------------------------------------
    ev = xr.concat([tree[f"{s}/evaluation"].to_dataset()[["fc_corr", "fc_rmse", "mean_S_e"]] for s in stages],
                   dim=pd.Index(stages, name="stage"))
    print(f"   {'stage':14s}{'fc_corr':>9s}{'fc_rmse':>9s}{'mean S_e':>10s}{'(min..max over regions)':>25s}"
          f"{'mean J_i':>10s}{'mean wLRE':>11s}{'mean wFFI':>11s}")
    for s in stages:
        e = ev.sel(stage=s)
        print(f"   {s:14s}{float(e.fc_corr):9.3f}{float(e.fc_rmse):9.3f}{float(e.mean_S_e.mean()):10.3f}"
              f"{float(e.mean_S_e.min()):15.3f}..{float(e.mean_S_e.max()):.3f}{float(tree[s].J_i.mean()):10.3f}"
              f"{float(tree[s].wLRE.mean()):11.3f}{float(tree[s].wFFI.mean()):11.3f}")
    if "gradient_eib" in stages:
        d = tree["gradient_eib"].wLRE - tree["fic_eib"].wLRE
        print(f"   gradient fitting moved wLRE by {float(abs(d).mean()):.4f} on average "
              f"(largest: {float(abs(d).max()):.3f})")

    # ------------------------------------------------------------------------------------------
    print("\n4. Tuned E/I ratios on the SC edges")
    # ------------------------------------------------------------------------------------------
    W = tree["weights"]
    target = tree["fc_target"]
    offdiag = ~np.eye(W.sizes["region"], dtype=bool)
    results = {}
    for s in [x for x in ("fic_eib", "gradient_eib") if x in stages]:
        wLRE, wFFI = tree[s].wLRE.values, tree[s].wFFI.values
        edges = (W.values > 0) & offdiag
        usable = edges & (wFFI > 0) & (wLRE > 0)  # the tuning clips at 0: a ratio needs both > 0
        log_ratio = np.log(wLRE[usable] / wFFI[usable])
        x = {"log SC weight": np.log(W.values[usable]), "target FC": target.values[usable],
             "simulated FC": tree[f"{s}/evaluation"].fc.values[usable]}
        print(f"   {s}: {int(usable.sum())} of {int(edges.sum())} SC edges with wLRE, wFFI > 0; "
              f"log(wLRE / wFFI) from {log_ratio.min():.2f} to {log_ratio.max():.2f}")
        for name, v in x.items():
            r = stats.pearsonr(v, log_ratio)[0]
            rho = stats.spearmanr(v, log_ratio)[0]
            print(f"     log(wLRE / wFFI) against {name:14s} Pearson r {r:+.3f}, Spearman rho {rho:+.3f}")
        results[s] = (log_ratio, x)
        # per region: mean E/I ratio of a region's inputs against its SC strength
        strength = W.where(W > 0).sum("region_j")
        ratio = (tree[s].wLRE / tree[s].wFFI.where(tree[s].wFFI > 0)).where((W > 0) & offdiag)
        node_ratio = np.log(ratio).mean("region_j")
        rho = stats.spearmanr(strength.values, node_ratio.values, nan_policy="omit")[0]
        print(f"     per region, mean log ratio of its inputs against its SC strength: Spearman rho {rho:+.3f}")
    print("   How to read these: the FIC+EIB update raises wLRE and lowers wFFI by the same step where the\n"
          "   window FC is below the target (and the reverse where above), so a high ratio marks an edge\n"
          "   whose FC the model had to lift; its relation to SC says whether the tuning worked with the\n"
          "   structure (strong edges) or against it. Where wFFI has come close to 0 the log ratio is large:\n"
          "   Spearman's rho (ranks) is the more robust of the two numbers.")

    # ------------------------------------------------------------------------------------------
    print("\n5. Figures")
    # ------------------------------------------------------------------------------------------
    fig, ax = plt.subplots(2, 3, figsize=(17, 9.5), layout="constrained")
    a = ax[0, 0]
    m = h.mean_S_e
    q = m.quantile([0.1, 0.9], dim="region")
    a.fill_between(h.iteration, q.sel(quantile=0.1), q.sel(quantile=0.9), color="0.85", label="10-90% of regions")
    m.mean("region").plot(ax=a, color="k", lw=1.5, label="mean over regions")
    for r in REGIONS:
        m.sel(region=r).plot(ax=a, lw=0.8, label=r)
    a.axhline(0.25, ls="--", color="tab:red", lw=1, label="target")
    a.set(title="FIC: mean S_e per iteration", ylabel="mean S_e over the TR")
    a.legend(fontsize=8, ncol=2)
    a = ax[0, 1]
    he = eib_.history
    he.fc_corr.plot(ax=a, lw=0.5, color="tab:blue", alpha=0.5, label="150-TR window")
    win = min(50, he.sizes["iteration"])
    he.fc_corr.rolling(iteration=win, center=True).mean().plot(ax=a, color="tab:blue", lw=2,
                                                                 label=f"rolling mean ({win})")
    a.set(title="FIC+EIB: in-loop FC correlation", ylabel="fc_corr")
    a.legend(fontsize=8)
    a = ax[0, 2]
    J_sorted = J.sortby(J.sel(stage="fic"))
    for s in stages:
        a.plot(np.arange(J.sizes["region"]), J_sorted.sel(stage=s), "o-", ms=2, lw=0.8, label=s)
    a.set(title="J_i per stage (regions sorted by the FIC result)", xlabel="region (sorted)", ylabel="J_i (nA)")
    a.legend(fontsize=8)
    s_last = list(results)[-1]
    log_ratio, x = results[s_last]
    for a, (name, v) in zip(ax[1], x.items()):
        a.scatter(v, log_ratio, s=3, alpha=0.3, color="tab:purple")
        rho = stats.spearmanr(v, log_ratio)[0]
        a.axhline(0, color="0.5", lw=0.8)
        a.set(xlabel=name, ylabel="log(wLRE / wFFI)", title=f"{s_last}: E/I ratio vs {name} (rho {rho:+.2f})")
    fig.suptitle(f"Tutorial 04: {os.path.basename(path)} ({tree.attrs['experiment']}, {tree.attrs['data_source']})")
    out = os.path.join(args.out, "04_xarray_analysis.png")
    fig.savefig(out, dpi=100)
    plt.close(fig)
    print(f"   {out}")
    print(f"\nDone in {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
