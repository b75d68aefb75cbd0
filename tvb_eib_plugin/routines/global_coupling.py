"""The original model's fit: one global coupling scalar G, chosen by a sweep.

Before EIB tuning, brain network models of this kind were fitted with a
single global coupling: every long-range connection scaled by G, local
inhibition set by FIC, and G chosen where the simulated FC best matches the
target.  This routine is that baseline (the "global coupling" comparison of
Schirner et al. 2023, Fig. 3c).  All G values run side by side in one
compiled, vmapped simulation: for each, FIC for ``fic_iterations`` TRs, then
``score_iterations`` TRs of BOLD whose FC (first ``discard`` dropped) is
scored against the target.  The best G, with its J_i, is the result.
The sweep itself (:func:`sweep_coupling`) also chooses the EI model's starting
coupling for the data (:func:`~tvb_eib_plugin._experiments.coupling_choice.choose_coupling`).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from .._simulation.divergence import ActivitySaturated, pinned
from .._simulation.metrics import fc, fc_corr, fc_rmse
from .._model.network import NetworkModel, SimState
from .._simulation.simulate import run_trs
from .fic import check_target, fic_chunk, rule_trait, target_trait
from .loop import run_chunks
from .registry import BoundedFloat, BoundedInt, Routine, StageResult, TuningState, register


@register
class GlobalCoupling(Routine):
    """Sweep one global coupling G (wLRE = G, wFFI = feedforward * G) with FIC at each; keep the best."""

    name = "global_coupling"
    depends_on = ("fic",)
    batchable = False  # it already maps its G values over one network
    summary = "the original model: one global coupling G, FIC at each value of a sweep, the best FC fit kept"
    rule = rule_trait("rate")
    eta_fic = BoundedFloat(0.001, 0.0, 10.0, label="eta FIC", doc="learning rate of the J_i update")
    target = target_trait(4.0)
    g_min = BoundedFloat(0.5, 0.0, 100.0, label="G min", doc="smallest global coupling of the sweep")
    g_max = BoundedFloat(4.0, 0.0, 100.0, label="G max", doc="largest global coupling of the sweep")
    n_values = BoundedInt(8, 1, 256, label="values", doc="global couplings in the sweep (evenly spaced)")
    feedforward = BoundedFloat(0.0, 0.0, 10.0, label="feedforward",
                               doc="wFFI = feedforward * G; 0 is the original model without feedforward inhibition")
    fic_iterations = BoundedInt(1000, 1, 10**7, label="FIC iterations", doc="FIC TRs at each G")
    score_iterations = BoundedInt(600, 10, 10**7, label="score iterations",
                                  doc="TRs of BOLD whose FC scores each G (after its FIC)")
    discard = BoundedInt(50, 0, 10**6, label="discard", doc="BOLD samples dropped before the scoring FC")
    log_every = BoundedInt(100, 1, 10**7, label="log every", doc="TRs per compiled chunk")

    def check_plan(self, plan) -> None:
        check_target(self.rule, self.target, self.name)

    def simulated_ms(self, model) -> float:
        return self.n_values * (self.fic_iterations + self.score_iterations) * model.bold.period_ms

    def run(self, start: TuningState, target_fc, previous, log) -> StageResult:
        self.check_plan({})
        G = np.linspace(self.g_min, self.g_max, self.n_values)
        log(f"Running {self.name}: {self.n_values} values of G in [{self.g_min:g}, {self.g_max:g}] side by side, "
            f"FIC for {self.fic_iterations} TRs each, then {self.score_iterations} TRs scored")
        sweep = sweep_coupling(start.model, self.stage_sim(start), target_fc, G, feedforward=self.feedforward,
                               rule=self.rule, eta=self.eta_fic, target=self.target,
                               fic_iterations=self.fic_iterations, score_iterations=self.score_iterations,
                               discard=self.discard, log_every=self.log_every, log=log, name=self.name)
        corr = sweep.fc_corr
        if np.all(np.isnan(corr)):
            raise ActivitySaturated(
                f"every G of the sweep [{self.g_min:g}, {self.g_max:g}] pins S_e at 0 or 1 in some region, or leaves "
                "the FC undefined, while it is scored: sweep lower couplings (g_min, g_max)")
        best = int(np.nanargmax(corr))
        log_sweep(sweep, best, log)
        history = {"G": G, "fc_corr": corr, "fc_rmse": sweep.fc_rmse, "J_i": np.asarray(sweep.models.node.J_i),
                   "mean_S_e": sweep.mean_S_e}
        log(f"{self.name} complete! G = {G[best]:.3f}")
        return StageResult(self.name, TuningState(*sweep.pick(best)), history, self.settings(),
                           sweep.seconds, history_dim="G")


@dataclasses.dataclass(frozen=True)
class Sweep:
    """What :func:`sweep_coupling` measured at each G (leading axis of every array: the G values).

    ``fc_corr`` is NaN where ``saturated`` (a region pinned at S_e 0 or 1 while scored: its BOLD is flat).
    """

    G: np.ndarray
    fc_corr: np.ndarray
    fc_rmse: np.ndarray
    saturated: np.ndarray
    mean_S_e: np.ndarray  # (n_values, N): each region's mean S_e over the scored TRs
    models: NetworkModel  # after FIC, stacked over G
    sims: SimState
    seconds: float

    def pick(self, k: int) -> tuple[NetworkModel, SimState]:
        """The model (its J_i after FIC) and the simulation state at the ``k``-th G."""
        return jax.tree_util.tree_map(lambda x: x[k], (self.models, self.sims))


def sweep_coupling(model: NetworkModel, sim: SimState, target_fc, G, *, feedforward: float, rule: str, eta: float,
                   target: float, fic_iterations: int, score_iterations: int, discard: int, log_every: int,
                   log, name: str) -> Sweep:
    """Every G of ``G`` side by side in one vmapped run: wLRE = G, wFFI = feedforward * G on every entry,
    FIC (``rule``, ``eta``, ``target``) for ``fic_iterations`` TRs, then ``score_iterations`` TRs of BOLD whose
    FC (the first ``discard`` samples dropped) is scored against ``target_fc``.  All start from ``sim``."""
    models, sims, t_fic = fic_at_each(model, sim, G, feedforward=feedforward, rule=rule, eta=eta, target=target,
                                      fic_iterations=fic_iterations, log_every=log_every, log=log, name=name)
    return score_each(models, sims, target_fc, G, score_iterations=score_iterations, discard=discard,
                      log_every=log_every, log=log, name=name, seconds=t_fic)


def fic_at_each(model: NetworkModel, sim: SimState, G, *, feedforward: float, rule: str, eta: float, target: float,
                fic_iterations: int, log_every: int, log, name: str) -> tuple[NetworkModel, SimState, float]:
    """The first half of :func:`sweep_coupling`: the models at each G (stacked), FIC run at each from ``sim``;
    returns (models, sims, seconds)."""
    dtype, n, k = model.dtype, model.n_regions, len(G)
    ones = jnp.ones((n, n), dtype)
    models = jax.vmap(lambda g: model.with_tuned(wLRE=g * ones, wFFI=feedforward * g * ones))(jnp.asarray(G, dtype))
    sims = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (k,) + x.shape), sim)
    eta, target = jnp.asarray(eta, dtype), jnp.asarray(target, dtype)

    def fic_part(carry, first, size):
        (m, s), rec = jax.vmap(lambda m, s: fic_chunk(m, s, eta, target, size, rule))(*carry)
        return (m, s), {"mean_S_e": rec["mean_S_e"]}

    (models, sims), _, seconds = run_chunks(
        fic_part, (models, sims), fic_iterations, log_every,
        lambda done, last: f"  FIC {done}/{fic_iterations}", log, desc=f"{name} FIC")
    return models, sims, seconds


def score_each(models: NetworkModel, sims: SimState, target_fc, G, *, score_iterations: int, discard: int,
               log_every: int, log, name: str, seconds: float = 0.0) -> Sweep:
    """The second half of :func:`sweep_coupling`: ``score_iterations`` TRs of each of the stacked ``models``,
    their FC (the first ``discard`` samples dropped) scored against ``target_fc``; ``seconds`` spent before."""

    def score_part(carry, first, size):
        m, s = carry
        s, rec = jax.vmap(lambda m_, s_: run_trs(m_, s_, size))(m, s)
        return (m, s), {"bold": jnp.swapaxes(rec.bold, 0, 1), "mean_S_e": jnp.swapaxes(rec.mean_S[:, :, 0], 0, 1)}

    (models, sims), scored, t_score = run_chunks(
        score_part, (models, sims), score_iterations, log_every,
        lambda done, last: f"  scoring {done}/{score_iterations}", log, desc=f"{name} scoring")
    target_fc = jnp.asarray(target_fc, jnp.float64)
    bold = jnp.asarray(scored["bold"][discard:], jnp.float64)  # (T, n_values, N)
    fcs = jax.vmap(fc, in_axes=1)(bold)
    corr = np.asarray(jax.vmap(lambda f: fc_corr(f, target_fc))(fcs))
    rmse = np.asarray(jax.vmap(lambda f: fc_rmse(f, target_fc))(fcs))
    # a G whose activity pins a region at 0 or 1 scores that region's flat BOLD: no fit, never the best
    high, low = pinned(np.asarray(scored["mean_S_e"])[discard:])
    saturated = (high | low).any(axis=-1)
    return Sweep(np.asarray(G), np.where(saturated, np.nan, corr), rmse, saturated,
                 np.asarray(scored["mean_S_e"]).mean(axis=0), models, sims, seconds + t_score)


def log_sweep(sweep: Sweep, best: int, log) -> None:
    """One line per G: its fit, and which one is the best or excluded."""
    for g, c, r, sat in zip(sweep.G, sweep.fc_corr, sweep.fc_rmse, sweep.saturated):
        note = "   (saturated: excluded)" if sat else "   <- best" if g == sweep.G[best] else ""
        log(f"  G={g:.3f}: fc_corr={c:.4f}, fc_rmse={r:.4f}{note}")
