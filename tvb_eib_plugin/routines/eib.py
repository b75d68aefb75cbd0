"""FIC + excitation-inhibition balance tuning (Schirner, Deco & Ritter 2023).

Each iteration simulates one TR, adds its BOLD sample to a sliding window,
applies FIC, and moves both coupling matrices against the FC error of the
window: where simulated FC is too low (d > 0) long-range excitation grows and
feedforward inhibition shrinks, scaled by the region's row RMSE::

    d = FC_target - FC_window;  r_i = s sqrt(mean_j d_ij^2)
    wLRE <- max(0, wLRE + eta_k d r_i M);  wFFI <- max(0, wFFI - eta_k d r_i M)

``M`` restricts updates to existing SC edges (``mask="sc"``) or not
(``"all"``), ``s`` is 1 (the paper's text) or 1/2 (its released code), and
``tune="lre"`` leaves wFFI alone (the paper's E-tuning).  The rate eta_k and
the window come from a schedule (:mod:`schedule`): the reference workflow's
single warm-up stage, or the paper's staged annealing.  Long runs write
checkpoints and resume from them (:mod:`checkpoint`).
"""

from __future__ import annotations

import dataclasses
import functools
import os

import jax
import jax.numpy as jnp
from tvb.basic.neotraits.api import Attr

from ..batch import over_members, stack_trees
from ..coupling import effective
from ..divergence import SimulationDiverged, tuning_check
from ..metrics import fc_corr, fc_rmse, rowwise_rmse
from ..network import NetworkModel, SimState
from ..outputs import check_folder
from ..simulate import tr_step
from ..validation import InputError
from ..window import FCWindow, window_fc, window_init, window_push, window_rebuild
from .checkpoint import check_checkpoint, checkpoint_path, fingerprint, load_checkpoint, save_checkpoint
from .fic import activity_fields, activity_records, check_target, fic_step, number, rule_trait
from .loop import run_chunks, stack_records
from .registry import BoundedFloat, BoundedInt, Routine, StageResult, TuningState, register
from .schedule import EIBStage, as_schedule, warmup_schedule

MASKS = ("all", "sc")
TUNED = ("both", "lre")


def eib_update(wLRE: jax.Array, wFFI: jax.Array, fc_sim: jax.Array, fc_target: jax.Array, eta,
               mask: jax.Array | None = None, rmse_scale=1.0, tune: str = "both") -> tuple:
    """One EIB step on (N, N) wLRE and wFFI; both stay >= 0.

    ``mask`` (N, N) of 0/1 limits the step to its ones; ``tune="lre"`` keeps wFFI.
    """
    step = eta * (fc_target - fc_sim) * (rmse_scale * rowwise_rmse(fc_sim, fc_target))[:, None]
    if mask is not None:
        step = step * mask
    wLRE = jnp.maximum(wLRE + step, 0.0)
    return wLRE, (wFFI if tune == "lre" else jnp.maximum(wFFI - step, 0.0))


def warmup_rate(k: jax.Array, n_iterations, eta_eib) -> jax.Array:
    """eta_k = (k + 1) / n_iterations * eta_eib for 0-based iteration k."""
    return (k + 1) / n_iterations * eta_eib


def stage_rate(k: jax.Array, hp: dict) -> jax.Array:
    """The rate at 0-based iteration ``k`` of a stage: eta, ramped up over the stage if it warms up."""
    return jnp.where(hp["warmup"], warmup_rate(k, hp["iterations"], hp["eta"]), hp["eta"])


@functools.partial(jax.jit, static_argnames=("n", "rule", "tune"))
def fic_eib_chunk(model: NetworkModel, sim: SimState, window: FCWindow, first, hp: dict, fc_target, mask,
                  n: int, rule: str = "gating", tune: str = "both"):
    """``n`` FIC+EIB iterations of one stage from its 0-based iteration ``first``.

    ``hp``: the stage's ``eta``, ``warmup``, ``iterations``, ``window`` and the
    routine's ``eta_fic``, ``target``, ``rmse_scale``.  The FC moments are
    rebuilt at the start, so a chunk's result depends only on its inputs.
    """
    window = window_rebuild(window, hp["window"])

    def body(carry, k):
        model, sim, window = carry
        sim, rec = tr_step(model, effective(model.coupling), sim, rates=rule == "rate")
        window = window_push(window, rec.bold)
        J_i = fic_step(rule, model.node.J_i, rec, hp["eta_fic"], hp["target"])
        fc_win = window_fc(window).astype(model.dtype)
        eta = stage_rate(k, hp)
        wLRE, wFFI = eib_update(model.coupling.wLRE, model.coupling.wFFI, fc_win, fc_target, eta, mask,
                                hp["rmse_scale"], tune)
        model = model.with_tuned(J_i=J_i, wLRE=wLRE, wFFI=wFFI)
        records = dict(activity_records(rec), J_i=J_i, fc_corr=fc_corr(fc_win, fc_target),
                       fc_rmse=fc_rmse(fc_win, fc_target), fc_mean=_mean_offdiag(fc_win), eta_eib=eta,
                       stage=hp["stage"])
        return (model, sim, window), records

    ks = first + jnp.arange(n, dtype=jnp.int32)
    return jax.lax.scan(body, (model, sim, window), ks)


def _mean_offdiag(m: jax.Array) -> jax.Array:
    n = m.shape[0]
    return jnp.sum(m) / (n * (n - 1))


def _choice(options, default, label, doc):
    return Attr(field_type=str, default=default, choices=options, label=label, doc=doc)


@register
class FICEIB(Routine):
    """FIC with excitation-inhibition balance tuning of wLRE and wFFI against a target FC."""

    name = "fic_eib"
    depends_on = ("fic",)
    summary = "FIC with EIB tuning of wLRE and wFFI against the target FC (starts from fic)"
    rule = rule_trait()
    eta_fic = BoundedFloat(0.1, 0.0, 10.0, label="eta FIC", doc="learning rate of the J_i update")
    target = BoundedFloat(0.25, 0.01, 100.0, label="target",
                          doc="FIC target: mean S_e (gating rule) or excitatory rate in Hz (rate rule)")
    eta_eib = BoundedFloat(0.005, 0.0, 1.0, label="eta EIB",
                           doc="final learning rate of the wLRE / wFFI updates (reached after the warm-up); "
                               "ignored when a schedule is given")
    n_iterations = BoundedInt(2000, 1, 10**7, label="iterations",
                              doc="iterations, one TR each; ignored when a schedule is given")
    window = BoundedInt(150, 10, 10**5, label="window",
                        doc="BOLD samples (TRs) in the sliding FC window; ignored when a schedule is given")
    schedule = Attr(field_type=tuple, default=None, required=False, label="schedule",
                    doc="EIB stages (schedule.EIBStage, or dicts with iterations, eta, window, warmup); "
                        "None: one warm-up stage from n_iterations, eta_eib and window")
    mask = _choice(MASKS, "all", "update mask", "'all' pairs, or 'sc': only pairs with an SC edge (weight > 0)")
    tune = _choice(TUNED, "both", "tuned matrices", "'both' (EI-tuning) or 'lre': wLRE only (E-tuning)")
    rmse_scale = BoundedFloat(1.0, 0.0, 10.0, label="row RMSE scale",
                              doc="factor on the row RMSE (1: the paper's text; 0.5: its released code)")
    log_every = BoundedInt(100, 1, 10**7, label="log every",
                           doc="iterations per compiled chunk, and between progress lines")
    record_every = BoundedInt(1, 1, 10**7, label="record every",
                              doc="history keeps the mean of every this many iterations (divides log_every)")
    checkpoint = Attr(field_type=str, default=None, required=False, label="checkpoint file",
                      doc="write the tuning state here at the end of every stage and every checkpoint_every "
                          "iterations, and resume from it if it exists (only a run with the same settings and "
                          "inputs: SC, delays, target FC, seeds, labels, the routines before)")
    checkpoint_every = BoundedInt(10000, 1, 10**8, label="checkpoint every",
                                  doc="iterations between checkpoints within a stage (rounded up to a chunk)")

    def stages(self) -> tuple[EIBStage, ...]:
        """The schedule in effect."""
        if self.schedule is None:
            return warmup_schedule(self.n_iterations, self.eta_eib, self.window)
        return as_schedule(self.schedule)

    def check_plan(self, plan) -> None:
        check_target(self.rule, self.target, self.name)
        if self.log_every % self.record_every:
            raise InputError(f"{self.name}: record_every ({self.record_every}) must divide log_every "
                             f"({self.log_every})")
        first = self.stages()[0].window
        fic = plan.get("fic")
        if fic is not None and fic.n_iterations < first:
            raise InputError(
                f"fic runs {fic.n_iterations} iterations but fic_eib starts from a window of its last "
                f"{first} BOLD samples: run fic for at least {first} iterations or set a smaller "
                "fic_eib window")
        if self.checkpoint:  # written during the run: a folder that cannot take it fails now, not hours in
            check_folder(os.path.dirname(os.path.abspath(self.checkpoint)), f"{self.name} checkpoint")

    def settings(self) -> dict:
        out = super().settings()
        out["schedule"] = [dataclasses.asdict(s) for s in self.stages()]
        return out

    def preflight(self, start: TuningState, target_fc) -> None:
        ckpt = self._checkpoint(start, target_fc)
        if ckpt and os.path.exists(ckpt[0]):  # a corrupt or foreign file is refused before any compute
            check_checkpoint(ckpt[0], self.settings(), ckpt[1])

    def _checkpoint(self, start: TuningState, target_fc) -> tuple[str, dict] | None:
        """The checkpoint file (its real path) and the fingerprint of this run's inputs it is bound to."""
        if not self.checkpoint:
            return None
        seeds = start.seeds if start.batched else self.seed
        return checkpoint_path(self.checkpoint), fingerprint(start.model, target_fc, seeds, start.inputs)

    def run(self, start: TuningState, target_fc, previous, log) -> StageResult:
        self.check_plan({})
        stages = self.stages()
        dtype = start.model.dtype
        capacity = max(s.window for s in stages)
        samples = self._initial_window(start, previous, log, stages[0].window, capacity)
        if start.batched:  # samples (T, B, N): one window per member
            window = stack_trees([window_init(samples[:, b], capacity, stages[0].window)
                                  for b in range(samples.shape[1])])
        else:
            window = window_init(samples, capacity, stages[0].window)
        carry = (start.model, self.stage_sim(start), window)
        target = jnp.asarray(target_fc, dtype)
        mask = (start.model.coupling.weights > 0).astype(dtype) if self.mask == "sc" else None
        total = sum(s.iterations for s in stages)
        log(f"Running {self.name} algorithm for {total} iterations in {len(stages)} stage(s)...")

        position, parts = {"stage": 0, "done": 0}, []
        ckpt = self._checkpoint(start, target_fc)
        if ckpt and os.path.exists(ckpt[0]):
            carry, position, history = load_checkpoint(ckpt[0], carry, self.settings(), ckpt[1])
            parts = [history] if history else []
            log(f"  resuming from {ckpt[0]}: stage {position['stage'] + 1}, "
                f"{position['done']} iterations into it")
        seconds = 0.0
        for s_index in range(position["stage"], len(stages)):
            carry, history, sec = self._run_stage(carry, s_index, stages, target, mask, dtype,
                                                  position["done"] if s_index == position["stage"] else 0,
                                                  parts, log, start.batched, ckpt)
            parts.append(history)
            seconds += sec
        model, sim, _ = carry
        # every stage's end, the last included, was checkpointed by its final chunk
        log(f"{self.name} complete!")
        return StageResult(self.name, TuningState(model, sim, start.seeds), stack_records(parts), self.settings(),
                           seconds)

    def _run_stage(self, carry, s_index, stages, target, mask, dtype, first, parts, log, batched, ckpt):
        stage = stages[s_index]
        offset = sum(s.iterations for s in stages[:s_index])
        hp = {"eta": jnp.asarray(stage.eta, dtype), "warmup": jnp.asarray(stage.warmup),
              "iterations": jnp.asarray(stage.iterations, dtype), "window": jnp.asarray(stage.window, jnp.int32),
              "stage": jnp.asarray(s_index, jnp.int32),
              **{k: jnp.asarray(getattr(self, k), dtype) for k in ("eta_fic", "target", "rmse_scale")}}
        if len(stages) > 1:
            log(f"  stage {s_index + 1}/{len(stages)}: {stage.iterations} iterations, eta={stage.eta:g}, "
                f"window={stage.window}")
        every_ckpt = -(-self.checkpoint_every // self.log_every) * self.log_every

        def line(done, last):
            return (f"  {offset + done}/{offset + stage.iterations}: fc_corr={number(last['fc_corr'])}, "
                    f"fc_rmse={number(last['fc_rmse'])}, {activity_fields(last)}, fc_mean={number(last['fc_mean'])}")

        chunk = over_members(fic_eib_chunk, batched, (0, 0, 0, None, None, 0, 0), ("n", "rule", "tune"))

        def after(c, done, so_far):
            if done % every_ckpt == 0 or done == stage.iterations:
                at_end = done == stage.iterations
                save_checkpoint(ckpt[0], c, {"stage": s_index + at_end, "done": 0 if at_end else done},
                                stack_records(parts + [_shift(so_far(), offset, "iteration")]), self.settings(),
                                ckpt[1])

        try:
            carry, history, seconds = run_chunks(
                lambda c, k0, n: chunk(*c, k0, hp, target, mask, n=n, rule=self.rule, tune=self.tune),
                carry, stage.iterations, self.log_every, line, log, first=first, thin=self.record_every,
                after_chunk=after if ckpt else None, check=_divergence_check(carry[0]),
                fix="lower eta_eib (or the schedule's eta) or check the starting parameters")
        except SimulationDiverged as err:  # the routine's history so far: earlier stages, then this one's
            err.partial = stack_records(parts + [_shift(err.partial or {}, offset, "iteration")])
            raise
        return carry, _shift(history, offset, "iteration"), seconds

    def _initial_window(self, start: TuningState, previous: dict, log, first: int, capacity: int) -> jax.Array:
        """The last BOLD samples (up to ``capacity``, at least ``first``) of the routine run before (FIC)."""
        for dep in self.depends_on:
            bold = previous.get(dep).history.get("bold") if dep in previous else None
            if bold is not None and len(bold) >= first:
                log(f"    (using state from dependency: {dep})")
                log(f"  Using passed bold buffer ({len(bold)} samples, using last {first})")
                return jnp.asarray(bold[-capacity:])
        raise ValueError(
            f"{self.name} needs {first} BOLD samples from a preceding {self.depends_on} run; "
            "run it after FIC with at least that many iterations, or lower `window`")


def _divergence_check(model: NetworkModel):
    """Pinned regions, or wLRE / wFFI run past 100x their size at the stage's start."""
    weights = lambda m: {"wLRE": m.coupling.wLRE, "wFFI": m.coupling.wFFI}  # noqa: E731
    return tuning_check(weights(model), lambda carry: weights(carry[0]),
                        "lower eta_eib (or the schedule's eta), or check the target FC (one the model cannot "
                        "reach pushes the weights without limit)")


def _shift(history: dict, offset: int, key: str) -> dict:
    """Number a stage's records globally: a thinned history's ``iteration`` gets the stage's offset."""
    history = dict(history)
    if key in history:
        history[key] = history[key] + offset
    return history

