"""Personality, I/O priority and scheduler validation against the syscall fake."""

from __future__ import annotations

import pytest

from ketch.runtime.linux import process_attrs as pa
from ketch.runtime.syscalls.fake import RecordingSyscalls


def test_personality_linux32():
    sc = RecordingSyscalls()
    pa.apply_personality(sc, {"domain": "LINUX32"})
    assert sc.calls == [("personality", 0x0008)]


@pytest.mark.parametrize("bad", [{"domain": "WINDOWS"}, {"domain": "LINUX", "flags": ["X"]}])
def test_personality_refuses_what_it_cannot_do(bad):
    with pytest.raises(pa.ProcessAttributeError, match=r"linux\.personality"):
        pa.apply_personality(RecordingSyscalls(), bad)


def test_io_priority_encodes_class_and_level():
    sc = RecordingSyscalls()
    pa.apply_io_priority(sc, {"class": "IOPRIO_CLASS_BE", "priority": 4})
    assert sc.calls == [("ioprio_set", (2 << 13) | 4)]
    with pytest.raises(pa.ProcessAttributeError, match=r"process\.ioPriority\.class"):
        pa.apply_io_priority(sc, {"class": "NOPE", "priority": 0})


def test_scheduler_deadline_is_refused_not_ignored():
    with pytest.raises(pa.ProcessAttributeError, match="SCHED_DEADLINE"):
        pa.apply_scheduler({"policy": "SCHED_DEADLINE", "runtime": 1, "deadline": 2, "period": 3})


def test_absent_attributes_do_nothing():
    sc = RecordingSyscalls()
    pa.apply_personality(sc, None)
    pa.apply_io_priority(sc, None)
    pa.apply_scheduler(None)
    pa.write_time_offsets(None)
    assert sc.calls == []
