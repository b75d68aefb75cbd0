"""Gradient-based EI fitting: J_i, wLRE and wFFI by reverse mode through a 5-minute simulation.

One loss evaluation simulates ``duration_ms`` from the stage's starting state,
computes BOLD and::

    loss = RMSE(FC(BOLD[discard:]), FC_target)
           + activity_weight * mean_i (mean of S_e_i over the last 500 steps - target)^2

averaged over ``noise_samples`` noise realisations, drawn afresh at every
optimizer step (``resample_noise``); see the measured reason at the defaults.

Any optax ``GradientTransformation`` takes the step (default ``adamaxw``,
learning rate 0.033); after each update wLRE and wFFI are projected onto
>= 0 (and J_i too: negative local inhibition has no meaning).

Memory and speed: without delays, reverse mode runs the hand-written adjoint
of :mod:`adjoint`, which stores only the S_e, S_i trajectories and draws each
TR's noise again on the way back; the one cotangent of S_e is written in place
(:func:`observe`), and noise samples are taken one after another
(:func:`value_and_grad`), so two cost the memory of one.  Measured on
dk_average, 5 minutes, float64 (benchmarks/bench_gradient.py): 0.19 GB of
compiled temporaries (0.27 before), about 0.32 GB above the process at rest
(0.40 before; two noise samples 0.37 instead of 0.64).  With delays, plain
autodiff runs with each TR ``jax.checkpoint``-ed, so only one small carry per
TR is kept and each TR is recomputed on the way back.  BOLD comes from the
stored S_e by one product with the kernel (:func:`bold.bold_from_steps`)
rather than a ring buffer per TR.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import optax
from tvb.basic.neotraits.api import Attr

from .._simulation.adjoint import heun_noisy
from .._model.bold import HRFBold, bold_from_steps
from .._model.coupling import effective
from .._simulation.divergence import tuning_check
from .._model.integrate import IntegratorState, draw_noise, integrate
from .._validation import InputError
from .._simulation.metrics import fc, fc_corr, fc_rmse
from .._model.network import NetworkModel, SimState, TunedParams
from .fic import number
from .driver import IterativeRoutine, Phase
from .registry import BoundedFloat, BoundedInt, TuningState, register


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class LossSettings:
    """Static settings of the loss (hashable, so they select a compilation)."""

    n_tr: int = dataclasses.field(metadata=dict(static=True), default=416)
    discard: int = dataclasses.field(metadata=dict(static=True), default=30)
    activity_steps: int = dataclasses.field(metadata=dict(static=True), default=500)
    activity_weight: float = dataclasses.field(metadata=dict(static=True), default=1.0)
    target: float = dataclasses.field(metadata=dict(static=True), default=0.25)
    checkpoint: bool = dataclasses.field(metadata=dict(static=True), default=True)
    adjoint: bool = dataclasses.field(metadata=dict(static=True), default=True)
    noise_samples: int = dataclasses.field(metadata=dict(static=True), default=1)


def simulate_S_e(model: NetworkModel, sim: SimState, n_tr: int, checkpoint: bool = True,
                 adjoint: bool = True) -> jax.Array:
    """S_e at every step of ``n_tr`` TRs from ``sim``, (n_tr * steps_per_tr, N); differentiable.

    ``adjoint``: use the hand-written reverse mode of :mod:`adjoint` (no delays
    only; with delays plain autodiff runs).
    """
    ec = effective(model.coupling)
    n_steps, n = model.bold.steps_per_tr, model.n_regions
    fast = adjoint and ec.horizon == 1 and model.integrator.scheme == "heun"

    def one_tr(carry, _):
        integ, key = carry
        key, sub = jax.random.split(key)
        if fast:  # the same numbers as integrate's, with the noise drawn again on the way back
            S_e, S_i = heun_noisy(model.node, ec.stacked, model.integrator, integ.S_e, integ.S_i, sub, n_steps)
            integ = IntegratorState(S_e=S_e[-1], S_i=S_i[-1], history=None, step=integ.step + n_steps)
        else:
            z = draw_noise(model.integrator, sub, n_steps, n, model.dtype)
            integ, (S_e, _) = integrate(model.node, ec, model.integrator, integ, z, n_steps)
        return (integ, key), S_e

    # The hand-written adjoint keeps only the trajectories (about 2 MB per simulated minute at 84
    # regions in float64), so recomputation would only cost time; autodiff keeps ~20 residuals per
    # step, so it recomputes each TR on the way back.
    body = jax.checkpoint(one_tr) if checkpoint and not fast else one_tr
    _, S_e = jax.lax.scan(body, (sim.integ, sim.key), None, length=n_tr)
    return S_e.reshape(n_tr * n_steps, n)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def observe(cfg: HRFBold, state, S_e: jax.Array, tail_steps: int) -> tuple[jax.Array, jax.Array]:
    """BOLD of a whole S_e series (:func:`bold.bold_from_steps`) and the mean S_e over its last
    ``tail_steps`` steps, (N,).

    Their reverse mode writes the one cotangent of S_e in place (the tail's added into the BOLD
    kernel's), where autodiff of the two adds two series-sized cotangents into a third (50 MB
    each at 5 minutes, 84 regions, float64)."""
    return bold_from_steps(cfg, state, S_e), S_e[-min(tail_steps, S_e.shape[0]):].mean(axis=0)


def _observe_fwd(cfg, state, S_e, tail_steps):
    return observe(cfg, state, S_e, tail_steps), (cfg, state, S_e)


def _observe_bwd(tail_steps, res, ct):
    cfg, state, S_e = res
    ct_bold, ct_tail = ct
    tail_steps = min(tail_steps, S_e.shape[0])
    _, vjp = jax.vjp(lambda c, st, x: bold_from_steps(c, st, x), cfg, state, S_e)
    d_cfg, d_state, d_S_e = vjp(ct_bold)
    # added to the last whole TRs only (a slice updated in place; the whole series would be copied)
    per_tr, n = cfg.steps_per_tr, S_e.shape[-1]
    m = min(-(-tail_steps // per_tr), S_e.shape[0] // per_tr)
    in_tail = jnp.arange(m * per_tr) >= m * per_tr - tail_steps
    add = jnp.where(in_tail[:, None], (ct_tail / tail_steps).astype(S_e.dtype), 0).reshape(m, per_tr, n)
    d_S_e = d_S_e.reshape(-1, per_tr, n).at[-m:].add(add).reshape(S_e.shape)
    return d_cfg, d_state, d_S_e


observe.defvjp(_observe_fwd, _observe_bwd)


def loss_terms(p: TunedParams, model: NetworkModel, sim: SimState, fc_target: jax.Array, ls: LossSettings) -> dict:
    """The loss and its parts: ``loss``, ``fc_rmse``, ``activity``, ``fc_corr`` (scalars).

    With ``ls.noise_samples > 1`` each term is averaged over that many noise
    realisations, simulated side by side (``vmap``); to differentiate, :func:`value_and_grad`
    takes the same realisations one after another in a fraction of the memory.
    """
    if ls.noise_samples > 1:
        keys = jax.random.split(sim.key, ls.noise_samples)
        one = dataclasses.replace(ls, noise_samples=1)
        terms = jax.vmap(lambda k: loss_terms(p, model, sim.with_key(k), fc_target, one))(keys)
        return jax.tree_util.tree_map(jnp.mean, terms)
    m = model.with_tuned(p)
    S_e = simulate_S_e(m, sim, ls.n_tr, ls.checkpoint, ls.adjoint)
    bold, tail = observe(m.bold, sim.bold, S_e, ls.activity_steps)
    fc_sim = fc(bold[ls.discard:].astype(jnp.float64))
    rmse = fc_rmse(fc_sim, fc_target)
    activity = jnp.mean((tail - ls.target) ** 2)
    return dict(loss=rmse + ls.activity_weight * activity, fc_rmse=rmse, activity=activity,
                fc_corr=fc_corr(fc_sim, fc_target))


def loss(p: TunedParams, model, sim, fc_target, ls: LossSettings):
    terms = loss_terms(p, model, sim, fc_target, ls)
    return terms["loss"], terms


def value_and_grad(p: TunedParams, model, sim, fc_target, ls: LossSettings):
    """``((loss, terms), grads)`` of :func:`loss`, what one optimizer step needs.

    With ``ls.noise_samples > 1`` the samples' values and gradients are computed one after
    another (``lax.scan``) and averaged, rather than side by side (``vmap``): only one sample's
    trajectories are alive at a time (half the memory at 2 samples) and on a CPU it is faster too.
    The samples and their keys are those of :func:`loss_terms`; the mean is taken in another order
    of operations, so it equals the side-by-side one to float rounding (bit for bit at 2 samples:
    halving is exact).
    """
    grad = jax.value_and_grad(loss, has_aux=True)
    if ls.noise_samples == 1:
        return grad(p, model, sim, fc_target, ls)
    one = dataclasses.replace(ls, noise_samples=1)

    def add(total, key):
        return jax.tree_util.tree_map(jnp.add, total, grad(p, model, sim.with_key(key), fc_target, one)), None

    keys = jax.random.split(sim.key, ls.noise_samples)
    zero = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype),
                                  jax.eval_shape(grad, p, model, sim.with_key(keys[0]), fc_target, one))
    total, _ = jax.lax.scan(add, zero, keys)
    return jax.tree_util.tree_map(lambda x: x / ls.noise_samples, total)


def project(p: TunedParams) -> TunedParams:
    """Keep every tuned parameter >= 0 (optax's non-negative projection)."""
    return optax.projections.projection_non_negative(p)


def optimizer_chunk(config, carry, ks: jax.Array, params, fc_target):
    """Optimizer steps ``ks`` (0-based) in one scan; records the loss terms at each step's start.

    ``config``: (optax transformation, :class:`LossSettings`, resample_noise: a new noise key per
    step); ``carry``: (free parameters, optimizer state, model, simulation state).
    """
    optimizer, ls, resample_noise = config
    p, opt_state, model, sim = carry
    fc_target = fc_target.astype(jnp.float64)

    def body(carry, k):
        p, opt_state = carry
        s = sim.with_key(jax.random.fold_in(sim.key, k)) if resample_noise else sim
        (_, terms), grads = value_and_grad(p, model, s, fc_target, ls)
        updates, opt_state = optimizer.update(grads, opt_state, p)
        return (project(optax.apply_updates(p, updates)), opt_state), terms

    (p, opt_state), records = jax.lax.scan(body, (p, opt_state), ks)
    return (p, opt_state, model, sim), records


@register
class GradientEIB(IterativeRoutine):
    """Gradient fitting of J_i, wLRE, wFFI with optax through a whole simulation."""

    name = "gradient_eib"
    history_dim = "step"  # its records are per optimizer step (a failed run's partial history too)
    unit = "step"
    fix = "lower the learning rate (or pass a gentler optimizer)"
    summary = "gradient fitting of J_i, wLRE and wFFI with optax (starts from the previous stage)"
    learning_rate = BoundedFloat(0.033, 0.0, 10.0, label="learning rate", doc="optimizer learning rate")
    n_steps = BoundedInt(66, 1, 10**6, label="steps", doc="optimizer steps")
    duration_ms = BoundedFloat(300000.0, 7200.0, 1e8, label="duration (ms)",
                               doc="simulated time per loss evaluation (whole TRs)")
    discard = BoundedInt(30, 0, 10**6, label="discard", doc="BOLD samples dropped before the FC")
    activity_weight = BoundedFloat(1.0, 0.0, 1e6, label="activity weight",
                                   doc="weight of the mean-S_e penalty against the FC RMSE")
    activity_steps = BoundedInt(500, 1, 10**7, label="activity steps",
                                doc="last integration steps whose mean S_e is held at the target")
    target = BoundedFloat(0.25, 0.01, 0.99, label="target", doc="target mean S_e per region")
    log_every = BoundedInt(1, 1, 10**6, label="log every", doc="optimizer steps per compiled chunk and log line")
    # Defaults measured on dk_average (fic -> fic_eib -> 66 adamaxw steps, 6 evaluation seeds):
    # one fixed realisation overfits its noise (evaluated fc_corr 0.777 +- 0.021, rmse 0.107);
    # two fresh realisations per step generalise (0.807 +- 0.011, rmse 0.097) at ~1.5x the cost.
    noise_samples = BoundedInt(2, 1, 64, label="noise samples",
                               doc="noise realisations averaged in each loss evaluation (differentiated one after "
                                   "another: the memory of one)")
    resample_noise = Attr(field_type=bool, default=True,
                          doc="draw new noise for every optimizer step (False: one fixed key, a deterministic "
                              "loss; with noise_samples=1 that is the reference's setting)")
    optimizer = Attr(field_type=optax.GradientTransformation, required=False, default=None,
                     doc="any optax GradientTransformation; None: optax.adamaxw(learning_rate)")

    def settings(self) -> dict:
        out = super().settings()
        out["optimizer"] = "adamaxw" if self.optimizer is None else repr(self.optimizer)
        return out

    def preflight(self, start: TuningState, target_fc) -> None:
        self._check_model(start.model)
        self.loss_settings(start.model)

    def _check_model(self, model: NetworkModel) -> None:
        if not isinstance(model.bold, HRFBold):
            raise InputError(f"{self.name} differentiates the HRF-kernel BOLD; this model uses "
                             f"{type(model.bold).__name__}: build it with bold='hrf'")

    def loss_settings(self, model: NetworkModel, checkpoint: bool = True) -> LossSettings:
        tr = model.bold.period_ms
        n_tr = int(self.duration_ms // tr)
        if n_tr - self.discard < 10:
            raise InputError(
                f"{self.name}: duration_ms={self.duration_ms:g} (CLI --gradient-ms) gives {n_tr} BOLD samples of "
                f"{tr:g} ms, too few after discarding {self.discard} (10 needed): set duration_ms to at least "
                f"{(self.discard + 10) * tr:g} or lower discard")
        return LossSettings(n_tr=n_tr, discard=self.discard, activity_steps=self.activity_steps,
                            activity_weight=self.activity_weight, target=self.target, checkpoint=checkpoint,
                            noise_samples=self.noise_samples)

    def optimizer_in_use(self) -> optax.GradientTransformation:
        return self.optimizer if self.optimizer is not None else optax.adamaxw(self.learning_rate)

    def begin_log(self, start, phases) -> str:
        model = start.model
        return (f"  Preparing optimization model (t1={self.loss_settings(model).n_tr * model.bold.period_ms}ms, "
                f"dt={model.dt}ms, solver=Heun, {self.n_steps} steps)")

    def init(self, start: TuningState, target_fc):
        self._check_model(start.model)
        p = start.model.tuned
        return p, self.optimizer_in_use().init(p), start.model, start.sim

    def phases(self, dtype):
        return (Phase(self.n_steps),)

    def simulated_ms(self, model) -> float:
        """Each step simulates the loss's TRs once per noise sample (forward; the reverse pass comes on top)."""
        return self.n_steps * self.loss_settings(model).n_tr * model.bold.period_ms * self.noise_samples

    def config(self, model) -> tuple:
        return (self.optimizer_in_use(), self.loss_settings(model), self.resample_noise)

    chunk = staticmethod(optimizer_chunk)

    def progress_line(self, done, total, last) -> str:
        return (f"Step {done - 1}: {number(last['loss'], 6)} (fc_rmse={number(last['fc_rmse'])}, "
                f"activity={number(last['activity'], 5)}, fc_corr={number(last['fc_corr'])}), {done}/{total} steps")

    def check(self, carry):
        return tuning_check(vars(carry[0]), lambda c: vars(c[0]), self.fix)

    def end_log(self) -> str:
        return "  Optimization complete."

    def finish(self, carry, start: TuningState) -> TuningState:
        # the tuned parameters on the starting model and state: the optimizer simulated from `start` only
        return TuningState(start.model.with_tuned(carry[0]), start.sim, start.seeds)
