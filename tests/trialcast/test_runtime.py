"""The allocator tuning the CLI applies at start-up takes effect on this (glibc) machine."""

from trialcast.runtime import tune_allocator


def test_tune_allocator_is_accepted_by_glibc():
    assert tune_allocator() is True
