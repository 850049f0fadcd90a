"""trialcast trialcast package."""
