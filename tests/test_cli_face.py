"""What the command shows: its version, nothing but errors with -q, debug lines with -v, routine settings from
--set, errors in the command's own terms (its flags, not the Python arguments), a live bar that keeps its room at
80 columns, and a saved results file read back by `tvb-eib show`."""

import io
import json
import re
import subprocess
import sys

import xarray as xr
import pytest

import tvb_eib_plugin as eib
from tvb_eib_plugin._cli.main import _command_actions, _overrides, _parser, main
from tvb_eib_plugin._cli.settings import cli_names, in_cli_terms
from tvb_eib_plugin.routines.progress import MIN_BAR, ChunkProgress, bar_postfix, log_info

SHORT_RUN = ["--routines", "fic", "fic_eib", "--fic-iterations", "12", "--eib-iterations", "5", "--eib-window", "10",
             "--transient-ms", "7200", "--eval-ms", "21600", "--figure", ""]


@pytest.fixture(scope="module")
def quiet_run(tmp_path_factory):
    """A short quiet run of the reference experiment as a script or CI runs it (stdout a pipe), one FIC+EIB
    rate set with --set: its exit status, results file, stdout and stderr."""
    out = tmp_path_factory.mktemp("quiet") / "r.nc"
    run = subprocess.run([sys.executable, "-m", "tvb_eib_plugin", "run", "-q", *SHORT_RUN, "-o", str(out),
                          "--set", "fic_eib.eta_eib=0.004"], capture_output=True, text=True, timeout=300)
    return run.returncode, out, run.stdout, run.stderr


def test_version_is_printed(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"tvb-eib {eib.__version__}"


def test_quiet_prints_nothing_but_errors_and_still_writes_the_results(quiet_run):
    """-q printed the table of the fit and the output path before; TVB's import-time warnings must not leak."""
    code, out, stdout, stderr = quiet_run
    assert code == 0, stderr
    assert stdout == "" and stderr == ""
    assert out.exists()


def test_set_reaches_the_routine_beside_its_own_flags(quiet_run):
    _, out, _, _ = quiet_run
    settings = json.loads(xr.open_datatree(out)["fic_eib"].attrs["settings"])
    assert settings["eta_eib"] == 0.004 and settings["n_iterations"] == 5 and settings["window"] == 10


def _args(*argv):
    return _parser().parse_args(["run", *argv])


def test_set_values_are_read_as_their_settings_declare_and_merged_per_routine():
    out = _overrides(_args("--eib-iterations", "5", "--set", "fic_eib.eta_eib=1", "--set", "fic.rule=rate",
                           "--set", "fic_eib.checkpoint=none", "--set", "fic.n_iterations=3e2",
                           "--set", "coupling=0.3", "--set", "delays=true", "--set", "gradient_eib.n_steps=2"))
    eta = out["routine_settings"]["fic_eib"]["eta_eib"]
    assert eta == 1.0 and isinstance(eta, float)
    assert out["routine_settings"] == {"fic_eib": {"n_iterations": 5, "eta_eib": 1.0, "checkpoint": None},
                                       "fic": {"rule": "rate", "n_iterations": 300},
                                       "gradient_eib": {"n_steps": 2}}
    assert out["coupling"] == 0.3 and out["delays"] is True


@pytest.mark.parametrize("argv, says", [
    (["--set", "fic_eb.eta=1"], r"--set fic_eb.eta=1: no routine 'fic_eb'; known: fic, fic_eib, global_coupling"),
    (["--set", "fic_eib.eta=1"], r"--set fic_eib.eta=1: routine fic_eib has no parameter 'eta'; known: rule, eta_fic"),
    (["--set", "coupling"], r"--set coupling: expected ROUTINE.PARAM=VALUE .* or SETTING=VALUE"),
    (["--set", "G=0.3"], r"--set G=0.3: no experiment setting 'G'; known: .*coupling.*; or name a routine's parameter"),
    (["--set", "fic_eib.eta_eib=fast"], r"--set fic_eib.eta_eib=fast: expected a number, got 'fast'"),
    (["--set", "fic.n_iterations=1.5"], r"--set fic.n_iterations=1.5: expected a whole number"),
    (["--set", "fic_eib.eta_eib=5"], r"--set fic_eib.eta_eib=5: must be within \[0, 1\], got 5"),
    (["--set", "fic.rule=fast"], r"--set fic.rule=fast: .*must be one of \('gating', 'rate'\)"),
    (["--set", "gradient_eib.optimizer=adam"], r"--set gradient_eib.optimizer=adam: takes a GradientTransformation"),
    (["--fic-iterations", "0"], r"--fic-iterations 0: must be within \[1, 1e\+07\], got 0"),
    (["--fic-iterations", "20", "--set", "fic.n_iterations=30"],
     r"fic.n_iterations is given twice, by --fic-iterations 20 and by --set fic.n_iterations=30: give it once"),
    (["--routines", "fic", "fic_eib", "--set", "gradient_eib.n_steps=3"],
     r"--set gradient_eib.n_steps=3 sets gradient_eib, which this run does not include \(it runs fic, fic_eib\): "
     r"add gradient_eib to --routines"),
])
def test_bad_settings_from_the_command_line_name_the_flag_and_the_known_names(argv, says, tmp_path, capsys):
    """Before, --set did not exist, and a bad --fic-iterations read "bad settings for routine 'fic'
    ({'n_iterations': 0, 'seed': 0})" with neotraits' attribute dump."""
    assert main(["run", *argv, "-o", str(tmp_path / "r.nc"), "--figure", ""]) == 2
    err = capsys.readouterr().err
    assert re.search(says, err), err
    assert err.count("\n") == 1 and not (tmp_path / "r.nc").exists()


def test_api_errors_reach_the_command_line_user_in_flags(tmp_path, capsys):
    """run_experiment's own checks, as the CLI shows them: before, "pass fc_target= (array or file)" and
    "eval_ms=1000.0 ... lower eval_discard", names the command line has no flag for."""
    common = ["-o", str(tmp_path / "r.nc"), "--figure", ""]
    assert main(["run", "--connectivity", "connectivity_76", *common]) == 2
    err = capsys.readouterr().err
    assert "has no target FC: pass --fc " in err and "fc_target" not in err
    assert main(["run", "--eval-ms", "1000", *common]) == 2
    err = capsys.readouterr().err
    assert "error: --eval-ms 1000.0 gives 1 BOLD samples" in err and "lower --set eval_discard" in err
    assert "eval_ms" not in err


def test_the_translation_comes_from_the_parser_and_leaves_paths_and_flags_alone():
    names, params = cli_names(_command_actions("run"))
    assert names["fc_target"].text == "--fc" and names["connectome"].text == "--connectivity"
    assert params["fic"]["n_iterations"].text == "--fic-iterations"
    assert params["fic_eib"]["eta_eib"].text == "--set fic_eib.eta_eib"
    say = lambda message: in_cli_terms(message, names, params)  # noqa: E731
    assert say("run without delays: delays=False; or delays=True") == "run without delays: --no-delays; or --delays"
    assert say("read /data/fc_target.npy and fc_target_2; set fc_target=") == \
        "read /data/fc_target.npy and fc_target_2; set --fc"
    assert say("transient_ms=100 is short; lengthen it (CLI --transient-ms)") == \
        "--transient-ms 100 is short; lengthen it"
    assert say("eval_discard=20 too many; lower eval_discard") == \
        "--set eval_discard=20 too many; lower --set eval_discard"
    # a routine's parameter only where the message names the routine, and only if no other named one shares it
    assert say("fic_eib: record_every (3) must divide log_every") == \
        "fic_eib: --set fic_eib.record_every (3) must divide --set fic_eib.log_every"
    assert say("lower `window`") == "lower `window`"
    assert say("fic_eib: lower `window`") == "fic_eib: lower --eib-window"
    assert say("fic and fic_eib: lower `window`") == "fic and fic_eib: lower `window`"
    assert say("gradient_eib: duration_ms=7200 is short") == "gradient_eib: --gradient-ms 7200 is short"


def test_verbose_adds_the_resolved_run_and_jax_devices_as_debug_lines(tmp_path, capsys):
    argv = ["run", "--eval-ms", "1000", "--set", "fic_eib.eta_eib=0.01", "-o", str(tmp_path / "r.nc"), "--figure", ""]
    assert main(argv) == 2  # refused before compute: what -v shows comes first
    assert "tvb-eib: run_experiment(" not in capsys.readouterr().out
    assert main([*argv, "-v"]) == 2
    out = capsys.readouterr().out
    assert "tvb-eib: run_experiment('EI_Tuning_FIC_EIB_Optimization', eval_ms=1000.0, " \
           "routine_settings={'fic_eib': {'eta_eib': 0.01}})" in out
    assert re.search(r"tvb-eib: JAX [\d.]+ on cpu", out)


def test_a_warning_reads_as_the_command_s_and_tvb_s_notes_stay_out(tmp_path, capsys):
    """Before: "/.../bin/tvb-eib:8: InputWarning: ..." then "  sys.exit(main())"; and loading a tvb-data zip
    printed TVB's "2026-... - WARNING - tvb.basic.readers - File 'hemispheres' not found in ZIP." on stdout."""
    import numpy as np

    fc = np.array(eib.load_dataset("dk_average").fc_target)
    np.fill_diagonal(fc, 0.5)
    np.save(tmp_path / "fc.npy", fc)
    common = ["--eval-ms", "1000", "-o", str(tmp_path / "r.nc"), "--figure", ""]  # refused before compute
    assert main(["run", "--fc", str(tmp_path / "fc.npy"), *common]) == 2
    err = capsys.readouterr().err
    assert "tvb-eib: warning (InputWarning): " in err and "84 diagonal entries are neither 1 nor 0" in err
    assert "sys.exit" not in err and ".py:" not in err
    assert main(["run", "--connectivity", "connectivity_76", "--fc", str(tmp_path / "fc.npy"), *common]) == 2
    assert "tvb.basic" not in capsys.readouterr().out


class Terminal(io.StringIO):
    def isatty(self):
        return True


FIC_EIB_LINE = ("  1000/2000: fc_corr=0.6640 [0.6500..0.6700], fc_rmse=0.1757 [0.1700..0.1800], mean_S_e=0.2501, "
                "mean_S_i=0.0512, bold=0.0123, fc_mean=0.3012")


def test_the_live_bar_keeps_its_room_at_80_columns(monkeypatch):
    """Before, the fic_eib line filled the bar's line: a bar 1 column wide, the last value cut mid-number."""
    monkeypatch.setenv("COLUMNS", "80")
    screen = Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    bar = ChunkProgress(log_info, 2000, 0, "it", desc="fic_eib")
    bar.start -= 1.0  # as if each chunk took 1 s (1000 it/s, as on dk_average), not the microseconds they take
    bar.chunk(1000, 1000, FIC_EIB_LINE)
    bar.start, bar.bar.start_t = bar.start - 0.5, bar.bar.start_t - 0.5
    bar.chunk(1500, 500, FIC_EIB_LINE)
    bar.close()
    shown = screen.getvalue().split("\r")[-1].strip()
    assert len(shown) <= 80 and shown.startswith("fic_eib:  75%|")
    assert len(re.search(r"\|(.*)\|", shown)[1]) >= MIN_BAR
    assert shown.endswith(", fc_corr=0.6640]")  # whole fields only, the fit first; a batch's range left out


def test_bar_fields_are_whole_and_the_fit_comes_first():
    line = "Step 32: 0.123456 (fc_rmse=0.1100, activity=0.00012, fc_corr=0.7800), 33/66 steps"
    assert bar_postfix(line, 100) == "fc_corr=0.7800, fc_rmse=0.1100, activity=0.00012"
    assert bar_postfix(line, 30) == "fc_corr=0.7800, fc_rmse=0.1100"
    assert bar_postfix(line, 29) == "fc_corr=0.7800"
    assert bar_postfix(line, 10) == ""
    assert bar_postfix("  3/9: rate_e=4.01 Hz, x=1", 20) == "rate_e=4.01 Hz, x=1"
    assert bar_postfix("  3/9: compiling", 20) == "compiling"


def test_show_prints_the_fit_the_file_holds_and_redraws_the_figure(quiet_run, tmp_path, capsys):
    _, out, _, _ = quiet_run
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
