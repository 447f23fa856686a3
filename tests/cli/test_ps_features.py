"""``ketch ps`` and ``ketch features``."""

from __future__ import annotations

import json
import os

from ketch.schemas import errors as schema_errors


def test_ps_json_lists_the_cgroup_pids(ketch, fake) -> None:
    fake.add("c1").pid = 4242
    r = ketch("ps", "--format", "json", "c1")
    assert r.rc == 0 and json.loads(r.out) == [4242]


def test_ps_table_keeps_header_and_the_containers_lines(ketch, fake) -> None:
    fake.add("c1").pid = os.getpid()  # a pid that `ps -ef` certainly lists
    r = ketch("ps", "c1")
    lines = r.out.splitlines()
    assert r.rc == 0 and lines[0].split()[1] == "PID"
    assert [line.split()[1] for line in lines[1:]] == [str(os.getpid())]


def test_ps_options_after_the_id_go_to_ps(ketch, fake) -> None:
    fake.add("c1").pid = os.getpid()
    r = ketch("ps", "c1", "-o", "pid,comm")
    assert r.out.splitlines()[0].split() == ["PID", "COMMAND"]


def test_ps_bad_format_and_unknown_container(ketch, fake) -> None:
    fake.add("c1")
    assert "invalid format option" in ketch("ps", "-f", "xml", "c1").err
    assert ketch("ps", "nope").rc == 1


def test_features_is_valid_and_truthful(ketch) -> None:
    r = ketch("features")
    doc = json.loads(r.out)
    assert r.rc == 0
    assert list(schema_errors("runtime", "features", doc)) == []
    assert doc["hooks"] == ["prestart", "createRuntime", "createContainer", "startContainer",
                            "poststart", "poststop"]
    assert doc["linux"]["seccomp"]["enabled"] is True
    assert "SCMP_ACT_NOTIFY" in doc["linux"]["seccomp"]["actions"]  # the agent is supported
    assert "rbind" in doc["mountOptions"] and "ro" in doc["mountOptions"]
