"""Data in, results out: connectomes and FC, the labelled results DataTree, the figure (private)."""
