"""The results figure of the reference workflow: 3 rows x 4 panels, drawn from a results DataTree.

Row 1, FIC: S_e before and after, mean S_e per iteration, target FC.
Row 2, FIC+EIB: FC after tuning, fc_corr and fc_rmse per iteration, wLRE, wFFI.
Row 3, gradient fitting (or a global-coupling sweep): FC, loss per step (or fit per G), wLRE, wFFI.

With the rate-based FIC rule (Schirner2023), row 1 shows firing rates against their target in Hz.
"""

from __future__ import annotations

import json
import os

import numpy as np
import xarray as xr

CMAP = "cividis"


def _traces(ax, node, title, target, n_display):
    """S_e of every region over the first steps; the target line when the FIC target is a gating value."""
    import matplotlib.pyplot as plt

    if node is None or "evaluation" not in node.children:
        return _empty(ax, title)
    tr = node["evaluation"]["S_e_trace"].isel(time=slice(0, n_display))
    cmap = plt.get_cmap(CMAP)
    n = tr.sizes["region"]
    for i in range(n):
        ax.plot(tr["time"], tr.values[:, i], color=cmap(i / n), lw=0.5, alpha=0.6)
    if target is not None:
        ax.axhline(target, color=cmap(0.85), ls="--", lw=2, label="Target")
        ax.legend(loc="upper right")
    ax.set(xlabel="Time (ms)", ylabel="S_e", title=title, ylim=(0, 1))


def _matrix(ax, fig, values, title, vmin=None, vmax=None):
    m = np.array(values, dtype=float)
    if vmin is not None:  # FC panels: blank the (zero) diagonal
        np.fill_diagonal(m, np.nan)
    im = ax.imshow(m, cmap=CMAP, vmin=vmin, vmax=vmax)
    ax.set(title=title, xlabel="region j", ylabel="region i")
    fig.colorbar(im, ax=ax, fraction=0.046)


def _empty(ax, title):
    ax.set_title(title)
    ax.text(0.5, 0.5, "stage not run", ha="center", va="center", transform=ax.transAxes, color="0.5")
    ax.set_xticks([])
    ax.set_yticks([])


def _child(tree: xr.DataTree, name: str):
    return tree.children.get(name)


def results_figure(tree: xr.DataTree, path: str | os.PathLike | None = None, n_display: int = 180, target: float = 0.25):
    """Draw the 3 x 4 figure; save it to ``path`` (PNG) when given. Returns the Figure."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    accent_blue, accent_gold = plt.get_cmap(CMAP)(0.3), plt.get_cmap(CMAP)(0.85)
    fig, axes = plt.subplot_mosaic("AABBCCDD\nEEFFGGHH\nIIJJKKLL", figsize=(18, 13), layout="compressed")
    integ, fic, eib = (_child(tree, n) for n in ("integration", "fic", "fic_eib"))
    grad, row3 = _child(tree, "gradient_eib"), "Gradient"
    if grad is None and _child(tree, "global_coupling") is not None:
        grad, row3 = _child(tree, "global_coupling"), "Global coupling"
    rule, target = _fic_rule(fic, target)

    # Row 1: FIC
    _traces(axes["A"], integ, "FIC: Before Tuning", target if rule == "gating" else None, n_display)
    _traces(axes["B"], fic, "FIC: After Tuning", target if rule == "gating" else None, n_display)
    ax = axes["C"]
    if fic is not None and "history" in fic.children:
        h = fic["history"]
        var, name = ("rate_e", "Mean E rate (Hz)") if rule == "rate" else ("mean_S_e", "Mean S_e")
        ax.plot(h["iteration"], h[var].mean("region"), lw=2, color=accent_blue, label=name)
        ax.axhline(target, color=accent_gold, ls="--", lw=2, label="Target")
        ax.set(xlabel="FIC iteration", ylabel=name, title="FIC: Convergence")
        ax.legend(loc="upper right")
        ax.grid(True, alpha=0.3)
    else:
        _empty(ax, "FIC: Convergence")
    _matrix(axes["D"], fig, tree["fc_target"], "Target FC (Empirical)", 0, 1)

    # Row 2: FIC + EIB, row 3: gradient fitting
    for stage, keys, label in ((eib, "EFGH", "FIC+EIB"), (grad, "IJKL", row3)):
        fc_ax, conv_ax, lre_ax, ffi_ax = (axes[k] for k in keys)
        if stage is None:
            for ax, t in zip((fc_ax, conv_ax, lre_ax, ffi_ax), ("FC", "Convergence", "wLRE", "wFFI")):
                _empty(ax, f"{label}: {t}")
            continue
        ev = stage["evaluation"]
        _matrix(fc_ax, fig, ev["fc"], f"{label} FC (r={float(ev['fc_corr']):.3f})", 0, 1)
        _matrix(lre_ax, fig, stage["wLRE"], f"{label}: wLRE")
        _matrix(ffi_ax, fig, stage["wFFI"], f"{label}: wFFI")
        _convergence(conv_ax, stage["history"], label, accent_blue, accent_gold)

    fig.suptitle(f"EI tuning results: {tree.attrs.get('experiment', '')} ({tree.attrs.get('data_source', '')})")
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def _fic_rule(fic, default_target: float) -> tuple[str, float]:
    """The FIC rule and target the run used (from the stage's recorded settings)."""
    try:
        settings = json.loads(fic.attrs["settings"])
        return settings.get("rule", "gating"), float(settings.get("target", default_target))
    except (AttributeError, KeyError, TypeError, ValueError):
        return "gating", default_target


def _convergence(ax, h, label, c1, c2):
    if "G" in h.coords:
        ax.plot(h["G"], h["fc_corr"], "o-", lw=2, color=c1)
        ax.set(xlabel="global coupling G", ylabel="FC correlation (scoring run)", title=f"{label}: sweep")
        ax.grid(True, alpha=0.3)
        return
    if "loss" in h:
        loss = h["loss"].values
        ax.plot(h["step"], loss, lw=2, color="k", alpha=0.9)
        ax.scatter([h["step"].values[0], h["step"].values[-1]], [loss[0], loss[-1]], s=80, color=[c1, c2], zorder=5)
        ax.set(xlabel="Optimization step", ylabel="Combined loss", title=f"{label}: Loss Convergence")
        ax.grid(True, alpha=0.3)
        return
    ax2 = ax.twinx()
    (l1,) = ax.plot(h["iteration"], h["fc_corr"], lw=1.5, color=c1, label="FC Corr")
    (l2,) = ax2.plot(h["iteration"], h["fc_rmse"], lw=1.5, color=c2, label="FC RMSE")
    ax.set(xlabel=f"{label} iteration", ylabel="FC correlation (window)", title=f"{label}: Convergence")
    ax2.set_ylabel("FC RMSE (window)")
    ax.legend(handles=[l1, l2], loc="center right")
    ax.grid(True, alpha=0.3)
