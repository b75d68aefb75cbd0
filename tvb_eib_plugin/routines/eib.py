"""FIC + excitation-inhibition balance tuning (Schirner, Deco & Ritter 2023).

Each iteration simulates one TR, adds its BOLD sample to a sliding window,
applies FIC, and moves both coupling matrices against the FC error of the
window: where simulated FC is too low (d > 0) long-range excitation grows and
feedforward inhibition shrinks, scaled by the region's row RMSE::

    d = FC_target - FC_window;  r_i = sqrt(mean_j d_ij^2)
    wLRE <- max(0, wLRE + eta_k d r_i);  wFFI <- max(0, wFFI - eta_k d r_i)
    eta_k = (k + 1) / n_iterations * eta_eib        (linear warm-up)
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from ..coupling import effective
from ..metrics import fc, fc_corr, fc_rmse, rowwise_rmse
from ..network import NetworkModel, SimState
from ..simulate import tr_step
from .fic import activity_line, activity_records, fic_update
from .loop import run_chunks
from ..validation import InputError
from .registry import BoundedFloat, BoundedInt, Routine, StageResult, TuningState, register


def eib_update(wLRE: jax.Array, wFFI: jax.Array, fc_sim: jax.Array, fc_target: jax.Array, eta) -> tuple:
    """One EIB step on (N, N) wLRE and wFFI; both stay >= 0."""
    step = eta * (fc_target - fc_sim) * rowwise_rmse(fc_sim, fc_target)[:, None]
    return jnp.maximum(wLRE + step, 0.0), jnp.maximum(wFFI - step, 0.0)


def warmup_rate(k: jax.Array, n_iterations, eta_eib) -> jax.Array:
    """eta_k = (k + 1) / n_iterations * eta_eib for 0-based iteration k."""
    return (k + 1) / n_iterations * eta_eib


@functools.partial(jax.jit, static_argnames=("n",))
def fic_eib_chunk(model: NetworkModel, sim: SimState, window: jax.Array, first, hp: dict, fc_target, n: int):
    """``n`` FIC+EIB iterations from 0-based iteration ``first``; ``window`` (W, N)
    is a ring of BOLD samples (FC does not depend on their order)."""

    def body(carry, k):
        model, sim, window = carry
        sim, rec = tr_step(model, effective(model.coupling), sim)
        window = window.at[k % window.shape[0]].set(rec.bold)
        J_i = fic_update(model.node.J_i, rec.mean_S[0], rec.mean_S[1], hp["eta_fic"], hp["target"])
        fc_win = fc(window)
        wLRE, wFFI = eib_update(model.coupling.wLRE, model.coupling.wFFI, fc_win, fc_target,
                                warmup_rate(k, hp["n_iterations"], hp["eta_eib"]))
        model = model.with_tuned(J_i=J_i, wLRE=wLRE, wFFI=wFFI)
        records = dict(activity_records(rec), J_i=J_i, fc_corr=fc_corr(fc_win, fc_target),
                       fc_rmse=fc_rmse(fc_win, fc_target), fc_mean=_mean_offdiag(fc_win))
        return (model, sim, window), records

    ks = first + jnp.arange(n, dtype=jnp.int32)
    return jax.lax.scan(body, (model, sim, window), ks)


def _mean_offdiag(m: jax.Array) -> jax.Array:
    n = m.shape[0]
    return jnp.sum(m) / (n * (n - 1))


@register
class FICEIB(Routine):
    """FIC with excitation-inhibition balance tuning of wLRE and wFFI against a target FC."""

    name = "fic_eib"
    depends_on = ("fic",)
    summary = "FIC with EIB tuning of wLRE and wFFI against the target FC (starts from fic)"
    eta_fic = BoundedFloat(0.1, 0.0, 10.0, label="eta FIC", doc="learning rate of the J_i update")
    eta_eib = BoundedFloat(0.005, 0.0, 1.0, label="eta EIB",
                           doc="final learning rate of the wLRE / wFFI updates (reached after the warm-up)")
    target = BoundedFloat(0.25, 0.01, 0.99, label="target", doc="target mean S_e per region")
    n_iterations = BoundedInt(2000, 1, 10**7, label="iterations", doc="iterations, one TR each")
    window = BoundedInt(150, 10, 10**5, label="window", doc="BOLD samples (TRs) in the sliding FC window")
    log_every = BoundedInt(100, 1, 10**7, label="log every",
                           doc="iterations per compiled chunk, and between progress lines")

    def check_plan(self, plan) -> None:
        fic = plan.get("fic")
        if fic is not None and fic.n_iterations < self.window:
            raise InputError(
                f"fic runs {fic.n_iterations} iterations but fic_eib starts from a window of its last "
                f"{self.window} BOLD samples: run fic for at least {self.window} iterations or set a smaller "
                "fic_eib window")

    def run(self, start: TuningState, target_fc, previous, log) -> StageResult:
        dtype = start.model.dtype
        window = self._initial_window(start, previous, log).astype(dtype)
        sim = self.stage_sim(start)
        hp = {k: jnp.asarray(getattr(self, k), dtype) for k in ("eta_fic", "eta_eib", "target", "n_iterations")}
        target = jnp.asarray(target_fc, dtype)
        log(f"Running {self.name} algorithm for {self.n_iterations} iterations...")

        def line(done, last):
            return (f"  {done}/{self.n_iterations}: fc_corr={last['fc_corr']:.4f}, fc_rmse={last['fc_rmse']:.4f}, "
                    + activity_line(done, self.n_iterations, last).split(": ", 1)[1]
                    + f", fc_mean={last['fc_mean']:.4f}")

        (model, sim, _), history, seconds = run_chunks(
            lambda carry, first, n: fic_eib_chunk(*carry, first, hp, target, n),
            (start.model, sim, window), self.n_iterations, self.log_every, line, log)
        log(f"{self.name} complete!")
        return StageResult(self.name, TuningState(model, sim), history, self.settings(), seconds)

    def _initial_window(self, start: TuningState, previous: dict, log) -> jax.Array:
        """The last ``window`` BOLD samples of the routine run before (FIC), if it has enough."""
        for dep in self.depends_on:
            bold = previous.get(dep).history.get("bold") if dep in previous else None
            if bold is not None and len(bold) >= self.window:
                log(f"    (using state from dependency: {dep})")
                log(f"  Using passed bold buffer ({len(bold)} samples, using last {self.window})")
                return jnp.asarray(bold[-self.window:])
        raise ValueError(
            f"{self.name} needs {self.window} BOLD samples from a preceding {self.depends_on} run; "
            "run it after FIC with at least that many iterations, or lower `window`")
