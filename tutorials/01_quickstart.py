"""Tutorial 01, quick start: your TVB objects and a target FC in, a tuned TVB Simulator out.

What it teaches:
  * turning a TVB Connectivity, ReducedWongWangExcInh model, coupling, integrator and Bold monitor
    (or one configured TVB Simulator) into the plugin's network, with conduction delays;
  * tuning it to a target FC with FIC (local inhibition J_i) and FIC+EIB (the coupling matrices
    wLRE and wFFI) through ``eib.run_experiment``;
  * taking the tuned model back into TVB as a ``Simulator`` and running it there.

tvb-data's connectivity_76 comes without an empirical FC, so the target here is synthetic, and
said to be: the FC of a "twin" of the same network whose E/I balance per connection we set
ourselves. Because the twin's parameters are known, we can also check what tuning recovers.

Run:  python tutorials/01_quickstart.py [--quick] [--out DIR]
"""

from __future__ import annotations

import logging
import os
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore", message="Geodesic distance module is unavailable")

from tutorial_args import parse_tutorial_args  # noqa: E402
import tvb_eib_plugin as eib  # noqa: E402
from tvb.simulator import coupling, integrators, models, monitors, noise, simulator  # noqa: E402
# Internal, not public API: TuningState is used only to show the mechanics of running one routine by hand.
from tvb_eib_plugin.routines import TuningState  # noqa: E402

# TVB's harmless warnings: tvb-data's zips lack optional files ('hemispheres'), and TVB's Simulator
# offers a random state even to a noise-free integrator.
for name in ("tvb", "tvb.basic.readers", "tvb.simulator.integrators"):
    logging.getLogger(name).setLevel(logging.ERROR)

# Full: the reference workflow's lengths. Quick: everything short, for a smoke test.
FULL = dict(transient_ms=300_000.0, twin_ms=600_000.0, eval_ms=300_000.0, fic=200, eib=2000, window=150,
            tvb_ms=30_000.0)
QUICK = dict(transient_ms=36_000.0, twin_ms=120_000.0, eval_ms=72_000.0, fic=60, eib=200, window=50,
             tvb_ms=5_000.0)


def main():
    args = parse_tutorial_args(__doc__)
    cfg = QUICK if args.quick else FULL
    started = time.perf_counter()

    # ------------------------------------------------------------------------------------------
    print("1. Your TVB objects")
    # ------------------------------------------------------------------------------------------
    conn = eib.tvb.connectivity("connectivity_76")  # tvb-data's connectivity_76.zip, configured
    model = models.ReducedWongWangExcInh(G=np.array([1.0]), lamda=np.array([1.0]))
    tvb_coupling = coupling.Linear(a=np.array([1.0]))
    integrator = integrators.HeunStochastic(dt=4.0, noise=noise.Additive(nsig=np.array([5e-5, 0.0])))
    bold = monitors.Bold(period=720.0)
    sim = simulator.Simulator(connectivity=conn, model=model, coupling=tvb_coupling, integrator=integrator,
                              monitors=(bold,), conduction_speed=3.0, simulation_length=1000.0)
    sim.configure()
    labels = [str(x) for x in conn.region_labels]
    n = len(labels)
    print(f"   connectivity_76: {n} regions, {int((conn.weights > 0).sum())} SC edges, "
          f"tract lengths up to {conn.tract_lengths.max():.0f} mm, speed 3 mm/ms")
    print("   ReducedWongWangExcInh(G=1, lamda=1), Linear(a=1), HeunStochastic(dt=4 ms, "
          "Additive nsig=[5e-5, 0] = noise std 0.01 on S_e), Bold(period=720 ms)")

    # The same objects, two ways in. `normalise` is required: "max" divides the weights by their
    # maximum (the reference workflow), "none" keeps TVB's weights as they are.
    net = eib.tvb.from_simulator(sim, normalise="max")
    net_b = eib.tvb.from_connectivity(conn, model, normalise="max", coupling=tvb_coupling, integrator=integrator,
                                      monitor=bold, delays=True)
    same = np.array_equal(np.asarray(net.coupling.weights), np.asarray(net_b.coupling.weights))
    print(f"   eib.tvb.from_simulator(sim) and eib.tvb.from_connectivity(conn, model, ...) agree: {same}")
    print(f"   delays: up to {net.coupling.horizon - 1} steps of {net.dt} ms "
          f"(tract length / conduction speed, as TVB computes them)")

    # ------------------------------------------------------------------------------------------
    print("\n2. A target FC (synthetic: connectivity_76 has no empirical FC)")
    # ------------------------------------------------------------------------------------------
    # The twin: the same network, but every SC edge has its own E/I balance. On edge j -> i,
    # long-range excitation is scaled by exp(+a_ij) and feedforward inhibition by exp(-a_ij),
    # a_ij ~ N(0, 0.4^2), symmetric. Its local inhibition J_i is then set by FIC (so the twin
    # sits in the same operating regime, mean S_e = 0.25), and its FC is our target.
    W = np.asarray(net.coupling.weights)
    edges = W > 0
    rng = np.random.default_rng(2023)
    a = np.triu(rng.normal(0.0, 0.4, (n, n)), 1)
    a = (a + a.T) * edges
    twin = net.with_tuned(wLRE=np.exp(a), wFFI=np.exp(-a))
    warm = eib.simulate(twin, eib.initial_state(twin, seed=101), cfg["transient_ms"]).state
    balanced = eib.FIC(n_iterations=cfg["fic"], seed=101).run(TuningState(twin, warm), None, {}, lambda _: None)
    twin = balanced.state.model
    twin_run = eib.simulate(twin, balanced.state.sim, cfg["twin_ms"])
    fc_target = np.asarray(eib.fc(twin_run.bold[20:]))
    iu = np.triu_indices(n, 1)
    print(f"   twin simulated for {cfg['twin_ms'] / 1000:.0f} s ({len(twin_run.bold)} TRs), "
          f"mean S_e {twin_run.mean_S[:, 0].mean():.3f}; FC from BOLD[20:]: mean {fc_target[iu].mean():.3f}, "
          f"sd {fc_target[iu].std():.3f}")
    print("   (Your own FC goes in the same place: an (N, N) array, or a .npy/.csv/.tsv/.mat file path.)")

    # ------------------------------------------------------------------------------------------
    print("\n3. Tuning: FIC, then FIC+EIB, each stage evaluated by a fresh simulation")
    # ------------------------------------------------------------------------------------------
    # `network=` takes the network built from your TVB objects as it is (float64, delays on);
    # the tuning starts from its wLRE = wFFI = G = 1 and J_i = 1, knowing nothing of the twin.
    tree = eib.run_experiment(
        network=net, fc_target=fc_target, labels=labels, routines=("fic", "fic_eib"),
        transient_ms=cfg["transient_ms"], eval_ms=cfg["eval_ms"], seed=0,
        routine_settings={"fic": {"n_iterations": cfg["fic"]},
                          "fic_eib": {"n_iterations": cfg["eib"], "window": cfg["window"]}})

    # ------------------------------------------------------------------------------------------
    print("\n4. What came back: an xarray DataTree with a node per stage")
    # ------------------------------------------------------------------------------------------
    for stage in ("integration", "fic", "fic_eib"):
        ev = tree[f"{stage}/evaluation"]
        print(f"   {stage:12s} fc_corr {float(ev.fc_corr):.3f}  fc_rmse {float(ev.fc_rmse):.3f}  "
              f"mean S_e {float(ev.mean_S_e.mean()):.3f}")
    tuned = tree["fic_eib"]
    # What did tuning recover of the twin? J_i per region; the E/I balance per SC edge.
    J_true, J_tuned = np.asarray(twin.node.J_i), tuned.J_i.values
    # (wLRE and wFFI are clipped at 0 by the tuning; 1e-3 keeps the logarithm finite)
    ratio_tuned = np.log(np.maximum(tuned.wLRE.values[edges], 1e-3) / np.maximum(tuned.wFFI.values[edges], 1e-3))
    r_J = np.corrcoef(J_true, J_tuned)[0, 1]
    r_a = np.corrcoef(2 * a[edges], ratio_tuned)[0, 1]
    print(f"   J_i, twin vs tuned: r = {r_J:.3f}")
    print(f"   log(wLRE / wFFI) on the {int(edges.sum())} SC edges, twin vs tuned: r = {r_a:.3f}")
    print("   (FIC+EIB fits FC, not parameters: many parameter sets give similar FCs, so partial "
          "recovery is what to expect.)")
    print(f"   tuned J_i of rA1: {float(tuned.J_i.sel(region='rA1')):.3f}; "
          f"wLRE rA1 <- rA2: {float(tuned.wLRE.sel(region='rA1', region_j='rA2')):.3f}")

    # ------------------------------------------------------------------------------------------
    print("\n5. Back to TVB: the tuned model as TVB's own Simulator")
    # ------------------------------------------------------------------------------------------
    tuned_net = net.with_tuned(J_i=tuned.J_i.values, wLRE=tuned.wLRE.values, wFFI=tuned.wFFI.values)
    tvb_sim = eib.tvb.to_simulator(tuned_net, labels, tract_lengths=conn.tract_lengths, speed=3.0,
                                   monitors=(monitors.TemporalAverage(period=20.0), monitors.Bold(period=720.0)),
                                   simulation_length=cfg["tvb_ms"])
    print(f"   {type(tvb_sim.model).__name__} with {type(tvb_sim.coupling).__name__} coupling "
          "(TVB subclasses carrying J_i per region and the two coupling matrices)")
    t0 = time.perf_counter()
    (t_avg, y_avg), (t_bold, y_bold) = tvb_sim.run()
    S_e_tvb = y_avg[:, 0, :, 0]
    settled = t_avg > 2000.0  # TVB starts from S = 0.001; skip the first 2 s
    print(f"   TVB ran {cfg['tvb_ms'] / 1000:.0f} s of simulated time in {time.perf_counter() - t0:.1f} s; "
          f"mean S_e after 2 s: {S_e_tvb[settled].mean():.3f} (FIC target 0.25); "
          f"{len(t_bold)} BOLD samples")
    # Is it the same model? Without noise both simulators are deterministic, so they can be compared
    # step by step: TVB's Raw monitor against the plugin's trajectory from the same initial history.
    check_ms = 2000.0
    det_sim = eib.tvb.to_simulator(tuned_net, labels, tract_lengths=conn.tract_lengths, speed=3.0,
                                   deterministic=True, monitors=(monitors.Raw(),), simulation_length=check_ms)
    (t_raw, y_raw), = det_sim.run()
    det_net = tuned_net.replace(integrator=eib.heun(tuned_net.dt, 0.0))  # the same network, noise off
    _, ours = eib.trajectory(det_net, eib.initial_state(det_net, seed=0), len(t_raw))
    err = float(np.abs(np.asarray(ours) - y_raw[:, :, :, 0]).max())
    print(f"   noise-free check, {check_ms / 1000:.0f} s ({len(t_raw)} steps, delays on): "
          f"max |S(TVB) - S(plugin)| = {err:.1e}")

    # ------------------------------------------------------------------------------------------
    print("\n6. Figures")
    # ------------------------------------------------------------------------------------------
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(2, 3, figsize=(16, 10), layout="constrained")
    fcs = [(fc_target, "Target FC (the twin's, synthetic)"),
           (tree["fic/evaluation"].fc.values, f"After FIC (r = {float(tree['fic/evaluation'].fc_corr):.3f})"),
           (tree["fic_eib/evaluation"].fc.values,
            f"After FIC+EIB (r = {float(tree['fic_eib/evaluation'].fc_corr):.3f})")]
    vmax = float(np.abs(fc_target[iu]).max())
    for axis, (m, title) in zip(ax[0], fcs):
        m = np.array(m, dtype=float)
        np.fill_diagonal(m, np.nan)
        im = axis.imshow(m, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        axis.set(title=title, xlabel="region j", ylabel="region i")
        fig.colorbar(im, ax=axis, fraction=0.046)
    axis = ax[1, 0]
    axis.scatter(J_true, J_tuned, s=14, color="tab:blue")
    lim = [min(J_true.min(), J_tuned.min()), max(J_true.max(), J_tuned.max())]
    axis.plot(lim, lim, "k--", lw=1, label="identity")
    axis.set(xlabel="J_i of the twin (truth)", ylabel="J_i tuned", title=f"Local inhibition J_i (r = {r_J:.2f})")
    axis.legend()
    axis = ax[1, 1]
    axis.scatter(2 * a[edges], ratio_tuned, s=4, alpha=0.4, color="tab:purple")
    axis.axhline(0, color="0.6", lw=0.8)
    axis.axvline(0, color="0.6", lw=0.8)
    axis.set(xlabel="log(wLRE / wFFI) of the twin (truth)", ylabel="log(wLRE / wFFI) tuned",
             title=f"E/I balance per SC edge (r = {r_a:.2f})")
    axis = ax[1, 2]
    t_s = t_avg / 1000.0
    lo, hi = np.percentile(S_e_tvb, [10, 90], axis=1)
    axis.fill_between(t_s, lo, hi, color="0.8", label="10-90% of regions")
    for r in ("rA1", "rPFCM"):
        axis.plot(t_s, S_e_tvb[:, labels.index(r)], lw=0.6, label=r)
    axis.plot(t_s, S_e_tvb.mean(axis=1), color="k", lw=1.2, label="mean over regions")
    axis.axhline(0.25, color="tab:red", ls="--", lw=1.5, label="FIC target 0.25")
    axis.set(xlabel="time (s)", ylabel="S_e (20 ms averages)",
             title=f"Tuned model in TVB (noise-free check: max diff {err:.0e})", ylim=(0, 1))
    axis.legend(loc="upper right", fontsize=8, ncol=2)
    fig.suptitle("Tutorial 01: connectivity_76 tuned to a synthetic twin FC" + (" (--quick)" if args.quick else ""))
    path = os.path.join(args.out, "01_quickstart.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"   {path}")
    path = os.path.join(args.out, "01_results_figure.png")
    plt.close(eib.results_figure(tree, path))
    print(f"   {path}  (one row for FIC and one for FIC+EIB: the gradient stage did not run here)")
    print(f"\nDone in {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
