"""The original model's fit: one global coupling scalar G, chosen by a sweep.

Before EIB tuning, brain network models of this kind were fitted with a
single global coupling: every long-range connection scaled by G, local
inhibition set by FIC, and G chosen where the simulated FC best matches the
target.  This routine is that baseline (the "global coupling" comparison of
Schirner et al. 2023, Fig. 3c).  All G values run side by side in one
compiled, vmapped simulation: for each, FIC for ``fic_iterations`` TRs, then
``score_iterations`` TRs of BOLD whose FC (first ``discard`` dropped) is
scored against the target.  The best G, with its J_i, is the result.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..divergence import ActivitySaturated, pinned
from ..metrics import fc, fc_corr, fc_rmse
from ..simulate import run_trs
from .fic import check_target, fic_chunk, rule_trait
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
    target = BoundedFloat(4.0, 0.01, 100.0, label="target",
                          doc="FIC target: mean S_e (gating rule) or excitatory rate in Hz (rate rule)")
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

    def run(self, start: TuningState, target_fc, previous, log) -> StageResult:
        self.check_plan({})
        model, dtype, n = start.model, start.model.dtype, start.model.n_regions
        G = np.linspace(self.g_min, self.g_max, self.n_values)
        ones = jnp.ones((n, n), dtype)
        models = jax.vmap(lambda g: model.with_tuned(wLRE=g * ones, wFFI=self.feedforward * g * ones))(
            jnp.asarray(G, dtype))
        sim = self.stage_sim(start)
        sims = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (self.n_values,) + x.shape), sim)
        eta, target = jnp.asarray(self.eta_fic, dtype), jnp.asarray(self.target, dtype)
        log(f"Running {self.name}: {self.n_values} values of G in [{self.g_min:g}, {self.g_max:g}] side by side, "
            f"FIC for {self.fic_iterations} TRs each, then {self.score_iterations} TRs scored")

        def fic_part(carry, first, size):
            (m, s), rec = jax.vmap(lambda m, s: fic_chunk(m, s, eta, target, size, self.rule))(*carry)
            return (m, s), {"mean_S_e": rec["mean_S_e"]}

        (models, sims), _, t_fic = run_chunks(
            fic_part, (models, sims), self.fic_iterations, self.log_every,
            lambda done, last: f"  FIC {done}/{self.fic_iterations}", log)

        def score_part(carry, first, size):
            m, s = carry
            s, rec = jax.vmap(lambda m_, s_: run_trs(m_, s_, size))(m, s)
            return (m, s), {"bold": jnp.swapaxes(rec.bold, 0, 1), "mean_S_e": jnp.swapaxes(rec.mean_S[:, :, 0], 0, 1)}

        (models, sims), scored, t_score = run_chunks(
            score_part, (models, sims), self.score_iterations, self.log_every,
            lambda done, last: f"  scoring {done}/{self.score_iterations}", log)
        target_fc = jnp.asarray(target_fc, jnp.float64)
        bold = jnp.asarray(scored["bold"][self.discard:], jnp.float64)  # (T, n_values, N)
        fcs = jax.vmap(fc, in_axes=1)(bold)
        corr = np.asarray(jax.vmap(lambda f: fc_corr(f, target_fc))(fcs))
        rmse = np.asarray(jax.vmap(lambda f: fc_rmse(f, target_fc))(fcs))
        # a G whose activity pins a region at 0 or 1 scores that region's flat BOLD: no fit, never the best
        high, low = pinned(np.asarray(scored["mean_S_e"])[self.discard:])
        saturated = (high | low).any(axis=-1)
        corr = np.where(saturated, np.nan, corr)
        if np.all(np.isnan(corr)):
            raise ActivitySaturated(
                f"every G of the sweep [{self.g_min:g}, {self.g_max:g}] pins S_e at 0 or 1 in some region, or leaves "
                "the FC undefined, while it is scored: sweep lower couplings (g_min, g_max)")
        best = int(np.nanargmax(corr))
        for g, c, r, sat in zip(G, corr, rmse, saturated):
            note = "   (saturated: excluded)" if sat else "   <- best" if g == G[best] else ""
            log(f"  G={g:.3f}: fc_corr={c:.4f}, fc_rmse={r:.4f}{note}")
        pick = lambda tree: jax.tree_util.tree_map(lambda x: x[best], tree)
        history = {"G": G, "fc_corr": corr, "fc_rmse": rmse, "J_i": np.asarray(models.node.J_i),
                   "mean_S_e": np.asarray(scored["mean_S_e"]).mean(axis=0)}
        log(f"{self.name} complete! G = {G[best]:.3f}")
        return StageResult(self.name, TuningState(pick(models), pick(sims)), history, self.settings(),
                           t_fic + t_score, history_dim="G")
