"""trialcast trialcast package."""

import sys as _sys
from pathlib import Path as _Path

if _Path(_sys.argv[0]).name == "trialcast":  # the console script: fail fast before heavy imports
    from trialcast.serve_guard import refuse_serve_without_token

    refuse_serve_without_token(_sys.argv)
