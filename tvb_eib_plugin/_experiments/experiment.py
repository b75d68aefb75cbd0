"""Named experiments and the pipeline runner that prints the reference log.

``run_experiment("EI_Tuning_FIC_EIB_Optimization")`` reproduces the
reference workflow on the shipped dk_average data: a 5-minute transient,
the routines in dependency order (each starting from the previous state),
and a 5-minute evaluation of every stage.  Every setting can be overridden,
and the same runner takes a user's connectome, or a network built from TVB
objects, with their FC.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import jax.numpy as jnp
import numpy as np

from .._io.data import Connectome, load_connectome
from .._io.results import build_results
from .._model.network import NetworkModel, network_from_connectome
from .._simulation.divergence import SimulationDiverged
from .._validation import InputError, check_fc, check_labels
from ..routines.progress import log_info
from .cost import Stopwatch, run_cost
from .fast_fit import schirner2023_fast_settings
from .plan import build_pipeline, dependency_order, routine_record
from .report import failed_attrs, fc_source, provenance, summarise
from .schirner2023 import schirner2023_settings, schirner2023_text_settings
from .stages import run_stages


@dataclasses.dataclass(frozen=True)
class ExperimentSettings:
    """Every setting of a run, with the reference workflow's values as defaults.

    Attributes:
        name: experiment name (recorded in the results).
        dataset: connectome when none is passed (a data set name, BIDS folder or TVB zip).
        normalise: SC weight normalisation, "max" or "none".
        delays: use conduction delays (tract length / speed); the reference does not.
        speed: conduction speed in mm/ms.
        dt: integration step (ms); sigma_e, sigma_i: noise std per sqrt(ms) on S_e, S_i; tr_ms: BOLD TR (ms).
        scheme: "heun" (TVB's) or "euler" (Euler-Maruyama).
        bold: "hrf" (TVB's Volterra kernel) or "balloon" (Balloon-Windkessel ODE).
        coupling: the global coupling G, the starting value of every wLRE and wFFI entry; "auto": chosen
            for the SC and target FC after the transient, before the routines, by a sweep with FIC at each
            value (:func:`coupling_choice.choose_coupling`, options in ``coupling_sweep``; the
            experiment's own FIC and FIC+EIB routines run in it), for each member of a cohort alike; the results
            record the choice (``coupling_chosen``), the sweep's table and its cost (counted as tuning).
            ``Schirner2023Fast`` chooses by default.
        coupling_sweep: options of that sweep (values, criterion, score_trs, discard, eib_trs, eib_rate,
            rmse_per_coupling), e.g. {"values": (0.1, 0.2, 0.4, 0.8)}; merged key by key into the preset's.
            With ``eib_trs`` > 0 each value is scored after that many TRs of the experiment's own FIC+EIB.
        feedforward: wFFI starts at feedforward * coupling (0: the original model without
            feedforward inhibition, from the transient on).
        delay_convention: delays in ms to steps, "tvb" or "schirner2023_c" (:func:`network.delay_steps`).
        bold_order: the Balloon-Windkessel Euler step, "simultaneous" or "sequential" (the authors' code).
        transient_ms: simulated before tuning; its end state starts everything after.
        eval_ms: length of each stage's evaluation simulation; eval_discard: BOLD samples dropped.
        routines: the routines to run: routine objects (``FIC(n_iterations=150)``,
            ``FICEIB(schedule=annealing_schedule(7, 4000))``, your own subclass) or registered
            names (``"fic"``: its defaults); dependencies are added and ordered (:mod:`plan`).
        routine_settings: parameter changes on top, by routine name, e.g. {"fic": {"n_iterations": 50}}
            (what ``--set fic.n_iterations=50`` builds on the command line).
        seed: noise seed for the transient, the routines and the evaluations.
        precision: "float32" (default: measured on dk_average, seeds 0-2, the same fc_corr as
            float64 to 4 decimals in 0.74x the time) or "float64".
        variants: named alternatives of the experiment, each a function of the settings that
            returns the variant's (``lambda s: s.with_routine("fic_eib", tune="lre")``) or a dict
            of settings to change.
        variant: the variant this run uses ("" for the experiment as it is).
        published: stage -> (fc_corr, fc_rmse) published for the experiment on dk_average,
            printed beside ours.
    """

    name: str = "EI_Tuning_FIC_EIB_Optimization"
    dataset: str = "dk_average"
    normalise: str = "max"
    delays: bool = False
    speed: float = 3.0
    dt: float = 4.0
    sigma_e: float = 0.01
    sigma_i: float = 0.0
    scheme: str = "heun"
    bold: str = "hrf"
    coupling: float | str = 1.0
    coupling_sweep: dict = dataclasses.field(default_factory=dict)
    feedforward: float = 1.0
    delay_convention: str = "tvb"
    bold_order: str = "simultaneous"
    tr_ms: float = 720.0
    transient_ms: float = 300000.0
    eval_ms: float = 300000.0
    eval_discard: int = 20
    routines: tuple = ("fic", "fic_eib")
    routine_settings: dict = dataclasses.field(default_factory=dict)
    seed: int = 0
    precision: str = "float32"
    variants: dict = dataclasses.field(default_factory=dict)
    variant: str = ""
    published: dict = dataclasses.field(default_factory=dict)

    def replace(self, **changes) -> "ExperimentSettings":
        """A copy with ``changes``; ``routine_settings`` are merged routine by routine."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise InputError(f"unknown experiment setting(s) {sorted(unknown)}; "
                             f"known: {[f.name for f in dataclasses.fields(self)]}")
        if "routines" in changes:
            changes["routines"] = tuple(changes["routines"])
        if "routine_settings" in changes:
            merged = {k: dict(v) for k, v in self.routine_settings.items()}
            for name, values in changes["routine_settings"].items():
                merged.setdefault(name, {}).update(values)
            changes["routine_settings"] = merged
        if "coupling_sweep" in changes:  # merged too: changing the values keeps a preset's other sweep options
            changes["coupling_sweep"] = dict(self.coupling_sweep, **changes["coupling_sweep"])
        return dataclasses.replace(self, **changes)

    def with_variant(self, variant: str | None) -> "ExperimentSettings":
        """The settings of a named variant (None or "": unchanged)."""
        if not variant:
            return self
        if variant not in self.variants:
            raise InputError(f"experiment {self.name!r} has no variant {variant!r}; known: {sorted(self.variants)}")
        change = self.variants[variant]
        out = change(self) if callable(change) else self.replace(**change)
        # a variant that swaps routines drops the settings of those it no longer runs
        kept = set(self.routine_names(out.routines))
        return dataclasses.replace(out, variant=variant,
                                   routine_settings={k: v for k, v in out.routine_settings.items() if k in kept})

    def with_routine(self, name: str, **changes) -> "ExperimentSettings":
        """A copy whose routine ``name`` gets parameter ``changes`` (merged into ``routine_settings``)."""
        return self.replace(routine_settings={name: changes})

    @staticmethod
    def routine_names(routines) -> list[str]:
        """The names of ``routines`` (objects or names) and their dependencies, in run order."""
        return dependency_order(list(routines))

    def pipeline(self) -> list:
        """The configured routines this experiment runs, in dependency order; the plan is checked."""
        return build_pipeline(self.routines, self.routine_settings, self.seed)

    def record(self) -> dict:
        """The settings as plain data for provenance: routines by name, each routine's full settings."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "variants"}
        out["routines"] = self.routine_names(self.routines)
        out["routine_settings"] = routine_record(self.pipeline())
        out["variants"] = sorted(self.variants)
        return out

    @property
    def dtype(self):
        if self.precision not in ("float64", "float32"):
            raise InputError(f"precision must be 'float64' or 'float32', got {self.precision!r}")
        return jnp.dtype(self.precision)


#: Published reference figures on dk_average (Schirner et al. 2023 reproduction), for comparison
PUBLISHED = {"fic": (0.136, 0.276), "fic_eib": (0.689, 0.172), "gradient_eib": (0.787, 0.109)}

#: Named experiments; add your own with ``EXPERIMENTS[name] = ExperimentSettings(name=name, ...)``.
EXPERIMENTS: dict[str, ExperimentSettings] = {
    "EI_Tuning_FIC_EIB_Optimization": ExperimentSettings(routines=("fic", "fic_eib", "gradient_eib"),
                                                         published=PUBLISHED),
    "Schirner2023": ExperimentSettings(**schirner2023_settings()),
    "Schirner2023Text": ExperimentSettings(**schirner2023_text_settings()),
    "Schirner2023Fast": ExperimentSettings(**schirner2023_fast_settings()),
}


def get_experiment(name: str) -> ExperimentSettings:
    if name not in EXPERIMENTS:
        raise InputError(f"no experiment {name!r}; known: {sorted(EXPERIMENTS)}")
    return EXPERIMENTS[name]


def prepare_inputs(settings: ExperimentSettings, connectome, network, fc_target, labels):
    """Resolve the network, the target FC and the region labels; all checks before compiling."""
    if network is not None:
        if fc_target is None and not (isinstance(connectome, Connectome) and connectome.fc_target is not None):
            raise InputError("pass fc_target= (an (N, N) FC matrix or file) with a network")
        if labels is None:
            labels = connectome.labels if isinstance(connectome, Connectome) else [
                f"region_{i}" for i in range(network.n_regions)]
        labels = check_labels(labels, network.n_regions)
        fc = fc_target if fc_target is not None else connectome.fc_target
        if isinstance(fc, str):
            from .._io.data import load_matrix

            fc = load_matrix(fc)
        fc = check_fc(fc, "fc_target", network.n_regions)
        source = "user network" if not isinstance(connectome, Connectome) else connectome.name
        return network, fc, labels, source, np.asarray(network.coupling.weights)
    con = load_connectome(connectome if connectome is not None else settings.dataset, fc=fc_target,
                          labels=labels, speed=settings.speed)
    if con.fc_target is None:
        raise InputError(f"{con.name} has no target FC: pass fc_target= (array or file)")
    net = experiment_network(settings, con)
    return net, con.fc_target, list(con.labels), con.name, np.asarray(net.coupling.weights)


def experiment_network(settings: ExperimentSettings, con: Connectome) -> NetworkModel:
    """The network an experiment simulates on a connectome (its normalisation, delays, integrator, BOLD...)."""
    if settings.delays and con.tract_lengths is None:
        raise InputError(f"{con.name} has no tract lengths, but experiment {settings.name!r} runs with conduction "
                         "delays (delays=True): give the connectome its tract lengths (a BIDS "
                         "*_meas-tractLength_relmat.dense.tsv, a TVB zip, Connectome(tract_lengths=...)) or run "
                         "without delays: delays=False (command line: drop --delays, or --no-delays)")
    if isinstance(settings.coupling, str) and settings.coupling != "auto":
        raise InputError(f"coupling must be a number or 'auto' (chosen for the data), got {settings.coupling!r}")
    G = 1.0 if settings.coupling == "auto" else settings.coupling  # "auto": the transient runs at G = 1
    try:
        return network_from_connectome(con, normalise=settings.normalise, delays=settings.delays, dt=settings.dt,
                                       sigma_e=settings.sigma_e, sigma_i=settings.sigma_i, scheme=settings.scheme,
                                       bold=settings.bold, tr_ms=settings.tr_ms, wLRE=G,
                                       wFFI=settings.feedforward * G, dtype=settings.dtype,
                                       delay_convention=settings.delay_convention, bold_order=settings.bold_order)
    except ValueError as err:
        raise InputError(f"bad model settings: {err}") from None


def run_experiment(
    experiment: str | ExperimentSettings = "EI_Tuning_FIC_EIB_Optimization",
    *,
    connectome: str | Connectome | None = None,
    network: NetworkModel | None = None,
    fc_target=None,
    labels: Sequence[str] | None = None,
    log: Callable[[str], None] | None = log_info,
    variant: str | None = None,
    **overrides,
):
    """Run a named (or given) experiment and return its results DataTree.

    Args:
        experiment: a name from :data:`EXPERIMENTS` or an :class:`ExperimentSettings`.
        connectome: a data set name, BIDS folder, TVB zip or :class:`Connectome`
            (default: the experiment's dataset).
        network: a ready :class:`NetworkModel` (e.g. from :func:`network_from_tvb`);
            then ``fc_target`` (and ideally ``labels``) are needed.
        fc_target: target FC (array or file) replacing the connectome's.
        log: where the progress lines go: by default the ``tvb_eib_plugin`` logger at INFO
            (:mod:`progress`: a live bar on a terminal); any callable gets the plain lines
            (``lines.append`` collects them); ``None``: silent.
        variant: a named variant of the experiment (see ``ExperimentSettings.variants``).
        overrides: any :class:`ExperimentSettings` field; ``routine_settings`` merge per routine.
    """
    log = log or (lambda _: None)
    settings = experiment if isinstance(experiment, ExperimentSettings) else get_experiment(experiment)
    from_network = {"dataset", "normalise", "delays", "speed", "dt", "sigma_e", "sigma_i", "scheme", "bold",
                    "coupling", "feedforward", "delay_convention", "bold_order", "tr_ms", "precision"}
    if network is not None and from_network & set(overrides):
        raise InputError(f"{sorted(from_network & set(overrides))} come from the network you pass; "
                         "build the network with them instead")
    settings = settings.with_variant(variant).replace(**overrides)
    net, fc, labels, source, weights = prepare_inputs(settings, connectome, network, fc_target, labels)
    routines = configure_routines(settings)
    order = [r.name for r in routines]
    watch = Stopwatch()
    given_fc = fc_source(fc_target)
    try:
        stages = run_stages(settings, net, fc, routines, log, labels=labels)
    except SimulationDiverged as err:  # the stages finished before it, and the failed one's partial history
        attrs = provenance(settings, source, order, watch.seconds()[0], given_fc)
        err.results = build_results(err.stages, labels, fc, weights, failed_attrs(attrs, err))
        raise
    # the published numbers belong to the data set's own FC: never print them beside a fit to another one
    choice = (stages[0].settings or {}).get("coupling_choice", {})
    cost = run_cost(routines, net, settings.transient_ms, settings.eval_ms, watch, choice)
    summarise(stages, settings, source if given_fc is None else f"{source} with {given_fc}", order, log, cost,
              published_stages(settings) if source == "dk_average" else set())
    attrs = provenance(settings, source, order, cost["wall_time_s"], given_fc, cost)
    attrs.update(choice)  # coupling_chosen and its sweep
    return build_results(stages, labels, fc, weights, attrs)


def configure_routines(settings: ExperimentSettings) -> list:
    """The experiment's routines with their settings, in dependency order; the plan is checked."""
    return settings.pipeline()


def published_stages(settings: ExperimentSettings) -> set[str]:
    """The stages whose published numbers compare with this run: the named experiment's model settings
    (seed and precision aside), and the stage's routine and those before it set as the named ones are
    (a shortened run is not the published one)."""
    named = EXPERIMENTS.get(settings.name)
    if named is None or not settings.published:
        return set()
    named = named.with_variant(settings.variant)
    loose = {"seed", "precision", "variant", "published", "routines", "routine_settings"}
    mine, theirs = settings.record(), named.record()
    if {k: v for k, v in mine.items() if k not in loose} != {k: v for k, v in theirs.items() if k not in loose}:
        return set()

    def plain(values: dict) -> dict:
        return {k: v for k, v in values.items() if k not in ("seed", "log_every")}

    same = set()
    for name in mine["routines"]:  # in run order: a stage compares only if every stage before it does
        if name not in theirs["routine_settings"] or (
                plain(mine["routine_settings"][name]) != plain(theirs["routine_settings"][name])):
            break
        same.add(name)
    return same | ({"integration"} if same or not mine["routines"] else set())
