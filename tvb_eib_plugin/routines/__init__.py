"""Tuning routines, registered by name: ``fic``, ``fic_eib``, ``global_coupling``, ``gradient_eib`` (and users' own)."""

from .eib import FICEIB, eib_update, fic_eib_chunk
from .fic import FIC, fic_chunk, fic_update
from .registry import (
    BoundedFloat,
    BoundedInt,
    Routine,
    StageResult,
    TuningState,
    dependency_order,
    get_routine,
    register,
    registered_routines,
)
from .global_coupling import GlobalCoupling
from .schedule import EIBStage, annealing_schedule, rate_schedule, warmup_schedule
from .gradient import GradientEIB, loss_terms, simulate_S_e
