"""What a run cost: simulated hours of tuning, wall and CPU seconds (in the results and the final table).

Simulated time is counted from the configured routines (each says how much it simulates for a
network, :meth:`Routine.simulated_ms`) plus the transient and one evaluation per stage; wall and
CPU seconds are measured around the whole run, compilation and evaluation included.  A batch
simulates that much per member.
"""

from __future__ import annotations

import time
from typing import Sequence

HOUR_MS = 3_600_000.0


class Stopwatch:
    """Wall and process CPU seconds since it was made."""

    def __init__(self):
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()

    def seconds(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall0, time.process_time() - self.cpu0


def run_cost(routines: Sequence, model, transient_ms: float, eval_ms: float, watch: Stopwatch,
             coupling_choice: dict | list[dict] | None = None) -> dict:
    """The provenance entries of a run's cost (per member for a batch).  ``coupling_choice``: the record of the
    sweep that chose the starting coupling (``coupling="auto"``; one per member in a batch, each sweep as long),
    whose simulated time counts as tuning."""
    records = coupling_choice if isinstance(coupling_choice, list) else [coupling_choice] if coupling_choice else []
    choice_h = sum(r["coupling_choice_simulated_h"] for r in records) / max(len(records), 1)
    tuning_ms = choice_h * HOUR_MS + sum(r.simulated_ms(model) for r in routines)
    wall, cpu = watch.seconds()
    return {"simulated_tuning_h": tuning_ms / HOUR_MS,
            "simulated_total_h": (tuning_ms + transient_ms + eval_ms * (len(routines) + 1)) / HOUR_MS,
            "wall_time_s": wall, "cpu_time_s": cpu}


def cost_line(cost: dict) -> str:
    return (f"  cost: {cost['simulated_tuning_h']:.2f} simulated h of tuning ({cost['simulated_total_h']:.2f} h with "
            f"the transient and evaluations), {cost['wall_time_s']:.0f} s wall, {cost['cpu_time_s']:.0f} s CPU")
