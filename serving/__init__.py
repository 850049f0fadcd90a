"""trialcast serving package."""
