"""Simulation one TR at a time: integration, BOLD sample and per-TR means.

The unit of simulation is one TR (``steps_per_tr`` integration steps and one
BOLD sample), because that is also the unit of every tuning iteration.  A
run of many TRs is one ``lax.scan``; long runs are cut into compiled chunks
of equal length so memory stays bounded and progress is shown between them.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .batch import batch_size, member_groups, over_members
from .._model.bold import bold_update
from .._model.coupling import EffectiveCoupling, effective
from .divergence import SimulationDiverged
from .._model.integrate import draw_noise, integrate
from .._model.network import NetworkModel, SimState


class TRRecord(NamedTuple):
    """What one TR produces.

    mean_S: (2, N) mean of (S_e, S_i) over the TR's steps.
    bold: (N,) BOLD sample at the end of the TR.
    trace: (steps_per_tr, 2, N) every step's state, or None when not recorded.
    mean_rate: (2, N) mean excitatory and inhibitory firing rates (Hz) over
        the TR, or None when not asked for.
    """

    mean_S: jax.Array
    bold: jax.Array
    trace: jax.Array | None
    mean_rate: jax.Array | None = None


def tr_step(
    model: NetworkModel, ec: EffectiveCoupling, state: SimState, record_trace: bool = False, rates: bool = False
) -> tuple[SimState, TRRecord]:
    """Simulate one TR from ``state``; pure and traceable.  ``rates``: also record mean firing rates."""
    key, sub = jax.random.split(state.key)
    n_steps = model.bold.steps_per_tr
    z = draw_noise(model.integrator, sub, n_steps, model.n_regions, model.dtype)
    integ, series = integrate(model.node, ec, model.integrator, state.integ, z, n_steps, rates=rates)
    S_e, S_i = series[:2]
    bold_state, bold = bold_update(model.bold, state.bold, S_e)
    mean_S = jnp.stack([S_e.mean(axis=0), S_i.mean(axis=0)])
    trace = jnp.stack([S_e, S_i], axis=1) if record_trace else None
    mean_rate = jnp.stack([series[2].mean(axis=0), series[3].mean(axis=0)]) if rates else None
    record = TRRecord(mean_S=mean_S, bold=bold, trace=trace, mean_rate=mean_rate)
    return SimState(integ=integ, bold=bold_state, key=key), record


@functools.partial(jax.jit, static_argnames=("n_tr", "record_trace"))
def run_trs(
    model: NetworkModel, state: SimState, n_tr: int, record_trace: bool = False
) -> tuple[SimState, TRRecord]:
    """``n_tr`` TRs in one compiled scan; records are stacked along a leading axis."""
    ec = effective(model.coupling)
    return jax.lax.scan(lambda s, _: tr_step(model, ec, s, record_trace), state, None, length=n_tr)


@functools.partial(jax.jit, static_argnames=("n_steps",))
def trajectory(model: NetworkModel, state: SimState, n_steps: int) -> tuple[SimState, jax.Array]:
    """Integrate ``n_steps`` steps (not whole TRs) and return every step's state.

    Returns the new state and (n_steps, 2, N) (S_e, S_i) after each step, time
    ``(k + 1) * dt`` ms after ``state``.  BOLD is not advanced: this is for raw
    traces and for comparisons with TVB's Raw monitor.
    """
    key, sub = jax.random.split(state.key)
    z = draw_noise(model.integrator, sub, n_steps, model.n_regions, model.dtype)
    integ, (S_e, S_i) = integrate(model.node, effective(model.coupling), model.integrator, state.integ, z, n_steps)
    return SimState(integ=integ, bold=state.bold, key=key), jnp.stack([S_e, S_i], axis=1)


class Simulation(NamedTuple):
    """A finished run: the final state and the stacked per-TR records (numpy)."""

    state: SimState
    mean_S: np.ndarray  # (n_tr[, B], 2, N)
    bold: np.ndarray  # (n_tr[, B], N)
    trace: np.ndarray | None  # (n_tr * steps_per_tr[, B], 2, N)

    @property
    def S_e_trace(self) -> np.ndarray | None:
        return None if self.trace is None else self.trace[..., 0, :]


def n_trs(model: NetworkModel, duration_ms: float) -> int:
    """Whole TRs in ``duration_ms`` (runs are cut to whole TRs: 300 000 ms -> 416)."""
    n = int(math.floor(duration_ms / model.bold.period_ms + 1e-9))
    if n < 1:
        raise ValueError(f"duration {duration_ms} ms is shorter than one TR ({model.bold.period_ms} ms)")
    return n


def chunk_sizes(total: int, chunk: int) -> list[int]:
    """Split ``total`` into equal chunks plus one remainder (two compilations at most)."""
    sizes = [chunk] * (total // chunk)
    if total % chunk:
        sizes.append(total % chunk)
    return sizes


def simulate(
    model: NetworkModel,
    state: SimState,
    duration_ms: float,
    *,
    record_trace: bool = False,
    chunk_trs: int = 100,
    progress: Callable[[int, int], None] | None = None,
) -> Simulation:
    """Simulate ``duration_ms`` (whole TRs) from ``state``.

    A batched model (:mod:`batch`) simulates all members at once; its records
    carry the member axis after the time axis: bold (n_tr, B, N).

    Args:
        record_trace: also keep every step's (S_e, S_i) (memory: steps x 2 x N).
        chunk_trs: TRs per compiled chunk.
        progress: called as ``progress(done_trs, total_trs)`` after each chunk.

    Raises:
        SimulationDiverged: on NaN/inf, with the finished chunks in ``.partial``.
    """
    total = n_trs(model, duration_ms)
    records: list[TRRecord] = []
    done = 0
    batched = batch_size(model) is not None
    run = over_members(run_trs, batched, (0, 0), ("n_tr", "record_trace"),
                       member_groups(model.coupling, state.integ) if batched else None)
    for size in chunk_sizes(total, chunk_trs):
        state, rec = run(model, state, n_tr=size, record_trace=record_trace)
        rec = jax.tree_util.tree_map(np.asarray, rec)
        if not (np.all(np.isfinite(rec.mean_S)) and np.all(np.isfinite(rec.bold))):
            partial = _stack(state, records, model)
            raise SimulationDiverged(
                f"simulation produced NaN/inf in TRs {done}..{done + size}; check parameters "
                f"(J_i, wLRE, wFFI, dt={model.dt} ms)", partial)
        records.append(rec)
        done += size
        if progress is not None:
            progress(done, total)
    return _stack(state, records, model)


def _stack(state: SimState, records: list[TRRecord], model: NetworkModel) -> Simulation:
    n = model.n_regions
    if not records:
        return Simulation(state, np.zeros((0, 2, n)), np.zeros((0, n)), None)
    mean_S = np.concatenate([r.mean_S for r in records])
    bold = np.concatenate([r.bold for r in records])
    trace = None
    if records[0].trace is not None:
        # (n_tr[, B], steps_per_tr, 2, N) -> (n_tr * steps_per_tr[, B], 2, N)
        per_step = [np.swapaxes(r.trace, 1, 2) if r.trace.ndim == 5 else r.trace for r in records]
        trace = np.concatenate([t.reshape((-1,) + t.shape[2:]) for t in per_step])
    return Simulation(state, mean_S, bold, trace)
