"""Feedback inhibition control: tune each region's local inhibition J_i so excitation sits at a target.

Each iteration simulates one TR and moves J_i, with means over the TR, by
one of two rules:

- ``"gating"`` (Deco et al. 2014, the reference workflow): ``eta * mean(S_i) *
  (mean(S_e) - target)``, target a mean S_e (0.25);
- ``"rate"`` (Vogels et al. 2011, as Schirner et al. 2023 ran it):
  ``J_i <- max(0, J_i + eta * r_I * (r_E - target))``, rates in Hz, target 4 Hz.

Either way: more inhibition where excitation is above target, less where below.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from tvb.basic.neotraits.api import Attr

from .._model.coupling import effective
from .._simulation.divergence import tuning_check
from .._model.network import NetworkModel, SimState
from .._simulation.simulate import tr_step
from .._validation import InputError
from .._simulation.window import FCWindow, window_empty, window_push, window_rebuild
from .driver import IterativeRoutine, Phase
from .registry import BoundedFloat, BoundedInt, TuningState, register


FIC_RULES = ("gating", "rate")


def fic_update(J_i: jax.Array, mean_S_e: jax.Array, mean_S_i: jax.Array, eta, target) -> jax.Array:
    """J_i <- J_i + eta (mean_S_i mean_S_e - target mean_S_i); all (N,)."""
    return J_i + eta * (mean_S_i * mean_S_e - target * mean_S_i)


def fic_rate_update(J_i: jax.Array, rate_e: jax.Array, rate_i: jax.Array, eta, target) -> jax.Array:
    """J_i <- max(0, J_i + eta (r_I r_E - target r_I)); rates (N,) in Hz, target in Hz."""
    return jnp.maximum(J_i + eta * (rate_i * rate_e - target * rate_i), 0.0)


def fic_step(rule: str, J_i: jax.Array, rec, eta, target) -> jax.Array:
    """One FIC update from a TR's record by ``rule`` (``"gating"`` or ``"rate"``)."""
    if rule == "rate":
        return fic_rate_update(J_i, rec.mean_rate[0], rec.mean_rate[1], eta, target)
    return fic_update(J_i, rec.mean_S[0], rec.mean_S[1], eta, target)


def rule_trait(default: str = "gating"):
    return Attr(field_type=str, default=default, choices=FIC_RULES, label="FIC rule",
                doc="'gating': Deco et al. (2014) on mean S_e, target a gating value (0.25); "
                    "'rate': Vogels et al. (2011) on firing rates, target in Hz (4.0), J_i kept >= 0")


def target_trait(default: float = 0.25):
    """FIC's target, declared once for every routine that runs FIC."""
    return BoundedFloat(default, 0.01, 100.0, label="target",
                        doc="FIC target per region: mean S_e (gating rule, in (0, 1)) or excitatory rate in Hz "
                            "(rate rule)")


def check_target(rule: str, target: float, who: str) -> None:
    if rule == "gating" and not target < 1.0:
        raise InputError(f"{who}: the gating rule's target is a mean S_e in (0, 1), got {target}; "
                         "for a firing-rate target in Hz set rule='rate'")


def activity_records(rec) -> dict:
    """Per-iteration records every routine keeps: region means, rates if measured, the BOLD sample."""
    out = dict(mean_S_e=rec.mean_S[0], mean_S_i=rec.mean_S[1], bold=rec.bold)
    if rec.mean_rate is not None:
        out.update(rate_e=rec.mean_rate[0], rate_i=rec.mean_rate[1])
    return out


def fic_scan(model: NetworkModel, sim: SimState, window: FCWindow | None, ks: jax.Array, eta, target, rule: str):
    """FIC for ``len(ks)`` iterations in one scan; each TR's BOLD sample goes into ``window`` (if any).

    Returns ``((model, sim, window), records)``.
    """
    ec = effective(model.coupling)  # J_i does not enter the coupling

    def body(carry, _):
        J_i, sim, window = carry
        sim, rec = tr_step(model.with_tuned(J_i=J_i), ec, sim, rates=rule == "rate")
        J_i = fic_step(rule, J_i, rec, eta, target)
        window = None if window is None else window_push(window, rec.bold)
        return (J_i, sim, window), dict(activity_records(rec), J_i=J_i)

    if window is not None:  # exact moments at every chunk's start: rounding cannot build up
        window = window_rebuild(window, window.length)
    (J_i, sim, window), records = jax.lax.scan(body, (model.node.J_i, sim, window), ks)
    return (model.with_tuned(J_i=J_i), sim, window), records


@functools.partial(jax.jit, static_argnames=("n", "rule"))
def fic_chunk(model: NetworkModel, sim: SimState, eta, target, n: int, rule: str = "gating"):
    """``n`` FIC iterations in one scan, keeping no BOLD window; returns (model, sim) and per-iteration records."""
    (model, sim, _), records = fic_scan(model, sim, None, jnp.arange(n), eta, target, rule)
    return (model, sim), records


def number(x, digits: int = 4) -> str:
    """A record for the log: the value, or for a batch its mean and [min..max] over members."""
    x = np.asarray(x)
    if x.ndim == 0:
        return f"{x:.{digits}f}"
    return f"{x.mean():.{digits}f} [{x.min():.{digits}f}..{x.max():.{digits}f}]"


def activity_fields(last: dict) -> str:
    """The region-mean activity of an iteration's records (over all members of a batch), as the log prints it."""
    rates = f", rate_e={last['rate_e'].mean():.2f} Hz" if "rate_e" in last else ""
    return (f"mean_S_e={last['mean_S_e'].mean():.4f}, mean_S_i={last['mean_S_i'].mean():.4f}{rates}, "
            f"bold={last['bold'].mean():.4f}")


def activity_line(done: int, total: int, last: dict) -> str:
    return f"  {done}/{total}: {activity_fields(last)}"


@register
class FIC(IterativeRoutine):
    """Feedback inhibition control: local inhibition J_i so that mean S_e = target."""

    name = "fic"
    summary = "feedback inhibition control: local inhibition J_i so that mean S_e (or the E rate) = target"
    fix = "lower eta or check the starting parameters"
    rule = rule_trait()
    eta = BoundedFloat(0.5, 0.0, 10.0, label="eta", doc="learning rate of the J_i update")
    target = target_trait()
    n_iterations = BoundedInt(200, 1, 10**7, label="iterations", doc="iterations, one TR of simulation each")
    log_every = BoundedInt(10, 1, 10**7, label="log every",
                           doc="iterations per compiled chunk, and between progress lines")
    window = BoundedInt(150, 3, 10**5, label="window",
                        doc="BOLD samples (TRs) kept for the next routine's first FC window (EIB), when the "
                            "starting state carries no window (an experiment sizes it for its routines)")

    def check_plan(self, plan) -> None:
        check_target(self.rule, self.target, self.name)

    def window_capacity(self) -> int:
        return self.window

    def begin_log(self, start, phases) -> str:
        return f"Running {self.name} algorithm for {self.n_iterations} iterations..."

    def init(self, start: TuningState, target_fc):
        window = start.window if start.window is not None else window_empty(self.window, start.model.n_regions)
        return start.model, start.sim, window

    def phases(self, dtype):
        return (Phase(self.n_iterations, (jnp.asarray(self.eta, dtype), jnp.asarray(self.target, dtype))),)

    def config(self, model) -> tuple:
        return (self.rule,)

    @staticmethod
    def chunk(config, carry, ks, params, target_fc):
        return fic_scan(*carry, ks, *params, rule=config[0])

    def progress_line(self, done, total, last) -> str:
        return activity_line(done, total, last)

    def check(self, carry):
        return tuning_check()
