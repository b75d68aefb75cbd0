"""Evaluating a stage: a fresh simulation with its parameters, FC and fit metrics."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from .divergence import ActivitySaturated, SimulationDiverged, saturation
from .metrics import fc, fc_corr, fc_rmse
from .._model.network import NetworkModel, SimState
from .simulate import simulate


@dataclasses.dataclass
class Evaluation:
    """Result of :func:`evaluate`.

    Attributes:
        fc: (N, N) simulated FC from BOLD[discard:].
        fc_corr: FC correlation over the upper triangle; fc_corr_all: over all entries.
        fc_rmse: RMSE over all entries.
        bold: (n_tr, N) BOLD; mean_S: (n_tr, 2, N) per-TR means of (S_e, S_i).
        S_e_trace: (display_steps, N) S_e at every step of the first TRs.
        discard: BOLD samples dropped before the FC.

    Of a batch (:mod:`batch`), every field has a member axis: fc (B, N, N),
    fc_corr (B,), bold (n_tr, B, N), ...; :meth:`member` picks one.
    """

    fc: np.ndarray
    fc_corr: float
    fc_corr_all: float
    fc_rmse: float
    bold: np.ndarray
    mean_S: np.ndarray
    S_e_trace: np.ndarray
    discard: int

    def member(self, b: int) -> "Evaluation":
        """Member ``b``'s evaluation of a batched one."""
        return Evaluation(fc=self.fc[b], fc_corr=float(self.fc_corr[b]), fc_corr_all=float(self.fc_corr_all[b]),
                          fc_rmse=float(self.fc_rmse[b]), bold=self.bold[:, b], mean_S=self.mean_S[:, b],
                          S_e_trace=self.S_e_trace[:, b], discard=self.discard)


def evaluate(
    model: NetworkModel,
    state: SimState,
    fc_target: np.ndarray,
    key: jax.Array,
    duration_ms: float = 300000.0,
    discard: int = 20,
    display_trs: int = 5,
    progress=None,
) -> Evaluation:
    """Simulate ``duration_ms`` from ``state`` (with noise ``key``) and score the FC.

    The first ``display_trs`` TRs keep every step of S_e, for plotting.
    """
    state = state.with_key(key)
    head = simulate(model, state, display_trs * model.bold.period_ms, record_trace=True)
    rest = simulate(model, head.state, duration_ms - display_trs * model.bold.period_ms, progress=progress)
    bold = np.concatenate([head.bold, rest.bold])
    if len(bold) - discard < 3:
        raise ValueError(f"{len(bold)} BOLD samples leave too few after discarding {discard}")
    mean_S = np.concatenate([head.mean_S, rest.mean_S])
    check_scored(bold[discard:], mean_S[discard:, ..., 0, :])

    def score(bold, target):
        fc_sim = fc(bold)
        return fc_sim, fc_corr(fc_sim, target), fc_corr(fc_sim, target, "all"), fc_rmse(fc_sim, target)

    if bold.ndim == 3:  # a batch: (n_tr, B, N), one target FC per member
        score = jax.vmap(score, in_axes=(1, 0))
    fc_sim, corr, corr_all, rmse = (np.asarray(x) for x in score(jnp.asarray(bold[discard:], jnp.float64),
                                                                jnp.asarray(fc_target, jnp.float64)))
    if not (np.all(np.isfinite(corr)) and np.all(np.isfinite(rmse))):
        raise SimulationDiverged(f"the evaluation FC fit is NaN (fc_corr {corr}, fc_rmse {rmse}): the simulated or "
                                 "the target FC has no spread (all its pairs equal), so their correlation is "
                                 "undefined; check the parameters and the target FC")
    scalar = (lambda x: x) if bold.ndim == 3 else float
    return Evaluation(
        fc=fc_sim,
        fc_corr=scalar(corr),
        fc_corr_all=scalar(corr_all),
        fc_rmse=scalar(rmse),
        bold=bold,
        mean_S=mean_S,
        S_e_trace=head.S_e_trace,
        discard=discard,
    )


def check_scored(bold: np.ndarray, mean_S_e: np.ndarray) -> None:
    """Refuse an FC that cannot mean anything: regions whose S_e is pinned at 0 or 1, or whose BOLD is flat,
    over the scored samples (bold (T[, B], N), per-TR mean S_e alike)."""
    pinned = saturation(mean_S_e, "the evaluation's scored BOLD (after eval_discard)")
    if pinned is not None:
        raise pinned
    # a spread of a few hundred roundings is no signal: its FC would be the rounding's (measured: a noise-free
    # float32 model at its fixed point varies by 2e-6 around 1.7 and scores fc_corr 0.69 against a random FC)
    eps = np.finfo(bold.dtype if np.issubdtype(bold.dtype, np.floating) else np.float64).eps
    flat = np.std(bold, axis=0) <= 100 * eps * np.maximum(np.abs(np.mean(bold, axis=0)), 1.0)
    if flat.any():
        regions = sorted({int(ix[-1]) for ix in np.argwhere(flat)})
        raise ActivitySaturated(
            f"the evaluation BOLD is flat (no variance beyond rounding) in {len(regions)} region(s) (indices "
            f"{regions[:8]}), so their FC is undefined: the activity sits at a fixed point (saturated, or a "
            "noise-free model); lower the coupling or add noise", regions=regions)
