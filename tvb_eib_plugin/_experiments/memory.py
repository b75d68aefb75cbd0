"""How much memory a run needs, estimated before anything compiles, and a warning when it is a lot.

A large parcellation, a long EIB schedule or a big cohort batch can need more
memory than the machine has; finding that out after an hour of compute (or by
the machine swapping) is worse than a warning up front that states the
estimate and where it comes from.  The parts that grow with the problem:

- N x N arrays (SC, wLRE, wFFI, delays, their products, the FC window's
  moments, the EIB step, simulated and target FC, the results built from
  them): ``N2_ARRAYS`` float64 copies.  Measured: the peak RSS of a float64
  fic + fic_eib run grows by 48 x N^2 x 8 bytes between 1000 and 2000
  regions (845 MB to 1926 MB above the process at rest; 500 regions: 543 MB).
- the delay history ring, 2 x horizon x N, and the FC window ring, capacity x N;
- the per-TR records each routine keeps (mean S_e, S_i, BOLD, J_i, rates),
  twice over while chunks are stacked, and the evaluations' BOLD and means;
- gradient fitting: the stored trajectories (hand-written adjoint), or with
  delays one TR's per-step residuals (each step gathers N x N delayed inputs)
  plus a carry per TR; noise samples are taken one after another, so their
  number does not multiply this;

every part times the members of a batch.  It is an estimate (within about a
factor of 2): the process itself, JAX and compilation add some 0.3-0.5 GB.
"""

from __future__ import annotations

from .._simulation.batch import batch_size
from .._validation import warn_input

GB = 1024**3
#: a run estimated above this gets an InputWarning
WARN_BYTES = 4 * GB
#: float64 N x N arrays alive at the peak of a fic + fic_eib run (measured, see above)
N2_ARRAYS = 48
#: per-step N x N residuals kept for one TR by autodiff with delays (delayed inputs, both products)
DELAY_RESIDUALS = 3


def memory_estimate(n_regions: int, *, itemsize: int = 8, horizon: int = 1, steps_per_tr: int = 180,
                    window: int = 0, recorded: int = 0, record_fields: int = 4, eval_trs: int = 0,
                    gradient_trs: int = 0, gradient_samples: int = 1, sweep: int = 0, sweep_trs: int = 0,
                    batch: int = 1) -> dict[str, int]:
    """Bytes a run needs, by part (parts that are zero are left out).

    Args:
        n_regions: N.  itemsize: bytes per value of the model's dtype (4 or 8).
        horizon: delay horizon in steps (1: no delays).  steps_per_tr: integration steps per TR.
        window: FC window capacity (TRs).  recorded: per-TR records kept, over all routines;
            record_fields: N-vectors per record.  eval_trs: TRs of every evaluation together.
        gradient_trs: TRs per gradient loss evaluation (0: no gradient stage).  gradient_samples:
            its noise realisations, taken one after another (they do not add memory; kept for callers).
        sweep, sweep_trs: models simulated side by side by a global-coupling sweep, and its scored TRs.
        batch: members (subjects x seeds) run at once.
    """
    n, b = int(n_regions), int(batch)
    parts = {
        "N x N arrays": N2_ARRAYS * n * n * 8,
        "delay history": 2 * horizon * n * itemsize if horizon > 1 else 0,
        "FC window": window * n * 8,
        "recorded history": 2 * recorded * record_fields * n * itemsize + 3 * eval_trs * n * 8,
        "gradient": _gradient_bytes(n, itemsize, horizon, steps_per_tr, gradient_trs),
        "coupling sweep": sweep * (8 * n * n * itemsize + 2 * sweep_trs * n * itemsize),
    }
    return {k: v * b for k, v in parts.items() if v}


def _gradient_bytes(n: int, itemsize: int, horizon: int, steps_per_tr: int, n_tr: int) -> int:
    steps = n_tr * steps_per_tr
    if n_tr == 0:  # no gradient stage
        return 0
    if horizon <= 1:  # the adjoint stores S_e and S_i of every step, and S_e's cotangent
        return 3 * steps * n * itemsize
    # autodiff, one jax.checkpoint per TR: a carry per TR, S_e of every step, and one TR's residuals
    carry = n_tr * (2 + 2 * horizon) * n * itemsize
    return carry + steps * n * itemsize + steps_per_tr * (DELAY_RESIDUALS * n * n + 20 * n) * itemsize


def run_memory(settings, net, routines) -> dict[str, int]:
    """:func:`memory_estimate` of an experiment's pipeline on ``net`` (a batch: every member)."""
    recorded, fields, window, grad_trs, grad_samples, sweep, sweep_trs = 0, 4, 0, 0, 1, 0, 0
    period = net.bold.period_ms
    for r in routines:
        if getattr(r, "rule", "gating") == "rate":
            fields = 6  # mean rates of both populations too
        if hasattr(r, "stages"):  # fic_eib: its schedule, thinned by record_every
            stages = r.stages()
            recorded += sum(s.iterations for s in stages) // getattr(r, "record_every", 1)
            window = max(window, max(s.window for s in stages))
        elif hasattr(r, "n_values"):  # global_coupling: its G values side by side
            sweep, sweep_trs = r.n_values, r.score_iterations
        elif hasattr(r, "duration_ms"):  # gradient_eib
            grad_trs, grad_samples = int(r.duration_ms // period), getattr(r, "noise_samples", 1)
        else:
            recorded += getattr(r, "n_iterations", 0)
    n_eval = int(settings.eval_ms // settings.tr_ms)
    return memory_estimate(
        net.n_regions, itemsize=net.dtype.itemsize, horizon=net.coupling.horizon,
        steps_per_tr=net.bold.steps_per_tr, window=window, recorded=recorded, record_fields=fields,
        eval_trs=n_eval * (len(routines) + 1), gradient_trs=grad_trs, gradient_samples=grad_samples,
        sweep=sweep, sweep_trs=sweep_trs, batch=batch_size(net) or 1)


def check_memory(parts: dict[str, int], limit: int = WARN_BYTES) -> int:
    """Warn (:class:`validation.InputWarning`) when the estimate is above ``limit``; returns the total."""
    total = sum(parts.values())
    if total > limit:
        detail = ", ".join(f"{k} {v / GB:.2g} GB" for k, v in sorted(parts.items(), key=lambda kv: -kv[1]))
        warn_input(f"this run needs about {total / GB:.1f} GB of memory (estimate: {detail}); more than "
                   f"{limit / GB:.0f} GB. Check the machine has it, or shorten the run: fewer regions, a shorter "
                   "schedule or record_every > 1, fewer subjects x seeds per batch")
    return total
