"""The model core that training writes and serving reads.

``models.artifact`` holds the fitted model (booster + Platt calibration on the
margin) with its predict and explain maths; ``models.loader`` fetches a
registered model by alias with a local last-good copy. Both ``training`` and
``serving`` import from here, so neither imports the other.
"""
