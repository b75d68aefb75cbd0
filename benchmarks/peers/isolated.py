"""Run a peer's timing in a fresh Python process, so that its peak memory is its own."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from .common import PeerUnavailable, _peak_rss_mb


_CHILD_MARK = "@@PEERS_RESULT@@"


def run_isolated(func_name: str, timeout: float | None = 1800, **kwargs) -> dict:
    """Run ``func_name(**kwargs)`` of this module in a fresh Python process.

    Returns its dict plus ``peak_rss_MB`` (the child's own ru_maxrss, i.e.
    the peak resident memory of that measurement including imports and JIT
    compilation), ``peak_rss_children_MB`` (parent-side
    ``getrusage(RUSAGE_CHILDREN).ru_maxrss``; a max over all children so far,
    kept only as a cross-check) and ``subprocess_wall_s``.
    Raises ``PeerUnavailable`` if the child reports a missing peer.
    """
    cmd = [sys.executable, "-m", "peers", "--child", func_name, json.dumps(kwargs)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          cwd=Path(__file__).resolve().parents[1])
    wall = time.perf_counter() - t0
    payload = None
    for line in proc.stdout.splitlines():
        if line.startswith(_CHILD_MARK):
            payload = json.loads(line[len(_CHILD_MARK):])
    if payload is None:
        raise RuntimeError(f"child {func_name} failed (rc={proc.returncode}):\n"
                           f"{proc.stderr[-4000:]}")
    if "__error__" in payload:
        err = payload["__error__"]
        if payload.get("__unavailable__"):
            raise PeerUnavailable(err)
        raise RuntimeError(f"child {func_name} raised: {err}")
    payload.setdefault("peak_rss_MB", payload.pop("__peak_rss_MB__", None))
    payload.pop("__peak_rss_MB__", None)
    payload["peak_rss_children_MB"] = (
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0)
    payload["subprocess_wall_s"] = wall
    payload["isolated"] = True
    return payload


def _child_main(func_name: str, kwargs_json: str) -> int:
    kwargs = json.loads(kwargs_json)
    try:
        import peers

        res = getattr(peers, func_name)(**kwargs)
        res = dict(res)
        res["__peak_rss_MB__"] = _peak_rss_mb()
    except PeerUnavailable as e:
        res = {"__error__": str(e), "__unavailable__": True}
    except Exception as e:  # noqa: BLE001
        import traceback
        res = {"__error__": f"{type(e).__name__}: {e}\n{traceback.format_exc()}"}
    print(_CHILD_MARK + json.dumps(res, default=float), flush=True)
    return 0
