"""Tutorial 03: gradient fitting with optax in the loop, and what it costs in time and memory.

What it teaches:
  * the ``gradient_eib`` routine: J_i, wLRE and wFFI fitted by reverse-mode gradients through a
    whole simulation, loss = FC RMSE + activity_weight * (mean S_e - 0.25)^2, averaged over
    ``noise_samples`` noise realisations;
  * starting it from a FIC+EIB result and running it directly (``eib.GradientEIB(...).run``), with
    the default ``optax.adamaxw``, then with other optax optimizers (adam; a chain with a
    decaying learning rate and clipped updates), another weighting of the loss terms, and the
    reference's single fixed noise realisation;
  * the settings that decide memory and speed: the simulated duration per loss evaluation, the
    number of noise realisations, the hand-written adjoint (no delays) against checkpointed
    autodiff (delays), float32 against float64; each measured on this machine.

Full mode: the reference FIC and FIC+EIB, then 16 steps per variant on a 150 s loss simulation
(the reference simulates 300 s per loss; tutorial 02 runs that, 66 steps); about 5 minutes on
2 CPU cores. ``--quick``: 2 steps per variant on a 21.6 s simulation.

Run:  python tutorials/03_gradient_fitting.py [--quick] [--out DIR]
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore", message="Geodesic distance module is unavailable")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

from tutorial_args import parse_tutorial_args  # noqa: E402
import tvb_eib_plugin as eib  # noqa: E402
# Internals, not public API: TuningState and loss_terms are used only to show the mechanics.
from tvb_eib_plugin.routines import TuningState  # noqa: E402
from tvb_eib_plugin.routines.gradient import loss_terms  # noqa: E402

# Full: the reference FIC/FIC+EIB, then 16 steps per variant on a 150 s loss simulation (the
# reference simulates 300 s per loss evaluation; tutorial 02 runs that, 66 steps).
FULL = dict(transient_ms=300_000.0, eval_ms=300_000.0, fic=200, eib=2000, window=150, steps=16,
            duration_ms=150_000.0, discard=30, probe_ms=36_000.0, probe_rows_skipped=())
# Quick: everything short; the memory table leaves out three of its rows (each is one more compilation).
QUICK = dict(transient_ms=36_000.0, eval_ms=72_000.0, fic=60, eib=100, window=50, steps=2, duration_ms=21_600.0,
             discard=5, probe_ms=14_400.0, probe_rows_skipped=("2x duration", "2 noise samples", "no checkpoint"))


def main():
    args = parse_tutorial_args(__doc__)
    cfg = QUICK if args.quick else FULL
    import matplotlib.pyplot as plt

    started = time.perf_counter()
    con = eib.load_dataset("dk_average")
    fc_target = con.fc_target

    # ------------------------------------------------------------------------------------------
    print("1. A starting point: FIC + FIC+EIB on dk_average (the reference settings)")
    # ------------------------------------------------------------------------------------------
    tree = eib.run_experiment(routines=("fic", "fic_eib"), transient_ms=cfg["transient_ms"], eval_ms=cfg["eval_ms"],
                              routine_settings={"fic": {"n_iterations": cfg["fic"]},
                                                "fic_eib": {"n_iterations": cfg["eib"], "window": cfg["window"]}},
                              log=None)
    tuned = tree["fic_eib"]
    print(f"   FIC+EIB: fc_corr {float(tuned.evaluation.fc_corr):.3f}, fc_rmse {float(tuned.evaluation.fc_rmse):.3f} "
          f"({tuned.attrs['wall_time_s']:.0f} s)")
    # The results hold the tuned parameters; a network with them and a settled state is where the
    # gradient routine starts (run_experiment does the same when gradient_eib follows fic_eib).
    net = eib.network_from_connectome(con, delays=False, dtype=jnp.float32)
    net = net.with_tuned(J_i=tuned.J_i.values, wLRE=tuned.wLRE.values, wFFI=tuned.wFFI.values)
    start = TuningState(net, eib.simulate(net, eib.initial_state(net, seed=0), 36_000.0).state)

    # ------------------------------------------------------------------------------------------
    print("\n2. Optax in the loop")
    # ------------------------------------------------------------------------------------------
    # Every variant starts from the same state and takes cfg["steps"] optimizer steps, each on a
    # loss from a cfg["duration_ms"] simulation; after each step wLRE, wFFI and J_i are projected
    # onto >= 0. The routine's settings, with their defaults (neotraits, with bounds and docs):
    defaults = eib.GradientEIB().settings()
    print("   GradientEIB settings (default: meaning):")
    for k, v in defaults.items():
        print(f"     {k} = {v}: {getattr(eib.GradientEIB, k).doc}")
    n = cfg["steps"]
    # name: (GradientEIB settings, how it reads in code)
    variants = {
        "adamaxw (default, lr 0.033)": (dict(), "eib.GradientEIB()  # optimizer=None: optax.adamaxw(learning_rate)"),
        "adam, lr 0.01": (dict(optimizer=optax.adam(1e-2)), "eib.GradientEIB(optimizer=optax.adam(1e-2))"),
        # Clipping the *gradient* (clip_by_global_norm) before an Adam-family optimizer changes
        # little, since they divide by the gradient's own scale; clipping the *update* bounds how
        # far any parameter moves in one step, which is what one wants for stability.
        "adamaxw (lr 0.05, cosine decay), updates clipped to +-0.01": (
            dict(optimizer=optax.chain(optax.adamaxw(optax.cosine_decay_schedule(0.05, decay_steps=n)),
                                       optax.clip(0.01))),
            "eib.GradientEIB(optimizer=optax.chain(optax.adamaxw(optax.cosine_decay_schedule(0.05, n)),\n"
            "                                      optax.clip(0.01)))"),
        "adamaxw, activity_weight 10": (dict(activity_weight=10.0), "eib.GradientEIB(activity_weight=10.0)"),
        # The reference workflow's loss: one noise realisation, the same at every step. The loss is
        # then deterministic and falls smoothly, but the fit can learn that realisation's noise;
        # the evaluation below (new noise) tells.
        "adamaxw, one fixed noise realisation (the reference)": (
            dict(noise_samples=1, resample_noise=False), "eib.GradientEIB(noise_samples=1, resample_noise=False)"),
    }
    common = dict(n_steps=n, duration_ms=cfg["duration_ms"], discard=cfg["discard"], seed=0)
    fits = {}
    for name, (extra, code) in variants.items():
        routine = eib.GradientEIB(**common, **extra)
        print(f"\n   --- {name}\n   {code}")
        res = routine.run(start, fc_target, {}, lambda line: print("   " + line))
        model = res.state.model
        ev = eib.simulate(model, start.sim, cfg["eval_ms"])  # an evaluation with noise the fit never saw
        fc_sim = eib.fc(ev.bold[20:])
        fits[name] = dict(history=res.history, seconds=res.seconds, fc_corr=float(eib.fc_corr(fc_sim, fc_target)),
                          fc_rmse=float(eib.fc_rmse(fc_sim, fc_target)), mean_S_e=float(ev.mean_S[:, 0].mean()))
        f = fits[name]
        print(f"   {res.seconds:.0f} s for {n} steps (compilation included); "
              f"evaluation: fc_corr {f['fc_corr']:.3f}, fc_rmse {f['fc_rmse']:.3f}, mean S_e {f['mean_S_e']:.3f}")

    print(f"\n   {'variant':60s}{'loss[0]':>9s}{'loss[-1]':>10s}{'eval fc_corr':>14s}{'eval fc_rmse':>14s}")
    for name, f in fits.items():
        h = f["history"]
        print(f"   {name:60s}{h['loss'][0]:9.4f}{h['loss'][-1]:10.4f}{f['fc_corr']:14.3f}{f['fc_rmse']:14.3f}")
    print(f"   (start, FIC+EIB: fc_corr {float(tuned.evaluation.fc_corr):.3f}. The loss is recorded before each "
          "step's update, on that step's noise; activity_weight 10 weighs the activity term 10x, so its loss is "
          "not on the same scale. 'eval' simulates the fitted model anew, with noise no loss has seen.)")
    print(f"   ({n} steps is a short fit; tutorial 02 runs the reference's 66 on a 300 s simulation.)")
    print("   In eib.run_experiment the same is: routine_settings={'gradient_eib': {'optimizer': optax.adam(1e-2), "
          "'activity_weight': 10.0, 'n_steps': ..., 'duration_ms': ...}}")

    # ------------------------------------------------------------------------------------------
    print("\n3. Memory and speed: one loss value-and-gradient, measured")
    # ------------------------------------------------------------------------------------------
    # Memory per loss evaluation grows with the simulated duration (duration_ms). Without
    # delays, reverse mode runs a hand-written adjoint of the Heun integration that stores only
    # the S_e, S_i trajectories; with delays it is JAX autodiff with every TR checkpointed
    # (recomputed on the way back). "temp" is XLA's compiled scratch memory for the whole
    # value-and-gradient; "adjoint" and "checkpoint" are LossSettings fields the routine sets.
    probe = cfg["probe_ms"]
    # (label, precision, delays, noise realisations per loss, LossSettings flags, simulated ms)
    rows = [
        ("float32, no delays, adjoint", jnp.float32, False, 1, {}, probe),
        ("float32, no delays, adjoint, 2x duration", jnp.float32, False, 1, {}, 2 * probe),
        ("float32, no delays, adjoint, 2 noise samples", jnp.float32, False, 2, {}, probe),
        ("float64, no delays, adjoint", jnp.float64, False, 1, {}, probe),
        ("float64, no delays, autodiff + checkpoint", jnp.float64, False, 1, dict(adjoint=False), probe),
        ("float64, no delays, autodiff, no checkpoint", jnp.float64, False, 1, dict(adjoint=False, checkpoint=False),
         probe),
        ("float64, delays, autodiff + checkpoint", jnp.float64, True, 1, {}, probe),
    ]
    rows = [r for r in rows if not any(k in r[0] for k in cfg["probe_rows_skipped"])]
    measured = []
    for label, dtype, delays, samples, flags, duration in rows:
        m = eib.network_from_connectome(con, delays=delays, dtype=dtype)
        m = m.with_tuned(J_i=tuned.J_i.values, wLRE=tuned.wLRE.values, wFFI=tuned.wFFI.values)
        state = eib.simulate(m, eib.initial_state(m, seed=0), 7_200.0).state
        routine = eib.GradientEIB(duration_ms=duration, discard=5, noise_samples=samples)
        ls = dataclasses.replace(routine.loss_settings(m), **flags)
        value_and_grad = jax.jit(jax.value_and_grad(
            lambda p, m=m, state=state, ls=ls: loss_terms(p, m, state, jnp.asarray(fc_target), ls)["loss"]))
        p = m.tuned
        t0 = time.perf_counter()
        compiled = value_and_grad.lower(p).compile()
        t_compile = time.perf_counter() - t0
        stats = compiled.memory_analysis()
        temp = stats.temp_size_in_bytes / 1e6 if stats is not None else float("nan")
        jax.block_until_ready(compiled(p))  # one warm-up call, then the timed one
        t0 = time.perf_counter()
        value, grad = jax.block_until_ready(compiled(p))
        t_run = time.perf_counter() - t0
        g = np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree_util.tree_leaves(grad)])
        measured.append(dict(label=label, duration=duration, delays=delays, compile=t_compile, run=t_run,
                             temp=temp, loss=float(value), grad=g))
    # Gradients of the same loss (no delays, same duration) against the float64 adjoint's
    ref = next(x["grad"] for x in measured if x["label"].startswith("float64, no delays, adjoint"))
    print(f"   {'configuration':46s}{'sim (s)':>8s}{'compile':>9s}{'run':>8s}{'temp MB':>9s}{'loss':>10s}"
          f"{'grad diff':>11s}")
    for x in measured:
        same_loss = not x["delays"] and x["duration"] == probe and "noise samples" not in x["label"]
        diff = f"{np.abs(x['grad'] - ref).max() / np.abs(ref).max():11.1e}" if same_loss else f"{'-':>11s}"
        print(f"   {x['label']:46s}{x['duration'] / 1000:8.1f}{x['compile']:8.1f}s{x['run']:7.2f}s{x['temp']:9.0f}"
              f"{x['loss']:10.5f}{diff}")
    print("   (grad diff: max |grad - grad of the float64 adjoint| / max |grad|, where the loss is the same one.)")
    by = {x["label"]: x for x in measured}
    a32, a64 = by["float32, no delays, adjoint"], by["float64, no delays, adjoint"]
    ck, dl = by["float64, no delays, autodiff + checkpoint"], by["float64, delays, autodiff + checkpoint"]
    print("   Reading the table (this run's numbers):")
    if "float32, no delays, adjoint, 2x duration" in by:
        a32x2 = by["float32, no delays, adjoint, 2x duration"]
        print(f"   - duration: twice the simulated time, {a32x2['run'] / a32['run']:.1f}x the time and "
              f"{a32x2['temp'] / a32['temp']:.1f}x the memory; shorten duration_ms where memory is tight (fewer "
              "BOLD samples for the FC: a noisier loss).")
    if "float32, no delays, adjoint, 2 noise samples" in by:
        a32n2 = by["float32, no delays, adjoint, 2 noise samples"]
        print(f"   - noise_samples=2 simulates two realisations side by side: {a32n2['run'] / a32['run']:.1f}x the "
              f"time, {a32n2['temp'] / a32['temp']:.1f}x the memory of one.")
    print(f"   - no delays: the hand-written adjoint takes {a64['run']:.2f} s against {ck['run']:.2f} s for "
          f"checkpointed autodiff ({a64['temp']:.0f} MB against {ck['temp']:.0f} MB: the adjoint stores the S_e, "
          "S_i trajectories, checkpointing one carry per TR and recomputes).")
    if "float64, no delays, autodiff, no checkpoint" in by:
        nock = by["float64, no delays, autodiff, no checkpoint"]
        print(f"   - autodiff without checkpointing keeps every step's residuals: {nock['temp']:.0f} MB, "
              f"{nock['temp'] / ck['temp']:.1f}x the checkpointed run's, growing with duration.")
    print(f"   - delays: gradients go through checkpointed autodiff of the delayed integration, {dl['run']:.2f} s "
          f"({dl['run'] / ck['run']:.1f}x the no-delay autodiff), {dl['temp']:.0f} MB against {ck['temp']:.0f} MB.")
    print(f"   - float32 against float64 (adjoint): {a32['run']:.2f} s against {a64['run']:.2f} s, {a32['temp']:.0f} "
          f"against {a64['temp']:.0f} MB; the loss agrees to {abs(a32['loss'] - a64['loss']):.1e} (the BOLD "
          "convolution and the FC are computed in float64 either way).")
    print("   The routine picks the method itself: the adjoint without delays, checkpointed autodiff with them;\n"
          "   the precision is the network's (eib.run_experiment(precision=...) or dtype= when you build it).")

    # ------------------------------------------------------------------------------------------
    print("\n4. Figure")
    # ------------------------------------------------------------------------------------------
    fig, ax = plt.subplots(2, 3, figsize=(19, 10), layout="constrained")
    colours = plt.get_cmap("tab10").colors
    for c, (name, f) in zip(colours, fits.items()):
        h = f["history"]
        steps = np.arange(len(h["loss"]))
        ax[0, 0].plot(steps, h["loss"], "o-", ms=3, color=c, label=name)
        ax[0, 1].plot(steps, h["fc_rmse"], "o-", ms=3, color=c, label=name)
        ax[0, 2].plot(steps, h["activity"], "o-", ms=3, color=c, label=name)
    ax[0, 0].set(xlabel="optimizer step", ylabel="loss", title="Loss = FC RMSE + activity_weight x activity")
    ax[0, 1].set(xlabel="optimizer step", ylabel="FC RMSE (loss simulation)", title="FC term of the loss")
    ax[0, 2].set(xlabel="optimizer step", ylabel="mean_i (mean S_e_i - 0.25)^2", title="Activity term of the loss",
                 yscale="log")
    for a in ax[0]:
        a.grid(True, alpha=0.3)
    handles, names_ = ax[0, 0].get_legend_handles_labels()
    fig.legend(handles, names_, loc="outside lower center", ncol=3, fontsize=9)
    a = ax[1, 0]  # a dot plot (bars from 0 would hide differences of a few hundredths)
    names = list(fits)
    y = np.arange(len(names))
    vals = [fits[k]["fc_corr"] for k in names]
    start_r = float(tuned.evaluation.fc_corr)
    a.scatter(vals, y, s=80, color=colours[:len(names)], zorder=3)
    a.hlines(y, start_r, vals, colors=colours[:len(names)], lw=2)
    a.axvline(start_r, color="k", ls="--", lw=1, label=f"FIC+EIB start ({start_r:.3f})")
    for yi, v in zip(y, vals):
        a.annotate(f"{v:.3f}", (v, yi), textcoords="offset points", xytext=(0, 8), ha="center", fontsize=8)
    a.set_yticks(y, [k.replace(", ", "\n", 1) for k in names], fontsize=8)
    a.set_ylim(len(names) - 0.4, -0.8)  # top to bottom, with room for the labels
    span = max(abs(v - start_r) for v in vals) + 0.01
    a.set_xlim(start_r - 1.3 * span, start_r + 1.3 * span)
    a.set(xlabel="fc_corr of a fresh evaluation (new noise)", title=f"After {n} steps, evaluated")
    a.grid(True, axis="x", alpha=0.3)
    a.legend(fontsize=8, loc="best")
    labels = [x["label"].replace(", ", "\n", 1) for x in measured]
    y = np.arange(len(measured))
    for a, key, title in ((ax[1, 1], "run", "Time per loss value-and-gradient (s)"),
                          (ax[1, 2], "temp", "Scratch memory (XLA), MB")):
        vals = [x[key] for x in measured]
        a.barh(y, vals, color="tab:blue")
        for yi, v in zip(y, vals):
            a.text(v, yi, f" {v:.2f} s" if key == "run" else f" {v:.0f} MB", va="center", fontsize=8)
        a.set_yticks(y, labels, fontsize=8)
        a.invert_yaxis()
        a.set_xlim(0, 1.3 * max(vals))
        a.set(xlabel=f"{probe / 1000:.1f} s simulated per loss (2x where marked)", title=title)
    fig.suptitle("Tutorial 03: gradient fitting on dk_average from the FIC+EIB result"
                 + (" (--quick)" if args.quick else ""))
    path = os.path.join(args.out, "03_gradient_fitting.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"   {path}")
    print(f"\nDone in {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
