"""torch_threads 0: each update takes the cores other processes left free during the last one."""

import os
import time

import pytest
import torch

from mdpo.runtime import ThreadShare

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="reads /proc/stat")


def scripted(samples, cores=2, most=2):
    """A ThreadShare of ``cores`` cores that started with ``most`` threads and reads ``samples`` in turn."""
    share = ThreadShare()
    share.cores, share.most = list(range(cores)), most
    feed = iter(samples)
    share._sample = lambda: next(feed)
    share.last = share._sample()
    return share


@pytest.fixture(autouse=True)
def keep_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_threads_follow_the_cores_others_leave():
    # (time, busy seconds of the cores, own CPU seconds): 1 s apart
    share = scripted([(0, 0, 0), (1, 2.0, 1.0), (2, 4.0, 2.0), (3, 4.9, 2.8), (4, 6.0, 3.0), (4, 6.0, 3.0)])
    assert share.adjust() == 1  # 2 busy core-seconds, 1 of them its own: another process held a core
    assert share.adjust() == 1
    assert share.adjust() == 2  # others used 0.1 core
    assert share.adjust() == 1  # others used 0.9
    assert share.adjust() == 1  # no time passed: nothing to go by, the count stays as it was set


def test_never_more_than_torch_started_with_nor_fewer_than_one():
    assert scripted([(0, 0, 0), (1, 0.0, 0.0)], cores=4, most=3).adjust() == 3
    assert scripted([(0, 0, 0), (1, 8.0, 0.0)], cores=2, most=2).adjust() == 1  # a machine busier than its cores


def test_a_real_sample_sees_this_process_work():
    share = ThreadShare()
    before = share._sample()
    start = time.process_time()  # spin for 0.3 s of CPU, however busy the machine is
    while time.process_time() - start < 0.3:
        pass
    after = share._sample()
    assert after[0] - before[0] >= 0.3
    assert after[2] - before[2] >= 0.25  # its own CPU time grew by the spin (in 0.01 s ticks)
    assert after[1] - before[1] >= after[2] - before[2] - 0.05  # and the cores' busy time with it
