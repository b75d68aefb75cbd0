"""Sliding-window FC of the most recent BOLD samples, kept as running moments.

EIB tuning needs the FC of the last ``length`` BOLD samples after every TR.
Recomputing it costs ``length x N^2`` per TR (4800 x 84^2 in the last stage
of Schirner et al.'s schedule, as much as simulating the TR); instead the
window keeps the sum and the sum of outer products of its samples, adds the
newest sample and drops the one leaving, ``O(N^2)`` per TR.  The moments are
float64 and taken about a reference point (the window mean when they were
last rebuilt), and :func:`window_rebuild` recomputes them from the samples at
the start of every compiled chunk, so rounding cannot build up.

The samples live in a ring of fixed ``capacity`` (the longest window a
schedule uses); ``length`` may change between stages.  While fewer than
``length`` samples exist, the FC is over all of them.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from .._precision import matmul
from .._x64 import ensure_x64


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class FCWindow:
    """Ring of BOLD samples and the moments of the last ``length`` of them.

    Attributes:
        ring: (capacity, N) float64 samples; sample k (0-based count) in row k % capacity.
        count: samples pushed so far (int32).
        length: window length in samples (int32, <= capacity).
        ref: (N,) the reference point of the moments.
        total: (N,) sum of (x - ref) over the window; outer: (N, N) sum of (x - ref)(x - ref)^T.
    """

    ring: jax.Array
    count: jax.Array
    length: jax.Array
    ref: jax.Array
    total: jax.Array
    outer: jax.Array

    @property
    def capacity(self) -> int:
        return self.ring.shape[-2]  # (capacity, N), or (B, capacity, N) for a batch

    @property
    def size(self) -> jax.Array:
        """Samples the FC is taken over: min(count, length)."""
        return jnp.minimum(self.count, self.length)


def window_init(samples: jax.Array, capacity: int, length: int) -> FCWindow:
    """A window holding the last ``capacity`` of ``samples`` (M, N), with FC over the last ``length``."""
    ensure_x64()
    samples = jnp.asarray(samples, jnp.float64)
    m, n = samples.shape
    kept = samples[max(0, m - capacity):]
    ring = jnp.zeros((capacity, n), jnp.float64).at[jnp.arange(kept.shape[0])].set(kept)
    return _from_ring(ring, jnp.asarray(kept.shape[0], jnp.int32), length)


def _from_ring(ring: jax.Array, count: jax.Array, length: int) -> FCWindow:
    """The window whose ring (capacity, N) holds ``count`` samples in rows 0..count-1, its moments built."""
    capacity, n = ring.shape
    if not 0 < length <= capacity:
        raise ValueError(f"window length {length} must be within 1..capacity ({capacity})")
    empty = FCWindow(ring=ring, count=count, length=jnp.asarray(length, jnp.int32),
                     ref=jnp.zeros(n), total=jnp.zeros(n), outer=jnp.zeros((n, n)))
    return window_rebuild(empty, length)


def window_empty(capacity: int, n: int) -> FCWindow:
    """A window of ``capacity`` samples of ``n`` regions with none pushed yet (FC over up to ``capacity``)."""
    return window_init(jnp.zeros((0, n), jnp.float64), capacity, capacity)


def window_resized(w: FCWindow, capacity: int, length: int) -> FCWindow:
    """A window of ``capacity`` holding the newest samples of ``w`` (as many as both hold), with FC over
    the last ``length``: what :func:`window_init` of :func:`window_samples` gives, written with array
    indices so that it traces (a batch builds every member's window in one vmapped call)."""
    kept = jnp.minimum(jnp.minimum(w.count, w.capacity), capacity)
    row = jnp.arange(capacity)
    ring = jnp.where((row < kept)[:, None], w.ring[(w.count - kept + row) % w.capacity], 0.0)
    return _from_ring(ring, kept.astype(jnp.int32), length)


def window_samples(w: FCWindow):
    """The samples a window holds, oldest first, (min(count, capacity), N): read outside compiled code."""
    count = int(w.count)
    kept = min(count, w.capacity)
    rows = [(count - kept + k) % w.capacity for k in range(kept)]
    return w.ring[jnp.asarray(rows, jnp.int32)] if rows else w.ring[:0]


def window_rebuild(w: FCWindow, length) -> FCWindow:
    """Recompute the moments exactly for the last ``length`` samples."""
    length = jnp.asarray(length, jnp.int32)
    size = jnp.minimum(w.count, length)
    age = (w.count - 1 - jnp.arange(w.capacity)) % w.capacity  # 0 = newest
    inside = (age < size).astype(jnp.float64)
    ref = matmul(inside, w.ring) / jnp.maximum(size, 1)
    centred = (w.ring - ref) * inside[:, None]
    return dataclasses.replace(w, length=length, ref=ref, total=centred.sum(axis=0), outer=matmul(centred.T, centred))


def window_push(w: FCWindow, x: jax.Array) -> FCWindow:
    """Add sample ``x`` (N,); the sample ``length`` back leaves the window if it was full."""
    x = x.astype(jnp.float64)
    leaving = w.ring[(w.count - w.length) % w.capacity] - w.ref
    full = (w.count >= w.length).astype(jnp.float64)
    new = x - w.ref
    total = w.total + new - full * leaving
    outer = w.outer + jnp.outer(new, new) - full * jnp.outer(leaving, leaving)
    ring = w.ring.at[w.count % w.capacity].set(x)
    return dataclasses.replace(w, ring=ring, count=w.count + 1, total=total, outer=outer)


def window_fc(w: FCWindow) -> jax.Array:
    """Pearson FC (N, N), zero diagonal, of the samples in the window."""
    size = jnp.maximum(w.size, 1).astype(jnp.float64)
    mean = w.total / size
    cov = w.outer / size - jnp.outer(mean, mean)
    std = jnp.sqrt(jnp.maximum(jnp.diag(cov), 1e-30))
    # moments about a reference point lose digits when the samples drift far from it within a chunk
    # (and two equal signals give 1 + 1 ulp): a correlation outside [-1, 1] would skew the EIB step
    r = jnp.clip(cov / jnp.outer(std, std), -1.0, 1.0)
    return r * (1.0 - jnp.eye(r.shape[0]))

