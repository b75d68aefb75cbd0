"""Runs whose numbers stopped meaning anything: NaN/inf, saturated activity, runaway weights.

A Wong-Wang network whose coupling is too strong for its SC drives S_e to
its bound of 1 (the integrator clips it to [0, 1]); too much inhibition pins
it at 0.  A pinned region's BOLD is the HRF's deterministic response to a
constant (or constant to rounding), so its FC row is noise or NaN, the EIB
update it feeds is meaningless, and nothing becomes NaN to show it.  These
checks look at what every compiled chunk recorded and stop the run with an
error that says which stage failed and why; the pipeline keeps the stages
finished before it (:attr:`SimulationDiverged.results`).
"""

from __future__ import annotations

import numpy as np

#: a region whose per-TR mean S_e stays within this of 0 or 1 for a whole stretch is pinned there
SATURATION_TOL = 1e-6
#: weights more than this many times their starting size (at least 1) have run away
RUNAWAY_FACTOR = 100.0


class SimulationDiverged(RuntimeError):
    """A run produced NaN/inf, saturated, or its weights ran away.

    Attributes:
        partial: what the failing call computed before it stopped (a
            :class:`~tvb_eib_plugin._simulation.simulate.Simulation`, or a routine's history dict).
        regions: indices of the regions at fault, when known.
        stage: the pipeline stage that failed (set by the experiment runner).
        stages: the finished stages' records and the failed one's (set by the runner).
        results: a results DataTree of those, failed stage marked ``status="failed"``
            (set by ``run_experiment`` / ``tune_cohort``), ready for ``save_results``.
    """

    def __init__(self, message: str, partial=None, regions=None):
        super().__init__(message)
        self.partial = partial
        self.regions = regions
        self.stage = None
        self.stages = None
        self.results = None

    def in_stage(self, stage: str, labels=None) -> "SimulationDiverged":
        """Name the failed ``stage`` (and the regions by ``labels``) in the message; returns self."""
        if self.stage is None:
            self.stage = stage
            where = ""
            if labels is not None and self.regions:
                where = f" (regions {[str(labels[i]) for i in self.regions[:8]]})"
            self.args = (f"stage {stage!r} failed: {self.args[0]}{where}",)
        return self


class ActivitySaturated(SimulationDiverged):
    """S_e stayed at 0 or 1 in some region for a whole chunk or evaluation: its FC is undefined."""


class WeightsRunaway(SimulationDiverged):
    """Tuned weights grew far past their start: the update is unstable (too high a learning rate)."""


def pinned(mean_S_e: np.ndarray, tol: float = SATURATION_TOL) -> tuple[np.ndarray, np.ndarray]:
    """Masks (high, low) over regions ([member,] region) pinned at 1 / at 0 for every TR of ``mean_S_e``
    ((T[, B], N) per-TR means)."""
    x = np.asarray(mean_S_e)
    return np.all(x >= 1.0 - tol, axis=0), np.all(x <= tol, axis=0)


def saturation(mean_S_e: np.ndarray, span: str) -> ActivitySaturated | None:
    """The error for regions pinned at 0 or 1 throughout ``mean_S_e`` ((T[, B], N)), or None."""
    high, low = pinned(mean_S_e)
    if not (high.any() or low.any()):
        return None
    bound, mask = (1, high) if high.any() else (0, low)
    where = np.argwhere(mask)
    regions = sorted({int(ix[-1]) for ix in where})
    members = sorted({int(ix[0]) for ix in where}) if mask.ndim == 2 else None
    who = f"member(s) {members[:8]}, " if members else ""
    cause = ("the excitation is too strong for this SC (coupling / wLRE too high, or J_i too low): lower the "
             "coupling, the EIB learning rate (eta_eib, the schedule's eta) or the noise" if bound == 1 else
             "the inhibition is too strong (J_i or wFFI too high): lower the FIC / EIB learning rates or J_i")
    return ActivitySaturated(
        f"S_e is pinned at {bound} in {len(regions)} region(s) ({who}indices {regions[:8]}) for all "
        f"{len(np.asarray(mean_S_e))} TRs of {span}, so their BOLD is flat and their FC undefined; {cause}",
        regions=regions)


def runaway(arrays: dict, start: dict, span: str, fix: str) -> WeightsRunaway | None:
    """The error for any of ``arrays`` (name -> array) past ``RUNAWAY_FACTOR`` x its ``start`` size, or None."""
    for name, value in arrays.items():
        limit = RUNAWAY_FACTOR * max(1.0, float(np.max(np.abs(np.asarray(start[name])))))
        top = float(np.max(np.abs(np.asarray(value))))
        if not top <= limit:  # NaN counts too
            return WeightsRunaway(f"{name} reached {top:.4g} by the end of {span}, over {RUNAWAY_FACTOR:g}x its "
                                  f"starting size (limit {limit:.4g}): the tuning is unstable; {fix}")
    return None


def non_finite(records: dict, span: str, fix: str) -> SimulationDiverged | None:
    """The error for NaN/inf in any of ``records`` (name -> array), or None."""
    bad = [k for k, v in records.items() if not np.all(np.isfinite(np.asarray(v, dtype=np.float64)))]
    if not bad:
        return None
    return SimulationDiverged(f"NaN/inf in {bad} during {span}; {fix}")


def tuning_check(start: dict | None = None, params=None, fix: str = ""):
    """A ``run_chunks`` check: regions pinned in the chunk's ``mean_S_e`` records, then (with ``start``,
    name -> starting array, and ``params(carry)``, name -> array now) weights past their runaway limit."""

    def check(carry, records: dict, span: str):
        found = saturation(records["mean_S_e"], span) if "mean_S_e" in records else None
        if found is None and start:
            found = runaway(params(carry), start, span, fix)
        return found

    return check
