"""Benchmarks (``python -m trialcast.bench.<name>``): features, training,
serving, forecast and Dask, each against its named reference in the same run."""
