"""Cohorts: one batched run of many subjects, Dask distribution, synthetic twins (private)."""
