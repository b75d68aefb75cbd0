"""A short FIC+EIB run at each value of a coupling sweep, side by side (vmapped): what tuning makes of each start.

The coupling sweep (:func:`global_coupling.fic_at_each`) puts the models at
wLRE = wFFI = G with FIC at each G.  Its FC there says little about where
EIB tuning can take each start: with wFFI = wLRE feedforward inhibition
cancels long-range excitation, and the code-following model (Schirner2023's
sqrt(W) / max / 10 SC, rate FIC) fits nothing at any G before EIB (fc_corr
-0.02..0.08 on dk_average).  :func:`eib_at_each` runs the experiment's own
FIC+EIB for a few hundred TRs at each G: its first stage's window, a rate (default the stage's),
its FIC rule, update mask, tuned matrices and row-RMSE settings, one
continuous run with EIB held until the first window is full, the plain
EIB step (an optax optimizer of the routine is not used here).  Scoring
the tuned models on a fresh run (:func:`global_coupling.score_each`) then
measures each start by what EIB makes of it.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from .._model.network import NetworkModel, SimState
from .._simulation.window import window_empty
from .eib import FICEIB, fic_eib_chunk
from .loop import run_chunks


def eib_at_each(models: NetworkModel, sims: SimState, target_fc, G, routine: FICEIB, *, iterations: int,
                rate: float | None = None, rmse_per_coupling: float = 0.0, log_every: int, log,
                name: str) -> tuple[NetworkModel, SimState, float]:
    """``iterations`` TRs of ``routine``'s FIC+EIB at each of the stacked ``models`` (one per G of ``G``).

    The window is the routine's first stage's, the rate ``rate`` (None: that stage's; no warm-up ramp), EIB
    is held for the window's first fill; ``rmse_per_coupling`` > 0 sets the row-RMSE scale to that times each
    member's G (the authors' program's step, taken on wLRE / G), 0 keeps the routine's ``rmse_scale`` for all.
    Returns (models, sims, seconds), the models tuned.
    """
    dtype, k = models.dtype, len(G)
    first = routine.stages()[0]
    Gs = jnp.asarray(G, dtype)
    scale = rmse_per_coupling * Gs if rmse_per_coupling > 0 else jnp.full((k,), routine.rmse_scale, dtype)
    # the routine's own first phase, changed only where the probe differs from it
    base = dataclasses.replace(
        routine.phases(dtype)[0].params, eta=jnp.asarray(first.eta if rate is None else rate, dtype),
        warmup=jnp.asarray(False), iterations=jnp.asarray(iterations, dtype), hold=jnp.asarray(first.window, jnp.int32))
    phase = jax.vmap(lambda s: dataclasses.replace(base, rmse_scale=s.astype(dtype)))(scale)
    empty = window_empty(first.window, models.n_regions)
    windows = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (k,) + x.shape), empty)
    config = (routine.rule, routine.tune, routine.mask, routine.rmse_diagonal, None)
    target = jnp.asarray(target_fc, jnp.float64)

    def part(carry, done, size):  # no records: a G whose run diverges scores NaN, it does not stop the sweep
        return _chunk(config, carry, phase, target, done, size), {}

    (models, sims, _), _, seconds = run_chunks(
        part, (models, sims, windows), iterations, log_every,
        lambda done, last: f"  FIC+EIB {done}/{iterations}", log, desc=f"{name} FIC+EIB")
    return models, sims, seconds


@functools.partial(jax.jit, static_argnums=(0, 5))
def _chunk(config, carry, phase, target, done, size):
    """``size`` FIC+EIB iterations of every member, from 0-based iteration ``done`` of the stage."""
    ks = done + jnp.arange(size)
    return jax.vmap(lambda c, hp: fic_eib_chunk(config, c, ks, hp, target)[0])(carry, phase)
