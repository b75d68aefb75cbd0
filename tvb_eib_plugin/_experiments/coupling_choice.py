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

With ``eib_trs`` > 0 each value is scored after a short run of the experiment's own FIC+EIB
(:mod:`routines.eib_sweep`) instead of FIC alone: where wFFI = wLRE cancels the long-range input (the
code-following Schirner2023 model fits nothing at any G before EIB), only what tuning makes of a start
tells the starts apart.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Callable

import numpy as np

from .._model.network import NetworkModel, SimState
from .._validation import InputError, InputWarning, check_fc
from ..routines.eib import FICEIB
from ..routines.eib_sweep import eib_at_each
from ..routines.fic import FIC, check_target
from ..routines.global_coupling import fic_at_each, log_sweep, score_each, sweep_coupling
from ..routines.registry import TuningState, stage_key
from .cost import HOUR_MS

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
        eib_trs, eib_rate: TRs of FIC+EIB at each value before its score (0: FIC alone), and its rate.
        rmse_per_coupling: that FIC+EIB's row-RMSE scale per unit G (0: the routine's own scale).
        simulated_h: simulated hours of the sweep, all values together (a run's tuning cost counts them).
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
    eib_trs: int = 0
    eib_rate: float | None = None
    rmse_per_coupling: float = 0.0
    simulated_h: float = 0.0

    def apply(self, net: NetworkModel) -> NetworkModel:
        """``net`` started at the chosen coupling: wLRE = G, wFFI = feedforward * G, J_i after FIC there."""
        ones = np.ones((net.n_regions, net.n_regions))
        return net.with_tuned(J_i=self.J_i, wLRE=self.G * ones, wFFI=self.feedforward * self.G * ones)

    def record(self) -> dict:
        """Plain data for a results' provenance: the choice and the sweep's table."""
        return {"coupling_chosen": self.G, "feedforward": self.feedforward, "criterion": self.criterion,
                "seconds": self.seconds, "eib_trs": self.eib_trs, "eib_rate": self.eib_rate,
                "rmse_per_coupling": self.rmse_per_coupling,
                "coupling_choice_simulated_h": self.simulated_h,
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
    eib: FICEIB | None = None,
    eib_trs: int = 0,
    eib_rate: float | None = None,
    rmse_per_coupling: float = 0.0,
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
        eib, eib_trs: with ``eib_trs`` > 0, that many TRs of ``eib``'s FIC+EIB (default ``FICEIB()``) at each
            value after its FIC, before the score (:func:`routines.eib_sweep.eib_at_each`: the first stage's
            rate and window, EIB held while the window fills); 0: FIC alone.  The chosen start keeps the
            J_i of FIC alone, at wLRE = wFFI = G, as tuning starts there.
        eib_rate: that FIC+EIB's rate (None: the first stage's).  A gentle one measures the start: at
            Schirner2023's first rate (0.1) 600 TRs leave dk_average's scores at the mercy of the noise (the best
            G 0.5, 4 and 0.5 for seeds 0-2), at 0.0125 every seed ranks the values alike.
        rmse_per_coupling: with ``eib_trs``, that FIC+EIB's row-RMSE scale per unit G (> 0: each value takes
            the step of the authors' program, on wLRE / G); 0: ``eib.rmse_scale`` at every value.
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
    eib = FICEIB() if eib is None and eib_trs else eib
    _check_eib(eib, eib_trs, eib_rate, rmse_per_coupling)
    fc_target = check_fc(fc_target, "fc_target", net.n_regions)
    tuned = f", FIC+EIB for {eib_trs} TRs" if eib_trs else ""
    log(f"Choosing the starting coupling: {len(G)} values of G in [{G[0]:g}, {G[-1]:g}] side by side "
        f"(wFFI = {feedforward:g} G), FIC for {fic.n_iterations} TRs each{tuned}, then {score_trs} TRs scored")
    sweep, J_i = _sweep(net, sim.with_key(stage_key(seed, "coupling_choice")), fc_target, G, fic, feedforward,
                        dict(routine=eib, iterations=eib_trs, rate=eib_rate, rmse_per_coupling=rmse_per_coupling),
                        dict(score_iterations=score_trs, discard=discard, log_every=log_every, log=log,
                             name="coupling_choice"))
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
                          saturated=sweep.saturated, J_i=np.asarray(J_i[best]), feedforward=float(feedforward),
                          criterion=criterion, seconds=sweep.seconds, eib_trs=int(eib_trs),
                          eib_rate=None if eib_rate is None or not eib_trs else float(eib_rate),
                          rmse_per_coupling=float(rmse_per_coupling),
                          simulated_h=len(G) * (fic.n_iterations + eib_trs + score_trs) * net.bold.period_ms / HOUR_MS)


def _sweep(net, sim, fc_target, G, fic, feedforward, tuning: dict, scoring: dict):
    """The sweep's table, and J_i after FIC at each value (the chosen start's): FIC alone, or FIC then a short
    FIC+EIB (``tuning``: :func:`eib_at_each`'s arguments), before the score."""
    fic_args = dict(feedforward=feedforward, rule=fic.rule, eta=fic.eta, target=fic.target)
    if not tuning["iterations"]:
        sweep = sweep_coupling(net, sim, fc_target, G, fic_iterations=fic.n_iterations, **fic_args, **scoring)
        return sweep, sweep.models.node.J_i
    common = {k: scoring[k] for k in ("log_every", "log", "name")}
    models, sims, t_fic = fic_at_each(net, sim, G, fic_iterations=fic.n_iterations, **fic_args, **common)
    J_i = models.node.J_i
    models, sims, t_eib = eib_at_each(models, sims, fc_target, G, **tuning, **common)
    return score_each(models, sims, fc_target, G, seconds=t_fic + t_eib, **scoring), J_i


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


def _check_eib(eib, eib_trs: int, eib_rate, rmse_per_coupling: float) -> None:
    if not eib_trs:
        return
    if not isinstance(eib, FICEIB):
        raise InputError(f"eib must be a FICEIB routine (e.g. FICEIB(rule='rate', target=4.0)), "
                         f"got {type(eib).__name__}")
    check_target(eib.rule, eib.target, "eib")
    window = eib.stages()[0].window
    if eib_trs <= window:
        raise InputError(f"eib_trs={eib_trs} TRs of FIC+EIB hold EIB while the first window ({window} TRs) fills and "
                         f"would never tune: give more than {window} (e.g. eib_trs={4 * window}) or 0 for FIC alone")
    if eib_rate is not None and not (np.isfinite(eib_rate) and 0 < eib_rate <= 10):
        raise InputError(f"eib_rate must be within (0, 10] (None: the routine's first stage's), got {eib_rate}")
    if not (np.isfinite(rmse_per_coupling) and rmse_per_coupling >= 0):
        raise InputError(f"rmse_per_coupling must be finite and >= 0 (0: the routine's rmse_scale), "
                         f"got {rmse_per_coupling}")


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
