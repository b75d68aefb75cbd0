"""EIB schedules as data: a list of stages, each with its length, learning rate and FC window.

Two shapes cover the published procedures:

- :func:`warmup_schedule`: the reference workflow's single stage whose rate
  ramps linearly up to ``eta`` (2000 TRs, eta 0.005, window 150);
- :func:`annealing_schedule`: Schirner et al. (2023)'s staged annealing, six
  stages of 10 simulated hours (50 000 TRs of 720 ms), the rate halving from
  0.1 and the window doubling from 150 TRs.

Users may pass any list of :class:`EIBStage` (or of dicts with the same
keys) to shorten, extend or reshape a schedule.  :func:`rate_schedule` gives a
schedule's rate at every iteration as an optax schedule, the rate FIC+EIB uses
(its ``eta_eib`` record), for any optax optimizer (e.g. ``GradientEIB``'s).
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Sequence

import numpy as np
import optax

from .._validation import InputError


@dataclasses.dataclass(frozen=True)
class EIBStage:
    """One stage of EIB tuning.

    Attributes:
        iterations: TRs in the stage (one update per TR).
        eta: learning rate of the wLRE / wFFI updates.
        window: BOLD samples (TRs) in the sliding FC window.
        warmup: ramp the rate linearly, ``eta (k + 1) / iterations`` at 0-based iteration k.
    """

    iterations: int
    eta: float
    window: int
    warmup: bool = False

    def __post_init__(self):
        if int(self.iterations) < 1:
            raise InputError(f"an EIB stage needs at least 1 iteration, got {self.iterations}")
        if not 0.0 <= float(self.eta) <= 10.0:
            raise InputError(f"EIB learning rate must be within [0, 10], got {self.eta}")
        if int(self.window) < 3:
            raise InputError(f"the FC window needs at least 3 samples, got {self.window}")


def warmup_rate(k, n_iterations, eta_eib):
    """eta_k = (k + 1) / n_iterations * eta_eib for 0-based iteration k (FIC+EIB's warm-up, traced or not)."""
    return (k + 1) / n_iterations * eta_eib


def rate_schedule(stages: Iterable) -> optax.Schedule:
    """The schedule's learning rate at every 0-based iteration (over all its stages) as an optax schedule:
    each stage's constant ``eta``, or its warm-up ramp, joined at the stage boundaries.  FIC+EIB steps at
    these rates (its ``eta_eib`` record; with ``restart="per_stage"`` it holds EIB at 0 for the first
    window + lead-in TRs of a stage); past the end the last stage's rate stays."""
    stages = as_schedule(stages)

    def stage(s: EIBStage) -> optax.Schedule:
        if s.warmup:
            return lambda count: warmup_rate(count, s.iterations, s.eta)
        return optax.constant_schedule(s.eta)

    boundaries = np.cumsum([s.iterations for s in stages])[:-1].tolist()
    return optax.join_schedules([stage(s) for s in stages], boundaries)


def warmup_schedule(iterations: int = 2000, eta: float = 0.005, window: int = 150) -> tuple[EIBStage, ...]:
    """The reference workflow's schedule: one stage with a linear warm-up of the rate."""
    return (EIBStage(iterations, eta, window, warmup=True),)


def annealing_schedule(
    n_stages: int = 6, iterations: int | Sequence[int] = 50000, eta: float = 0.1, window: int = 150
) -> tuple[EIBStage, ...]:
    """Schirner et al. (2023)'s schedule: stage s (0-based) has rate ``eta / 2**s`` and window ``window * 2**s``.

    ``iterations``: the length of every stage in TRs (50 000 TRs of 720 ms = 10 h), or one
    length per stage (then ``n_stages`` is their number).
    """
    lengths = [int(iterations)] * int(n_stages) if isinstance(iterations, (int, np.integer)) else list(iterations)
    if len(lengths) < 1:
        raise InputError(f"n_stages must be >= 1, got {len(lengths)}")
    return tuple(EIBStage(n, eta / 2**s, window * 2**s) for s, n in enumerate(lengths))


def as_schedule(stages: Iterable) -> tuple[EIBStage, ...]:
    """Normalise a user's schedule: :class:`EIBStage`, dicts or (iterations, eta, window[, warmup]) tuples."""
    out = []
    for s in stages:
        if isinstance(s, EIBStage):
            out.append(s)
        elif isinstance(s, dict):
            out.append(EIBStage(**s))
        else:
            out.append(EIBStage(*s))
    if not out:
        raise InputError("an EIB schedule needs at least one stage")
    return tuple(out)
