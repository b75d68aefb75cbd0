"""What a run reports: the log's banners and closing table, and the provenance attrs of its results."""

from __future__ import annotations

import datetime
import os

import jax

from .cost import cost_line
from .._io.data import DK_AVERAGE_ATTRIBUTION
from .._simulation.divergence import SimulationDiverged
from .._io.results import StageRecord
from ..routines.fic import number


def banner(log, text):
    log("\n" + "=" * 60)
    log(text)
    log("=" * 60)


def fc_source(fc_target) -> str | None:
    """Where a target FC passed in by the user came from (None: the connectome's own)."""
    if fc_target is None:
        return None
    if isinstance(fc_target, (str, os.PathLike)):
        return f"file {os.fspath(fc_target)}"
    return "an array passed as fc_target"


def failed_attrs(attrs: dict, err: SimulationDiverged) -> dict:
    """Root attrs of the results of a run that stopped at ``err``."""
    return dict(attrs, status="failed", failed_stage=err.stage, error=str(err), error_type=type(err).__name__)


def summarise(stages: list[StageRecord], settings, source: str, order, log, cost: dict | None = None,
              published: set[str] = frozenset()) -> None:
    """The closing table of the log: each stage's fit (a batch: mean [min..max]) beside the published one
    (only for the data set and the experiment it was published for), and what the run cost."""
    banner(log, f"  Algorithms complete. Results: {order}")
    log("  fc_corr, fc_rmse: a fresh evaluation run; in-loop: the tuning's last FC window (RMSE over all entries)")
    log(f"  {'stage':14s}{'fc_corr':>9s} {'fc_rmse':>9s} {'in-loop r':>10s} {'rmse':>7s}   published (fc_corr, fc_rmse)")
    for st in stages:
        pub = settings.published.get(st.name) if st.name in published else None
        loop = st.in_loop or {}
        r, e = (number(loop[k]) if k in loop else "" for k in ("fc_corr", "fc_rmse"))
        log(f"  {st.name:14s}{number(st.evaluation.fc_corr):>9s} {number(st.evaluation.fc_rmse):>9s} {r:>10s} {e:>7s}"
            f"   {pub or ''}")
    if cost:
        log(cost_line(cost))
    banner(log, "Experiment complete.")


def provenance(settings, source: str, order, seconds: float, given_fc: str | None = None,
               cost: dict | None = None) -> dict:
    from .. import __version__

    attrs = {
        "experiment": settings.name,
        "settings": settings.record(),
        "routines": list(order),
        "data_source": source,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "wall_time_s": seconds,
        "tvb_eib_plugin_version": __version__,
        "jax_version": jax.__version__,
        "fc_corr_convention": "upper triangle without diagonal (fc_corr_all: every entry)",
    }
    if source == "dk_average":
        attrs["data_attribution"] = DK_AVERAGE_ATTRIBUTION
    if given_fc is not None:  # the target is not the data set's own FC (the figure titles it "given")
        attrs["fc_source"] = given_fc
    attrs.update(cost or {})
    return attrs
