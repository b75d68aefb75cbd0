"""Running a compiled iteration chunk repeatedly, with a log line between chunks.

Every routine's iterations live inside ``lax.scan``; the Python loop here
only strings equal-length compiled chunks together (two compilations at
most) so the user sees progress and memory stays bounded.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import jax
import numpy as np

from ..simulate import SimulationDiverged, chunk_sizes

ChunkFn = Callable[[Any, int, int], tuple[Any, dict]]


def run_chunks(
    chunk: ChunkFn,
    carry: Any,
    n_iterations: int,
    every: int,
    log_line: Callable[[int, dict], str | None],
    log: Callable[[str], None],
) -> tuple[Any, dict[str, np.ndarray], float]:
    """Run ``chunk(carry, first_iteration, size)`` until ``n_iterations`` are done.

    ``chunk`` returns the new carry and a dict of per-iteration arrays with a
    leading axis of length ``size``.  After each chunk ``log_line(done,
    last_records)`` may return a line to log.  Stops with
    :class:`SimulationDiverged` (carrying the history so far) on NaN/inf.

    Returns (carry, history stacked over all iterations, seconds).
    """
    t0 = time.perf_counter()
    parts: list[dict] = []
    done = 0
    for size in chunk_sizes(n_iterations, every):
        carry, rec = chunk(carry, done, size)
        rec = jax.tree_util.tree_map(np.asarray, rec)
        bad = [k for k, v in rec.items() if not np.all(np.isfinite(v))]
        if bad:
            raise SimulationDiverged(
                f"NaN/inf in {bad} during iterations {done + 1}..{done + size}; "
                "lower the learning rates or check the starting parameters",
                partial=_stack(parts))
        parts.append(rec)
        done += size
        line = log_line(done, {k: v[-1] for k, v in rec.items()})
        if line:
            log(line)
    return carry, _stack(parts), time.perf_counter() - t0


def _stack(parts: list[dict]) -> dict[str, np.ndarray]:
    if not parts:
        return {}
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
