"""Twin subjects: a target FC made by the model itself from known parameters, to test recovery.

A twin is a connectome (any: the shipped data, tvb-data's, a user's) whose
target FC was simulated from a ground truth the user knows:

- wLRE / wFFI: on every SC edge, a log ratio ``L_ij = spread * (sqrt(share) u_i
  + sqrt(1 - share) e_ij)`` with u (per receiving region) and e (per edge)
  standard normal; ``wLRE = G exp(L / 2)``, ``wFFI = G exp(-L / 2)`` (G the
  experiment's coupling; edges without SC stay at G);
- J_i: what the experiment's own FIC reaches under that coupling, so the
  truth sits at the FIC target as every tuned model does;
- FC: Pearson FC of ``duration_ms`` of BOLD simulated from that model (the
  first ``discard`` samples dropped).

Tuning the twin from the defaults and comparing with :func:`recovery` says
how well the procedure identifies E/I coupling on that connectome.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import jax.numpy as jnp
import numpy as np
import xarray as xr

from .cohort import cohort_settings
from .._io.data import Connectome
from .._experiments.experiment import ExperimentSettings, experiment_network
from .._simulation.metrics import fc
from .._model.network import TunedParams, initial_state
from ..routines import TuningState
from ..routines.registry import stage_key
from .._simulation.simulate import simulate
from .._validation import InputError


@dataclasses.dataclass(frozen=True)
class TwinTruth:
    """A twin's ground truth: J_i (N,), wLRE and wFFI (N, N), and the SC edge mask (N, N) bool."""

    J_i: np.ndarray
    wLRE: np.ndarray
    wFFI: np.ndarray
    edges: np.ndarray

    @property
    def params(self) -> TunedParams:
        """The truth as the tuned-parameter pytree (``NetworkModel.with_tuned(truth.params)``)."""
        return TunedParams(self.J_i, self.wLRE, self.wFFI)

    @property
    def log_ratio(self) -> np.ndarray:
        """log(wLRE / wFFI) on the SC edges, (n_edges,)."""
        return np.log(self.wLRE / self.wFFI)[self.edges]


def twin_subject(
    connectome: Connectome,
    *,
    seed: int = 0,
    name: str | None = None,
    spread: float = 1.0,
    region_share: float = 0.7,
    sc_spread: float = 0.0,
    experiment: str | ExperimentSettings = "EI_Tuning_FIC_EIB_Optimization",
    variant: str | None = None,
    fic_iterations: int = 400,
    duration_ms: float = 1200000.0,
    discard: int = 20,
    truth: TwinTruth | None = None,
    **overrides,
) -> tuple[Connectome, TwinTruth]:
    """A twin of ``connectome``: its target FC simulated from a random ground truth.

    Args:
        seed: draws the truth, the SC perturbation and the simulation noise.
        name: the twin's name (default ``"<connectome>-twin<seed>"``).
        spread: standard deviation of the log ratio log(wLRE / wFFI) over edges.
        region_share: the part of its variance shared by a receiving region's edges (0..1).
        sc_spread: multiplicative log-normal noise on the SC weights (symmetric), 0 keeps them.
        experiment, variant, overrides: the model (dt, noise, BOLD, coupling, FIC settings) the FC is made with.
        fic_iterations: FIC iterations that set the true J_i.
        duration_ms, discard: length of the simulated BOLD, and samples dropped before its FC.
        truth: your own ground truth (J_i, wLRE, wFFI) instead of a random one; it is used as
            given (no FIC), and ``spread``, ``region_share`` and ``fic_iterations`` are ignored.

    Returns (the twin as a :class:`Connectome` with ``fc_target``, its :class:`TwinTruth`).
    """
    if not 0.0 <= region_share <= 1.0:
        raise InputError(f"region_share must be within [0, 1], got {region_share}")
    if spread < 0 or sc_spread < 0:
        raise InputError(f"spread and sc_spread must be >= 0, got {spread}, {sc_spread}")
    if discard < 0:
        raise InputError(f"discard must be >= 0 (BOLD samples dropped before the twin's FC), got {discard}")
    settings = cohort_settings(experiment, variant, **overrides)
    if truth is None and isinstance(settings.coupling, str):  # e.g. Schirner2023Fast's coupling="auto"
        raise InputError(f"a twin's truth is drawn around a coupling G, but experiment {settings.name!r} has "
                         f"coupling={settings.coupling!r} (chosen for the data when tuning): give the truth's G, "
                         "e.g. twin_subject(..., coupling=2.5), or your own truth=TwinTruth(...)")
    rng = np.random.default_rng(seed)
    n = connectome.n_regions
    weights = connectome.weights
    if sc_spread > 0:
        noise = np.triu(rng.standard_normal((n, n)), 1)
        weights = weights * np.exp(sc_spread * (noise + noise.T))
    twin = dataclasses.replace(connectome, weights=weights, fc_target=None,
                               name=name or f"{connectome.name}-twin{seed}")
    net = experiment_network(settings, twin)
    edges = np.asarray(net.coupling.weights) > 0
    if truth is not None:
        _check_truth(truth, n)
        net = net.with_tuned(truth.params)
    else:
        u, e = rng.standard_normal(n), rng.standard_normal((n, n))
        log_ratio = spread * (np.sqrt(region_share) * u[:, None] + np.sqrt(1 - region_share) * e)
        G = settings.coupling
        net = net.with_tuned(wLRE=np.where(edges, G * np.exp(log_ratio / 2), G),
                             wFFI=np.where(edges, G * np.exp(-log_ratio / 2), G))
    sim = simulate(net, initial_state(net, stage_key(seed, "twin transient")), settings.transient_ms).state
    if truth is None:  # J_i: where the experiment's own FIC puts it under the drawn coupling
        # the experiment's FIC, with its own seed (0 unless routine_settings give one), for as many TRs as asked
        seed_fic = settings.routine_settings.get("fic", {}).get("seed", 0)
        fic = next(r for r in settings.with_routine("fic", n_iterations=fic_iterations, seed=seed_fic).pipeline()
                   if r.name == "fic")
        done = fic.run(TuningState(net, sim), None, {}, lambda _: None).state
        net, sim = done.model, done.sim
    run = simulate(net, sim.with_key(stage_key(seed, "twin data")), duration_ms)
    if len(run.bold) - discard < 10:
        raise InputError(f"{duration_ms} ms gives {len(run.bold)} BOLD samples: too few after discarding {discard}")
    fc_twin = np.asarray(fc(jnp.asarray(run.bold[discard:], jnp.float64)))
    truth = TwinTruth(J_i=np.asarray(net.node.J_i, np.float64), wLRE=np.asarray(net.coupling.wLRE, np.float64),
                      wFFI=np.asarray(net.coupling.wFFI, np.float64), edges=edges)
    return dataclasses.replace(twin, fc_target=fc_twin), truth


def _check_truth(truth: TwinTruth, n: int) -> None:
    for name, shape in (("J_i", (n,)), ("wLRE", (n, n)), ("wFFI", (n, n))):
        value = np.asarray(getattr(truth, name))
        if value.shape != shape:
            raise InputError(f"truth.{name} has shape {value.shape}; this connectome needs {shape}")
        if not np.all(np.isfinite(value)) or np.any(value < 0):
            raise InputError(f"truth.{name} must be finite and >= 0")


def twin_cohort(connectome: Connectome, n: int, *, first_seed: int = 0, **kwargs) -> tuple[list[Connectome], dict]:
    """``n`` twins of ``connectome`` (seeds ``first_seed``...); returns (twins, name -> truth)."""
    twins, truths = [], {}
    for k in range(first_seed, first_seed + n):
        twin, truth = twin_subject(connectome, seed=k, **kwargs)
        twins.append(twin)
        truths[twin.name] = truth
    return twins, truths


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r; NaN where either side is constant (e.g. untuned wLRE = wFFI)."""
    if np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def recovery(params: xr.Dataset, truth: TwinTruth, evaluation: xr.Dataset | None = None) -> dict:
    """How well tuned parameters recover a twin's truth.

    Args:
        params: one run's stage node (J_i, wLRE, wFFI), e.g. ``tree["fic_eib"]``
            (of a cohort: ``tree["fic_eib"].sel(subject=..., seed=...)``).
        evaluation: that stage's evaluation node, to report the FC fit.

    Returns a dict: ``ratio_corr`` (Pearson r of log(wLRE / wFFI) over SC edges,
    tuned against true), ``region_ratio_corr`` (the same of each receiving
    region's mean log ratio), ``J_i_corr``, ``ratio_rmse`` (of the log ratios),
    and ``fc_corr`` / ``fc_rmse`` when ``evaluation`` is given.
    """
    wLRE, wFFI = np.asarray(params["wLRE"]), np.asarray(params["wFFI"])
    if wLRE.shape != truth.wLRE.shape:
        raise InputError(f"tuned matrices {wLRE.shape} and truth {truth.wLRE.shape} differ in shape: select "
                         "one subject and seed of a cohort first")
    with np.errstate(divide="ignore"):
        tuned = np.log(wLRE / wFFI)
    edges = truth.edges & np.isfinite(tuned)
    true = np.log(truth.wLRE / truth.wFFI)
    region = lambda m: np.array([m[i][edges[i]].mean() for i in range(len(m)) if edges[i].any()])
    out = dict(ratio_corr=_corr(tuned[edges], true[edges]), region_ratio_corr=_corr(region(tuned), region(true)),
               J_i_corr=_corr(np.asarray(params["J_i"]), truth.J_i),
               ratio_rmse=float(np.sqrt(np.mean((tuned[edges] - true[edges]) ** 2))),
               edges_compared=int(edges.sum()))
    if evaluation is not None:
        out.update(fc_corr=float(evaluation["fc_corr"]), fc_rmse=float(evaluation["fc_rmse"]))
    return out


def cohort_recovery(tree: xr.DataTree, truths: dict[str, TwinTruth], stage: str = "fic_eib",
                    seeds: Sequence[int] | None = None, pooled: bool = False) -> list[dict]:
    """:func:`recovery` of every (subject, seed) of a cohort tree whose subjects are twins in ``truths``.

    With ``pooled``, also one row per subject (``seed="pooled"``) for the
    consensus of its seeds (:func:`pool_seeds`); it has no FC fit of its own.
    """
    node = tree[stage]
    seeds = list(node["seed"].values) if seeds is None else list(seeds)
    rows = []
    for subject in node["subject"].values:
        for k in seeds:
            pick = dict(subject=subject, seed=k)
            row = recovery(node.to_dataset().sel(pick), truths[str(subject)],
                           node["evaluation"].to_dataset().sel(pick))
            rows.append(dict(subject=str(subject), seed=int(k), **row))
        if pooled:
            consensus = pool_seeds(node.to_dataset().sel(subject=subject, seed=seeds))
            rows.append(dict(subject=str(subject), seed="pooled", **recovery(consensus, truths[str(subject)])))
    return rows


def pool_seeds(params: xr.Dataset) -> xr.Dataset:
    """The consensus of one subject's runs over noise seeds: wLRE and wFFI as geometric means
    (the log ratio is then the mean log ratio), J_i as the mean.  ``params`` has a ``seed`` dim."""
    with np.errstate(divide="ignore"):
        geometric = {name: np.exp(np.log(params[name]).mean("seed")) for name in ("wLRE", "wFFI")}
    return xr.Dataset(dict(geometric, J_i=params["J_i"].mean("seed")))
