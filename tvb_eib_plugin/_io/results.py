"""Results as an xarray DataTree: one node per stage, labelled by region, time and iteration.

Layout::

    /                       fc_target, weights (region, region_j); run settings in attrs
    /<stage>                J_i (region), wLRE, wFFI (region, region_j); stage settings in attrs;
                            fc_corr_in_loop, fc_rmse_in_loop: the fit of its last in-loop FC window
    /<stage>/history        per-iteration records (iteration[, region])   [tuning stages]
    /<stage>/evaluation     fc, fc_corr, fc_rmse, bold (bold_time, region),
                            S_e_trace (time, region), mean_S_e (region)

Stages: ``integration`` (the parameters before tuning), then each routine
(``fic``, ``fic_eib``, ...).  Matrices are (region, region_j): row i receives
from column j.

Attribute convention (CF, so that plain xarray labels plots with no extra code,
e.g. ``tree["fic_eib"].wLRE.plot()`` reads "long-range excitation scaling [1]"
against "receiving region" and "sending region"):

- every variable and coordinate has ``long_name`` (a short axis label) and
  ``description`` (the longer meaning: how it was computed, sign conventions);
- every quantity has ``units``: a physical unit (``nA``, ``Hz``, ``ms``: all
  times are in ms) or ``"1"`` for a dimensionless one (CF's spelling);
- labels and indices (``region``, ``region_j``, ``iteration``, ``step``, the
  schedule ``stage``; a cohort's ``subject`` and ``seed``) are not quantities
  and carry no ``units`` attribute at all;
- integer records stay integers (``history.stage``); every measured value is float64.

:data:`VARIABLES` holds these attributes for every name the results may hold.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import xarray as xr

from .._simulation.evaluation import Evaluation
from .._model.network import NetworkModel, TunedParams

#: (units, long_name, description) of every variable and coordinate the results may hold;
#: units None: a label or an index, which has no unit (and gets no ``units`` attribute)
VARIABLES: dict[str, tuple[str | None, str, str]] = {
    "fc_target": ("1", "target FC", "empirical FC (Pearson r of BOLD), zero diagonal"),
    "weights": ("1", "normalised SC weight",
                "normalised SC weights used in the simulation, row i receives from column j"),
    "J_i": ("nA", "local inhibitory coupling J_i", "local inhibitory coupling per region"),
    "wLRE": ("1", "long-range excitation scaling", "long-range excitation scaling of SC edge j -> i"),
    "wFFI": ("1", "feedforward inhibition scaling", "feedforward inhibition scaling of SC edge j -> i"),
    "fc": ("1", "simulated FC", "simulated FC from the evaluation BOLD (first samples discarded), zero diagonal"),
    "fc_corr": ("1", "FC correlation (simulated vs target)",
                "Pearson correlation of simulated and target FC, upper triangle"),
    "fc_corr_all": ("1", "FC correlation, all entries",
                    "Pearson correlation of simulated and target FC, all entries (reference convention)"),
    "fc_rmse": ("1", "FC RMSE (simulated vs target)", "root mean square difference of simulated and target FC"),
    "fc_mean": ("1", "mean simulated FC", "mean off-diagonal FC of the in-loop window"),
    "fc_corr_in_loop": ("1", "in-loop window FC correlation",
                        "Pearson correlation of the last in-loop window's FC (the BOLD samples the tuning ran on, "
                        "weights moving) and the target FC, upper triangle: the r the authors' program reports; "
                        "the evaluation's fc_corr is a fresh run with the final weights"),
    "fc_rmse_in_loop": ("1", "in-loop window FC RMSE",
                        "RMSE of the last in-loop window's FC and the target FC over all N^2 entries (zero "
                        "diagonals included), as fc_rmse; the authors' program takes it over the upper triangle: "
                        "theirs = this x sqrt(N / (N - 1))"),
    "bold": ("1", "BOLD signal",
             "BOLD signal (fractional change; the model's observation: HRF kernel or Balloon-Windkessel)"),
    "rate_e": ("Hz", "excitatory firing rate", "excitatory firing rate H(x_e) averaged over the TR"),
    "rate_i": ("Hz", "inhibitory firing rate", "inhibitory firing rate H(x_i) averaged over the TR"),
    "eta_eib": ("1", "EIB learning rate", "EIB learning rate in effect at the iteration"),
    "stage": (None, "EIB schedule stage (0-based)", "EIB schedule stage (0-based) of the iteration"),
    "S_e_trace": ("1", "excitatory gating S_e", "excitatory gating S_e at every integration step"),
    "mean_S_e": ("1", "mean excitatory gating S_e", "excitatory gating S_e averaged over time"),
    "mean_S_i": ("1", "mean inhibitory gating S_i", "inhibitory gating S_i averaged over time"),
    "loss": ("1", "gradient-fitting loss", "gradient-fitting loss: FC RMSE + activity_weight * activity"),
    "activity": ("1", "activity penalty", "mean over regions of (mean S_e over the last steps - target)^2"),
    # coordinates
    "time": ("ms", "time", "time since the start of the evaluation simulation"),
    "bold_time": ("ms", "BOLD sample time", "time of the BOLD sample since the start of the evaluation simulation"),
    "iteration": (None, "tuning iteration", "tuning iteration (one TR of simulation each)"),
    "step": (None, "optimizer step", "optimizer step (the loss is recorded before the step's update)"),
    "G": ("1", "global coupling G", "global coupling of a sweep (uniform wLRE; wFFI = feedforward * G)"),
    "region": (None, "receiving region", "receiving region (row)"),
    "region_j": (None, "sending region", "sending region (column)"),
    # cohort coordinates (cohort.py stacks single-run trees along them)
    "subject": (None, "subject", "subject (its connectome's name)"),
    "seed": (None, "noise seed", "noise seed of the member's transient, tuning and evaluations"),
}


@dataclasses.dataclass
class StageRecord:
    """Everything the results keep about one stage.

    A stage that failed (``status="failed"``, ``error`` its message) keeps what
    it had: its partial history, and its parameters if the routine finished but
    its evaluation did not (``model`` / ``evaluation`` None otherwise).
    """

    name: str
    model: NetworkModel | None
    evaluation: Evaluation | None
    history: dict[str, np.ndarray] | None = None
    settings: dict | None = None
    seconds: float | None = None
    history_dim: str = "iteration"
    status: str = "done"
    error: str | None = None
    in_loop: dict | None = None


def _annotate(ds: xr.Dataset) -> xr.Dataset:
    """CF attributes from :data:`VARIABLES` on every variable and coordinate (see the module docstring)."""
    for name, var in ds.variables.items():
        units, long_name, description = VARIABLES.get(name, (None, name, name))
        var.attrs.pop("units", None)  # a label keeps none, not an empty one
        if units is not None:
            var.attrs["units"] = units
        var.attrs.update(long_name=long_name, description=description)
    return ds


def _matrix(m, labels) -> xr.DataArray:
    return xr.DataArray(np.asarray(m, dtype=np.float64), dims=("region", "region_j"),
                        coords={"region": labels, "region_j": labels})


def _params(model: NetworkModel, labels) -> xr.Dataset:
    return xr.Dataset({
        "J_i": ("region", np.asarray(model.node.J_i, dtype=np.float64)),
        "wLRE": _matrix(model.coupling.wLRE, labels),
        "wFFI": _matrix(model.coupling.wFFI, labels),
    }, coords={"region": labels})


def _evaluation(ev: Evaluation, model: NetworkModel, labels) -> xr.Dataset:
    dt, tr = model.dt, model.bold.period_ms
    ds = xr.Dataset(
        {
            "fc": _matrix(ev.fc, labels),
            "fc_corr": ((), ev.fc_corr),
            "fc_corr_all": ((), ev.fc_corr_all),
            "fc_rmse": ((), ev.fc_rmse),
            "bold": (("bold_time", "region"), ev.bold.astype(np.float64)),
            "S_e_trace": (("time", "region"), ev.S_e_trace.astype(np.float64)),
            "mean_S_e": ("region", ev.mean_S[:, 0].mean(axis=0).astype(np.float64)),
            "mean_S_i": ("region", ev.mean_S[:, 1].mean(axis=0).astype(np.float64)),
        },
        coords={
            "region": labels,
            "time": dt * np.arange(1, len(ev.S_e_trace) + 1),
            "bold_time": tr * np.arange(1, len(ev.bold) + 1),
        },
        attrs={"bold_discarded": ev.discard, "duration_ms": float(len(ev.bold) * tr)},
    )
    return _annotate(ds)


def _history(history: dict[str, np.ndarray], labels, dim: str) -> xr.Dataset:
    """Records along ``dim``; a thinned history carries its own ``iteration`` (block means end there)."""
    history = dict(history)
    index = history.pop(dim, None)
    if index is None:
        index = history.pop("iteration", None)
    n = len(next(iter(history.values())))
    data = {}
    for k, v in history.items():
        v = np.asarray(v)  # integer records (the schedule stage) are labels: they stay integers
        v = v if np.issubdtype(v.dtype, np.integer) else np.asarray(v, dtype=np.float64)
        data[k] = ((dim, "region") if v.ndim == 2 else (dim,), v)
    # optimizer steps count from 0 as the reference log does; tuning iterations from 1
    start = 0 if dim == "step" else 1
    coord = np.arange(start, n + start) if index is None else np.asarray(index)
    ds = xr.Dataset(data, coords={dim: coord, "region": labels})
    if index is not None and dim == "iteration":
        ds.attrs["thinned"] = ("each record is the mean over the iterations since the previous one "
                               "(integer records: the value at its iteration)")
    return _annotate(ds)


def _attr_value(v):
    """netCDF attrs hold strings and numbers only: encode the rest as JSON."""
    if isinstance(v, (str, int, float, np.integer, np.floating)) and not isinstance(v, bool):
        return v
    return json.dumps(v, default=str)


def build_results(
    stages: list[StageRecord],
    labels,
    fc_target: np.ndarray,
    weights: np.ndarray,
    attrs: dict,
) -> xr.DataTree:
    """Assemble the DataTree; ``attrs`` (settings, provenance) go on the root."""
    labels = [str(x) for x in labels]
    nodes = {"/": _annotate(xr.Dataset(
        {"fc_target": _matrix(fc_target, labels), "weights": _matrix(weights, labels)},
        attrs={k: _attr_value(v) for k, v in attrs.items()}))}
    for st in stages:
        params = _params(st.model, labels) if st.model is not None else xr.Dataset()
        for key, value in (st.in_loop or {}).items():  # the routine's own last window fit, beside the parameters
            params[f"{key}_in_loop"] = ((), float(value))
        params = _annotate(params)
        params.attrs.update({"stage": st.name, "settings": _attr_value(st.settings or {})})
        if st.seconds is not None:
            params.attrs["wall_time_s"] = float(st.seconds)
        if st.status != "done":
            params.attrs.update(status=st.status, error=st.error or "")
        nodes[f"/{st.name}"] = params
        if st.history:
            nodes[f"/{st.name}/history"] = _history(st.history, labels, st.history_dim)
        if st.evaluation is not None:
            nodes[f"/{st.name}/evaluation"] = _evaluation(st.evaluation, st.model, labels)
    return xr.DataTree.from_dict(nodes)


def save_results(tree: xr.DataTree, path: str | os.PathLike, overwrite: bool = False) -> str:
    """Write the tree to netCDF (one group per node); returns ``path``.

    An existing file is refused (:class:`~tvb_eib_plugin._validation.InputError`)
    unless ``overwrite=True``.  The file is written under a temporary name in
    the same folder and renamed into place, so a stopped write leaves the old
    file (or none), never a torn one.
    """
    from .._outputs import check_output, write_atomic

    path = check_output(path, "results", overwrite)
    return write_atomic(path, tree.to_netcdf)


def load_results(path: str | os.PathLike) -> xr.DataTree:
    """Read a results file written by :func:`save_results`, fully into memory."""
    return xr.load_datatree(os.fspath(path))


def stage_summary(tree: xr.DataTree) -> list[tuple[str, float, float]]:
    """(stage, fc_corr, fc_rmse) of every evaluated stage, in order."""
    out = []
    for name, node in tree.children.items():
        if "evaluation" in node.children:
            ev = node["evaluation"]
            out.append((name, float(ev["fc_corr"]), float(ev["fc_rmse"])))
    return out


def tuned_model(tree: xr.DataTree, stage: str, model: NetworkModel) -> NetworkModel:
    """``model`` with the tuned J_i, wLRE and wFFI of ``stage`` from a results tree.

    The tree stores the tuned parameters, not the whole model: pass the network
    the run started from (same regions, in the same order).
    """
    if stage not in tree.children:
        raise KeyError(f"no stage {stage!r} in the results; stages: {list(tree.children)}")
    node = tree[stage]
    labels = [str(x) for x in node["region"].values]
    if len(labels) != model.n_regions:
        raise ValueError(f"the results have {len(labels)} regions, the model {model.n_regions}")
    return model.with_tuned(TunedParams(node["J_i"].values, node["wLRE"].values, node["wFFI"].values))
