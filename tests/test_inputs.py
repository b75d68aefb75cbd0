"""Loaders and the errors users get for bad input."""

import numpy as np
import pytest

import tvb_eib_plugin as eib
from tvb_eib_plugin._io.data import Connectome


def test_dk_average_ships_with_labels_weights_lengths_and_fc(dk):
    assert dk.n_regions == 84
    assert dk.labels[0] == "L.BSTS"
    np.testing.assert_allclose(dk.weights.max(), 210222.86, rtol=1e-6)
    np.testing.assert_allclose(dk.tract_lengths.max(), 224.2, rtol=1e-3)
    assert np.all(np.diag(dk.fc_target) == 0)
    off = dk.fc_target[~np.eye(84, dtype=bool)]
    assert abs(off.mean() - 0.234) < 0.001
    assert dk.normalised_weights("max").max() == 1.0


def test_tvb_data_connectivities_load_by_name():
    con = eib.load_dataset("connectivity_76")
    assert con.n_regions == 76 and con.tract_lengths is not None and con.fc_target is None


def test_bids_reader_reads_a_user_folder(tmp_path, dk):
    for measure, mat in [("streamlineCount", dk.weights), ("BoldCorrelation", dk.fc_target)]:
        np.savetxt(tmp_path / f"sub-01_meas-{measure}_relmat.dense.tsv", mat, delimiter="\t")
    with open(tmp_path / "sub-01_nodeindices.tsv", "w") as fh:
        fh.write("matrix_index\tlabel\n" + "".join(f"{i}\t{x}\n" for i, x in enumerate(dk.labels)))
    con = eib.load_bids(tmp_path)
    np.testing.assert_allclose(con.weights, dk.weights)
    assert con.tract_lengths is None and con.labels == dk.labels


@pytest.mark.parametrize("ext", ["npy", "csv", "tsv", "mat"])
def test_matrix_files_of_every_format(tmp_path, ext, dk):
    path = tmp_path / f"fc.{ext}"
    if ext == "npy":
        np.save(path, dk.fc_target)
    elif ext == "mat":
        from scipy.io import savemat

        savemat(path, {"FC": dk.fc_target})
    else:
        np.savetxt(path, dk.fc_target, delimiter="," if ext == "csv" else "\t")
    np.testing.assert_allclose(eib.load_matrix(path), dk.fc_target)


@pytest.mark.parametrize(
    "weights, match",
    [
        (np.ones((3, 4)), "square"),
        (np.array([[0, np.nan], [1, 0]]), "NaN"),
        (np.array([[0, -1.0], [1, 0]]), "negative"),
        (np.zeros((3, 3)), "all zeros"),
    ],
)
def test_bad_weights_are_refused_before_compilation(weights, match):
    with pytest.raises(eib.InputError, match=match):
        eib.network_model(weights)


def test_bad_fc_and_labels_are_refused(dk):
    asym = dk.fc_target.copy()
    asym[0, 1] += 0.3
    with pytest.raises(eib.InputError, match="not symmetric"):
        Connectome(labels=dk.labels, weights=dk.weights, fc_target=asym)
    with pytest.raises(eib.InputError, match="84 regions but the connectivity has 3"):
        Connectome(labels=("a", "b", "c"), weights=np.ones((3, 3)), fc_target=dk.fc_target)
    with pytest.raises(eib.InputError, match="3 entries but there are 84"):
        Connectome(labels=("a", "b", "c"), weights=dk.weights)
    from tvb_eib_plugin._validation import check_labels_agree

    with pytest.raises(eib.InputError, match="different order"):
        check_labels_agree(dk.labels, dk.labels[::-1], "SC", "FC")


def test_unknown_names_and_missing_files_say_what_exists():
    with pytest.raises(eib.InputError, match="known: dk_average"):
        eib.load_dataset("dk_avg")
    with pytest.raises(eib.InputError, match="no such file"):
        eib.load_matrix("/nonexistent/fc.npy")


def test_node_parameters_are_checked():
    with pytest.raises(ValueError, match="unknown node parameter"):
        eib.node_params(4, J_ii=1.0)
    with pytest.raises(ValueError, match="shape"):
        eib.node_params(4, J_i=np.ones(3))


def test_an_fc_file_with_labels_in_another_order_is_reordered_with_a_warning(tmp_path, dk):
    import pandas as pd

    frame = pd.DataFrame(dk.fc_target, index=dk.labels, columns=dk.labels)
    frame.to_csv(tmp_path / "fc_ok.csv")
    assert eib.load_connectome("dk_average", fc=tmp_path / "fc_ok.csv").fc_target.shape == (84, 84)
    order = list(reversed(dk.labels))
    frame.loc[order, order].to_csv(tmp_path / "fc_reordered.csv")
    with pytest.warns(eib.InputWarning, match="another order"):
        con = eib.load_connectome("dk_average", fc=tmp_path / "fc_reordered.csv")
    np.testing.assert_array_equal(con.fc_target, dk.fc_target)
    renamed = frame.rename(index={"L.BSTS": "bankssts"}, columns={"L.BSTS": "bankssts"})
    renamed.to_csv(tmp_path / "fc_other_regions.csv")
    with pytest.raises(eib.InputError, match="only in the FC file's header: \\['bankssts'\\]"):
        eib.load_connectome("dk_average", fc=tmp_path / "fc_other_regions.csv")
    np.testing.assert_allclose(eib.load_matrix(tmp_path / "fc_ok.csv"), dk.fc_target)
