"""What the command shows: its version, the fit table even when -q silences the progress log, and a saved
results file read back by `tvb-eib show`."""

import xarray as xr
import pytest

import tvb_eib_plugin as eib
from tvb_eib_plugin.cli import main

SHORT_RUN = ["--routines", "fic", "fic_eib", "--fic-iterations", "12", "--eib-iterations", "5", "--eib-window", "10",
             "--transient-ms", "7200", "--eval-ms", "21600", "--figure", ""]


@pytest.fixture(scope="module")
def quiet_run(tmp_path_factory):
    """A short quiet run of the reference experiment: its results file and what it printed."""
    out = tmp_path_factory.mktemp("quiet") / "r.nc"
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["run", "-q", *SHORT_RUN, "-o", str(out)])
    return code, out, buffer.getvalue().splitlines()


def test_version_is_printed(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"tvb-eib {eib.__version__}"


def test_quiet_run_still_prints_the_fit_of_every_stage(quiet_run):
    code, out, lines = quiet_run
    assert code == 0
    assert not any("Running" in ln for ln in lines), "-q must silence the progress log"
    table = [ln.split()[0] for ln in lines if "fc_corr=" in ln and "fc_rmse=" in ln]
    assert table == ["integration", "fic", "fic_eib"]
    assert out.exists()


def test_show_prints_the_fit_the_file_holds_and_redraws_the_figure(quiet_run, tmp_path, capsys):
    _, out, _ = quiet_run
    figure = tmp_path / "again.png"
    assert main(["show", str(out), "--figure", str(figure)]) == 0
    printed = {ln.split()[0]: ln.split()[1:3] for ln in capsys.readouterr().out.splitlines() if ln.strip()}
    saved = xr.open_datatree(out)
    for stage in ("integration", "fic", "fic_eib"):
        ev = saved[f"{stage}/evaluation"]
        assert printed[stage] == [f"{float(ev.fc_corr):.4f}", f"{float(ev.fc_rmse):.4f}"], stage
    assert printed["experiment:"] == ["EI_Tuning_FIC_EIB_Optimization"]
    assert figure.stat().st_size > 10_000


def test_show_of_a_file_that_is_not_results_names_it(tmp_path, capsys):
    bad = tmp_path / "notes.nc"
    bad.write_text("not netCDF")
    assert main(["show", str(bad)]) == 2
    assert "notes.nc is not a results file" in capsys.readouterr().err
    assert main(["show", str(tmp_path / "missing.nc")]) == 2
