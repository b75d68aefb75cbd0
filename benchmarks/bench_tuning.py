"""Wall time of the full FIC (200) + FIC+EIB (2000) tuning on dk_average, after compilation.

Ours (float32 and float64: every iteration compiled inside lax.scan) against
tvboptim's EI-tuning tutorial loop (a Python loop per iteration) when
installed, both as the tutorial runs it and with its iteration wrapped in
jax.jit, in the same run.  The peer is timed on a few iterations and
extrapolated to 2200 (its per-iteration cost is flat); pass --peer-iterations
to time more.

    python benchmarks/bench_tuning.py [--peer-iterations 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(__file__))
import tvb_eib_plugin as eib  # noqa: E402
from tvb_eib_plugin.routines import FIC, FICEIB, TuningState  # noqa: E402


def time_ours(dtype) -> dict:
    con = eib.load_dataset("dk_average")
    net = eib.network_from_connectome(con, delays=False, dtype=dtype)
    state = eib.simulate(net, eib.initial_state(net, 0), 300000.0).state
    start = TuningState(net, state)
    quiet = lambda _: None  # noqa: E731

    def tune(n_fic, n_eib):
        t0 = time.perf_counter()
        fic = FIC(n_iterations=n_fic).run(start, con.fc_target, {}, quiet)
        mid = time.perf_counter()
        FICEIB(n_iterations=n_eib).run(fic.state, con.fc_target, {"fic": fic}, quiet)
        end = time.perf_counter()
        return mid - t0, end - mid

    compile_fic, compile_eib = tune(150, 100)  # same chunk shapes as the full run: compiles everything
    fic_s, eib_s = tune(200, 2000)
    return dict(name=f"tvb-eib-plugin {jnp.dtype(dtype).name}", fic_s=fic_s, fic_eib_s=eib_s,
                total_s=fic_s + eib_s, ms_per_iteration=(fic_s + eib_s) / 2200 * 1e3,
                first_run_s=compile_fic + compile_eib,
                how="200 + 2000 iterations, compiled chunks of 10 / 100 iterations, after a compiling run")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peer-iterations", type=int, default=10)
    ap.add_argument("--json")
    ap.add_argument("--no-peers", action="store_true")
    args = ap.parse_args(argv)
    rows = [time_ours(jnp.float32), time_ours(jnp.float64)]
    if not args.no_peers:
        import peers

        for jit in (False, True):
            try:
                r = peers.time_tvboptim_tuning_loop(n_fic=args.peer_iterations, n_fic_eib=args.peer_iterations,
                                                    jit=jit, transient_ms=300000.0)
            except ImportError as err:
                print(f"tvboptim not installed ({err}); skipped", file=sys.stderr)
                break
            total = r["extrapolated_seconds"]
            rows.append(dict(name=f"tvboptim tutorial loop{' + jax.jit' if jit else ''} (float64)",
                             total_s=total, ms_per_iteration=total / 2200 * 1e3,
                             how=r["how"] + f"; extrapolated from {args.peer_iterations} + "
                                             f"{args.peer_iterations} timed iterations"))
    ref = rows[0]["total_s"]
    print(f"\nFIC (200) + FIC+EIB (2000) on dk_average, dt = 4 ms, {os.cpu_count()} CPU cores, after compilation")
    print(f"{'':48s}{'total s':>10s}{'ms/iter':>10s}{'x ours f32':>12s}")
    for r in rows:
        print(f"{r['name']:48s}{r['total_s']:>10.2f}{r['ms_per_iteration']:>10.2f}{r['total_s'] / ref:>12.1f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return rows


if __name__ == "__main__":
    main()
