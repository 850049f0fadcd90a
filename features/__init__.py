"""trialcast features package."""
