"""benchmarks/bench_gpu.py runs end to end: its --tiny mode on the CPU, the batch sharded over 2 host devices."""

import json
import os
import subprocess
import sys

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks", "bench_gpu.py")


def test_bench_gpu_tiny_runs_sharded_and_reports_throughput(tmp_path):
    out = tmp_path / "gpu.json"
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, BENCH, "--tiny", "--json", str(out)], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 x cpu" in proc.stdout.lower() and "<- saturates" in proc.stdout
    res = json.loads(out.read_text())
    for case in ("8", "8d"):
        rows = [r for r in res["rows"] if r["case"] == case]
        assert [r["batch"] for r in rows] == [1, 2, 4, 8]
        assert [r["padded"] for r in rows] == [2, 2, 4, 8]  # one member is padded to the 2 devices
        assert all(r["network_steps_per_s"] > 0 and r["peak_memory_MB"] > 0 for r in rows)
        assert sum(r["saturated"] for r in rows) >= 1
        assert res["batch_vs_alone"][case] < 1e-4  # float32 rounding, not a wrong member
