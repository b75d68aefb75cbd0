"""tvb-eib-plugin: compiled FIC and EIB tuning of TVB's two-population Wong-Wang network in JAX.

One import line: ``import tvb_eib_plugin as eib``, then ``eib.run_experiment(...)``,
``eib.tune_cohort(...)``, ``eib.save_results`` / ``eib.load_results``, ``eib.results_figure``,
and the TVB boundary ``eib.tvb`` (``eib.tvb.from_simulator``, ``eib.tvb.to_simulator``, ...).
``__all__`` lists the public names; the model's primitives importable from here but not listed
(``dfun``, ``transfer``, ``node_params``, ``dual_coupling``, ...) are for those who build on them.
Everything lives in private layer packages (``_model``, ``_simulation``, ``_experiments``, ``_io``,
``_cohorts``, ``_cli``) whose paths may change; ``eib.routines`` (writing a routine) and ``eib.tvb``
are the two public subpackages.  docs/architecture.md maps the tree.

Importing the package leaves JAX's configuration alone; building a network (or scoring an FC)
turns on JAX's float64 support (``jax_enable_x64``) once, with a note on the ``tvb_eib_plugin``
logger, because FC windows and metrics accumulate in float64 (see ``_x64.py``); every function
takes or keeps the dtype of the model it is given.
"""

from .tvb._adapters import (  # noqa: E402
    bold_from_tvb,
    connectome_from_tvb,
    heun_from_tvb,
    network_from_simulator,
    network_from_tvb,
    tvb_connectivity,
)
from ._model.balloon import BalloonBold, balloon_bold  # noqa: E402
from ._model.bold import HRFBold, hrf_bold  # noqa: E402
from ._model.coupling import DualCoupling, dual_coupling  # noqa: E402
from ._io.data import (  # noqa: E402
    Connectome,
    dataset_names,
    load_bids,
    load_connectome,
    load_dataset,
    load_labels,
    load_matrix,
    read_relmat,
)
from ._model.integrate import Heun, Integrator, euler_maruyama, heun, integrator  # noqa: E402
from ._simulation.metrics import fc, fc_corr, fc_rmse, rowwise_rmse  # noqa: E402
from ._model.node import PARAMETERS, NodeParams, dfun, node_params, transfer  # noqa: E402
from ._model.network import NetworkModel, SimState, TunedParams, initial_state, network_from_connectome, network_model  # noqa: E402
from ._simulation.simulate import Simulation, SimulationDiverged, simulate, trajectory  # noqa: E402
from ._simulation.divergence import ActivitySaturated, WeightsRunaway  # noqa: E402
from .routines.schedule import EIBStage, annealing_schedule, rate_schedule, warmup_schedule  # noqa: E402
from ._validation import InputError, InputWarning, check_labels_agree  # noqa: E402

from ._simulation.batch import use_host_devices  # noqa: E402
from .routines import FIC, FICEIB, GlobalCoupling, GradientEIB  # noqa: E402
from . import tvb  # noqa: E402  (eib.tvb: the TVB boundary; absolute imports keep TVB's own `tvb` unshadowed)

__version__ = "0.1.0"

# Experiments, cohorts and results are imported on first use (PEP 562): they load xarray and
# pandas (0.3-0.4 s), which building and simulating a network do not need.  Dask and matplotlib
# are imported only inside tune_cohort_distributed and results_figure; without Dask that call
# says `pip install 'tvb-eib-plugin[cluster]'`.
_LAZY = {
    "run_experiment": "_experiments.experiment", "EXPERIMENTS": "_experiments.experiment", "get_experiment": "_experiments.experiment",
    "ExperimentSettings": "_experiments.experiment", "tune_cohort": "_cohorts.cohort", "tune_cohort_distributed": "_cohorts.distributed",
    "twin_cohort": "_cohorts.twins", "cohort_recovery": "_cohorts.twins", "TwinTruth": "_cohorts.twins",
    "choose_coupling": "_experiments.coupling_choice", "CouplingChoice": "_experiments.coupling_choice",
    "save_results": "_io.results", "load_results": "_io.results", "tuned_model": "_io.results", "results_figure": "_io.plot",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value  # later look-ups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


# What is public.  `tvb` (the subpackage) is public too but not listed: a star import would
# rebind a user's own `import tvb`.  Names importable here but not listed (the model's
# primitives: dfun, transfer, node_params, dual_coupling, heun_from_tvb, ...) are for those who
# build on them.
__all__ = [
    # data in
    "Connectome", "load_connectome", "load_dataset", "load_bids", "load_matrix", "load_labels", "dataset_names",
    "check_labels_agree",
    # model: build, simulate, score
    "NetworkModel", "SimState", "TunedParams", "network_from_connectome", "initial_state", "heun", "euler_maruyama",
    "simulate", "trajectory", "Simulation", "fc", "fc_corr", "fc_rmse",
    # tuning: experiments, routines, schedules, cohorts
    "run_experiment", "EXPERIMENTS", "get_experiment", "ExperimentSettings",
    "FIC", "FICEIB", "GradientEIB", "GlobalCoupling", "EIBStage", "annealing_schedule", "warmup_schedule", "rate_schedule",
    "choose_coupling", "CouplingChoice",
    "tune_cohort", "tune_cohort_distributed", "use_host_devices", "twin_cohort", "cohort_recovery", "TwinTruth",
    # results
    "save_results", "load_results", "tuned_model", "results_figure",
    # errors and warnings
    "InputError", "InputWarning", "SimulationDiverged", "ActivitySaturated", "WeightsRunaway",
]
