"""tvb-eib-plugin: compiled FIC and EIB tuning of TVB's two-population Wong-Wang network in JAX.

Importing the package enables JAX's float64 support (``jax_enable_x64``) so
that both precisions are available; every function takes or keeps the
dtype of the model it is given.
"""

import jax

jax.config.update("jax_enable_x64", True)

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

__version__ = "0.1.0"
