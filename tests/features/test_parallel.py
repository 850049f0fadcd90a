"""``features.parallel``: the cores a process may use, and work spread over them in order."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from features.parallel import thread_map, usable_cores


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux-only")
def test_usable_cores_follow_the_affinity_not_the_machine():
    # A process pinned to one core (as taskset or a container's cpuset does) counts one,
    # whatever the machine has; the service sizes its workers with this.
    code = (
        "import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]}); "
        "from features.parallel import usable_cores; print(usable_cores(), os.cpu_count())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    pinned, machine = (int(v) for v in out.stdout.split())
    assert pinned == 1
    assert machine >= 1
    assert usable_cores() == len(os.sched_getaffinity(0))


def test_thread_map_keeps_order_and_raises():
    assert thread_map(lambda x: x * x, list(range(50)), threads=4) == [x * x for x in range(50)]
    assert thread_map(str, [7]) == ["7"]

    def boom(x: int) -> int:
        if x == 3:
            raise ValueError("row 3")
        return x

    with pytest.raises(ValueError, match="row 3"):
        thread_map(boom, list(range(6)), threads=2)
