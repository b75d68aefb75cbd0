"""Paths between the plugin and the outside: the noise TVB is given, the tuned model read back from
results, TVB connectivity zips, and the command line's error paths."""

import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tvb.simulator import monitors

import tvb_eib_plugin as eib
from tvb_eib_plugin._model.coupling import effective
from tvb_eib_plugin._simulation.evaluation import Evaluation
from tvb_eib_plugin._model.integrate import draw_noise, integrate
from tvb_eib_plugin._io.results import StageRecord, build_results, load_results, save_results, tuned_model


def test_exported_simulator_gets_nsig_half_sigma_squared_and_follows_the_plugins_noisy_run(feed_tvb_noise):
    """TVB's Additive noise has increment sqrt(dt) sqrt(2 nsig) N(0, 1), ours sigma sqrt(dt) N(0, 1): the
    export must set nsig = sigma^2 / 2 per population.  Checked on the value and on the run: the exported
    Simulator (dual coupling, noise on S_e and S_i), fed our noise sequence, follows our trajectory."""
    from tvb_eib_plugin.tvb._export import tvb_simulator

    rng = np.random.default_rng(4)
    n, dt, steps = 5, 1.0, 300
    net = eib.network_model(rng.uniform(0, 1, (n, n)) * (1 - np.eye(n)), dt=dt, sigma_e=0.012, sigma_i=0.005,
                            wLRE=rng.uniform(0.5, 1.5, (n, n)), wFFI=rng.uniform(0.5, 1.5, (n, n)))
    sim = tvb_simulator(net, [f"r{i}" for i in range(n)], monitors=(monitors.Raw(),), simulation_length=steps * dt)
    nsig = np.broadcast_to(np.asarray(sim.integrator.noise.nsig, np.float64).reshape(2, -1), (2, n))
    np.testing.assert_allclose(nsig, np.repeat([[0.012**2 / 2], [0.005**2 / 2]], n, axis=1), rtol=1e-12)

    z = draw_noise(net.integrator, jax.random.key(2), steps, n, jnp.float64)
    start = eib.initial_state(net, 0, S0=0.001)
    _, (S_e, S_i) = integrate(net.node, effective(net.coupling), net.integrator, start.integ, z, steps)
    calls = feed_tvb_noise(z, [0.012, 0.005])
    (_, y), = sim.run()
    assert len(calls) == steps
    err = np.abs(np.stack([np.asarray(S_e), np.asarray(S_i)], axis=1) - y[..., 0]).max()
    print(f"exported noisy run: max |plugin - TVB| = {err:.1e}")
    assert err < 1e-7 and np.ptp(y[:, 0]) > 0.3


def _tree_of(model, labels):
    n = model.n_regions
    ev = Evaluation(fc=np.zeros((n, n)), fc_corr=0.0, fc_corr_all=0.0, fc_rmse=0.0, bold=np.zeros((3, n)),
                    mean_S=np.zeros((3, 2, n)), S_e_trace=np.zeros((2, n)), discard=0)
    return build_results([StageRecord("fic_eib", model, ev)], labels, np.zeros((n, n)),
                         np.asarray(model.coupling.weights), {})


def test_tuned_model_reads_regions_in_order_receiving_row_sending_column(tmp_path):
    """Distinct values everywhere and asymmetric matrices: region k's J_i and edge j -> i (row i,
    column j) come back where they were, through netCDF, and not transposed."""
    n = 4
    labels = ["lh.A", "rh.B", "lh.C", "rh.D"]
    base = eib.network_model(np.ones((n, n)) - np.eye(n))
    tuned = base.with_tuned(J_i=[0.5, 0.6, 0.7, 0.8], wLRE=np.arange(16.0).reshape(4, 4) / 10,
                            wFFI=np.arange(16.0).reshape(4, 4).T / 20)
    tree = load_results(save_results(_tree_of(tuned, labels), tmp_path / "r.nc"))
    assert float(tree["fic_eib"]["wLRE"].sel(region="rh.B", region_j="lh.C")) == 0.6  # row 1, column 2
    back = tuned_model(tree, "fic_eib", base)
    for name in ("J_i",):
        np.testing.assert_array_equal(np.asarray(back.node.J_i), [0.5, 0.6, 0.7, 0.8], err_msg=name)
    np.testing.assert_array_equal(np.asarray(back.coupling.wLRE), np.arange(16.0).reshape(4, 4) / 10)
    np.testing.assert_array_equal(np.asarray(back.coupling.wFFI), np.arange(16.0).reshape(4, 4).T / 20)
    np.testing.assert_array_equal(np.asarray(back.coupling.weights), np.asarray(base.coupling.weights))
    with pytest.raises(ValueError, match="4 regions, the model 3"):
        tuned_model(tree, "fic_eib", eib.network_model(np.ones((3, 3)) - np.eye(3)))


def _write_tvb_zip(path, labels, weights, lengths):
    """A connectivity zip as TVB writes them: weights.txt, tract_lengths.txt, centres.txt (label x y z)."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("weights.txt", "\n".join(" ".join(f"{x:.6f}" for x in row) for row in weights) + "\n")
        z.writestr("tract_lengths.txt", "\n".join(" ".join(f"{x:.6f}" for x in row) for row in lengths) + "\n")
        z.writestr("centres.txt", "".join(f"{lab} {i}.0 {2 * i}.0 {-i}.0\n" for i, lab in enumerate(labels)))


def test_a_tvb_connectivity_zip_loads_with_its_labels_weights_and_lengths(tmp_path):
    labels = ["ctx-lh-a", "ctx-lh-b", "ctx-rh-a", "ctx-rh-b"]
    weights = np.array([[0, 2.0, 0, 1.0], [3.0, 0, 0.5, 0], [0, 0.25, 0, 4.0], [1.5, 0, 2.5, 0]])  # asymmetric
    lengths = np.array([[0, 12.0, 30.0, 45.0], [12.0, 0, 33.0, 27.0], [30.0, 33.0, 0, 9.0], [45.0, 27.0, 9.0, 0]])
    path = tmp_path / "my_connectivity.zip"
    _write_tvb_zip(path, labels, weights, lengths)
    con = eib.load_connectome(str(path), speed=3.0)
    assert list(con.labels) == labels
    np.testing.assert_array_equal(con.weights, weights)
    np.testing.assert_array_equal(con.tract_lengths, lengths)
    assert con.speed == 3.0 and con.fc_target is None
    net = eib.network_from_connectome(con, delays=True, dt=1.0)
    np.testing.assert_array_equal(np.asarray(net.coupling.weights), weights / 4.0)  # W / max W, rows kept
    np.testing.assert_array_equal(np.asarray(net.coupling.idelays), np.rint(lengths / 3.0).astype(int))
    with pytest.raises(eib.InputError, match="cannot load TVB connectivity"):
        eib.load_connectome(str(tmp_path / "missing.zip"))


def test_cli_list_names_the_experiments_routines_and_data_sets(capsys):
    from tvb_eib_plugin._cli.main import main

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "experiment EI_Tuning_FIC_EIB_Optimization" in out
    assert "experiment Schirner2023 (variants: EI, E, E_noFFI, global)" in out
    for routine in ("routine fic:", "routine fic_eib (after fic):", "routine gradient_eib", "routine global_coupling"):
        assert routine in out, routine
    assert "data sets: dk_average" in out and "connectivity_76" in out


def test_cli_refuses_a_bad_fc_file_and_a_bad_variant_with_exit_2(tmp_path, capsys):
    from tvb_eib_plugin._cli.main import main

    common = ["--transient-ms", "720", "--eval-ms", "7200", "-o", str(tmp_path / "r.nc"), "--figure", "", "-q"]
    assert main(["run", "--fc", str(tmp_path / "nope.npy")] + common) == 2
    assert "no such file" in capsys.readouterr().err
    np.save(tmp_path / "small.npy", np.eye(3))
    assert main(["run", "--fc", str(tmp_path / "small.npy")] + common) == 2
    assert "3 regions" in capsys.readouterr().err
    assert main(["run", "--experiment", "Schirner2023", "--variant", "IE"] + common) == 2
    err = capsys.readouterr().err
    assert "no variant 'IE'" in err and "'E', 'EI', 'E_noFFI', 'global'" in err
    assert main(["run", "--experiment", "Schirner2024"] + common) == 2
    assert "no experiment 'Schirner2024'" in capsys.readouterr().err
    assert not (tmp_path / "r.nc").exists()  # nothing ran, nothing written
