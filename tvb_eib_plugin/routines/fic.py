"""Feedback inhibition control (Deco et al. 2014): tune J_i so mean S_e sits at a target.

Each iteration simulates one TR and moves every region's local inhibitory
coupling by ``eta * mean(S_i) * (mean(S_e) - target)`` (means over the TR):
more inhibition where excitation is above target, less where below.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from ..coupling import effective
from ..network import NetworkModel, SimState
from ..simulate import tr_step
from .loop import run_chunks
from .registry import BoundedFloat, BoundedInt, Routine, StageResult, TuningState, register


def fic_update(J_i: jax.Array, mean_S_e: jax.Array, mean_S_i: jax.Array, eta, target) -> jax.Array:
    """J_i <- J_i + eta (mean_S_i mean_S_e - target mean_S_i); all (N,)."""
    return J_i + eta * (mean_S_i * mean_S_e - target * mean_S_i)


def activity_records(rec) -> dict:
    """Per-iteration records every routine keeps: region means and the BOLD sample."""
    return dict(mean_S_e=rec.mean_S[0], mean_S_i=rec.mean_S[1], bold=rec.bold)


@functools.partial(jax.jit, static_argnames=("n",))
def fic_chunk(model: NetworkModel, sim: SimState, eta, target, n: int):
    """``n`` FIC iterations in one scan; returns (model, sim) and per-iteration records."""
    ec = effective(model.coupling)  # J_i does not enter the coupling

    def body(carry, _):
        J_i, sim = carry
        sim, rec = tr_step(model.with_tuned(J_i=J_i), ec, sim)
        J_i = fic_update(J_i, rec.mean_S[0], rec.mean_S[1], eta, target)
        return (J_i, sim), dict(activity_records(rec), J_i=J_i)

    (J_i, sim), records = jax.lax.scan(body, (model.node.J_i, sim), None, length=n)
    return (model.with_tuned(J_i=J_i), sim), records


def activity_line(done: int, total: int, last: dict) -> str:
    return (f"  {done}/{total}: mean_S_e={last['mean_S_e'].mean():.4f}, "
            f"mean_S_i={last['mean_S_i'].mean():.4f}, bold={last['bold'].mean():.4f}")


@register
class FIC(Routine):
    """Feedback inhibition control: local inhibition J_i so that mean S_e = target."""

    name = "fic"
    summary = "feedback inhibition control: local inhibition J_i so that mean S_e = target"
    eta = BoundedFloat(0.5, 0.0, 10.0, label="eta", doc="learning rate of the J_i update")
    target = BoundedFloat(0.25, 0.01, 0.99, label="target", doc="target mean S_e per region")
    n_iterations = BoundedInt(200, 1, 10**7, label="iterations", doc="iterations, one TR of simulation each")
    log_every = BoundedInt(10, 1, 10**7, label="log every",
                           doc="iterations per compiled chunk, and between progress lines")

    def run(self, start: TuningState, target_fc, previous, log) -> StageResult:
        sim = self.stage_sim(start)
        dtype = start.model.dtype
        eta, target = jnp.asarray(self.eta, dtype), jnp.asarray(self.target, dtype)
        log(f"Running {self.name} algorithm for {self.n_iterations} iterations...")
        (model, sim), history, seconds = run_chunks(
            lambda carry, first, n: fic_chunk(*carry, eta, target, n),
            (start.model, sim), self.n_iterations, self.log_every,
            lambda done, last: activity_line(done, self.n_iterations, last), log)
        log(f"{self.name} complete!")
        return StageResult(self.name, TuningState(model, sim), history, self.settings(), seconds)
