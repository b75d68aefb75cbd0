"""Progress and messages, through Python's logging: the ``tvb_eib_plugin`` logger.

Every line the package shows goes to ``logging.getLogger("tvb_eib_plugin")``:
progress at INFO, each chunk's line at DEBUG while a live bar stands for them
on a terminal.  So a notebook or a pipeline controls them the usual way::

    logging.getLogger("tvb_eib_plugin").setLevel(logging.WARNING)  # silence progress
    logging.getLogger("tvb_eib_plugin").propagate = True            # also into your own handlers

Out of the box the logger prints each message as it is to the current
``sys.stdout`` (as ``print`` did before) and does not propagate: TVB, imported
with the package, puts a timestamped DEBUG handler on the root logger, through
which every line would print twice.  A logger configured before the package is
imported (a handler or a level of its own) is left as it is.

:class:`ChunkProgress` is what :func:`routines.loop.run_chunks` shows of a
loop: "compiling..." before the first chunk and the compile time after it, then
per chunk n/total, the rate and the ETA (compile time excluded); on a terminal
one live tqdm line per loop (named by its stage, with as many of the chunk
line's fields as leave the bar room: the fit's first), elsewhere (a log file,
a notebook's captured output, CI) a plain line per chunk.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import sys
import threading
import time
from typing import Callable

# tqdm: the ecosystem's standard live progress line (pure Python, no dependencies of its own); it also
# prints log lines above a live bar without breaking it (tqdm.write)
from tqdm import tqdm

logger = logging.getLogger("tvb_eib_plugin")


class _Console(logging.Handler):
    """Each message as it is, on the ``sys.stdout`` in force when it is written (a redirect or a notebook's
    capture catches it), above a live bar if one is drawn."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stdout)
        except Exception:  # noqa: BLE001  (logging's contract: a failing handler must not stop the run)
            self.handleError(record)


def _configure(log: logging.Logger) -> None:
    if not log.handlers:
        log.addHandler(_Console())
        log.propagate = False
    if log.level == logging.NOTSET:
        log.setLevel(logging.INFO)  # progress shows by default, as it did when it was printed


_configure(logger)


def log_info(line: str) -> None:
    """The default ``log=`` of the runners: ``line`` to the package logger at INFO."""
    logger.info(line)


@contextlib.contextmanager
def verbosity(quiet: bool = False, verbose: bool = False):
    """The CLI's -q (warnings and errors only) / -v (debug) for the time of a command; restored after,
    so a command run inside a longer process (a test, a notebook) leaves its logging as it was."""
    before = logger.level
    logger.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    try:
        yield
    finally:
        logger.setLevel(before)


# -- compile time ------------------------------------------------------------------------------------------------

_compiling = threading.local()


def _on_compile_event(name: str, seconds: float, **_) -> None:
    # JAX reports each XLA compilation in the thread that compiles; a loop counts only its own thread's
    if name == "/jax/core/compile/backend_compile_duration" and getattr(_compiling, "count", None) is not None:
        _compiling.count += 1


def _listen_to_compiles() -> None:
    import jax.monitoring

    if not getattr(_listen_to_compiles, "done", False):
        jax.monitoring.register_event_duration_secs_listener(_on_compile_event)
        _listen_to_compiles.done = True


def timed_call(fn: Callable, *args):
    """``fn(*args)``, the seconds until it returned, and whether JAX compiled during it.

    A jitted call returns once its work is dispatched (execution runs on), so the
    time of a call that compiled is its tracing and compilation.
    """
    _listen_to_compiles()
    _compiling.count = 0
    t = time.perf_counter()
    try:
        out = fn(*args)
    finally:
        compiled, _compiling.count = _compiling.count > 0, None
    return out, time.perf_counter() - t, compiled


# -- one loop's progress -----------------------------------------------------------------------------------------

def _live_terminal() -> bool:
    """A live bar only where our console handler prints INFO to a terminal."""
    return (logger.isEnabledFor(logging.INFO) and any(isinstance(h, _Console) for h in logger.handlers)
            and hasattr(sys.stdout, "isatty") and sys.stdout.isatty())


def _rate(rate: float, unit: str) -> str:
    return f"{rate:.1f} {unit}/s" if rate >= 1 else f"{1 / rate:.1f} s/{unit}"


_COUNT = re.compile(r"^\s*\d+/\d+: ")  # a line's own n/total: the bar shows it
# a chunk line's "name=value" fields; a batch's " [min..max]" after a value is left to the log lines
_FIELD = re.compile(r"(\w+)=([^,()\[\]]+?)(?:\s*\[[^\]]*\])?(?=,|\)|$)")
MIN_BAR = 8  # columns the bar itself keeps, however long the line beside it
_FIRST = ("loss", "fc_corr")  # the fields that say how a fit goes, shown before the others when room is short
_SLACK = 2  # for the rate or the times growing a digit after the postfix is cut to size


def bar_postfix(line: str, room: int) -> str:
    """What of a chunk line fits beside a live bar in ``room`` columns: its ``name=value`` fields (the line as
    it is if it has none), the fit's first, whole fields only, so that no value is cut to a wrong number."""
    pairs = sorted(_FIELD.findall(line), key=lambda pair: pair[0] not in _FIRST)  # stable: the line's order else
    fields = [f"{name}={value.strip()}" for name, value in pairs] or [_COUNT.sub("", line).strip()]
    shown = ""
    for field in fields:
        longer = f"{shown}, {field}" if shown else field
        if len(longer) > room:
            break
        shown = longer
    return shown


class ChunkProgress:
    """The progress of one loop of ``total`` iterations, ``first`` of them done before (a resumed run).

    ``log`` is the runner's ``log=``: the package logger (:func:`log_info`) draws a
    live bar on a terminal, titled ``desc`` (the stage: keep it short); any other
    callable gets plain lines.
    """

    def __init__(self, log: Callable[[str], None], total: int, first: int = 0, unit: str = "it", desc: str = ""):
        self.log, self.total, self.first, self.unit, self.desc = log, total, first, unit, desc
        self.live = log is log_info and _live_terminal()
        self.bar = None
        self.start = time.perf_counter()
        self.compile_s = 0.0

    def begin(self) -> None:
        self.log("  compiling...")
        self.start = time.perf_counter()

    def compiled(self, seconds: float, size: int, first_chunk: bool) -> None:
        """A chunk of ``size`` whose call compiled (``seconds``: its tracing and compilation), or the first
        one, found compiled already.  A shorter last chunk is a program of its own: it compiles too."""
        self.compile_s += seconds
        if not seconds:
            self.log("  compiled already (cached)")
        else:
            self.log(f"  compiled in {seconds:.1f} s" + ("" if first_chunk else f" (a last chunk of {size})"))

    def chunk(self, done: int, size: int, line: str | None) -> None:
        """After a chunk of ``size`` ending at ``done``: its ``line`` with the rate and the ETA."""
        if self.live:
            if line:
                logger.debug(line)
            if self.bar is None:  # drawn after the first chunk: tqdm's rate then leaves the compilation out
                # the size as shutil finds it: a terminal that reports none (0x0) gets 80x24, not a hidden bar
                screen = shutil.get_terminal_size()
                self.bar = tqdm(total=self.total, initial=done, unit=self.unit, file=sys.stdout, desc=self.desc or None,
                                ncols=screen.columns, nrows=screen.lines, leave=True)
            else:
                self.bar.update(size)
            self.bar.set_postfix_str(bar_postfix(line or "", self._room(done)))
            return
        if line:
            self.log(f"{line}  ({self.timing(done)})")

    def _room(self, done: int) -> int:
        """Columns left for the postfix: the line's width less its other text and a bar of MIN_BAR."""
        # with our rate, which tqdm itself shows only from its second refresh on ("?it/s" before)
        bare = self.bar.format_meter(**dict(self.bar.format_dict, ncols=0, postfix=None, rate=self.rate(done)))
        return self.bar.ncols - len(bare) - len("||") - MIN_BAR - len(", ") - _SLACK

    def rate(self, done: int) -> float:
        """Iterations per second so far, compilation excluded."""
        return (done - self.first) / self._running()

    def _running(self) -> float:
        return max(time.perf_counter() - self.start - self.compile_s, 1e-9)

    def timing(self, done: int) -> str:
        """The rate so far (compilation excluded) and the ETA, or the time taken once done."""
        running = self._running()
        rate = (done - self.first) / running
        if done >= self.total:
            return f"{_rate(rate, self.unit)}, {tqdm.format_interval(running)} in all"
        return f"{_rate(rate, self.unit)}, ETA {tqdm.format_interval((self.total - done) / rate)}"

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
