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

``restart="per_stage"`` runs each stage as the authors' released program runs
one invocation: the neural state, the delay history and the Balloon state
start again at rest (S_e = S_i = 0.001), the FC window empty, FIC throughout,
and no EIB step until the window plus ``lead_in`` TRs have passed (the rate
is 0 there); the stage's ``iterations`` include those TRs, as the program's
stage length does.  The weights, J_i and the noise stream carry on.
"""

from __future__ import annotations

import dataclasses
import os

import jax
import jax.numpy as jnp
import optax
import numpy as np
from tvb.basic.neotraits.api import Attr

from .._model.coupling import effective
from .._simulation.divergence import tuning_check
from .._simulation.metrics import RMSE_DIAGONALS, fc_corr, fc_rmse, rowwise_rmse, with_diagonal
from .._model.network import NetworkModel, SimState, initial_state
from .._outputs import check_folder
from .._simulation.simulate import tr_step
from .._validation import InputError
from .._simulation.window import FCWindow, window_fc, window_init, window_push, window_rebuild, window_resized
from .driver import IterativeRoutine, Phase
from .fic import (activity_fields, activity_records, check_target, fic_step, number, rule_trait,
                  target_trait)
from .registry import BoundedFloat, BoundedInt, TuningState, register
from .schedule import EIBStage, as_schedule, warmup_rate, warmup_schedule

MASKS = ("all", "sc")
TUNED = ("both", "lre")
#: "continuous": one run through all stages; "per_stage": each stage restarts the simulation (the released code)
RESTARTS = ("continuous", "per_stage")


def eib_update(wLRE: jax.Array, wFFI: jax.Array, fc_sim: jax.Array, fc_target: jax.Array, eta,
               mask: jax.Array | None = None, rmse_scale=1.0, tune: str = "both",
               rmse_diagonal: str = "given") -> tuple:
    """One EIB step on (N, N) wLRE and wFFI; both stay >= 0.

    ``mask`` (N, N) of 0/1 limits the step to its ones; ``tune="lre"`` keeps wFFI.
    ``rmse_diagonal``: the simulated FC's diagonal in the row RMSE only (:func:`metrics.with_diagonal`):
    ``"given"`` (its own, 0), or ``"one_but_last"`` with ``rmse_scale=0.5`` as the released code has it.
    """
    step = eib_step(fc_sim, fc_target, eta, mask, rmse_scale, rmse_diagonal)
    wLRE = jnp.maximum(wLRE + step, 0.0)
    return wLRE, (wFFI if tune == "lre" else jnp.maximum(wFFI - step, 0.0))


def eib_step(fc_sim: jax.Array, fc_target: jax.Array, eta, mask: jax.Array | None = None, rmse_scale=1.0,
             rmse_diagonal: str = "given") -> jax.Array:
    """The EIB step on wLRE (wFFI takes its negative): ``eta d_ij r_i`` on the mask, d = target - simulated FC,
    r_i the row RMSE (scaled); with ``eta=1`` the direction an optax ``optimizer`` transforms."""
    row_rmse = rowwise_rmse(with_diagonal(fc_sim, rmse_diagonal), fc_target)
    step = eta * (fc_target - fc_sim) * (rmse_scale * row_rmse)[:, None]
    return step if mask is None else step * mask


def eib_optax_update(optimizer, opt_state, wLRE: jax.Array, wFFI: jax.Array, direction: jax.Array, eta,
                     tune: str = "both") -> tuple:
    """One EIB step through an optax ``optimizer``: it transforms the 'gradient' {wLRE: -direction, wFFI:
    +direction} (so ``optax.sgd(1.0)`` gives the plain step), the stage's ``eta`` scales its update, and
    optax's non-negative projection keeps both matrices >= 0.  Returns (wLRE, wFFI, opt_state)."""
    params = {"wLRE": wLRE, "wFFI": wFFI}
    grads = {"wLRE": -direction, "wFFI": direction if tune == "both" else jnp.zeros_like(direction)}
    updates, opt_state = optimizer.update(grads, opt_state, params)
    moved = optax.projections.projection_non_negative(
        optax.apply_updates(params, jax.tree_util.tree_map(lambda u: eta * u, updates)))
    return moved["wLRE"], (wFFI if tune == "lre" else moved["wFFI"]), opt_state


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class EIBPhase:
    """The traced hyperparameters of one EIB stage (arrays, so a new stage does not compile again).

    ``stage``: its 0-based index; ``eta``, ``warmup``, ``iterations``, ``window``: the
    :class:`EIBStage`'s; ``eta_fic``, ``target``: FIC's; ``rmse_scale``: the row-RMSE factor;
    ``hold``: the stage's first iterations without EIB (window + lead-in after a restart, else 0).
    """

    stage: jax.Array
    eta: jax.Array
    warmup: jax.Array
    iterations: jax.Array
    window: jax.Array
    eta_fic: jax.Array
    target: jax.Array
    rmse_scale: jax.Array
    hold: jax.Array


def stage_rate(k: jax.Array, hp: EIBPhase) -> jax.Array:
    """The rate at 0-based iteration ``k`` of a stage: eta, ramped up over the stage if it warms up; 0 while held."""
    rate = jnp.where(hp.warmup, warmup_rate(k, hp.iterations, hp.eta), hp.eta)
    return jnp.where(k < hp.hold, jnp.zeros_like(rate), rate)


def restarted(model: NetworkModel, sim: SimState, window: FCWindow, length: int) -> tuple:
    """(sim, window) as a new run of the released program starts: S_e = S_i = 0.001 with that constant
    delay history, the Balloon state at rest, the window empty (FC over its last ``length`` samples);
    the noise key carries on, so a restarted stage draws new noise."""
    empty = window_init(jnp.zeros((0, window.ring.shape[-1]), jnp.float64), window.capacity, length)
    return initial_state(model, sim.key), empty


def fic_eib_chunk(config: tuple[str, str, str], carry, ks: jax.Array, hp: EIBPhase, fc_target):
    """FIC+EIB iterations ``ks`` (0-based within the stage) of one stage, in one scan.

    ``config``: (FIC rule, tuned matrices, update mask, row-RMSE diagonal, optax optimizer or None);
    ``carry``: (model, sim, window), and the optimizer's state when there is one.  The FC
    moments are rebuilt at the start, so a chunk's result depends only on its inputs.
    """
    rule, tune, mask_kind, diagonal, optimizer = config
    model, sim, window, *opt = carry  # (model, sim, window[, optax state])
    window = window_rebuild(window, hp.window)
    fc_target = fc_target.astype(model.dtype)
    mask = (model.coupling.weights > 0).astype(model.dtype) if mask_kind == "sc" else None

    def body(carry, k):
        model, sim, window, *opt = carry
        sim, rec = tr_step(model, effective(model.coupling), sim, rates=rule == "rate")
        window = window_push(window, rec.bold)
        J_i = fic_step(rule, model.node.J_i, rec, hp.eta_fic, hp.target)
        fc_win = window_fc(window).astype(model.dtype)
        eta = stage_rate(k, hp)
        if optimizer is None:
            wLRE, wFFI = eib_update(model.coupling.wLRE, model.coupling.wFFI, fc_win, fc_target, eta, mask,
                                    hp.rmse_scale, tune, diagonal)
        else:
            direction = eib_step(fc_win, fc_target, 1.0, mask, hp.rmse_scale, diagonal)
            wLRE, wFFI, opt[0] = eib_optax_update(optimizer, opt[0], model.coupling.wLRE, model.coupling.wFFI,
                                                  direction, eta, tune)
        model = model.with_tuned(J_i=J_i, wLRE=wLRE, wFFI=wFFI)
        records = dict(activity_records(rec), J_i=J_i, fc_corr=_window_corr(fc_win, fc_target),
                       fc_rmse=fc_rmse(fc_win, fc_target), fc_mean=_mean_offdiag(fc_win), eta_eib=eta,
                       stage=hp.stage)
        return (model, sim, window, *opt), records

    return jax.lax.scan(body, (model, sim, window, *opt), ks)


def _window_corr(fc_win: jax.Array, fc_target: jax.Array) -> jax.Array:
    """fc_corr of the window FC, 0 where that FC is finite but constant: a window of one or two samples just
    after a restart (all zeros, or every pair at r = 1) correlates with nothing, as :func:`metrics.fc` gives a
    constant signal r = 0, not NaN.  A NaN FC (a diverged simulation) stays NaN."""
    r = fc_corr(fc_win, fc_target)
    return jnp.where(jnp.isnan(r) & jnp.all(jnp.isfinite(fc_win)), jnp.zeros_like(r), r)


def _mean_offdiag(m: jax.Array) -> jax.Array:
    n = m.shape[0]
    return jnp.sum(m) / (n * (n - 1))


def _choice(options, default, label, doc):
    return Attr(field_type=str, default=default, choices=options, label=label, doc=doc)


@register
class FICEIB(IterativeRoutine):
    """FIC with excitation-inhibition balance tuning of wLRE and wFFI against a target FC."""

    name = "fic_eib"
    depends_on = ("fic",)
    summary = "FIC with EIB tuning of wLRE and wFFI against the target FC (starts from fic)"
    fix = "lower eta_eib (or the schedule's eta) or check the starting parameters"
    rule = rule_trait()
    eta_fic = BoundedFloat(0.1, 0.0, 10.0, label="eta FIC", doc="learning rate of the J_i update")
    target = target_trait()
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
    rmse_diagonal = _choice(RMSE_DIAGONALS, "given", "row RMSE diagonal",
                            "the simulated FC's diagonal in the row RMSE: 'given' (0), 'one', or 'one_but_last' "
                            "(its released code: 1 but for the last region)")
    optimizer = Attr(field_type=optax.GradientTransformation, default=None, required=False, label="EIB optimizer",
                     doc="an optax transformation of the EIB direction, e.g. optax.sgd(1.0, momentum=0.9): it sees "
                         "the 'gradient' {wLRE: -d r, wFFI: +d r} (d = target - window FC, r the row RMSE, masked), "
                         "the stage's eta scales its update, optax's non-negative projection follows; None: the "
                         "plain step eta d r (optax.sgd(1.0) gives it up to rounding)")
    restart = _choice(RESTARTS, "continuous", "restart",
                      "'continuous': one simulation through all stages; 'per_stage': each stage starts the "
                      "simulation again at rest with an empty window, EIB held for window + lead_in TRs (the "
                      "authors' released code, one run per stage)")
    lead_in = BoundedInt(50, 0, 10**6, label="lead-in",
                         doc="with restart='per_stage': TRs after the first full window before the first EIB step "
                             "(the released code: 50), counted inside the stage's iterations")
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

    def window_capacity(self) -> int:
        return max(s.window for s in self.stages())

    def check_plan(self, plan) -> None:
        check_target(self.rule, self.target, self.name)
        if self.log_every % self.record_every:
            raise InputError(f"{self.name}: record_every ({self.record_every}) must divide log_every "
                             f"({self.log_every})")
        first = self.stages()[0].window
        fic = plan.get("fic")
        if self.restart == "per_stage":
            self._check_lead_in()
        elif fic is not None and fic.n_iterations < first:
            raise InputError(
                f"fic runs {fic.n_iterations} iterations but fic_eib starts from a window of its last "
                f"{first} BOLD samples: run fic for at least {first} iterations or set a smaller "
                "fic_eib window")
        if self.checkpoint:  # written during the run: a folder that cannot take it fails now, not hours in
            check_folder(os.path.dirname(os.path.abspath(self.checkpoint)), f"{self.name} checkpoint")

    def _check_lead_in(self) -> None:
        """Every restarted stage must reach an EIB step: its iterations past its window + lead-in."""
        for index, st in enumerate(self.stages()):
            if st.iterations <= st.window + self.lead_in:
                raise InputError(
                    f"{self.name}: stage {index + 1} restarts and holds EIB for its window ({st.window}) + lead_in "
                    f"({self.lead_in}) TRs, but runs {st.iterations}: it would never tune. Lengthen it to more "
                    f"than {st.window + self.lead_in} iterations, shorten its window, or use restart='continuous'")

    def settings(self) -> dict:
        out = super().settings()
        out["schedule"] = [dataclasses.asdict(s) for s in self.stages()]
        out["optimizer"] = "none" if self.optimizer is None else repr(self.optimizer)
        return out

    def finish(self, carry, start: TuningState) -> TuningState:
        model, sim, window, *_ = carry
        return TuningState(model, sim, start.seeds, window=window)

    def begin_log(self, start, phases) -> str:
        if self.restart == "per_stage":
            return (f"Running {self.name} algorithm for {sum(p.iterations for p in phases)} iterations in "
                    f"{len(phases)} stage(s), each from rest with an empty window, EIB after window + "
                    f"{self.lead_in} TRs")
        held = 0 if start.window is None else int(np.min(start.window.count))  # BOLD samples pushed so far
        return (f"Running {self.name} algorithm for {sum(p.iterations for p in phases)} iterations in "
                f"{len(phases)} stage(s)...\n  Using passed bold buffer ({held} samples, using last "
                f"{self.stages()[0].window})")

    def check_start(self, start: TuningState) -> None:
        """Without restarts, the first stage's window must be filled by the BOLD samples the routine before
        left (FIC's): every member's, for a batch."""
        if self.restart == "per_stage":
            return
        first = self.stages()[0].window
        held = 0 if start.window is None else int(np.min(np.minimum(start.window.count, start.window.capacity)))
        if held < first:
            raise InputError(
                f"{self.name} starts from an FC window of {first} BOLD samples but its starting state holds "
                f"{held}: run it after FIC with at least that many iterations (FIC's state carries its last "
                f"BOLD samples), or lower `window`")

    def init(self, start: TuningState, target_fc):
        """(model, sim, window): the window holds the BOLD samples the routine before left (FIC's)."""
        first, capacity = self.stages()[0].window, self.window_capacity()
        if self.restart == "per_stage":  # phase_start empties it: only its shape matters here
            return self._with_optimizer(
                (start.model, start.sim, window_init(jnp.zeros((0, start.model.n_regions)), capacity, first)))
        return self._with_optimizer((start.model, start.sim, window_resized(start.window, capacity, first)))

    def _with_optimizer(self, carry: tuple) -> tuple:
        """The carry, with the optax optimizer's state after it if there is an optimizer."""
        if self.optimizer is None:
            return carry
        c = carry[0].coupling
        return carry + (self.optimizer.init({"wLRE": c.wLRE, "wFFI": c.wFFI}),)

    def phases(self, dtype):
        stages = self.stages()
        out = []
        for index, stage in enumerate(stages):
            hp = EIBPhase(stage=jnp.asarray(index, jnp.int32), eta=jnp.asarray(stage.eta, dtype),
                          warmup=jnp.asarray(stage.warmup), iterations=jnp.asarray(stage.iterations, dtype),
                          window=jnp.asarray(stage.window, jnp.int32), eta_fic=jnp.asarray(self.eta_fic, dtype),
                          target=jnp.asarray(self.target, dtype), rmse_scale=jnp.asarray(self.rmse_scale, dtype),
                          hold=jnp.asarray(self._hold(stage), jnp.int32))
            title = (f"  stage {index + 1}/{len(stages)}: {stage.iterations} iterations, eta={stage.eta:g}, "
                     f"window={stage.window}") if len(stages) > 1 else None
            out.append(Phase(stage.iterations, hp, title))
        return out

    def _hold(self, stage: EIBStage) -> int:
        return stage.window + self.lead_in if self.restart == "per_stage" else 0

    def phase_start(self, carry, index: int):
        if self.restart == "continuous":
            return carry
        model, sim, window, *opt = carry
        sim, window = restarted(model, sim, window, self.stages()[index].window)
        return (model, sim, window, *opt)

    def in_loop(self, carry, target_fc) -> dict:
        """The fit of the last in-loop window (the authors' program's reported r): fc_corr over the upper
        triangle, fc_rmse over all entries as :func:`metrics.fc_rmse` (the program's: upper triangle)."""
        model, _, window, *_ = carry
        fc_win, target = window_fc(window).astype(model.dtype), jnp.asarray(target_fc).astype(model.dtype)
        return {"fc_corr": fc_corr(fc_win, target), "fc_rmse": fc_rmse(fc_win, target)}

    def config(self, model) -> tuple:
        return (self.rule, self.tune, self.mask, self.rmse_diagonal, self.optimizer)

    chunk = staticmethod(fic_eib_chunk)

    def progress_line(self, done, total, last) -> str:
        return (f"  {done}/{total}: fc_corr={number(last['fc_corr'])}, fc_rmse={number(last['fc_rmse'])}, "
                f"{activity_fields(last)}, fc_mean={number(last['fc_mean'])}")

    def check(self, carry):
        return _divergence_check(carry[0])


def _divergence_check(model: NetworkModel):
    """Pinned regions, or wLRE / wFFI run past 100x their size at the stage's start."""
    weights = lambda m: {"wLRE": m.coupling.wLRE, "wFFI": m.coupling.wFFI}  # noqa: E731
    return tuning_check(weights(model), lambda carry: weights(carry[0]),
                        "lower eta_eib (or the schedule's eta), or check the target FC (one the model cannot "
                        "reach pushes the weights without limit)")
