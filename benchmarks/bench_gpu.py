"""Batched simulation throughput on an accelerator: network-steps per second against batch size.

One short prepared script for a GPU machine.  For networks of 84 regions (dk_average) and 379
regions (bench_schirner's synthetic SC), without delays (the reference settings: Heun, dt 4 ms,
HRF BOLD) and with delays (the paper's: Euler-Maruyama, dt 1 ms, 3 mm/ms, Balloon-Windkessel BOLD),
it runs batches of 1, 2, 4, ... 4096 members (vmap over members, the member axis sharded over every
local device) for whole TRs in float32, and prints network-steps per second, the peak device memory,
and the batch where throughput saturates (the smallest reaching 90 % of the case's best).  Before the
timings it checks that a batch computes what its members compute alone (the largest difference is
printed; it must be float rounding), and that one network on the accelerator computes what it computes
on the host CPU, and it shows what the package's full-precision products guard against: a float32
product at JAX's default precision on the device (which may be TF32 on NVIDIA GPUs since Ampere) against the same
product at full precision, both against float64.  A case stops doubling when a run takes longer than
``--max-run-s`` or the next batch would not fit in ``--memory-fraction`` of the device memory.

The published anchor: cuBNM simulates 32,768 networks of 100 regions at about 6e7 network-steps/s on
one A100.

    python benchmarks/bench_gpu.py [--json out.json]     # on the GPU machine, a few minutes
    python benchmarks/bench_gpu.py --tiny                # CPU smoke test: 8 regions, batches 1..8, < 60 s
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tvb_eib_plugin as eib  # noqa: E402
from tvb_eib_plugin._simulation.batch import over_members, padded_size, shard_members  # noqa: E402
from tvb_eib_plugin._simulation.simulate import run_trs  # noqa: E402

import cost_model  # noqa: E402

CASES = ("84", "84d", "379", "379d")
SATURATED = 0.9  # a batch reaching this share of the best throughput has saturated the device


def members(net, batch: int):
    """A batch of ``batch`` copies of ``net`` with their own noise, padded to the device count and sharded."""
    size = padded_size(batch)
    model = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (size,) + x.shape), net)
    keys = jax.random.split(jax.random.key(0), size)
    state = jax.vmap(lambda k: eib.initial_state(net, k))(keys)
    return shard_members(model), shard_members(state), size


def run_batch(model, state, n_tr: int):
    return over_members(run_trs, True, (0, 0), ("n_tr", "record_trace"))(model, state, n_tr=n_tr)


def check_batch_equals_alone(net, batch: int = 4, n_tr: int = 1) -> float:
    """Largest relative difference of the members' mean S over ``n_tr`` TRs, batched against alone."""
    model, state, size = members(net, batch)
    _, rec = run_batch(model, state, n_tr)
    worst = 0.0
    for b in range(batch):
        one = jax.tree_util.tree_map(lambda x: x[b], (model, state))
        _, alone = run_trs(*one, n_tr)
        got, ref = np.asarray(rec.mean_S[:, b]), np.asarray(alone.mean_S)
        worst = max(worst, float(np.max(np.abs(got - ref)) / np.max(np.abs(ref))))
    return worst


def check_device_equals_cpu(net, n_tr: int = 1) -> float | None:
    """Largest relative difference of mean S over ``n_tr`` TRs, one network on the default device against
    the same network and key on the host CPU (None when the default device is the CPU)."""
    cpu = jax.devices("cpu")[0]
    if jax.devices()[0].platform == "cpu":
        return None
    _, here = run_trs(net, eib.initial_state(net, 0), n_tr)
    with jax.default_device(cpu):
        on_cpu = jax.device_put((net, eib.initial_state(net, 0)), cpu)
        _, there = run_trs(*on_cpu, n_tr)
    got, ref = np.asarray(here.mean_S), np.asarray(there.mean_S)
    return float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))


def product_errors(n: int = 379, batch: int = 64) -> dict:
    """Relative error of a float32 (batch, n, n) @ (batch, n) coupling-like product against float64, at
    JAX's default precision and at the package's full precision (``_precision.FULL``)."""
    from tvb_eib_plugin._precision import FULL

    rng = np.random.default_rng(0)
    w, x = rng.random((batch, n, n)), rng.random((batch, n))
    ref = np.einsum("bij,bj->bi", w, x)
    out = {}
    for name, precision in (("default", None), ("full", FULL)):
        got = jnp.einsum("bij,bj->bi", jnp.float32(w), jnp.float32(x), precision=precision)
        out[name] = float(np.max(np.abs(np.asarray(got, np.float64) - ref)) / np.max(np.abs(ref)))
    return out


def peak_memory_bytes() -> int:
    """Peak memory of the first device (accelerators), else this process's peak RSS."""
    stats = jax.devices()[0].memory_stats() or {}
    return int(stats.get("peak_bytes_in_use", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024))


def device_memory_bytes() -> int | None:
    stats = jax.devices()[0].memory_stats() or {}
    return stats.get("bytes_limit")


def time_batch(net, batch: int, n_tr: int) -> dict:
    model, state, size = members(net, batch)
    t0 = time.perf_counter()
    jax.block_until_ready(run_batch(model, state, n_tr))
    compile_s = time.perf_counter() - t0
    times = []
    while len(times) < 3 and sum(times) < 1.0:  # the best of up to 3 runs, stopping after 1 s of them
        t0 = time.perf_counter()
        jax.block_until_ready(run_batch(model, state, n_tr))
        times.append(time.perf_counter() - t0)
    seconds = min(times)
    steps = n_tr * net.bold.steps_per_tr
    return dict(batch=batch, padded=size, seconds=seconds, first_call_s=compile_s,
                network_steps_per_s=batch * steps / seconds, us_per_member_step=seconds / (batch * steps) * 1e6,
                peak_memory_MB=peak_memory_bytes() / 2**20)


def bytes_per_member(net) -> int:
    """What one member holds on the device, from its arrays (the model and the state), times 3 for the
    loop's working copies and records."""
    leaves = jax.tree_util.tree_leaves((net, eib.initial_state(net, 0)))
    return 3 * sum(x.size * x.dtype.itemsize for x in leaves if hasattr(x, "dtype"))


def sweep(case: str, net, batches: list[int], n_tr: int, max_run_s: float, memory_fraction: float,
          save=lambda rows: None) -> list[dict]:
    rows, limit = [], device_memory_bytes()
    for batch in batches:
        if limit and batch * bytes_per_member(net) > memory_fraction * limit:
            print(f"{case}: batch {batch} would not fit in {memory_fraction:.0%} of device memory; stop", flush=True)
            break
        row = dict(case=case, regions=net.n_regions, horizon=net.coupling.horizon, **time_batch(net, batch, n_tr))
        print(json.dumps(row), flush=True)
        rows.append(row)
        save(rows)
        if row["seconds"] > max_run_s:
            break
    best = max(r["network_steps_per_s"] for r in rows)
    for r in rows:
        r["saturated"] = r["network_steps_per_s"] >= SATURATED * best
    return rows


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=list(CASES), help="84, 379 (reference settings), 84d, 379d (paper's)")
    ap.add_argument("--max-batch", type=int, default=4096)
    ap.add_argument("--batches", type=int, nargs="+", help="these batch sizes instead of 1, 2, 4, ... --max-batch")
    ap.add_argument("--trs", type=int, default=1, help="TRs per timed run")
    ap.add_argument("--max-run-s", type=float, default=20.0, help="stop a case's doubling after a run this long")
    ap.add_argument("--memory-fraction", type=float, default=0.7)
    ap.add_argument("--tiny", action="store_true", help="CPU smoke test: 8 regions, batches 1..8")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    cases = ["8", "8d"] if args.tiny else args.cases
    max_batch = 8 if args.tiny else args.max_batch
    batches = args.batches or [2**k for k in range(max_batch.bit_length()) if 2**k <= max_batch]
    devices = jax.devices()
    print(f"{len(devices)} x {devices[0].device_kind} ({devices[0].platform}), jax {jax.__version__}", flush=True)
    products = product_errors()
    print(f"float32 coupling product against float64: default precision {products['default']:.1e}, "
          f"the package's full precision {products['full']:.1e}", flush=True)
    rows, checks, on_cpu = [], {}, {}
    out = dict(rows=rows, batch_vs_alone=checks, device_vs_cpu=on_cpu, product_errors=products,
               devices=[str(d) for d in devices], jax=jax.__version__)

    def save(case_rows=()):
        if args.json:  # after every row, so that a run stopped at its time limit keeps what it measured
            with open(args.json, "w") as fh:
                json.dump({**out, "rows": rows + list(case_rows)}, fh, indent=1)

    for case in cases:
        net = cost_model.network(case, jnp.float32)
        checks[case] = check_batch_equals_alone(net)
        on_cpu[case] = check_device_equals_cpu(net)
        print(f"{case}: batch of 4 vs each alone, largest relative difference {checks[case]:.1e}; "
              f"device vs host CPU {on_cpu[case]}", flush=True)
        rows += sweep(case, net, batches, args.trs, args.max_run_s, args.memory_fraction,
                      save)
    print(f"\n{'case':>6s}{'N':>5s}{'batch':>7s}{'net-steps/s':>13s}{'us/member-step':>16s}{'peak MB':>10s}{'':>3s}")
    for r in rows:
        mark = "<- saturates" if r["saturated"] and all(
            not q["saturated"] for q in rows if q["case"] == r["case"] and q["batch"] < r["batch"]) else ""
        print(f"{r['case']:>6s}{r['regions']:>5d}{r['batch']:>7d}{r['network_steps_per_s']:>13.3g}"
              f"{r['us_per_member_step']:>16.3f}{r['peak_memory_MB']:>10.0f}   {mark}")
    print("cuBNM anchor: 32,768 networks of 100 regions at about 6e7 network-steps/s on one A100")
    save()
    bad = {c: v for c, v in {**checks, **on_cpu}.items() if v is not None and not v < 1e-4}
    if bad:
        print(f"FAILED: a batch differs from its members alone, or the device from the host CPU, beyond float32 "
              f"rounding: {bad}", file=sys.stderr)
        sys.exit(1)
    return out


if __name__ == "__main__":
    main()
