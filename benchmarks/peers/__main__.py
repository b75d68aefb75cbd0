"""``python -m peers`` (from benchmarks/): run every timing once with its defaults and print the dicts
(a few minutes on 2 CPU cores); ``--child NAME KWARGS_JSON`` is the fresh process of :func:`run_isolated`."""

import sys
import time

from peers import (PeerUnavailable, time_tvb_simulator, time_tvboptim_gradient, time_tvboptim_simulation,
                   time_tvboptim_tuning_loop)
from peers.isolated import _child_main


def _fmt(d):
    keys = [k for k in d if k not in ("versions",)]
    out = []
    for k in keys:
        v = d[k]
        if isinstance(v, float):
            v = f"{v:.4g}"
        elif isinstance(v, list):
            v = "[" + ", ".join(f"{x:.4g}" if isinstance(x, float) else str(x) for x in v) + "]"
        out.append(f"    {k}: {v}")
    return "\n".join(out)


def _self_check():
    checks = [
        ("time_tvb_simulator()", lambda: time_tvb_simulator()),
        ("time_tvb_simulator('dk_average')", lambda: time_tvb_simulator("dk_average")),
        ("time_tvboptim_simulation(jit=False)", lambda: time_tvboptim_simulation(jit=False)),
        ("time_tvboptim_simulation(jit=True)", lambda: time_tvboptim_simulation(jit=True)),
        ("time_tvboptim_tuning_loop(jit=False)", lambda: time_tvboptim_tuning_loop(jit=False)),
        ("time_tvboptim_tuning_loop(jit=True)", lambda: time_tvboptim_tuning_loop(jit=True)),
        ("time_tvboptim_gradient()", lambda: time_tvboptim_gradient()),
    ]
    for name, fn in checks:
        t0 = time.perf_counter()
        try:
            res = fn()
        except PeerUnavailable as e:
            print(f"{name}: SKIPPED ({e})", flush=True)
            continue
        print(f"{name}  [{time.perf_counter() - t0:.1f} s wall]\n{_fmt(res)}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "--child":
        sys.exit(_child_main(sys.argv[2], sys.argv[3]))
    _self_check()
