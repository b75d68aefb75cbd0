"""Seconds per optimizer step (value and gradient of the FC loss + optax update) and peak memory.

Ours at 60 s and 300 s of simulation (one noise realisation, as the peer; and
the routine's default of two) against tvboptim's OptaxOptimizer on the same loss (RMSE(FC(BOLD)) + activity penalty w.r.t. J_i, wLRE, wFFI, 84
regions, dt 4 ms, float64) when installed, in the same run.  Each measurement
runs in a fresh subprocess so that its peak RSS (imports, compilation and
all) is its own; "baseline" is such a process that only imports and
simulates, to read the gradient's own share.

    python benchmarks/bench_gradient.py [--durations 60000 300000] [--peer-durations 60000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MARK = "@@RESULT@@"


def child(duration_ms: float, n_steps: int, precision: str, gradient: bool, noise_samples: int = 1) -> dict:
    import jax
    import jax.numpy as jnp
    import optax

    import tvb_eib_plugin as eib
    from tvb_eib_plugin.routines.gradient import GradientEIB, project, value_and_grad

    con = eib.load_dataset("dk_average")
    net = eib.network_from_connectome(con, delays=False, dtype=jnp.dtype(precision))
    state = eib.simulate(net, eib.initial_state(net, 0), 36000.0).state
    out = dict(duration_ms=duration_ms, precision=precision, n_regions=net.n_regions, noise_samples=noise_samples)
    if gradient:
        ls = GradientEIB(duration_ms=duration_ms, noise_samples=noise_samples).loss_settings(net)
        opt = optax.adamaxw(0.033)
        fc_t = jnp.asarray(con.fc_target, jnp.float64)

        @jax.jit
        def step(p, opt_state, k):  # what one step of GradientEIB's optimizer scan does
            sim = state.with_key(jax.random.fold_in(state.key, k))
            (_, terms), grads = value_and_grad(p, net, sim, fc_t, ls)
            updates, opt_state = opt.update(grads, opt_state, p)
            return project(optax.apply_updates(p, updates)), opt_state, terms

        p = net.tuned
        carry = (p, opt.init(p))
        t0 = time.perf_counter()
        carry = jax.block_until_ready(step(*carry, 0))[:2]
        out["first_step_s"] = time.perf_counter() - t0
        times, cpu = [], []
        for k in range(n_steps):
            t0, c0 = time.perf_counter(), time.process_time()
            carry = jax.block_until_ready(step(*carry, k + 1))[:2]
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        # CPU seconds too: on a shared, loaded machine the wall time also counts the waits
        out.update(s_per_step=min(times), s_per_step_median=sorted(times)[len(times) // 2],
                   cpu_s_per_step_median=sorted(cpu)[len(cpu) // 2])
    out["peak_rss_MB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def isolated(**kw) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", json.dumps(kw)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    raise RuntimeError(proc.stderr[-3000:])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--durations", type=float, nargs="+", default=[60000.0, 300000.0])
    ap.add_argument("--peer-durations", type=float, nargs="+", default=[60000.0])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--precision", default="float64")
    ap.add_argument("--json")
    ap.add_argument("--child")
    args = ap.parse_args(argv)
    if args.child:
        print(MARK + json.dumps(child(**json.loads(args.child))))
        return None

    rows = []
    base = isolated(duration_ms=0.0, n_steps=0, precision=args.precision, gradient=False)
    rows.append(dict(name="ours: baseline process (imports + a simulation)", **base))
    for d in args.durations:
        r = isolated(duration_ms=d, n_steps=args.steps, precision=args.precision, gradient=True)
        rows.append(dict(name=f"tvb-eib-plugin {args.precision}, {d / 1000:.0f} s", **r))
    # the routine's default: two noise realisations per loss, taken one after another (value_and_grad)
    r = isolated(duration_ms=args.durations[-1], n_steps=args.steps, precision=args.precision, gradient=True,
                 noise_samples=2)
    rows.append(dict(name=f"  same, 2 noise samples (the default), {args.durations[-1] / 1000:.0f} s", **r))
    sys.path.insert(0, HERE)
    import peers

    for d in args.peer_durations:
        try:
            r = peers.time_tvboptim_gradient(duration_ms=d, n_steps=args.steps)
        except ImportError as err:
            print(f"tvboptim not installed ({err}); skipped", file=sys.stderr)
            break
        rows.append(dict(name=f"tvboptim OptaxOptimizer float64, {d / 1000:.0f} s", duration_ms=d,
                         s_per_step=r.get("s_per_step"), s_per_step_median=r.get("s_per_step_median"),
                         peak_rss_MB=r.get("peak_rss_MB"), how=r.get("how")))

    print(f"\nGradient step on dk_average (84 regions, dt 4 ms), {os.cpu_count()} CPU cores")
    print(f"{'':50s}{'s/step':>9s}{'CPU s/step':>11s}{'peak RSS MB':>13s}{'above baseline':>16s}")
    for r in rows:
        sps, cpu = r.get("s_per_step"), r.get("cpu_s_per_step_median")
        print(f"{r['name']:50s}{(f'{sps:.3f}' if sps else '-'):>9s}{(f'{cpu:.3f}' if cpu else '-'):>11s}"
              f"{r['peak_rss_MB']:>13.0f}{r['peak_rss_MB'] - base['peak_rss_MB']:>16.0f}")
    ours = {r["duration_ms"]: r for r in rows if r["name"].startswith("tvb-eib")}  # one noise sample: the peer's loss
    for r in rows:
        if r["name"].startswith("tvboptim") and r["duration_ms"] in ours and r.get("s_per_step"):
            o = ours[r["duration_ms"]]
            print(f"at {r['duration_ms'] / 1000:.0f} s: tvboptim / ours = {r['s_per_step'] / o['s_per_step']:.1f}x "
                  f"time per step, {r['peak_rss_MB'] / o['peak_rss_MB']:.1f}x peak memory "
                  f"({(r['peak_rss_MB'] - base['peak_rss_MB']) / max(o['peak_rss_MB'] - base['peak_rss_MB'], 1):.1f}x "
                  "above our baseline process)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1, default=str)
    return rows


if __name__ == "__main__":
    main()
