"""What the command shows: its version, and the fit table even when -q silences the progress log."""

import pytest

import tvb_eib_plugin as eib
from tvb_eib_plugin.cli import main


def test_version_is_printed(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"tvb-eib {eib.__version__}"


def test_quiet_run_still_prints_the_fit_of_every_stage(tmp_path, capsys):
    out = tmp_path / "r.nc"
    code = main(["run", "-q", "--routines", "fic", "fic_eib", "--fic-iterations", "12", "--eib-iterations", "5",
                 "--eib-window", "10", "--transient-ms", "7200", "--eval-ms", "21600", "-o", str(out),
                 "--figure", ""])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert not any("Running" in ln for ln in lines), "-q must silence the progress log"
    table = [ln.split()[0] for ln in lines if "fc_corr=" in ln and "fc_rmse=" in ln]
    assert table == ["integration", "fic", "fic_eib"]
    assert out.exists()
