"""Runs that go wrong keep what they computed and say why; outputs are checked first and written whole.

Issue 12 parts 4 (divergence and saturation) and 5 (nothing computed is lost), and the CLI's usage errors
(issue 13).  Every network here is a 4-region toy with a few TRs of tuning, so that the compiled chunks are
shared between tests.
"""

import os
import re

import numpy as np
import pytest
import xarray as xr

import tvb_eib_plugin as eib
from tvb_eib_plugin._cli.main import main
from tvb_eib_plugin._io.data import Connectome
from tvb_eib_plugin._experiments.experiment import run_experiment
from tvb_eib_plugin._io.results import load_results, save_results
from tvb_eib_plugin.routines.schedule import EIBStage

N = 4
RNG = np.random.default_rng(0)
W = RNG.uniform(0.2, 1.0, (N, N)) * (1 - np.eye(N))
FC = np.corrcoef(RNG.normal(size=(N, 50)))
LABELS = tuple(f"r{i}" for i in range(N))
#: targets the toy cannot reach: every pair far more (or far less) correlated than it can be
HIGH = np.clip(0.7 + 0.1 * FC, -1, 1) * (1 - np.eye(N))
NEGATIVE = np.clip(-0.4 + 0.1 * FC, -1, 1) * (1 - np.eye(N))


def toy(fc=FC, name="toy"):
    return Connectome(labels=LABELS, weights=W, fc_target=fc, name=name)


def short(fc=FC, eib_settings=None, **overrides):
    """FIC 20 TRs and FIC+EIB on a 10-TR window, both in chunks of 10; a 45-TR transient, 50-TR evaluations
    (simulated 5 + 45 TRs: two compiled chunk lengths for all of it)."""
    kw = dict(connectome=toy(fc), transient_ms=32400.0, eval_ms=36000.0, log=None,
              routines=("fic", "fic_eib"),
              routine_settings={"fic": {"n_iterations": 20},
                                "fic_eib": dict({"n_iterations": 30, "window": 10, "log_every": 10},
                                              **(eib_settings or {}))})
    kw.update(overrides)
    return kw


#: an EIB rate 2000 times the reference's: the weights leave every sensible range within a few chunks
FAST = {"schedule": (EIBStage(100, 10.0, 10),)}


def write_bids(folder, fc=FC):
    """The toy as a BIDS relmat folder (for the CLI)."""
    folder.mkdir()
    (folder / "atlas-toy_nodeindices.tsv").write_text(
        "matrix_index\tnode_file\tnode_index\tlabel\n" + "".join(f"{i}\tatlas-toy\t{i}\t{x}\n"
                                                                for i, x in enumerate(LABELS)))
    np.savetxt(folder / "atlas-toy_meas-streamlineCount_relmat.dense.tsv", W, delimiter="\t")
    np.savetxt(folder / "atlas-toy_meas-BoldCorrelation_relmat.dense.tsv", fc, delimiter="\t")
    return str(folder)


CLI_SHORT = ["--routines", "fic", "fic_eib", "--fic-iterations", "20", "--eib-window", "10", "--transient-ms", "32400",
             "--eval-ms", "36000", "-q"]


# -- part 4: divergence and saturation -------------------------------------------------------------------------

def test_a_start_saturated_by_its_coupling_stops_at_integration_and_says_why():
    """Coupling 50 pins S_e at 1 everywhere: the old runner returned NaN as the stage's fit without a word
    (after a 7.2 s transient, 0.54: the score of the flat BOLD's HRF tail)."""
    from tvb_eib_plugin._simulation.divergence import ActivitySaturated

    with pytest.raises(ActivitySaturated, match=r"stage 'integration' failed: S_e is pinned at 1 in 4 region") as info:
        run_experiment(**short(coupling=50.0))
    err = info.value
    assert "too strong for this SC" in str(err) and "r0" in str(err)
    tree = err.results
    assert tree.attrs["status"] == "failed" and tree.attrs["failed_stage"] == "integration"
    assert tree["integration"].attrs["status"] == "failed" and "evaluation" not in tree["integration"].children
    assert float(tree["integration"].wLRE.max()) == 50.0


def test_saturation_during_fic_eib_keeps_the_stages_before_it_and_its_partial_history(tmp_path):
    """A target FC the toy cannot reach and a huge EIB rate saturate it (S_e at 1 for a whole chunk);
    the old runner went on to a NaN window FC some chunks later, raised a bare error and kept nothing."""
    from tvb_eib_plugin._simulation.divergence import ActivitySaturated

    with pytest.raises(ActivitySaturated, match=r"stage 'fic_eib' failed: S_e is pinned at 1 ") as info:
        run_experiment(**short(HIGH, FAST))
    err = info.value
    assert err.stage == "fic_eib" and "too strong for this SC" in str(err)
    last = int(re.search(r"for all 10 TRs of iterations \d+\.\.(\d+)", str(err)).group(1))
    assert 10 < last < 100
    tree = err.results
    assert list(tree.children) == ["integration", "fic", "fic_eib"]
    assert "status" not in tree["fic"].attrs and np.isfinite(float(tree["fic/evaluation"].fc_corr))
    failed = tree["fic_eib"]
    assert failed.attrs["status"] == "failed" and failed.attrs["error"] == str(err)
    assert failed["history"].sizes["iteration"] == last  # the failing chunk's records show the cause
    assert float(failed["history"].mean_S_e[-10:, err.regions].min()) == 1.0
    # the partial results survive netCDF
    back = load_results(save_results(tree, tmp_path / "partial.nc"))
    assert back["fic_eib"].attrs["status"] == "failed" and back.attrs["failed_stage"] == "fic_eib"
    xr.testing.assert_identical(back["fic/evaluation"].to_dataset(), tree["fic/evaluation"].to_dataset())


def test_runaway_weights_stop_the_run():
    """A target FC below what the toy can reach drives wFFI up without limit; the old runner returned
    wFFI = 716 (from 1) without a word."""
    from tvb_eib_plugin._simulation.divergence import WeightsRunaway

    with pytest.raises(WeightsRunaway, match=r"stage 'fic_eib' failed: wFFI reached .* over 100x its starting"):
        run_experiment(**short(NEGATIVE, FAST))


def test_a_coupling_sweep_never_picks_a_saturated_coupling():
    """At G = 50 the toy is pinned at S_e = 1 and its scored BOLD is the HRF's tail; against this target
    that tail scores 0.34 and the old sweep picked it over G = 1 (-0.71), then evaluated it flat."""
    tree = run_experiment(connectome=toy(-0.5 * FC * (1 - np.eye(N))), transient_ms=720.0, eval_ms=36000.0, log=None,
                          routines=("global_coupling",),
                          routine_settings={"fic": {"n_iterations": 10},
                                            "global_coupling": {"g_min": 1.0, "g_max": 50.0, "n_values": 2,
                                                                "eta_fic": 0.0, "fic_iterations": 1,
                                                                "score_iterations": 20, "discard": 0,
                                                                "log_every": 10}})
    h = tree["global_coupling/history"]
    assert np.isnan(float(h.fc_corr.sel(G=50.0))) and np.isfinite(float(h.fc_corr.sel(G=1.0)))
    assert float(tree["global_coupling"].wLRE.max()) == 1.0


def test_an_undefined_evaluation_fc_is_an_error_not_nan():
    """A target FC whose pairs are all equal makes fc_corr NaN; the old runner scored the first stages NaN,
    then stopped in FIC+EIB with a bare NaN error that named no stage and kept nothing."""
    flat = np.full((N, N), 0.3) * (1 - np.eye(N))
    with pytest.raises(eib.SimulationDiverged, match=r"stage 'integration' failed: the evaluation FC fit is NaN"):
        run_experiment(**short(flat))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_flat_bold_is_an_error_not_a_rounding_noise_fc(dtype):
    """A noise-free toy at its fixed point: its BOLD varies only by rounding (3e-15 in float64, 3e-6 in
    float32); the old evaluation scored that as FC (fc_corr 0.38, 0.67)."""
    import jax

    from tvb_eib_plugin._simulation.divergence import ActivitySaturated
    from tvb_eib_plugin._simulation.evaluation import evaluate

    net = eib.network_from_connectome(toy(), delays=False, sigma_e=0.0, dtype=np.dtype(dtype))
    state = eib.simulate(net, eib.initial_state(net, 0), 64800.0, chunk_trs=45).state
    with pytest.raises(ActivitySaturated, match="BOLD is flat"):
        evaluate(net, state, FC, jax.random.key(1), 36000.0, 20)


def test_the_window_correlation_stays_within_minus_one_and_one():
    """Moments about a stale reference lose digits: two equal signals that drift away from it after the
    rebuild give a raw moment ratio of 1.8e18 (and equal signals at the reference, 1 + 1 ulp)."""
    import jax
    import jax.numpy as jnp

    from tvb_eib_plugin._simulation.window import window_fc, window_init, window_push

    def raw(w):  # the old formula, from the window's own moments
        size = float(w.size)
        mean = np.asarray(w.total) / size
        cov = np.asarray(w.outer) / size - np.outer(mean, mean)
        std = np.sqrt(np.maximum(np.diag(cov), 1e-30))
        return (cov / np.outer(std, std))[~np.eye(len(std), dtype=bool)]

    init, push = jax.jit(window_init, static_argnums=(1, 2)), jax.jit(window_push)  # two compilations, not 40
    rng = np.random.default_rng(3)
    equal = rng.normal(size=(30, 1)) * 7.3 + 2.1
    w = init(np.concatenate([equal, equal, 3 * equal + 1], axis=1), 30, 30)
    drift = init(rng.normal(size=(30, 3)) * 1e-3, 30, 30)
    for _ in range(30):
        v = 100.0 + 1e-6 * rng.normal(size=3)
        v[1] = v[0]
        drift = push(drift, jnp.asarray(v))
    for win in (w, drift):
        assert np.abs(raw(win)).max() > 1.0  # what the FC was before the clip
        fc = np.asarray(window_fc(win))
        assert np.abs(fc).max() <= 1.0 and np.all(np.diag(fc) == 0)


def test_the_evaluation_fc_stays_within_minus_one_and_one():
    import jax.numpy as jnp

    x = np.random.default_rng(3).normal(size=(40, 1))
    bold = jnp.asarray(np.concatenate([x, x, x * 3.0, -x], axis=1))
    z = bold - bold.mean(axis=0)
    z = z / jnp.sqrt(jnp.sum(z * z, axis=0))
    off = ~np.eye(N, dtype=bool)
    assert np.abs(np.asarray(z.T @ z)[off]).max() > 1.0  # the old formula: equal signals at 1 + 1 ulp
    assert float(jnp.abs(eib.fc(bold)).max()) <= 1.0


def test_the_cli_writes_the_finished_stages_of_a_run_that_diverged(tmp_path, capsys):
    """Exit 3, the failed stage marked in the results file, and where it is, on stderr; the old CLI wrote
    the runaway weights (wFFI 700x its start) as results, and exit 0."""
    out = tmp_path / "run.nc"
    rc = main(["run", "--connectivity", write_bids(tmp_path / "toy", NEGATIVE), "--stages", "1",
               "--stage-iterations", "10", "--stage-eta", "10", *CLI_SHORT, "-o", str(out),
               "--figure", str(tmp_path / "fig.png")])
    err = capsys.readouterr().err
    assert rc == 3, err
    assert "stage 'fic_eib' failed" in err and str(out) in err
    tree = load_results(out)
    assert tree["fic_eib"].attrs["status"] == "failed" and "evaluation" in tree["fic"].children
    assert not (tmp_path / "fig.png").exists()


# -- part 5: nothing computed is lost -----------------------------------------------------------------------------

def _tree():
    return xr.DataTree.from_dict({"/": xr.Dataset({"a": ("x", np.arange(3.0))}, attrs={"run": "first"})})


def test_save_results_refuses_an_existing_file_unless_asked_and_writes_atomically(tmp_path):
    path = tmp_path / "r.nc"
    save_results(_tree(), path)
    with pytest.raises(eib.InputError, match="exists; pass overwrite=True"):
        save_results(_tree(), path)
    # a write that fails half way (an attribute netCDF cannot hold) leaves the file there as it was;
    # the old save_results truncated it first
    bad = _tree()
    bad.attrs["run"] = {"not": "netCDF"}
    with pytest.raises(Exception):
        save_results(bad, path, overwrite=True)
    assert load_results(path).attrs["run"] == "first"
    assert sorted(os.listdir(tmp_path)) == ["r.nc"]  # no temporary file left behind
    again = _tree()
    again.attrs["run"] = "second"
    save_results(again, path, overwrite=True)
    assert load_results(path).attrs["run"] == "second"


def test_the_cli_refuses_existing_outputs_before_computing(tmp_path, capsys):
    out = tmp_path / "r.nc"
    out.write_bytes(b"an earlier run")
    assert main(["run", *CLI_SHORT, "-o", str(out), "--figure", ""]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"an earlier run"
    fig = tmp_path / "f.png"
    fig.write_bytes(b"png")
    assert main(["run", *CLI_SHORT, "-o", str(tmp_path / "new.nc"), "--figure", str(fig)]) == 2
    assert "--figure" in capsys.readouterr().err and not (tmp_path / "new.nc").exists()


def test_unwritable_outputs_are_refused_before_computing(tmp_path, capsys):
    """Under a regular file no folder can be made: the old CLI computed, then failed writing."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    for args in (["-o", str(blocker / "r.nc")], ["-o", str(tmp_path / "r.nc"), "--figure", str(blocker / "f.png")],
                 ["-o", str(tmp_path / "r.nc"), "--checkpoint", str(blocker / "ck.npz")]):
        assert main(["run", *CLI_SHORT, *args]) == 2, args
        assert "is a file; choose another path" in capsys.readouterr().err
    with pytest.raises(eib.InputError, match="fic_eib checkpoint: cannot create"):  # the API checks it too
        run_experiment(**short(eib_settings={"checkpoint": str(blocker / "runs" / "ck.npz")}))


def test_cohort_subjects_that_map_to_one_file_are_refused(tmp_path):
    """'sub 01' and 'sub_01' both map to sub_01.nc: the old code wrote the second over the first and returned
    the second's results under both names."""
    pytest.importorskip("dask.distributed")
    from tvb_eib_plugin._cohorts.distributed import tune_cohort_distributed

    for names in (("sub 01", "sub_01"), ("Sub-01", "sub-01")):
        with pytest.raises(eib.InputError, match="would both be written to"):
            tune_cohort_distributed(subjects=[toy(name=n) for n in names], out_dir=tmp_path / "out", log=None,
                                    **{k: v for k, v in short().items() if k not in ("connectome", "log")})
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(eib.InputError, match="out_dir: cannot create"):
        tune_cohort_distributed(subjects=[toy(name="a")], out_dir=blocker / "out", log=None)


def test_a_corrupt_subject_file_is_tuned_again(tmp_path):
    """A truncated file in out_dir counted as done before ("2 already in"), and the final join died on it
    with an HDF error."""
    pytest.importorskip("dask.distributed")
    from dask.distributed import Client

    from tvb_eib_plugin._cohorts.distributed import IncompleteSubjectWarning, subject_file, tune_cohort_distributed

    settings = dict({k: v for k, v in short().items() if k not in ("connectome", "log")}, routines=("fic",),
                    routine_settings={"fic": {"n_iterations": 10}})
    cohort = [toy(name="sub-a"), toy(FC[::-1, ::-1], name="sub-b")]
    out = tmp_path / "out"
    # a real Dask cluster, in this process so that both calls share one compilation (batches of 1)
    with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=":0") as client:
        first = tune_cohort_distributed(subjects=cohort, out_dir=out, client=client, batch_size=1, log=None,
                                        **settings)
        path = subject_file(out, "sub-b")
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)
        lines = []
        with pytest.warns(IncompleteSubjectWarning, match="sub-b.nc: it does not open"):
            again = tune_cohort_distributed(subjects=cohort, out_dir=out, client=client, batch_size=1,
                                            log=lines.append, **settings)
    assert "1 already in" in lines[0] and "1 to tune" in lines[0]
    xr.testing.assert_identical(again["fic"].to_dataset(), first["fic"].to_dataset())


# -- the CLI's usage errors (issue 13) ------------------------------------------------------------------------------

def test_a_stage_count_mismatch_is_a_usage_error(tmp_path, capsys):
    """The old CLI raised SystemExit(str): exit status 1, like a crash."""
    rc = main(["run", "--stages", "3", "--stage-iterations", "10", "20", *CLI_SHORT, "-o", str(tmp_path / "r.nc")])
    assert rc == 2 and "--stages 3 but 2 stage lengths" in capsys.readouterr().err


def test_a_gradient_too_short_for_its_discard_is_refused_before_computing(tmp_path, capsys):
    """--gradient-ms 14400 is 20 TRs, fewer than the 30 discarded: the old CLI ran FIC and FIC+EIB first,
    then died with a ValueError traceback."""
    rc = main(["run", "--gradient-ms", "14400", "--fic-iterations", "20", "--eib-window", "10",
               "--transient-ms", "7200", "--eval-ms", "36000", "-q", "-o", str(tmp_path / "r.nc")])
    err = capsys.readouterr().err
    assert rc == 2 and "--gradient-ms" in err and "at least 28800" in err
    assert not (tmp_path / "r.nc").exists()


def test_a_transient_shorter_than_a_tr_is_refused(tmp_path, capsys):
    """The old CLI died with a ValueError traceback from the simulation."""
    rc = main(["run", *CLI_SHORT, "--transient-ms", "100", "-o", str(tmp_path / "r.nc")])
    assert rc == 2 and "--transient-ms" in capsys.readouterr().err


def test_a_run_given_another_fc_is_not_shown_beside_the_published_numbers_or_titled_empirical(tmp_path):
    """dk_average with a user's FC: the closing table must not print the data set's published fits, and the
    results (and so the figure) must say the target was given, not empirical."""
    from tvb_eib_plugin._io.plot import target_kind

    con = eib.load_dataset("dk_average")
    other = np.corrcoef(np.random.default_rng(0).normal(size=(84, 200)))
    path = tmp_path / "my_fc.npy"
    np.save(path, other)
    lines = []
    short = dict(routines=("fic",), transient_ms=7200.0, eval_ms=21600.0, eval_discard=5,
                 routine_settings={"fic": {"n_iterations": 10}})
    tree = run_experiment(connectome="dk_average", fc_target=str(path), log=lines.append, **short)
    assert tree.attrs["fc_source"] == f"file {path}" and target_kind(tree.attrs) == "given"
    table = lines[lines.index(next(ln for ln in lines if "published (fc_corr" in ln)):]
    assert not any("(0.136, 0.276)" in ln for ln in table), table
    own_lines = []
    own = run_experiment(connectome=con, log=own_lines.append, **short)
    assert "fc_source" not in own.attrs and target_kind(own.attrs) == "empirical"
    # its own FC, but a shortened run (7.2 s transient, 10 FIC TRs): not the published one either
    assert not any("(0.136, 0.276)" in ln for ln in own_lines)
    # (the reference run itself prints them: tests/test_experiment.py::test_reference_log_follows_the_seed)
