"""What every tutorial script starts with: ``--quick`` and ``--out``, an output folder, and a headless matplotlib."""

from __future__ import annotations

import argparse
import os

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")


def parse_tutorial_args(doc: str, quick_help: str = "short runs (a smoke test, not a fit)",
                        extra=lambda parser: None) -> argparse.Namespace:
    """Parse the command line (``extra(parser)`` may add options), create ``--out`` and select the Agg backend."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help=quick_help)
    ap.add_argument("--out", default=OUT, help="folder for figures and results (default: tutorials/out)")
    extra(ap)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    import matplotlib

    matplotlib.use("Agg")
    return args
