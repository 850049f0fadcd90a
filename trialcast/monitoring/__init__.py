"""Model health: is the champion still right? (``trialcast monitor``, docs/monitoring.md).

One job, small parts: ``scoring`` (each monitored trial's probability at its
scoring day and its outcome so far), ``churn`` (the same for the churn
champion: paying accounts at their monthly snapshots), ``spread`` (the
estimate's probabilities, re-spread out of sample at the scoring day), ``outcomes`` (expected vs realised per
weekly cohort, the sequential test), ``estimation`` (realised and estimated
performance), ``drift`` (inputs and predictions vs the training window),
``data_checks`` (broken pipelines), ``verdict`` (alerts and the verdict in
words), ``champion`` (the registry side) and ``job`` (runs them, writes the
JSON, the MLflow run).
"""
