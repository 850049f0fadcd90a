"""The demo company generator: seven lead types, funnel moments, communications,
conversions, churn and the truth file (``generator``; latent traits in ``latent``)."""
