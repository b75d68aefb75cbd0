"""Experiments: typed settings, the plan, the pipeline runner, presets, the coupling choice, the report (private)."""
