"""The results figure: rows only for stages that ran, honest colour scales, labelled colourbars, masked non-edges."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import tvb_eib_plugin as eib  # noqa: E402
from tvb_eib_plugin._io.data import Connectome  # noqa: E402
from tvb_eib_plugin._io.plot import hemisphere_blocks, results_figure, target_kind  # noqa: E402

LABELS = ("L.A", "L.B", "L.C", "R.A", "R.B", "R.C")


@pytest.fixture(scope="module")
def tiny_tree():
    """A 6-region run of every stage, with SC gaps off the diagonal and negative target FC."""
    rng = np.random.default_rng(0)
    w = rng.uniform(0.2, 1.0, (6, 6))
    w = (w + w.T) / 2
    np.fill_diagonal(w, 0.0)
    w[0, 4] = w[4, 0] = w[1, 5] = w[5, 1] = 0.0  # non-SC entries the coupling maps must mask
    fc = rng.uniform(-0.3, 0.8, (6, 6))
    fc = (fc + fc.T) / 2
    np.fill_diagonal(fc, 0.0)
    con = Connectome(labels=LABELS, weights=w, fc_target=fc, name="tiny")
    settings = {"fic": {"n_iterations": 10}, "fic_eib": {"n_iterations": 5, "window": 10},
                "gradient_eib": {"n_steps": 2, "duration_ms": 7200.0, "discard": 0, "noise_samples": 1}}
    return eib.run_experiment(connectome=con, routine_settings=settings, transient_ms=1440.0, eval_ms=14400.0,
                              eval_discard=0, log=None)


def _images(fig, prefix):
    return [ax.images[0] for ax in fig.axes if ax.get_title().startswith(prefix) and ax.images]


def _row_titles(fig):
    return [sf._suptitle.get_text() for sf in fig.subfigs]


def test_one_row_per_stage_that_ran(tiny_tree, tmp_path):
    fig = results_figure(tiny_tree, tmp_path / "fig.png")
    rows = _row_titles(fig)
    assert len(rows) == 3 and rows[1].startswith("FIC+EIB") and rows[2].startswith("Gradient")
    texts = [t.get_text() for ax in fig.axes for t in ax.texts] + [ax.get_title() for ax in fig.axes]
    assert not any("not run" in t for t in texts)
    plt.close(fig)

    no_gradient = tiny_tree.copy()
    del no_gradient["gradient_eib"]
    fig = results_figure(no_gradient)
    rows = _row_titles(fig)
    assert len(rows) == 2 and not any("Gradient" in ax.get_title() for ax in fig.axes)
    plt.close(fig)


def test_fc_scale_is_symmetric_and_shows_negative_values(tiny_tree):
    fig = results_figure(tiny_tree)
    fc_images = _images(fig, "Target FC") + _images(fig, "FIC+EIB FC") + _images(fig, "Gradient FC")
    assert len(fc_images) == 3
    lowest = min(float(np.min(tiny_tree["fc_target"].values)), -0.01)
    for im in fc_images:
        assert im.norm.vmin < 0 and im.norm.vmin == -im.norm.vmax
        assert im.norm.vmin <= lowest  # the target's negative correlations are inside the scale, not clipped
        assert im.colorbar.ax.get_ylabel() == "Pearson r"
    assert {im.norm.vmax for im in fc_images} == {fc_images[0].norm.vmax}  # one scale: panels compare
    plt.close(fig)


def test_coupling_maps_are_masked_off_sc_and_labelled(tiny_tree):
    fig = results_figure(tiny_tree)
    non_sc = tiny_tree["weights"].values == 0
    assert non_sc.sum() > 6  # the diagonal and the removed edges
    maps = [im for v in ("wLRE", "wFFI") for im in _images(fig, f"FIC+EIB: {v}") + _images(fig, f"Gradient: {v}")]
    assert len(maps) == 4
    for im in maps:
        data = im.get_array()
        np.testing.assert_array_equal(np.ma.getmaskarray(data), non_sc)
        assert im.colorbar.ax.get_ylabel().startswith("scale factor")
    (j_ax,) = [ax for ax in fig.axes if ax.get_title().startswith("J_i per region")]
    assert j_ax.get_ylabel() == "J_i (nA)"
    assert {t.get_text() for t in j_ax.get_legend().get_texts()} >= {"fic", "fic_eib", "gradient_eib"}
    plt.close(fig)


def test_traces_state_their_window_and_target_says_what_it_is(tiny_tree):
    fig = results_figure(tiny_tree, n_display=90)
    (before,) = [ax.get_title() for ax in fig.axes if ax.get_title().startswith("FIC: Before Tuning")]
    assert "first 360 ms (0.5 TRs) of the 14.4 s evaluation" in before  # dt 4 ms, TR 720 ms
    assert any(ax.get_title() == "Target FC (given)" for ax in fig.axes)
    plt.close(fig)
    assert target_kind({"data_source": "dk_average"}) == "empirical"
    assert target_kind({"data_source": "dk_average-twin3"}) == "twin (simulated)"
    assert target_kind({"data_source": "sub-01"}) == "given"


def test_hemispheres_are_found_only_when_labels_tell_them():
    assert hemisphere_blocks(LABELS) == [("L", 0, 3), ("R", 3, 6)]
    assert hemisphere_blocks(["lh.a", "lh.b", "rh.a", "rh.b"]) == [("L", 0, 2), ("R", 2, 4)]
    assert hemisphere_blocks(["L.A", "R.A", "L.B", "R.B"]) is None  # interleaved: no single split
    assert hemisphere_blocks(["a", "b", "c"]) is None


def test_a_lopsided_coupling_scale_is_labelled_on_both_sides_of_its_centre():
    """wLRE from 0.92 to 1.7 about 1 (a FIC+EIB run on dk_average): matplotlib's own ticks were 1.0 to 1.6 only,
    the purple half of the bar (the weakened edges) unlabelled."""
    from matplotlib.colors import TwoSlopeNorm

    from tvb_eib_plugin._io.plot import _two_sided_ticks

    ticks = _two_sided_ticks(TwoSlopeNorm(vcenter=1.0, vmin=0.92, vmax=1.7))
    below, above = ticks[ticks < 1.0], ticks[ticks > 1.0]
    assert 1.0 in ticks and len(below) >= 1 and len(above) >= 1
    assert below.min() >= 0.92 and above.max() <= 1.7
    assert np.all(1.0 - below >= 0.2 * 0.08) and np.all(above - 1.0 >= 0.2 * 0.7)  # no label crowds the centre's
    assert list(_two_sided_ticks(TwoSlopeNorm(vcenter=1.0, vmin=1 - 1e-6, vmax=1.7))) == [1.0, 1.25, 1.5]


def test_coupling_colourbar_ticks_stay_inside_their_scale():
    """A tick past the end of a TwoSlopeNorm's range leaves the colourbar empty (a NaN transform): seen on a
    short run's wFFI (0.9608..1.0195 gave a tick at 0.96)."""
    from matplotlib.colors import TwoSlopeNorm

    from tvb_eib_plugin._io.plot import _two_sided_ticks

    rng = np.random.default_rng(0)
    for lo, hi in [(0.9607694745063782, 1.0195106267929077), *rng.uniform([0.0, 1.0001], [0.9999, 3.0], (50, 2))]:
        ticks = _two_sided_ticks(TwoSlopeNorm(vcenter=1.0, vmin=lo, vmax=hi))
        assert np.all((ticks >= lo) & (ticks <= hi)) and 1.0 in ticks
