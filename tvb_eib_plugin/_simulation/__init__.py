"""Runs of the model: one TR, whole runs, the adjoint, FC scores, the window, divergence checks, batches (private)."""
