"""``ketch exec``: how the command line becomes a ``process`` object (runc's rules)."""

from __future__ import annotations

import json


def _process(fake) -> dict:
    return next(c for c in fake.calls if c[0] == "exec")[2][0]


def test_command_replaces_args_and_flags_follow_the_id_unreordered(ketch, fake) -> None:
    fake.add("c1").exit_code = 5
    r = ketch("exec", "c1", "sh", "-c", "exit 5")
    assert r.rc == 5
    p = _process(fake)
    assert p["args"] == ["sh", "-c", "exit 5"]
    assert p["terminal"] is False
    assert p["capabilities"]["bounding"] == ["CAP_KILL"]  # "-c" was not read as --cap


def test_overrides(ketch, fake) -> None:
    fake.add("c1")
    assert ketch("exec", "-u", "1000:1001", "--cwd", "/tmp", "-e", "A=1", "-e", "B=2", "-g", "5",
                 "-g", "6", "--cap", "CAP_SYS_ADMIN", "--no-new-privs", "-t", "c1", "id").rc == 0
    p = _process(fake)
    assert p["user"] == {"uid": 1000, "gid": 1001, "additionalGids": [5, 6]}
    assert p["cwd"] == "/tmp"
    assert p["env"] == ["PATH=/bin", "A=1", "B=2"]
    assert p["noNewPrivileges"] is True and p["terminal"] is True
    caps = p["capabilities"]
    assert all("CAP_SYS_ADMIN" in caps[k] for k in ("bounding", "effective", "permitted"))
    assert "ambient" not in caps  # no inheritable set: runc does not add ambient


def test_process_file(ketch, fake, tmp_path) -> None:
    fake.add("c1")
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}}))
    assert ketch("exec", "-p", str(f), "c1").rc == 0
    assert _process(fake)["args"] == ["true"]


def test_errors_exit_255_with_runc_prefix(ketch, fake) -> None:
    r = ketch("exec", "nope", "ls")
    assert r.rc == 255 and 'msg="exec failed: container does not exist"' in r.err
    fake.add("c1")
    r = ketch("exec", "c1")
    assert r.rc == 255 and "exec failed: process args cannot be empty" in r.err
    r = ketch("exec", "-u", "x", "c1", "id")
    assert r.rc == 255 and ('exec failed: parsing x as int for uid failed: '
                            'strconv.Atoi: parsing \\"x\\": invalid syntax') in r.err, r.err


def test_detach_and_pid_file_are_passed(ketch, fake) -> None:
    fake.add("c1")
    assert ketch("exec", "-d", "--pid-file", "/p", "c1", "true").rc == 0
    kwargs = next(c for c in fake.calls if c[0] == "exec")[3]
    assert kwargs["detach"] is True and kwargs["pid_file"] == "/p"


def test_lsm_flags_set_the_process_fields_and_ignore_paused_and_cgroup_are_passed(
        ketch, fake, monkeypatch) -> None:
    from ketch.runtime.linux import lsm

    # what reaches the backend, whatever this host's LSMs are
    monkeypatch.setattr(lsm, "check_exec_lsm", lambda process, label=None: None)
    fake.add("c1")
    assert ketch("exec", "--apparmor", "prof", "--process-label", "lab", "--ignore-paused",
                 "--cgroup", "pids,memory:a", "--cgroup", "cpu:/b", "c1", "true").rc == 0
    p = _process(fake)
    assert p["apparmorProfile"] == "prof" and p["selinuxLabel"] == "lab"
    kwargs = next(c for c in fake.calls if c[0] == "exec")[3]
    assert kwargs["ignore_paused"] is True
    assert kwargs["sub_cgroups"] == {"pids": "a", "memory": "a", "cpu": "/b"}


def test_cgroup_argument_errors_in_runcs_words(ketch, fake) -> None:
    fake.add("c1")
    for flags, msg in ((["--cgroup", "a:b:c"], "invalid --cgroup argument: a:b:c"),
                       (["--cgroup", "pids:x", "--cgroup", "y"],
                        "invalid --cgroup argument: y (missing <controller>: prefix)")):
        r = ketch("exec", *flags, "c1", "true")
        assert r.rc == 255 and f'msg="exec failed: {msg}"' in r.err, r.err
    assert ketch("exec", "--cgroup", "sub", "c1", "true").rc == 0
    assert next(c for c in fake.calls if c[0] == "exec")[3]["sub_cgroups"] == {"": "sub"}


def test_additional_gids_are_base_10_int64_parsed_as_flags(ketch, fake) -> None:
    """urfave's Int64Slice: a bad value is a flag error (usage, exit 1), not an exec failure."""
    fake.add("c1")
    for value, why in (("abc", "invalid syntax"), ("0x10", "invalid syntax"),
                       ("9223372036854775808", "value out of range")):
        r = ketch("exec", "-g", value, "c1", "true")
        assert r.rc == 1 and r.out.startswith(f'Incorrect Usage: invalid value "{value}" for flag'
                                              f' -g: strconv.ParseInt: parsing "{value}": {why}')
        assert "OPTIONS:" in r.out
    assert not [c for c in fake.calls if c[0] == "exec"]
    assert ketch("exec", "--additional-gids", "+7", "c1", "true").rc == 0
    assert _process(fake)["user"]["additionalGids"] == [7]
