"""The results figure: one row for FIC and one for each coupling stage that ran, from a results DataTree.

Row 1, FIC: target FC, S_e before and after FIC, FIC convergence, J_i per region of every stage.
Then one row per coupling stage that ran (``fic_eib``, ``gradient_eib``, ``global_coupling``):
simulated FC, simulated against target FC, convergence, wLRE, wFFI.

Conventions, so that panels compare at a glance: every FC shares one diverging colour scale
symmetric about 0 (negative correlations stay visible); the coupling maps use a diverging scale
centred on the value before tuning, with entries that are not SC edges (``weights == 0``) masked
grey; region axes mark the hemispheres when the labels tell them apart. Variables are read by
name, not by their attrs. With the rate-based FIC rule (Schirner2023) the FIC convergence is
shown as firing rates against their target in Hz.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np
import xarray as xr

from .._validation import InputError

FC_CMAP, W_CMAP, MASKED = "RdBu_r", "PuOr_r", "0.78"
LINE, ACCENT = "#1f4e79", "#b8860b"
#: the coupling stages that get a row, with their row label
COUPLING_STAGES = {"fic_eib": "FIC+EIB", "gradient_eib": "Gradient", "global_coupling": "Global coupling"}
#: shipped data sets whose target FC is empirical
EMPIRICAL = {"dk_average"}
_HEMI = (re.compile(r"^(L|R)[._\-\s]"), re.compile(r"^(lh|rh)[._\-\s]", re.I), re.compile(r"^ctx[-_](lh|rh)[-_]", re.I),
         re.compile(r"^(Left|Right)[-_\s]", re.I), re.compile(r"[._\-](L|R|lh|rh)$"), re.compile(r"^(l|r)[A-Z]"))


def results_figure(tree: xr.DataTree, path: str | os.PathLike | None = None, n_display: int | None = None,
                   target: float = 0.25):
    """Draw the figure of one run; save it to ``path`` (PNG) when given. Returns the Figure.

    ``n_display``: integration steps of the S_e traces to draw (default: all the evaluation stored);
    ``target``: the FIC target when the stage's settings do not record it.
    """
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    _check_one_run(tree)
    stages = [s for s in COUPLING_STAGES if s in tree.children and "evaluation" in tree[s].children]
    fig = plt.figure(figsize=(25, 5.2 * (1 + len(stages))), layout="constrained")
    rows = fig.subfigures(1 + len(stages), 1, hspace=0.04) if stages else [fig.subfigures(1, 1)]
    labels = [str(x) for x in tree["fc_target"]["region"].values]
    blocks = hemisphere_blocks(labels)
    vmax = _fc_limit(tree, stages)
    _fic_row(rows[0], tree, labels, blocks, vmax, n_display, target)
    for row, stage in zip(rows[1:], stages):
        _coupling_row(row, tree, stage, labels, blocks, vmax)
    fig.suptitle(f"EI tuning results: {tree.attrs.get('experiment', '')} on {tree.attrs.get('data_source', '')}",
                 fontsize=16, fontweight="bold")
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig


def _check_one_run(tree):
    extra = {d for d in ("subject", "seed") if d in tree["fc_target"].dims}
    if extra:
        raise InputError(f"results_figure draws one run, this tree has {sorted(extra)} dims: select one member, "
                          "e.g. results_figure(tree.isel(subject=0, seed=0), path)")


def target_kind(attrs) -> str:
    """What the target FC is, from the root attrs: 'empirical', 'twin (simulated)' or 'given'."""
    source = str(attrs.get("data_source", ""))
    if str(attrs.get("fc_source", "")).startswith("twin") or re.search(r"-twin\d*$", source):
        return "twin (simulated)"
    if source in EMPIRICAL and "fc_source" not in attrs:
        return "empirical"
    return "given"


def hemisphere_blocks(labels) -> list[tuple[str, int, int]] | None:
    """[(hemisphere, start, stop)] when every label names its hemisphere and each is one contiguous block."""
    for pattern in _HEMI:
        found = [pattern.search(lab) for lab in labels]
        if not all(found):
            continue
        sides = [m.group(1)[0].upper() for m in found]
        starts = [0] + [i for i in range(1, len(sides)) if sides[i] != sides[i - 1]]
        names = [sides[i] for i in starts]
        if len(set(names)) == len(names) == 2:
            return [(n, a, b) for n, a, b in zip(names, starts, starts[1:] + [len(sides)])]
    return None


def _region_axis(ax, labels, blocks, which="x"):
    """All labels as ticks when few; otherwise hemisphere ticks and separators; otherwise region indices."""
    n = len(labels)
    setter = (ax.set_xticks,) if which == "x" else (ax.set_yticks,) if which == "y" else (ax.set_xticks, ax.set_yticks)
    lines = (ax.axvline,) if which == "x" else (ax.axhline,) if which == "y" else (ax.axvline, ax.axhline)
    if n <= 24:
        for i, s in enumerate(setter):
            s(range(n), labels, fontsize=7, rotation=90 if s == ax.set_xticks else 0)
    elif blocks:
        for s in setter:
            s([(a + b - 1) / 2 for _, a, b in blocks], [{"L": "left", "R": "right"}[h] for h, _, _ in blocks])
    if blocks:
        for line in lines:
            for _, a, _ in blocks[1:]:
                line(a - 0.5, color="k", lw=0.9)


def _fc_limit(tree, stages) -> float:
    """One symmetric FC limit for every FC panel: the largest |r| off the diagonal."""
    mats = [tree["fc_target"].values] + [tree[s]["evaluation"]["fc"].values for s in stages]
    off = ~np.eye(mats[0].shape[0], dtype=bool)
    return max(float(np.nanmax(np.abs(m[off]))) for m in mats) or 1.0


def _image(ax, fig, m, cmap, norm, label, labels, blocks, title):
    import matplotlib.pyplot as plt

    cm = plt.get_cmap(cmap).with_extremes(bad=MASKED)
    im = ax.imshow(m, cmap=cm, norm=norm, interpolation="nearest")
    ax.set_title(title)
    ax.set_xlabel("sending region j")
    ax.set_ylabel("receiving region i")
    _region_axis(ax, labels, blocks, "both")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02, label=label)
    return im


def _fc(ax, fig, values, vmax, labels, blocks, title):
    from matplotlib.colors import Normalize

    m = np.array(values, dtype=float)
    np.fill_diagonal(m, np.nan)  # the stored zero diagonal is not a correlation
    return _image(ax, fig, np.ma.masked_invalid(m), FC_CMAP, Normalize(-vmax, vmax), "Pearson r", labels, blocks,
                  title)


def _coupling_map(ax, fig, tree, stage, var, labels, blocks, title):
    """wLRE / wFFI on SC edges, diverging about the value before tuning; non-edges masked."""
    from matplotlib.colors import TwoSlopeNorm

    edges = tree["weights"].values != 0
    w = tree[stage][var].values
    before = tree["integration"][var].values[edges] if "integration" in tree.children else np.ones(1)
    centre = float(np.median(before)) if np.ptp(before) == 0 else 1.0
    on = w[edges] if edges.any() else np.array([centre])
    eps = 1e-6 * max(1.0, abs(centre))  # the colour scale spans the data, however lopsided about the centre
    norm = TwoSlopeNorm(vcenter=centre, vmin=min(float(on.min()), centre - eps),
                        vmax=max(float(on.max()), centre + eps))
    im = _image(ax, fig, np.ma.masked_where(~edges, w), W_CMAP, norm, f"scale factor (white: {centre:g}, untuned)",
                labels, blocks, title)
    ticks = _two_sided_ticks(norm)
    # labels with no more digits than the ticks need: long ones starve the constrained layout of width
    im.colorbar.set_ticks(ticks, labels=[f"{t:.3g}" for t in ticks])
    return im


def _two_sided_ticks(norm) -> np.ndarray:
    """Colourbar ticks on both sides of a TwoSlopeNorm's centre: matplotlib's own locator spaces them evenly in
    value, which leaves the shorter side of a lopsided scale (wLRE 0.3..1..1.7 drawn half and half) bare."""
    from matplotlib.ticker import MaxNLocator

    lo, mid, hi = norm.vmin, norm.vcenter, norm.vmax
    wide = 1e-3 * max(1.0, abs(mid))  # a side only as wide as the scale's guard against a flat map: no ticks
    ticks = [mid]
    for a, b in ((lo, mid), (mid, hi)):
        if b - a > wide:  # each side is half the bar: a tick within a fifth of it from the centre crowds its label
            # only ticks inside the scale: one past its end breaks the colourbar's transform (NaN, an empty bar)
            ticks += [t for t in MaxNLocator(3).tick_values(a, b) if a <= t <= b and abs(t - mid) >= 0.2 * (b - a)]
    return np.unique(np.round(ticks, 10))


def _window(ev, n_display):
    """The S_e trace to draw and the words for its time window: the start of the evaluation (which is all
    of it that the results keep), and how long the evaluation was, so no one takes the one for the other."""
    tr = ev["S_e_trace"] if n_display is None else ev["S_e_trace"].isel(time=slice(0, n_display))
    t = tr["time"].values
    dt = float(t[1] - t[0]) if len(t) > 1 else float(t[0])
    span = dt * len(t)
    bt = ev["bold_time"].values
    trs = f" ({span / float(bt[1] - bt[0]):.3g} TRs)" if len(bt) > 1 else ""
    total = ev.attrs.get("duration_ms")
    return tr, f"first {_duration(span)}{trs} of the " + (f"{_duration(float(total))} " if total else "") + (
        "evaluation")  # S_e: the y axis says it


def _duration(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.3g} s" if ms < 120_000 else f"{ms / 60_000:.3g} min"


def _traces(ax, ev, title, target, n_display):
    tr, window = _window(ev, n_display)
    t_s = tr["time"].values / 1000.0
    ax.plot(t_s, tr.values, color="0.55", lw=0.4, alpha=0.5)
    ax.plot(t_s, tr.values.mean(axis=1), color="k", lw=1.6)
    ax.text(0.01, 0.97, "grey: each region, black: mean", transform=ax.transAxes, va="top", fontsize=8)
    if target is not None:
        ax.axhline(target, color=ACCENT, ls="--", lw=2)
        ax.text(1.0, target, f" target {target:g}", color=ACCENT, va="center", ha="left",
                transform=ax.get_yaxis_transform(), fontsize=9)
    ax.set(xlabel="time in the evaluation (s)", ylabel="S_e", ylim=(0, 1), xlim=(t_s[0], t_s[-1]))
    ax.set_title(f"{title}\n{window}")


def _fic_rule(fic, default_target: float) -> tuple[str, float]:
    """The FIC rule and target the run used (from the stage's recorded settings)."""
    try:
        settings = json.loads(fic.attrs["settings"])
        return settings.get("rule", "gating"), float(settings.get("target", default_target))
    except (AttributeError, KeyError, TypeError, ValueError):
        return "gating", default_target


def _fic_convergence(ax, h, rule, target):
    var, name = ("rate_e", "E rate (Hz)") if rule == "rate" else ("mean_S_e", "mean S_e")
    x, v = h["iteration"].values, h[var].values
    ax.fill_between(x, v.min(axis=1), v.max(axis=1), color=LINE, alpha=0.2, lw=0)
    ax.plot(x, v.mean(axis=1), lw=2, color=LINE)
    ax.axhline(target, color=ACCENT, ls="--", lw=2)
    ax.text(1.0, target, f" target {target:g}", color=ACCENT, va="center", ha="left",
            transform=ax.get_yaxis_transform(), fontsize=9)
    ax.text(0.99, 0.97, "line: mean over regions\nband: min to max", transform=ax.transAxes, va="top",
            ha="right", fontsize=8)
    ax.set(xlabel="FIC iteration (TR)", ylabel=name, title="FIC: Convergence", xlim=(x[0], x[-1]))
    if rule == "rate" and np.nanmax(v) > 4 * target:  # the first iterations' rates would flatten the rest
        ax.set_yscale("log")
        ax.set_ylabel(f"{name}, log scale")
    ax.grid(True, alpha=0.3)


def _j_panel(ax, tree, labels, blocks):
    """J_i per region for every stage that has one; the untuned value dashed grey."""
    import matplotlib.pyplot as plt

    x = np.arange(len(labels))
    tuned = [s for s in tree.children if s != "integration" and "J_i" in tree[s]]
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.85, max(len(tuned), 1)))
    markers = "os^Dv"  # later stages drawn hollow over earlier ones: a stage that kept J_i stays visible
    if "integration" in tree.children:
        ax.plot(x, tree["integration"]["J_i"].values, color="0.5", ls="--", lw=1.2, label="before tuning")
    for k, (s, c) in enumerate(zip(tuned, colours)):
        ax.plot(x, tree[s]["J_i"].values, marker=markers[k % 5], ms=3 + 1.5 * k, lw=0.9, color=c, label=s,
                mfc=c if k == 0 else "none")
    ax.set(ylabel="J_i (nA)", title="J_i per region after each stage", xlim=(-0.5, len(labels) - 0.5))
    ax.set_xlabel("region")
    _region_axis(ax, labels, blocks, "x")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=9)


def _fic_row(sf, tree, labels, blocks, vmax, n_display, target):
    fic = tree.children.get("fic")
    rule, target = _fic_rule(fic, target)
    gating = target if rule == "gating" else None
    panels = [("fc", None)]
    panels += [("traces", s) for s in ("integration", "fic") if s in tree.children and "evaluation" in tree[s].children]
    panels += [("conv", "fic")] if fic is not None and "history" in fic.children else []
    panels += [("J", None)]
    ratios = [{"fc": 1.0, "traces": 1.05, "conv": 1.0, "J": 1.3}[k] for k, _ in panels]
    axes = sf.subplots(1, len(panels), width_ratios=ratios)
    kind = target_kind(tree.attrs)
    for ax, (k, s) in zip(np.atleast_1d(axes), panels):
        if k == "fc":
            _fc(ax, sf, tree["fc_target"], vmax, labels, blocks, f"Target FC ({kind})")
        elif k == "traces":
            _traces(ax, tree[s]["evaluation"], "FIC: Before Tuning" if s == "integration" else "FIC: After Tuning",
                    gating, n_display)
        elif k == "conv":
            _fic_convergence(ax, fic["history"], rule, target)
        else:
            _j_panel(ax, tree, labels, blocks)
    rates = f"rate rule, target {target:g} Hz" if rule == "rate" else f"S_e target {target:g}"
    sf.suptitle(f"Feedback inhibition control (FIC, {rates}): J_i tuned per region", fontsize=13, x=0.01, ha="left")


def _coupling_row(sf, tree, stage, labels, blocks, vmax):
    label, node = COUPLING_STAGES[stage], tree[stage]
    ev = node["evaluation"]
    r, rmse = float(ev["fc_corr"]), float(ev["fc_rmse"])
    axes = sf.subplots(1, 5, width_ratios=[1.0, 0.95, 1.25, 1.0, 1.0])
    _fc(axes[0], sf, ev["fc"], vmax, labels, blocks, f"{label} FC (r={r:.3f})")
    _fit_scatter(axes[1], ev["fc"].values, tree["fc_target"].values, r, rmse)
    _convergence(axes[2], node["history"], label) if "history" in node.children else axes[2].set_axis_off()
    for ax, var in zip(axes[3:], ("wLRE", "wFFI")):
        _coupling_map(ax, sf, tree, stage, var, labels, blocks, f"{label}: {var}")
    status = f", {node.attrs['status']}: {node.attrs.get('error', '')}" if "status" in node.attrs else ""
    sf.suptitle(f"{label} ({stage}): fc_corr {r:.3f}, fc_rmse {rmse:.3f}{status}", fontsize=13, x=0.01, ha="left")


def _fit_scatter(ax, fc, target, r, rmse):
    iu = np.triu_indices_from(fc, k=1)
    ax.scatter(target[iu], fc[iu], s=3, alpha=0.35, color=LINE, lw=0)
    both = np.concatenate([target[iu], fc[iu]])
    lo, hi = min(float(np.nanmin(both)), 0.0), float(np.nanmax(both))
    lim = (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
    ax.plot(lim, lim, color="0.3", lw=1, ls="--")
    ax.set(xlim=lim, ylim=lim, aspect="equal", xlabel="target FC (Pearson r)", ylabel="simulated FC (Pearson r)",
           title=f"Simulated vs target FC\nr={r:.3f}, RMSE={rmse:.3f} (dashed: identity)")
    ax.grid(True, alpha=0.3)


def _convergence(ax, h, label):
    if "G" in h.coords:
        ax.plot(h["G"], h["fc_corr"], "o-", lw=2, color=LINE)
        ax.set(xlabel="global coupling G", ylabel="FC correlation (scoring run)", title=f"{label}: sweep")
        ax.grid(True, alpha=0.3)
        return
    if "loss" in h:
        loss = h["loss"].values
        ax.plot(h["step"], loss, "o-", ms=4, lw=2, color=LINE)
        ax.set(xlabel="optimizer step", ylabel="combined loss", title=f"{label}: Loss Convergence")
        ax.grid(True, alpha=0.3)
        return
    x = h["iteration"].values
    ax2 = ax.twinx()
    style = dict(lw=1.3, marker="o" if len(x) < 50 else None, ms=4)  # a thinned history: show its records
    ax.plot(x, h["fc_corr"], color=LINE, **style)
    ax2.plot(x, h["fc_rmse"], color=ACCENT, **style)
    staged = "stage" in h and np.ptp(h["stage"].values) > 0
    if staged:  # annealing stages of a schedule: a line after the last record of each
        for b in x[:-1][np.diff(h["stage"].values) != 0]:
            ax.axvline(b + 0.5, color="0.25", lw=1.2, ls=":")
    ax.set_xlabel(f"{label} iteration (TR)")
    ax.set_ylabel("FC correlation (in-loop window)", color=LINE)
    ax2.set_ylabel("FC RMSE (in-loop window)", color=ACCENT)
    ax.tick_params(axis="y", colors=LINE)
    ax2.tick_params(axis="y", colors=ACCENT)
    ax.set_title(f"{label}: Convergence" + ("\ndotted: annealing stage boundaries" if staged else ""))
    ax.set_xlim(x[0], x[-1])
    ax.grid(True, alpha=0.3)
