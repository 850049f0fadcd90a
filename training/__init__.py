"""trialcast training package."""
