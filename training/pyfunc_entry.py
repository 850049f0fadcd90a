"""Models-from-code entry point of the logged pyfunc model (MLflow runs this file on load).

Logging the model as code instead of a pickled object keeps the logged model
readable and free of pickle; it needs the ``training`` package installed.
"""

import mlflow.models

from training.pyfunc import TrialcastPyfunc

mlflow.models.set_model(TrialcastPyfunc())
