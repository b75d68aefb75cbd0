"""Running a compiled iteration chunk repeatedly, with a progress line between chunks.

Every routine's iterations live inside ``lax.scan``; the Python loop here
only strings equal-length compiled chunks together (two compilations at
most) so the user sees progress and memory stays bounded.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import jax
import numpy as np

from .._simulation.divergence import SimulationDiverged, non_finite
from .progress import ChunkProgress, timed_call
from .._simulation.simulate import chunk_sizes

ChunkFn = Callable[[Any, int, int], tuple[Any, dict]]
#: ``check(carry, records, span)``: the error for a chunk whose results are meaningless, or None
CheckFn = Callable[[Any, dict, str], SimulationDiverged | None]


def run_chunks(
    chunk: ChunkFn,
    carry: Any,
    n_iterations: int,
    every: int,
    log_line: Callable[[int, dict], str | None],
    log: Callable[[str], None],
    *,
    first: int = 0,
    thin: int = 1,
    after_chunk: Callable[[Any, int, dict], None] | None = None,
    check: CheckFn | None = None,
    fix: str = "lower the learning rates or check the starting parameters",
    unit: str = "it",
    desc: str = "",
) -> tuple[Any, dict[str, np.ndarray], float]:
    """Run ``chunk(carry, first_iteration, size)`` until ``n_iterations`` are done.

    ``chunk`` returns the new carry and a dict of per-iteration arrays with a
    leading axis of length ``size``.  After each chunk ``log_line(done,
    last_records)`` may return a line to log; :class:`progress.ChunkProgress`
    adds the rate and the ETA (or draws a live bar) and reports the compile
    time of the first chunk, before which it says "compiling...".  Stops with
    :class:`SimulationDiverged` on what ``check`` finds (saturation, runaway
    weights: the more specific cause first) or on NaN/inf (``fix`` says what to
    change); its ``partial`` holds the history so far, the failing chunk included.

    Args:
        first: iterations already done (a resumed run); must be a chunk boundary.
        thin: keep the mean of every ``thin`` iterations (``every`` must be a
            multiple; integer records such as ``stage`` keep the block's last
            value), with its last iteration (1-based) under ``"iteration"``;
            1 keeps every iteration as it is.
        after_chunk: called as ``after_chunk(carry, done, history)`` after each
            chunk (e.g. to write a checkpoint); ``history()`` stacks the records
            of this call so far, so chunks that need none pay nothing.
        unit: what an iteration is called in the rate ("it", "step").
        desc: the live bar's title (the routine, and its stage).

    Returns (carry, history of the iterations run here, seconds).
    """
    if thin > 1 and every % thin:
        raise ValueError(f"iterations per chunk ({every}) must be a multiple of the history thinning ({thin})")
    sizes = chunk_sizes(n_iterations, every)
    bounds = np.cumsum([0] + sizes)
    if first not in bounds:
        raise ValueError(f"cannot resume at iteration {first}: not a chunk boundary of {sizes[:3]}...")
    t0 = time.perf_counter()
    parts: list[dict] = []
    done = first
    progress = ChunkProgress(log, n_iterations, first, unit, desc)
    progress.begin()
    try:
        for size in sizes[list(bounds).index(first):]:
            carry = _chunk(chunk, carry, done, size, parts, progress, log_line, thin, check, fix)
            done += size
            if after_chunk is not None:
                after_chunk(carry, done, lambda: stack_records(parts))
    finally:  # a live bar ends its line, also when the run stops
        progress.close()
    return carry, stack_records(parts), time.perf_counter() - t0


def _chunk(chunk: ChunkFn, carry, done: int, size: int, parts: list, progress: ChunkProgress, log_line, thin: int,
           check: CheckFn | None, fix: str):
    """One chunk of :func:`run_chunks`: run, check, keep its records in ``parts`` and show its progress."""
    (carry, rec), seconds, compiled = timed_call(chunk, carry, done, size)
    if compiled or not parts:
        progress.compiled(seconds if compiled else 0.0, size, first_chunk=not parts)
    rec = jax.tree_util.tree_map(np.asarray, rec)
    span = f"iterations {done + 1}..{done + size}"
    failure = (check(carry, rec, span) if check is not None else None) or non_finite(rec, span, fix)
    last = {k: v[-1] for k, v in rec.items()}
    if thin > 1:
        rec = _thinned(rec, thin, done)
    if failure is not None:  # what the failing chunk recorded shows the cause: keep it
        failure.partial = stack_records(parts + [rec])
        raise failure
    parts.append(rec)
    progress.chunk(done + size, size, log_line(done + size, last))
    return carry


def _thinned(rec: dict, thin: int, done: int) -> dict:
    size = len(next(iter(rec.values())))
    blocks = -(-size // thin)
    edges = np.minimum(np.arange(blocks + 1) * thin, size)
    out = {k: _block_values(v, edges) for k, v in rec.items()}
    out["iteration"] = done + edges[1:]
    return out


def _block_values(v: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """One value per block: the mean of a measured record, the last value of an integer one.

    An integer record is a label (the schedule stage): a mean of labels would
    be a fraction no iteration had, so the block keeps the label it ends with.
    """
    if np.issubdtype(v.dtype, np.integer):
        return v[edges[1:] - 1]
    return np.stack([v[a:b].mean(axis=0) for a, b in zip(edges[:-1], edges[1:])])


def stack_records(parts: list[dict]) -> dict[str, np.ndarray]:
    """Concatenate per-chunk record dicts along the iteration axis (empty dicts are skipped)."""
    parts = [p for p in parts if p]
    if not parts:
        return {}
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
