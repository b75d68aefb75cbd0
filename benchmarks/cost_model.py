"""Per-step cost model of a compiled simulation: flops, bytes and kernels beside the measured time.

For each case (a network, a scheme, delays or not, one network or a batch) it compiles one
integration step (``integrator_step``, the body of the time loop; a batch: that step mapped over
its members) and reads XLA's own cost analysis: floating-point operations and bytes accessed per
step.  It counts the kernels of the compiled time loop's body in the HLO of ``run_trs`` (the
fusions, dots and other operations the CPU launches one after another every step), and times
``run_trs`` over a few TRs.  The implied GFLOP/s and GB/s say how far a step is from the machine's
limits: a step far below both is bound by per-kernel overhead, not by arithmetic or memory.

What the model leaves out: the noise draws and the BOLD model run once per TR (their cost per step
is in the measured time, not in the flop and byte counts; the "noise" column times the draws alone,
per member-step: threefry normals, some 0.7 us of an 84-region float32 step, which no batching
shares); XLA counts a gather's bytes as those it writes plus its indices, so "bytes" is a floor for
the delayed coupling.

    python benchmarks/cost_model.py [--cases 84 84d 379d] [--batch 8] [--trs 3] [--sources /tmp/old .]

``--sources``: time each row once per source tree (a checkout of another commit, e.g. from
``git worktree add /tmp/old HEAD~1``), each in a child process that imports the package from there,
rows interleaved so that a busy machine slows both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time

import jax
import jax.numpy as jnp

import tvb_eib_plugin as eib
from tvb_eib_plugin._simulation.batch import over_members, stack_models, stack_trees
from tvb_eib_plugin._model.coupling import effective
from tvb_eib_plugin._model.integrate import draw_noise, integrator_step
from tvb_eib_plugin._simulation.simulate import run_trs

#: the reference model's settings (Heun, dt 4 ms, no delays) and the paper's (Euler-Maruyama, dt 1 ms,
#: delays at 3 mm/ms, Balloon-Windkessel BOLD)
REFERENCE = dict(delays=False)
PAPER = dict(delays=True, dt=1.0, scheme="euler", sigma_e=0.01, sigma_i=0.01, bold="balloon")
#: the cases of issue 18; any "<regions>" (reference settings) or "<regions>d" (the paper's) is a case
CASES = ("84", "84d", "379d")


def network(case: str, dtype=jnp.float32):
    """The case's network: dk_average at 84 regions, bench_schirner's SC of that size otherwise."""
    from bench_schirner import _connectome

    n = int(case.rstrip("d"))
    return eib.network_from_connectome(_connectome(n), dtype=dtype, **(PAPER if case.endswith("d") else REFERENCE))


def batched(net, batch: int | None):
    """(model, state, run) for one network (batch None) or ``batch`` copies with their own noise."""
    if batch is None:
        return net, eib.initial_state(net, 0), run_trs
    model = stack_models([net] * batch)
    state = stack_trees([eib.initial_state(net, s) for s in range(batch)])
    return model, state, over_members(run_trs, True, (0, 0), ("n_tr", "record_trace"))


def step_cost(model, state, batch: int | None) -> dict:
    """XLA's flops, transcendentals and bytes accessed for one compiled step (all members).

    The loop-invariant coupling (:func:`coupling.effective`) is an input, as in the time loop."""
    def step(model, ec, integ):
        z = tuple(jnp.zeros_like(integ.S_e) if on else None for on in model.integrator.noisy)
        return integrator_step(model.node, ec, model.integrator, integ, z)

    ec = (jax.vmap(effective) if batch else effective)(model.coupling)
    # the state is donated, so the history ring is updated in place as in the loop, not copied
    compiled = jax.jit(jax.vmap(step) if batch else step, donate_argnums=2).lower(model, ec, state.integ).compile()
    ca = _analysis(compiled)
    return {k: float(ca.get(k, 0.0)) for k in ("flops", "transcendentals", "bytes accessed")}


def _analysis(compiled) -> dict:
    ca = compiled.cost_analysis()
    return ca[0] if isinstance(ca, list) else ca


_NOT_KERNELS = ("parameter", "get-tuple-element", "tuple", "constant", "bitcast")


def loop_kernels(hlo: str) -> int:
    """Kernels in the time loop's body: the innermost while body that holds a dot (the coupling)."""
    bodies = set(re.findall(r"while\(.*?body=(%[\w.\-]+)", hlo))
    best = 0
    for name, text in _computations(hlo).items():
        ops = [m.group(1) for m in re.finditer(r"=\s*[\w\[\]{},:\s/*=.()0-9]*?\s([a-z][\w\-]*)\(", text)]
        if name in bodies and "dot" in ops and "while" not in ops:
            best = max(best, sum(op not in _NOT_KERNELS for op in ops))
    return best


def _computations(hlo: str) -> dict[str, str]:
    out, name, lines = {}, None, []
    for line in hlo.splitlines():
        head = re.match(r"^(?:ENTRY\s+)?(%[\w.\-]+)\s.*\{$", line)
        if head:
            name, lines = head.group(1), []
        elif line.startswith("}") and name:
            out[name] = "\n".join(lines)
            name = None
        elif name:
            lines.append(line)
    return out


def measure(model, state, run, n_tr: int, repeats: int = 5) -> tuple[float, int]:
    """(best seconds per step, kernels in the loop body) of ``n_tr`` TRs after compilation."""
    kernels = loop_kernels(jax.jit(lambda m, s: run(m, s, n_tr=n_tr)).lower(model, state).compile().as_text())
    jax.block_until_ready(run(model, state, n_tr=n_tr))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(run(model, state, n_tr=n_tr))
        best = min(best, time.perf_counter() - t0)
    steps_per_tr = model.bold.steps_per_tr
    return best / (n_tr * steps_per_tr), kernels


def noise_seconds(net, n_tr: int, repeats: int = 5) -> float:
    """Best seconds per step of the noise draws alone, one TR's at a time as the simulation draws them."""
    h, n, steps = net.integrator, net.n_regions, net.bold.steps_per_tr
    draws = jax.jit(lambda key: jax.lax.map(
        lambda k: sum(z.sum() for z in draw_noise(h, k, steps, n, net.dtype) if z is not None), jax.random.split(key, n_tr)))
    jax.block_until_ready(draws(jax.random.key(0)))
    best = float("inf")
    for i in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(draws(jax.random.key(i + 1)))
        best = min(best, time.perf_counter() - t0)
    return best / (n_tr * steps)


def cost_row(case: str, batch: int | None = None, n_tr: int = 3, dtype=jnp.float32) -> dict:
    """One table row: the model per member-step and the measured time."""
    net = network(case, dtype)
    model, state, run = batched(net, batch)
    c = step_cost(model, state, batch)
    seconds, kernels = measure(model, state, run, n_tr)
    members = batch or 1
    return dict(case=case, regions=net.n_regions, horizon=net.coupling.horizon, scheme=net.integrator.scheme,
                dt=net.dt, batch=members, dtype=jnp.dtype(dtype).name, kernels=kernels,
                flops=c["flops"] / members, bytes=c["bytes accessed"] / members,
                us_per_step=seconds / members * 1e6, noise_us=noise_seconds(net, n_tr) * 1e6,
                gflops=c["flops"] / seconds / 1e9,
                gbytes_s=c["bytes accessed"] / seconds / 1e9)


def print_table(rows: list[dict], out=sys.stdout) -> None:
    print(f"{'source':>16s}{'case':>6s}{'N':>5s}{'H':>4s}{'scheme':>7s}{'dt':>4s}{'batch':>6s}{'dtype':>8s}{'kernels':>8s}{'kflop':>8s}"
          f"{'kB':>8s}{'us/step':>9s}{'noise':>7s}{'GFLOP/s':>9s}{'GB/s':>7s}   (per member-step; GFLOP/s, GB/s: all members)",
          file=out)
    for r in rows:
        print(f"{os.path.basename(os.path.abspath(r.get('source', os.curdir))):>16s}{r['case']:>6s}{r['regions']:>5d}{r['horizon']:>4d}{r['scheme']:>7s}{r['dt']:>4.0f}{r['batch']:>6d}"
              f"{r['dtype']:>8s}{r['kernels']:>8d}{r['flops'] / 1e3:>8.1f}{r['bytes'] / 1e3:>8.1f}{r['us_per_step']:>9.2f}"
              f"{r.get('noise_us', float('nan')):>7.2f}"
              f"{r['gflops']:>9.2f}{r['gbytes_s']:>7.1f}", file=out)


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=list(CASES), help="e.g. 84 (reference) or 379d (paper's)")
    ap.add_argument("--batch", type=int, default=8, help="members of the batched rows (0: none)")
    ap.add_argument("--trs", type=int, default=3, help="TRs per timed run")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--sources", nargs="+", help="package source trees to compare, each in a child process")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        case, batch = json.loads(args.child)
        print(MARK + json.dumps(cost_row(case, batch, args.trs, jnp.dtype(args.dtype))))
        return []
    rows = []
    for case in args.cases:
        for batch in (None, args.batch) if args.batch else (None,):
            if not args.sources:
                rows.append(cost_row(case, batch, args.trs, jnp.dtype(args.dtype)))
            for src in args.sources or ():
                rows.append(dict(_in_child(src, case, batch, args), source=src))
    print(f"\nPer-step cost model, {jax.devices()[0].platform}, {os.cpu_count()} CPU cores, jax {jax.__version__}")
    print_table(rows)
    return rows


MARK = "@@COST@@"


def _in_child(source: str, case: str, batch, args) -> dict:
    env = dict(os.environ, PYTHONPATH=os.path.abspath(source))
    cmd = [sys.executable, os.path.abspath(__file__), "--child", json.dumps([case, batch]), "--trs", str(args.trs),
           "--dtype", args.dtype]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    for line in out.stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    raise RuntimeError(out.stderr[-3000:])


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
