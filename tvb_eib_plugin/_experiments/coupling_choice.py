"""A starting coupling chosen for the data: a cheap sweep over G, with FIC at each value, before EIB.

EIB tuning starts from one global coupling G (wLRE = wFFI = G on every
edge of the SC, normalised W / max W).  G = 1 suits dk_average but not
every parcellation: a connectome with another weight distribution can sit
at G = 1 where its model's FC is noise, or is saturated, and tuning then
starts far from any fit.  :func:`choose_coupling` runs a handful of G
values side by side in one compiled, vmapped simulation (the sweep of the
global-coupling routine, :func:`routines.global_coupling.sweep_coupling`):
FIC at each value, then a few minutes of BOLD scored against the target FC,
and keeps the G with the best FC fit (the lowest RMSE by default) among those
whose activity is not pinned at 0 or 1.  It is the EI model's sweep (wFFI = feedforward * G,
feedforward 1 by default), not the original model's (wFFI = 0).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Callable

import numpy as np

from .._model.network import NetworkModel, SimState
from ..routines.fic import FIC, check_target
from ..routines.global_coupling import log_sweep, sweep_coupling
from ..routines.registry import TuningState, stage_key
from .._validation import InputError, InputWarning, check_fc

#: What a best value can be: the lowest FC RMSE, or the highest FC correlation.
CRITERIA = ("fc_rmse", "fc_corr")

#: The default sweep: 13 log-spaced values, a factor 2**0.5 apart, from 1/8 to 8.  Measured (float32, the
#: reference FIC, benchmarks/bench_coupling_choice.py): connectivity_192's twins are best at 0.25 (its
#: max-normalised SC has row sums about 8x dk_average's), dk_average's own FC at 4 (5.7 leaves FIC off its
#: target, 8 saturates), so the range holds both with a value to spare on each side.
DEFAULT_VALUES = tuple(float(g) for g in np.geomspace(0.125, 8.0, 13))


@dataclasses.dataclass(frozen=True)
class CouplingChoice:
    """The chosen starting coupling and the sweep it came from.

    Attributes:
        G: the chosen coupling (wLRE = G, wFFI = feedforward * G on every entry).
        values, fc_corr, fc_rmse, saturated: the sweep's table, one entry per G tried
            (fc_corr NaN where the activity saturated: excluded from the choice).
        J_i: (N,) local inhibition after FIC at the chosen G.
        feedforward: wFFI / wLRE of the sweep.
        criterion: what chose G ("fc_corr": the highest; "fc_rmse": the lowest).
        seconds: wall time of the sweep, compilation included.
    """

    G: float
    values: np.ndarray
    fc_corr: np.ndarray
    fc_rmse: np.ndarray
    saturated: np.ndarray
    J_i: np.ndarray
    feedforward: float
    criterion: str
    seconds: float

    def apply(self, net: NetworkModel) -> NetworkModel:
        """``net`` started at the chosen coupling: wLRE = G, wFFI = feedforward * G, J_i after FIC there."""
        ones = np.ones((net.n_regions, net.n_regions))
        return net.with_tuned(J_i=self.J_i, wLRE=self.G * ones, wFFI=self.feedforward * self.G * ones)

    def record(self) -> dict:
        """Plain data for a results' provenance: the choice and the sweep's table."""
        return {"coupling_chosen": self.G, "feedforward": self.feedforward, "criterion": self.criterion,
                "seconds": self.seconds,
                "sweep": {"G": self.values.tolist(), "fc_corr": _listed(self.fc_corr), "fc_rmse": _listed(self.fc_rmse),
                          "saturated": self.saturated.tolist()}}


def _listed(x: np.ndarray) -> list:
    """Values as a list, NaN (a saturated value's fit) as None: strict JSON, as provenance is written."""
    return [None if np.isnan(v) else float(v) for v in x]


def choose_coupling(
    net: NetworkModel,
    state: SimState | TuningState,
    fc_target,
    *,
    values=DEFAULT_VALUES,
    fic: FIC | None = None,
    feedforward: float = 1.0,
    score_trs: int = 400,
    discard: int = 20,
    criterion: str = "fc_rmse",
    seed: int = 0,
    log_every: int = 50,
    log: Callable[[str], None] | None = None,
) -> CouplingChoice:
    """The starting G for this SC and target FC: the best FC fit of a sweep, FIC at each value.

    Args:
        net: the network (one, not a batch), in the precision it will be tuned in (float32 for an
            experiment's default).
        state: where the sweep starts, e.g. the end of the experiment's transient.
        fc_target: (N, N) target FC.
        values: the couplings tried, increasing, at least 3 (default :data:`DEFAULT_VALUES`).
        fic: the FIC that runs at each value (its rule, eta, target and ``n_iterations``;
            default ``FIC()``, the reference workflow's).
        feedforward: wFFI = feedforward * G (1: wLRE = wFFI = G, the EI model's start).
        score_trs, discard: TRs of BOLD simulated after FIC, and samples dropped before their FC.
        criterion: what the best value is, among the non-saturated values: ``"fc_rmse"`` (the lowest
            RMSE, the default) or ``"fc_corr"`` (the highest correlation).  The correlation ignores the
            FC's magnitude, which is what G sets: it is flat over a wide range of G on small networks and
            keeps rising towards the coupling where the activity saturates (dk_average's own FC: 5.7,
            where FIC no longer holds its target), while the RMSE finds a twin's G on a toy and picks the
            same or a better start on every twin measured.
        seed: the sweep's noise seed.
        log_every: TRs per compiled chunk.
        log: progress lines (None: silent).

    Raises :class:`InputError` if every value saturates; warns (:class:`InputWarning`) if the best
    value is the first or last of ``values`` (widen the range that way).
    """
    log = log or (lambda _: None)
    fic = FIC() if fic is None else fic
    sim = state.sim if isinstance(state, TuningState) else state
    G = _check_values(values)
    if criterion not in CRITERIA:
        raise InputError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    _check_run(net, sim, fic, feedforward, score_trs, discard, log_every)
    fc_target = check_fc(fc_target, "fc_target", net.n_regions)
    log(f"Choosing the starting coupling: {len(G)} values of G in [{G[0]:g}, {G[-1]:g}] side by side "
        f"(wFFI = {feedforward:g} G), FIC for {fic.n_iterations} TRs each, then {score_trs} TRs scored")
    sweep = sweep_coupling(net, sim.with_key(stage_key(seed, "coupling_choice")), fc_target, G,
                           feedforward=feedforward, rule=fic.rule, eta=fic.eta, target=fic.target,
                           fic_iterations=fic.n_iterations, score_iterations=score_trs, discard=discard,
                           log_every=log_every, log=log, name="coupling_choice")
    if np.all(np.isnan(sweep.fc_corr)):
        raise InputError(
            f"every coupling of the sweep G in [{G[0]:g}, {G[-1]:g}] saturates the activity (S_e pinned at 0 or 1 "
            f"in some region) or leaves the FC undefined: sweep lower couplings (values=np.geomspace({G[0] / 16:g}, "
            f"{G[0]:g}, 8)), or give FIC more iterations (fic=FIC(n_iterations={4 * fic.n_iterations})), or fix G "
            "yourself")
    best = int(np.nanargmax(sweep.fc_corr) if criterion == "fc_corr" else
               np.nanargmin(np.where(sweep.saturated, np.nan, sweep.fc_rmse)))
    log_sweep(sweep, best, log)
    _warn_at_edge(G, best)
    return CouplingChoice(G=float(G[best]), values=G, fc_corr=sweep.fc_corr, fc_rmse=sweep.fc_rmse,
                          saturated=sweep.saturated, J_i=np.asarray(sweep.models.node.J_i[best]),
                          feedforward=float(feedforward), criterion=criterion, seconds=sweep.seconds)


def _check_values(values) -> np.ndarray:
    G = np.asarray(values, np.float64)
    if G.ndim != 1 or len(G) < 3:
        raise InputError(f"values: give at least 3 couplings G in a 1-D sequence, got shape {G.shape} "
                         "(e.g. values=np.geomspace(0.125, 4, 11))")
    if not (np.all(np.isfinite(G)) and np.all(G > 0) and np.all(np.diff(G) > 0)):
        raise InputError(f"values must be finite, > 0 and increasing, got {G.tolist()}")
    return G


def _check_run(net, sim, fic, feedforward, score_trs, discard, log_every) -> None:
    if np.ndim(net.node.J_i) != 1 or np.ndim(sim.key) != 0:
        raise InputError("choose_coupling takes one network and its state, not a batch: choose per member")
    if not isinstance(fic, FIC):
        raise InputError(f"fic must be a FIC routine (e.g. FIC(n_iterations=200)), got {type(fic).__name__}")
    check_target(fic.rule, fic.target, "fic")
    if not (np.isfinite(feedforward) and feedforward >= 0):
        raise InputError(f"feedforward (wFFI / wLRE) must be finite and >= 0, got {feedforward}")
    if discard < 0 or score_trs - discard < 10:
        raise InputError(f"score_trs={score_trs} with discard={discard} leaves {score_trs - discard} BOLD samples "
                         "to score: keep at least 10 (raise score_trs or lower discard >= 0)")
    if log_every < 1:
        raise InputError(f"log_every must be >= 1, got {log_every}")


def _warn_at_edge(G: np.ndarray, best: int) -> None:
    """The best fit at an end of the range may lie beyond it: say which way to widen it."""
    if best == 0:
        way, wider = "down", f"values=np.geomspace({G[0] / 4:g}, {G[-1]:g}, {len(G) + 4})"
    elif best == len(G) - 1:
        way, wider = "up", f"values=np.geomspace({G[0]:g}, {G[-1] * 4:g}, {len(G) + 4})"
    else:
        return
    warnings.warn(f"the best coupling of the sweep, G = {G[best]:g}, is at its {'lower' if best == 0 else 'upper'} "
                  f"end: the best fit may lie further {way}; widen the range ({wider})", InputWarning, stacklevel=3)
