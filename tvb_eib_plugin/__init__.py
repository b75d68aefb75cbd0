"""tvb-eib-plugin: compiled FIC and EIB tuning of TVB's two-population Wong-Wang network in JAX.

One import line: ``import tvb_eib_plugin as eib``, then ``eib.run_experiment(...)``,
``eib.tune_cohort(...)``, ``eib.save_results`` / ``eib.load_results``, ``eib.results_figure``,
and the TVB boundary ``eib.tvb`` (``eib.tvb.from_simulator``, ``eib.tvb.to_simulator``, ...).
``__all__`` lists the public names; the other names importable from here are kept for
existing code (their submodules remain the place to import them from).

Importing the package leaves JAX's configuration alone; building a network (or scoring an FC)
turns on JAX's float64 support (``jax_enable_x64``) once, with a note on the ``tvb_eib_plugin``
logger, because FC windows and metrics accumulate in float64 (see ``_x64.py``); every function
takes or keeps the dtype of the model it is given.
"""

from .adapters import (  # noqa: E402
    bold_from_tvb,
    connectome_from_tvb,
    heun_from_tvb,
    network_from_simulator,
    network_from_tvb,
    tvb_connectivity,
)
from .balloon import BalloonBold, balloon_bold  # noqa: E402
from .bold import HRFBold, hrf_bold  # noqa: E402
from .coupling import DualCoupling, dual_coupling  # noqa: E402
from .data import (  # noqa: E402
    Connectome,
    dataset_names,
    load_bids,
    load_connectome,
    load_dataset,
    load_matrix,
    read_relmat,
)
from .integrate import Heun, Integrator, euler_maruyama, heun, integrator  # noqa: E402
from .metrics import fc, fc_corr, fc_rmse, rowwise_rmse  # noqa: E402
from .model import PARAMETERS, NodeParams, dfun, node_params, transfer  # noqa: E402
from .network import NetworkModel, SimState, initial_state, network_from_connectome, network_model  # noqa: E402
from .simulate import Simulation, SimulationDiverged, simulate, trajectory  # noqa: E402
from .divergence import ActivitySaturated, WeightsRunaway  # noqa: E402
from .routines.schedule import EIBStage, annealing_schedule, warmup_schedule  # noqa: E402
from .validation import InputError, InputWarning  # noqa: E402

from .batch import use_host_devices  # noqa: E402
from .routines import FIC, FICEIB, GlobalCoupling, GradientEIB  # noqa: E402
from . import tvb  # noqa: E402  (eib.tvb: the TVB boundary; absolute imports keep TVB's own `tvb` unshadowed)

__version__ = "0.1.0"

# Experiments, cohorts and results are imported on first use (PEP 562): they load xarray and
# pandas (0.3-0.4 s), which building and simulating a network do not need.  Dask and matplotlib
# are imported only inside tune_cohort_distributed and results_figure; without Dask that call
# says `pip install 'tvb-eib-plugin[cluster]'`.
_LAZY = {
    "run_experiment": "experiment", "EXPERIMENTS": "experiment", "get_experiment": "experiment",
    "ExperimentSettings": "experiment", "tune_cohort": "cohort", "tune_cohort_distributed": "distributed",
    "twin_cohort": "twins", "cohort_recovery": "twins", "TwinTruth": "twins",
    "choose_coupling": "coupling_choice", "CouplingChoice": "coupling_choice",
    "save_results": "results", "load_results": "results", "tuned_model": "results", "results_figure": "plot",
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


# What is public.  `tvb` (the submodule) is public too but not listed: a star import would
# rebind a user's own `import tvb`.  Names importable here but not listed (the model's
# primitives: dfun, transfer, node_params, dual_coupling, heun_from_tvb, ...) stay for
# existing code.
__all__ = [
    # data in
    "Connectome", "load_connectome", "load_dataset", "load_bids", "load_matrix", "dataset_names",
    # model: build, simulate, score
    "NetworkModel", "SimState", "network_from_connectome", "initial_state", "heun", "euler_maruyama",
    "simulate", "trajectory", "Simulation", "fc", "fc_corr", "fc_rmse",
    # tuning: experiments, routines, schedules, cohorts
    "run_experiment", "EXPERIMENTS", "get_experiment", "ExperimentSettings",
    "FIC", "FICEIB", "GradientEIB", "GlobalCoupling", "EIBStage", "annealing_schedule", "warmup_schedule",
    "choose_coupling", "CouplingChoice",
    "tune_cohort", "tune_cohort_distributed", "use_host_devices", "twin_cohort", "cohort_recovery", "TwinTruth",
    # results
    "save_results", "load_results", "tuned_model", "results_figure",
    # errors and warnings
    "InputError", "InputWarning", "SimulationDiverged", "ActivitySaturated", "WeightsRunaway",
]
