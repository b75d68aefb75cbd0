"""Data files and suspicious inputs (issue 12, parts 3 and 6).

Part 3: a BIDS relmat TSV whose header lists the regions in another order
than the nodeindices is reordered (with a warning), one naming other regions
is refused; garbage or truncated .npy / .mat / .tsv files are an InputError
naming the file; delays asked for without tract lengths are an InputError
naming the fix.  Part 6: an isolated region, a negative coupling, an FC
diagonal that is not 1 or 0 and a run needing more than a few GB give an
InputWarning; a negative eval_discard is an InputError.  Synthetic networks
of 5 regions; nothing here simulates more than a few TRs.
"""

import dataclasses
import os
import warnings

import jax
import numpy as np
import pytest

import tvb_eib_plugin as eib
from tvb_eib_plugin._io.data import Connectome
from tvb_eib_plugin._experiments.experiment import configure_routines, experiment_network, get_experiment, run_experiment
from tvb_eib_plugin._experiments.memory import GB, check_memory, memory_estimate, run_memory
from tvb_eib_plugin._validation import InputError, InputWarning

N = 5
LABELS = ("A", "B", "C", "D", "E")
# a run that never gets to compute in these tests: each is refused (or warned about) before
TINY = dict(routines=("fic", "fic_eib"), transient_ms=720.0, eval_ms=3 * 720.0, eval_discard=0,
            routine_settings={"fic": {"n_iterations": 10}, "fic_eib": {"n_iterations": 10, "window": 10}}, log=None)


def matrices(seed: int = 0) -> dict[str, np.ndarray]:
    """SC, tract lengths and FC of a 5-region network, all distinct entries (an order shows)."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.1, 1.0, (N, N))
    tl = rng.uniform(3.0, 20.0, (N, N))
    fc = np.corrcoef(rng.standard_normal((N, 40)))
    fc = 0.5 * (fc + fc.T)  # exactly symmetric, as the loaders make it
    np.fill_diagonal(fc, 0.0)
    return {"streamlineCount": w + w.T, "tractLength": tl + tl.T, "BoldCorrelation": fc}


def write_bids(folder, mats: dict, order=LABELS, header: bool = True, labels=LABELS) -> str:
    """A BIDS relmat folder: nodeindices in ``labels`` order, each matrix written in ``order`` (with a header)."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "sub-01_nodeindices.tsv"), "w") as fh:
        fh.write("index\tlabel\n" + "".join(f"{i}\t{x}\n" for i, x in enumerate(labels)))
    for measure, m in mats.items():
        idx = [LABELS.index(x) for x in order][:len(m)]
        with open(os.path.join(folder, f"sub-01_meas-{measure}_relmat.dense.tsv"), "w") as fh:
            if header:
                fh.write("\t".join(order) + "\n")
            fh.writelines("\t".join(repr(float(m[i, j])) for j in idx) + "\n" for i in idx)
    return str(folder)


def subject(mats=None, **changes) -> Connectome:
    mats = mats or matrices()
    kw = dict(labels=LABELS, weights=mats["streamlineCount"], tract_lengths=mats["tractLength"],
              fc_target=mats["BoldCorrelation"], name="sub-01")
    return Connectome(**{**kw, **changes})


# -- part 3: relmat headers ----------------------------------------------------------------------

def test_relmat_header_in_another_order_is_reordered_to_the_nodeindices(tmp_path):
    mats = matrices()
    folder = write_bids(tmp_path / "bids", mats, order=("C", "A", "E", "B", "D"))
    files = ", ".join(f"sub-01_meas-{m}_relmat.dense.tsv" for m in ("BoldCorrelation", "streamlineCount",
                                                                     "tractLength"))
    with pytest.warns(InputWarning, match=files + r" list the regions of sub-01_nodeindices.tsv in another order "
                                                  r"\(first difference: position 0 is 'C' there, 'A' in"):
        con = eib.load_bids(folder)
    assert con.labels == LABELS
    np.testing.assert_array_equal(con.weights, mats["streamlineCount"])
    np.testing.assert_array_equal(con.tract_lengths, mats["tractLength"])
    np.testing.assert_array_equal(con.fc_target, mats["BoldCorrelation"])


def test_relmat_in_nodeindices_order_loads_without_a_warning(tmp_path):
    mats = matrices()
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        con = eib.load_bids(write_bids(tmp_path / "bids", mats))
    np.testing.assert_array_equal(con.weights, mats["streamlineCount"])


def test_relmat_header_naming_other_regions_is_refused(tmp_path):
    folder = write_bids(tmp_path / "bids", matrices(), labels=("A", "B", "C", "D", "X"))
    with pytest.raises(InputError, match=r"only in sub-01_nodeindices.tsv: \['X'\].*only in sub-01_meas-\w+_relmat"
                                         r".dense.tsv: \['E'\]"):
        eib.load_bids(folder)


def test_a_matrix_whose_header_and_label_column_disagree_is_refused(tmp_path):
    path = tmp_path / "fc.tsv"
    fc = matrices()["BoldCorrelation"]
    rows = ["\t" + "\t".join(LABELS)] + [f"{lab}\t" + "\t".join(repr(float(x)) for x in fc[i]) for i, lab in
                                         zip(range(N), reversed(LABELS))]
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(InputError, match="fc.tsv: the header and the label column list the regions differently"):
        eib.load_matrix(path)


def test_a_headerless_relmat_of_another_size_names_the_file(tmp_path):
    mats = matrices()
    mats["tractLength"] = mats["tractLength"][:4, :4]
    folder = write_bids(tmp_path / "bids", mats, header=False)
    with pytest.raises(InputError, match="tractLength_relmat.dense.tsv is 4 x 4 but sub-01_nodeindices.tsv lists 5"):
        eib.load_bids(folder)


# -- part 3: broken files ----------------------------------------------------------------------

def _garbage_npy(path):
    path.write_bytes(b"these bytes are no NumPy file")


def _truncated_npy(path):
    np.save(path, matrices()["streamlineCount"])
    path.write_bytes(path.read_bytes()[:-24])


def _garbage_mat(path):
    path.write_bytes(b"MATLAB? no" * 20)


def _truncated_mat(path):
    from scipy.io import savemat

    savemat(path, {"SC": matrices()["streamlineCount"]})
    path.write_bytes(path.read_bytes()[:150])


def _ragged_tsv(path):
    path.write_text("0\t1\t2\n1\t0\t3\n2\t3\n")  # the last row cut short


def _binary_tsv(path):
    path.write_bytes(bytes(range(256)) * 4)


@pytest.mark.parametrize("name, make, match", [
    ("sc.npy", _garbage_npy, "sc.npy: not a readable NumPy .npy matrix"),
    ("sc.npy", _truncated_npy, r"sc.npy: not a readable NumPy .npy matrix .*could only read"),
    ("sc.mat", _garbage_mat, "sc.mat: not a readable MATLAB .mat file"),
    ("sc.mat", _truncated_mat, "sc.mat: not a readable MATLAB .mat file"),
    ("sc.tsv", _ragged_tsv, "sc.tsv: row 3 of the matrix has 2 values but row 1 has 3; the file is truncated"),
    ("sc.tsv", _binary_tsv, "sc.tsv: not a text matrix"),
], ids=["garbage-npy", "truncated-npy", "garbage-mat", "truncated-mat", "ragged-tsv", "binary-tsv"])
def test_a_broken_matrix_file_is_an_input_error_naming_it(tmp_path, name, make, match):
    make(tmp_path / name)
    with pytest.raises(InputError, match=match):
        eib.load_matrix(tmp_path / name)


def test_a_truncated_nodeindices_table_is_an_input_error(tmp_path):
    folder = write_bids(tmp_path / "bids", matrices())
    path = os.path.join(folder, "sub-01_nodeindices.tsv")
    with open(path, "a") as fh:
        fh.write("5\n")  # a row cut before its label
    with pytest.raises(InputError, match=r"nodeindices.tsv: line 7 has no 'label' column"):
        eib.load_bids(folder)


# -- part 3: delays without tract lengths ------------------------------------------------------------

def test_delays_without_tract_lengths_are_refused_when_building_the_network():
    con = subject(tract_lengths=None)
    with pytest.raises(InputError, match="sub-01 has no tract lengths.*or build the network with delays=False"):
        eib.network_from_connectome(con, delays=True)
    assert eib.network_from_connectome(con, delays=False).coupling.horizon == 1


def test_delays_without_tract_lengths_are_refused_by_experiments_and_cohorts():
    from tvb_eib_plugin._cohorts.cohort import tune_cohort

    con = subject(tract_lengths=None)
    with pytest.raises(InputError, match=r"no tract lengths, but experiment 'Schirner2023' runs with conduction "
                                         r"delays .*delays=False \(command line: drop --delays, or --no-delays\)"):
        experiment_network(get_experiment("Schirner2023"), con)
    with pytest.raises(InputError, match="no tract lengths"):
        run_experiment(connectome=con, delays=True, **TINY)
    with pytest.raises(InputError, match="no tract lengths"):
        tune_cohort(subjects=[con], delays=True, **TINY)


def test_the_command_line_names_the_fix_and_can_turn_delays_off(tmp_path, capsys):
    from tvb_eib_plugin._cli.main import _overrides, _parser, main

    mats = matrices()
    del mats["tractLength"]
    folder = write_bids(tmp_path / "bids", mats)
    code = main(["run", "--connectivity", folder, "--delays", "-q", "-o", str(tmp_path / "r.nc"), "--figure", ""])
    assert code == 2
    assert "drop --delays" in capsys.readouterr().err
    assert _overrides(_parser().parse_args(["run", "--no-delays"]))["delays"] is False
    assert "delays" not in _overrides(_parser().parse_args(["run"]))


def test_twins_refuse_delays_without_tract_lengths_and_a_negative_discard():
    from tvb_eib_plugin._cohorts.twins import twin_subject

    with pytest.raises(InputError, match="no tract lengths"):
        twin_subject(subject(tract_lengths=None), delays=True)
    with pytest.raises(InputError, match="discard must be >= 0"):
        twin_subject(subject(), discard=-5)


# -- part 6: suspicious inputs warn --------------------------------------------------------------

def test_an_isolated_region_is_named_in_a_warning():
    w = matrices()["streamlineCount"].copy()
    w[2, :] = w[:, 2] = 0.0
    w[2, 2] = 1.0  # a self-connection does not connect a region to the network
    with pytest.warns(InputWarning, match=r"1 isolated region\(s\) with no connection to or from any other "
                                          r"region: \['C'\]"):
        Connectome(labels=LABELS, weights=w, name="sub-01")


def test_shipped_and_tvb_data_warn_only_of_their_true_isolated_regions():
    """dk_average and connectivity_66/68/96 load silently; connectivity_76 and _192 have a corpus
    callosum (lCC, rCC) without a single connection in tvb-data, and say so."""
    for name in ("dk_average", "connectivity_66", "connectivity_68", "connectivity_96"):
        with warnings.catch_warnings():
            warnings.simplefilter("error", InputWarning)
            con = eib.load_dataset(name)
            eib.network_from_connectome(con, delays=True)
    for name in ("connectivity_76", "connectivity_192"):
        with pytest.warns(InputWarning, match=r"2 isolated region\(s\).*(\['rCC', 'lCC'\]|\['lCC', 'rCC'\])"):
            eib.load_dataset(name)


def test_a_negative_coupling_warns():
    w = matrices()["streamlineCount"]
    with pytest.warns(InputWarning, match=r"negative coupling: wLRE = -0.5\. A negative"):
        eib.network_model(w, wLRE=-0.5)
    wffi = np.ones((N, N))
    wffi[0, 1] = -2.0
    with pytest.warns(InputWarning, match=r"negative coupling: wFFI has 1 negative entries \(min -2\)\."):
        eib.network_model(w, wFFI=wffi)
    with pytest.warns(InputWarning, match=r"negative coupling: wLRE = -1; wFFI = -1\."):
        experiment_network(get_experiment("EI_Tuning_FIC_EIB_Optimization").replace(coupling=-1.0), subject())


def test_an_fc_diagonal_that_is_not_one_or_zero_warns_and_is_zeroed():
    fc = matrices()["BoldCorrelation"]
    np.fill_diagonal(fc, 0.37)
    with pytest.warns(InputWarning, match=r"FC: 5 diagonal entries are neither 1 nor 0 \(first 0.37 at \[0, 0\]\)"):
        con = subject(fc_target=fc)
    assert np.all(np.diag(con.fc_target) == 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        for diag in (1.0, 0.0, 1.0 - 6e-8):  # a float32 corrcoef's diagonal is 1 to rounding
            np.fill_diagonal(fc, diag)
            subject(fc_target=fc)


def test_a_run_needing_more_than_a_few_gb_warns_with_its_estimate_before_compute():
    # two EIB stages of 10^7 iterations keep 2 x 10^7 records of 4 x 5 float64 values: 3 GB, twice over
    # while stacked; the run stops at the next check (a 2-TR evaluation), so nothing is simulated
    long = dict(TINY, eval_ms=2 * 720.0, routine_settings={"fic": {"n_iterations": 10},
                                                           "fic_eib": {"schedule": ((10**7, 0.01, 10),) * 2}})
    with pytest.warns(InputWarning, match=r"needs about 6.0 GB of memory \(estimate: recorded history 6 GB"), \
            pytest.raises(InputError, match="too few"):
        run_experiment(connectome=subject(), precision="float64", **long)


def test_the_memory_estimate_grows_with_n_and_stays_quiet_for_the_reference_runs(dk):
    big = memory_estimate(8000)  # 8000 regions: 48 float64 N x N arrays alone are 23 GB
    assert big["N x N arrays"] == 48 * 8000**2 * 8
    with pytest.warns(InputWarning, match=r"needs about 22.9 GB of memory \(estimate: N x N arrays 23 GB\)"):
        check_memory(big)
    for name in ("EI_Tuning_FIC_EIB_Optimization", "Schirner2023"):
        settings = get_experiment(name)
        total = sum(run_memory(settings, experiment_network(settings, dk), configure_routines(settings)).values())
        assert total < 1 * GB, (name, total / GB)


# -- part 6: negative eval_discard ---------------------------------------------------------------

def test_a_negative_eval_discard_is_refused():
    with pytest.raises(InputError, match="eval_discard must be >= 0"):
        # 8 TRs: a run that would go ahead, and score the FC of BOLD[-3:], its last 3 samples
        run_experiment(connectome=subject(), **dict(TINY, eval_ms=8 * 720.0, eval_discard=-3))


@pytest.mark.parametrize("case, change, message", [
    ("negative", lambda d: d.__setitem__((0, 1), -8.0), r"1 negative entries \(first -8 ms at \[0, 1\]\)"),
    ("NaN", lambda d: d.__setitem__((2, 3), np.nan), r"NaN/inf entries \(first at \[2, 3\]\)"),
    ("seconds, not ms", lambda d: d.__imul__(1000.0), r"reaches 8000 ms .* speed in mm/ms"),
    ("wrong size", None, r"delays_ms is 3 x 3 but the weights have 4 regions"),
])
def test_delays_that_would_index_outside_the_history_are_refused_where_they_enter_the_model(case, change, message):
    """A negative delay used to become a negative step count: the delayed gather (promised in bounds) read a
    clamped, wrong history entry without a word; a NaN became -2**31.  Both model builders refuse them now."""
    w = np.ones((4, 4)) - np.eye(4)
    d = np.full((4, 4), 8.0) if change is not None else np.full((3, 3), 8.0)
    if change is not None:
        change(d)
    with pytest.raises(InputError, match=message):
        eib.network_model(w, delays_ms=d, dt=4.0)
    with pytest.raises(InputError, match=message):
        eib.dual_coupling(w, delays_ms=d, dt=4.0)


def test_physiological_delays_still_build_the_same_steps():
    w = np.ones((4, 4)) - np.eye(4)
    d = np.array([[0, 3.9, 8.1, 0], [3.9, 0, 12, 999], [8.1, 12, 0, 1], [0, 999, 1, 0]], float)
    net = eib.network_model(w, delays_ms=d, dt=4.0)
    np.testing.assert_array_equal(np.asarray(net.coupling.idelays), np.rint(d / 4.0).astype(np.int32))


@pytest.mark.parametrize("field, value", [("J_i", 1.2), ("J_i", np.ones(3)), ("wLRE", np.ones((3, 3))),
                                          ("wFFI", np.ones(4))])
def test_tuned_parameters_of_another_shape_are_refused_not_broadcast(field, value):
    w = np.ones((4, 4)) - np.eye(4)
    net = eib.network_model(w)
    with pytest.raises(InputError, match=f"with_tuned: {field} must have this network's shape"):
        net.with_tuned(**{field: value})
    with pytest.raises(InputError, match=f"with_tuned: {field} must have this network's shape"):
        net.with_tuned(eib.TunedParams(**dict(dataclasses.asdict(net.tuned), **{field: value})))
    same = net.with_tuned(net.tuned).tuned  # the same shapes pass, values kept
    for a, b in zip(jax.tree_util.tree_leaves(same), jax.tree_util.tree_leaves(net.tuned)):
        np.testing.assert_array_equal(a, b)
