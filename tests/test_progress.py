"""Progress through Python's logging: n/total, rate and ETA per chunk, the compile time said apart, a live bar
on a terminal, plain lines elsewhere; silenced with logging; ``log=`` callables still get the plain lines."""

import functools
import io
import logging
import re
import subprocess
import sys

import jax
import pytest

from test_cli_face import SHORT_RUN  # tests/ is on the path (pytest, no __init__.py)
from tvb_eib_plugin.routines.progress import logger
from tvb_eib_plugin.routines.loop import run_chunks

# a chunk line as a pipe, a log file or a log= callable gets it: the routine's line, then (rate, ETA or time taken)
TIMED = re.compile(r"^(?P<line>.*\S)  \((?P<rate>[\d.]+) (?P<unit>it|step)/s, "
                   r"(?:ETA (?P<eta>[\d:]+)|(?P<took>[\d:]+) in all)\)$")


def seconds(clock: str) -> int:
    out = 0
    for part in clock.split(":"):
        out = out * 60 + int(part)
    return out


def counter():
    """A fresh jitted chunk (so it compiles on first use): x counts the iterations."""
    @functools.partial(jax.jit, static_argnames="n")
    def chunk(x, n):
        return jax.lax.scan(lambda c, _: (c + 1.0, {"x": c + 1.0}), x, None, length=n)

    return lambda carry, first, n: chunk(carry, n=n)


def line(total):
    """The routine's line for a chunk ending at ``done``, as fic.py writes them."""
    return lambda done, last: f"  {done}/{total}: x={float(last['x']):.0f}"


@pytest.fixture
def level():
    """The package logger's level as the test found it, restored after."""
    before = logger.level
    yield logger.setLevel
    logger.setLevel(before)


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_log_callable_gets_plain_lines_with_n_total_rate_and_eta():
    lines = []
    fn = counter()
    carry, history, _ = run_chunks(fn, 0.0, 7, 2, line(7), lines.append)
    assert float(carry) == 7 and list(history["x"]) == [1, 2, 3, 4, 5, 6, 7]
    assert lines[:2] == ["  compiling...", lines[1]] and re.fullmatch(r"  compiled in \d+\.\d s", lines[1])
    timed = [TIMED.match(ln) for ln in lines if "/7: " in ln]
    assert [m["line"] for m in timed] == ["  2/7: x=2", "  4/7: x=4", "  6/7: x=6", "  7/7: x=7"]
    for m, done in zip(timed[:3], (2, 4, 6)):  # the ETA is what the rate leaves to do
        assert abs(seconds(m["eta"]) - (7 - done) / float(m["rate"])) <= 1
    assert timed[3]["took"] and timed[3]["eta"] is None
    # the last chunk is shorter (1): a program of its own, compiled apart and said so
    assert any(re.fullmatch(r"  compiled in \d+\.\d s \(a last chunk of 1\)", ln) for ln in lines)
    again = []  # the same function again: nothing compiles
    run_chunks(fn, 0.0, 7, 2, line(7), again.append)
    assert again[1] == "  compiled already (cached)" and not any("compiled in" in ln for ln in again)


def test_by_default_progress_goes_to_the_package_logger_and_logging_silences_it(capsys, level):
    from tvb_eib_plugin.routines.progress import log_info

    run_chunks(counter(), 0.0, 4, 2, line(4), log_info)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "  compiling..." and TIMED.match(out[-1])["line"] == "  4/4: x=4"
    level(logging.WARNING)  # a notebook user's way to silence it
    run_chunks(counter(), 0.0, 4, 2, line(4), log_info)
    assert capsys.readouterr().out == ""


def test_on_a_terminal_one_live_bar_stands_for_the_chunk_lines(monkeypatch, level):
    from tvb_eib_plugin.routines.progress import log_info

    screen = Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    run_chunks(counter(), 0.0, 6, 2, line(6), log_info, unit="step")
    shown = screen.getvalue()
    assert "\r" in shown and "6/6 [" in shown and "step/s" in shown and "x=6]" in shown  # tqdm's live line
    assert "  compiling...\n" in shown and "6/6: x=6" not in shown  # the chunk lines: in the bar only
    level(logging.DEBUG)  # -v: each chunk's line too, written above the bar
    screen.seek(0), screen.truncate()
    run_chunks(counter(), 0.0, 6, 2, line(6), log_info)
    assert "  6/6: x=6\n" in screen.getvalue()


def test_a_piped_cli_run_shows_compiling_n_total_rate_eta_and_the_table(tmp_path):
    """The CLI as a log file or CI sees it: stdout a pipe, not a terminal; nothing silenced."""
    run = subprocess.run([sys.executable, "-m", "tvb_eib_plugin", "run", *SHORT_RUN, "-o", str(tmp_path / "r.nc")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert "\r" not in run.stdout  # no live bar in a pipe
    fic = [TIMED.match(ln) for ln in lines if "/12: mean_S_e=" in ln]
    assert [m["line"].split(":")[0] for m in fic] == ["  10/12", "  12/12"] and fic[0]["eta"] and fic[1]["took"]
    assert lines.index("  compiling...") < lines.index(fic[0].string)
    assert any(re.fullmatch(r"  compiled in \d+\.\d s", ln) for ln in lines)
    eib = [TIMED.match(ln) for ln in lines if ln.startswith("  5/5: fc_corr=")]
    assert len(eib) == 1 and eib[0]["took"]
    table = [ln.split()[0] for ln in lines if re.fullmatch(r"  \w+ +\d\.\d{4} +\d\.\d{4} .*", ln)]
    assert table == ["integration", "fic", "fic_eib"]


def test_run_experiment_still_hands_a_log_callable_the_reference_lines():
    from tvb_eib_plugin._experiments.experiment import run_experiment

    lines = []
    run_experiment(routines=("fic", "fic_eib"), transient_ms=7200.0, eval_ms=21600.0, log=lines.append,
                   routine_settings={"fic": {"n_iterations": 12}, "fic_eib": {"n_iterations": 5, "window": 10}})
    for expected in ["STEP 1: Running simulation...", ">>> Running algorithm: fic (seed=0)",
                     "Running fic algorithm for 12 iterations...", "  Using passed bold buffer (12 samples, using last 10)",
                     "fic_eib complete!", "Experiment complete."]:
        assert any(expected in ln for ln in lines), expected
    assert [TIMED.match(ln)["line"][:20] for ln in lines if "/12: mean_S_e=" in ln] == [
        "  10/12: mean_S_e=0.", "  12/12: mean_S_e=0."]
