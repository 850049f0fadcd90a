"""trialcast training: calibrated LightGBM conversion and churn models, judged and registered.

Modules, one job each:

- ``split``: time-ordered train / valid / test split by account.
- ``model``: ``fit_model`` -> ``TrialcastModel`` (booster + Platt scaling that keeps
  TreeSHAP contributions exact in calibrated log-odds); save / load.
- ``metrics``: ROC AUC, PR AUC, log loss, Brier, ECE, lift, capture; per snapshot.
- ``baselines``: persona heuristic, logistic regression, base rate, demo ceiling.
- ``guards``: too little data, single-feature leaks, the base-rate check.
- ``tune``: Optuna search over the main LightGBM knobs.
- ``settings`` / ``tracking`` / ``registry`` / ``pyfunc`` / ``plots``: MLflow runs,
  the registry aliases (``challenger``, ``champion``) and the logged pyfunc model.
- ``train``: ``train_models``, the job that ties it together.
"""
