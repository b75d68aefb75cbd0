"""Speed of one 5-minute simulation of the 84-region dk_average network at dt = 4 ms.

Times this plugin (float32 and float64), TVB's own Simulator and tvboptim
(when installed) in the same run, after compilation / warm-up, and prints
microseconds per integration step side by side with ratios.

    python benchmarks/bench_simulate.py [--duration-ms 300000] [--tvb-ms 20000] [--json out.json] [--cost]

``--cost`` also prints the per-step cost model (benchmarks/cost_model.py: flops, bytes, kernels and
the implied GFLOP/s and GB/s) of our step in both precisions.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import tvb_eib_plugin as eib  # noqa: E402
from tvb_eib_plugin._simulation.simulate import n_trs, run_trs  # noqa: E402


def time_ours(dtype, duration_ms: float, repeats: int = 3) -> dict:
    con = eib.load_dataset("dk_average")
    net = eib.network_from_connectome(con, delays=False, dtype=dtype)
    state = eib.initial_state(net, 0)
    n = n_trs(net, duration_ms)
    t0 = time.perf_counter()
    state, rec = run_trs(net, state, n)
    jax.block_until_ready(rec)
    first = time.perf_counter() - t0
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        state, rec = run_trs(net, state, n)
        jax.block_until_ready(rec)
        best = min(best, time.perf_counter() - t0)
    steps = n * net.bold.steps_per_tr
    return dict(name=f"tvb-eib-plugin {jnp.dtype(dtype).name}", n_regions=net.n_regions, n_steps=steps,
                seconds=best, us_per_step=best / steps * 1e6, first_call_s=first,
                how="one compiled lax.scan over 416 TRs (BOLD included), best of 3 after compilation")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration-ms", type=float, default=300000.0)
    ap.add_argument("--tvb-ms", type=float, default=20000.0, help="TVB run length (its per-step cost is flat)")
    ap.add_argument("--json", help="write the rows here")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--cost", action="store_true", help="print the per-step cost model too")
    args = ap.parse_args(argv)

    rows = [time_ours(jnp.float32, args.duration_ms), time_ours(jnp.float64, args.duration_ms)]
    if not args.no_peers:
        import peers

        for conn in ("dk_average", "connectivity_76"):
            r = peers.time_tvb_simulator(connectivity=conn, duration_ms=args.tvb_ms, delays=False)
            rows.append(dict(name=f"TVB Simulator ({conn}, float64)", **_pick(r)))
        for jit in (False, True):
            try:
                r = peers.time_tvboptim_simulation(duration_ms=args.duration_ms, jit=jit)
            except ImportError as err:
                print(f"tvboptim not installed ({err}); skipped", file=sys.stderr)
                break
            rows.append(dict(name=f"tvboptim {'jax.jit' if jit else 'as in its tutorial'} (float64)", **_pick(r)))

    ref = rows[1]["us_per_step"]
    print(f"\n5-minute simulation, dk_average, dt = 4 ms, {os.cpu_count()} CPU cores, jax {jax.__version__}")
    print(f"{'':46s}{'regions':>8s}{'us/step':>10s}{'x ours f64':>12s}")
    for r in rows:
        print(f"{r['name']:46s}{r['n_regions']:>8d}{r['us_per_step']:>10.2f}{r['us_per_step'] / ref:>12.2f}")
    cost = []
    if args.cost:
        import cost_model

        cost = [cost_model.cost_row("84", None, dtype=d) for d in (jnp.float32, jnp.float64)]
        print("\nPer-step cost model of ours (kernels in the loop body, XLA's flops and bytes per step):")
        cost_model.print_table(cost)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows + cost, fh, indent=1, default=float)
    return dict(rows=rows, cost=cost)


def _pick(r: dict) -> dict:
    keys = ("n_regions", "n_steps", "us_per_step", "how")
    return {k: r.get(k) for k in keys}


if __name__ == "__main__":
    main()
