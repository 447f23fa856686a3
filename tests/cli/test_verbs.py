"""Each verb against a fake library: the calls it makes and runc's output."""

from __future__ import annotations

import os
import re
import signal

import pytest

from ketch.runtime.cli.commands.kill import NAMES, parse_signal
from ketch.runtime.cli.commands.list import table
from ketch.runtime.errors import ContainerNotExistError, KetchError, ProcessError

TEXT_ERR = re.compile(r'^time="[^"]+" level=error msg=(?:"(.*)"|([^" ]*))\n$')


def msg(err: str) -> str:
    """The msg= value of one logrus text line (quoted or plain)."""
    m = TEXT_ERR.match(err)
    assert m, err
    return m.group(1) if m.group(1) is not None else m.group(2)


# ---------------------------------------------------------------- create
def test_create_defaults(ketch, fake, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = ketch("--root", "/r", "create", "c1")
    assert (r.rc, r.out, r.err) == (0, "", "")
    assert fake.calls == [("create", "c1", ("/r", str(tmp_path)), {
        "pid_file": None, "console_socket": None, "no_pivot": False, "preserve_fds": 0,
        "no_new_keyring": False})]


def test_create_all_flags(ketch, fake, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = ketch("--root", "/r", "create", "c1", "--bundle", "bun", "--pid-file", "p.pid",
              "--console-socket", "sock", "--no-pivot", "--no-new-keyring", "--preserve-fds", "2")
    assert r.rc == 0, r
    assert fake.calls == [("create", "c1", ("/r", str(tmp_path / "bun")), {
        "pid_file": str(tmp_path / "p.pid"),            # relative to the cwd (revisePidFile)
        "console_socket": str(tmp_path / "bun/sock"),   # relative to the bundle (runc chdirs)
        "no_pivot": True, "preserve_fds": 2, "no_new_keyring": True})]


def test_create_flag_spellings(ketch, fake) -> None:
    assert ketch("create", "-b=/b1", "--preserve-fds=-1", "c1").rc == 0
    assert ketch("create", "c2", "-bundle", "/b2", "-preserve-fds", "0x3", "--console-socket=/s").rc == 0
    (_, _, (_, b1), k1), (_, _, (_, b2), k2) = fake.calls
    assert (b1, k1["preserve_fds"]) == ("/b1", 0)     # runc ignores a negative count
    assert (b2, k2["preserve_fds"], k2["console_socket"]) == ("/b2", 3, "/s")


def test_create_errors_are_prefixed(ketch, fake) -> None:
    fake.add("c1")
    r = ketch("create", "-b", "/b", "c1")
    assert r.rc == 1 and msg(r.err) == "ketch create failed: container with given ID already exists"
    r = ketch("create", "-b", "/b", "")
    assert r.rc == 1 and msg(r.err) == "ketch create failed: container id cannot be empty"


def test_create_checks_rootless_like_runc(ketch, fake) -> None:
    for ok in ("true", "FALSE", "auto", "AUTO", "1", ""):
        assert ketch(f"--rootless={ok}", "create", "-b", "/b", f"c-{ok}").rc == 0, ok
    r = ketch("--rootless", "maybe", "run", "-b", "/b", "c1")
    assert r.rc == 1 and fake.names() == ["create"] * 6
    assert msg(r.err) == 'ketch run failed: strconv.ParseBool: parsing \\"maybe\\": invalid syntax'
    assert ketch("--rootless", "maybe", "list").rc == 0


# ----------------------------------------------------------------- start
def test_start(ketch, fake) -> None:
    fake.add("c1", status="created")
    r = ketch("--root", "/r", "start", "c1")
    assert (r.rc, r.out, r.err) == (0, "", "")
    assert fake.names() == ["load", "start"]
    r = ketch("start", "c1")
    assert r.rc == 1 and msg(r.err) == "cannot start an already running container"


def test_start_missing(ketch, fake) -> None:
    r = ketch("start", "nope")
    assert r.rc == 1 and msg(r.err) == "container does not exist"


# ------------------------------------------------------------------- run
def test_run_foreground_exit_status_and_delete(ketch, fake) -> None:
    fake.fail.clear()
    orig_create = fake.Container.create

    def create(root, cid, bundle, **kw):
        c = orig_create(root, cid, bundle, **kw)
        c.exit_code = 137
        return c

    fake.Container.create = create
    r = ketch("--root", "/r", "run", "-b", "/b", "c1")
    assert (r.rc, r.out, r.err) == (137, "", "")
    assert fake.names() == ["create", "start", "wait_foreground", "delete"]
    assert fake.calls[-1][3] == {"force": True}
    assert "c1" not in fake.containers


def test_run_keep(ketch, fake) -> None:
    assert ketch("run", "--keep", "-b", "/b", "c1").rc == 0
    assert fake.names() == ["create", "start", "wait_foreground"]


def test_run_detach(ketch, fake) -> None:
    for flag in ("-d", "--detach", "-detach", "--detach=true"):
        fake.calls.clear()
        fake.containers.clear()
        r = ketch("run", flag, "-b", "/b", "c1")
        assert (r.rc, r.out, r.err) == (0, "", ""), flag
        assert fake.names() == ["create", "start"]


def test_run_passes_create_options(ketch, fake) -> None:
    assert ketch("run", "-d", "--no-subreaper", "--pid-file", "/p", "--preserve-fds", "1",
                 "--no-pivot", "--no-new-keyring", "--console-socket", "/s", "-b", "/b", "c1").rc == 0
    assert fake.calls[0] == ("create", "c1", ("/run/ketch", "/b"), {
        "detach": True, "pid_file": "/p", "console_socket": "/s", "no_pivot": True,
        "preserve_fds": 1, "no_new_keyring": True})


def test_run_in_foreground_creates_without_detach(ketch, fake) -> None:
    ketch("run", "-b", "/b", "c1")
    assert fake.calls[0][3]["detach"] is False


def test_run_start_failure_deletes_unless_keep(ketch, fake) -> None:
    fake.fail["start"] = ProcessError("exec: \"nope\": executable file not found in $PATH")
    r = ketch("run", "-b", "/b", "c1")
    assert r.rc == 1
    assert msg(r.err) == 'ketch run failed: exec: \\"nope\\": executable file not found in $PATH'
    assert fake.names() == ["create", "start", "delete"] and "c1" not in fake.containers
    fake.calls.clear()
    r = ketch("run", "--keep", "-b", "/b", "c2")
    assert r.rc == 1 and fake.names() == ["create", "start"]


def test_run_console_socket_needs_detach(ketch, fake) -> None:
    r = ketch("run", "--console-socket", "/s", "-b", "/b", "c1")
    assert r.rc == 1 and fake.calls == []
    assert msg(r.err) == "ketch run failed: cannot use console socket if runc will not detach or allocate tty"


def test_run_delete_failure_after_exit_is_logged(ketch, fake) -> None:
    fake.fail["delete"] = KetchError("boom")
    r = ketch("run", "-b", "/b", "c1")
    assert r.rc == 0 and msg(r.err) == "boom"


# ----------------------------------------------------------------- state
RUNC_STATE = """{
  "ociVersion": "1.0.2-dev",
  "id": "x",
  "pid": 10794,
  "status": "running",
  "bundle": "/tmp/b",
  "rootfs": "/tmp/b/rootfs",
  "created": "2026-11-29T11:40:32.740740953Z",
  "owner": ""
}"""  # `runc state x` (runc 1.1.5), byte for byte: no newline at the end


def test_state_matches_runc(ketch, fake) -> None:
    fake.add("x", pid=10794, created="2026-11-29T11:40:32.740740953Z")
    r = ketch("state", "x")
    assert (r.rc, r.out, r.err) == (0, RUNC_STATE, "")


def test_state_normalises_order_time_and_annotations(ketch, fake) -> None:
    c = fake.add("x", status="stopped", created="2026-01-02T03:04:05.120000000+00:00")
    c.annotations = {"z": "1", "a": "<&>"}
    shuffled = dict(reversed(list(c.state().items())))
    c.state = lambda: shuffled
    out = ketch("state", "x").out
    assert list(__import__("json").loads(out)) == ["ociVersion", "id", "pid", "status", "bundle",
                                                   "rootfs", "created", "annotations", "owner"]
    assert '"pid": 0,' in out and '"created": "2026-01-02T03:04:05.12Z",' in out
    assert out.endswith('"annotations": {\n    "a": "\\u003c\\u0026\\u003e",\n    "z": "1"\n  },\n'
                        '  "owner": ""\n}')


def test_state_missing(ketch, fake) -> None:
    r = ketch("state", "nope")
    assert (r.rc, r.out) == (1, "") and msg(r.err) == "container does not exist"
    fake.calls.clear()
    r = ketch("state", "")
    assert r.rc == 1 and msg(r.err) == "container id cannot be empty" and fake.calls == []


# ------------------------------------------------------------------ kill
@pytest.mark.parametrize("raw, number", [
    ("cont", 18), ("CONT", 18), ("sigcont", 18), ("SigCont", 18), ("SIGCONT", 18), ("18", 18),
    ("0", 0), ("+18", 18), ("018", 18), ("-18", -18), ("99", 99), ("SIGSTKFLT", 16),
    ("KILL", 9), ("term", 15), ("SIGPWR", 30), ("sys", 31), ("HUP", 1),
])
def test_parse_signal_like_runc(raw: str, number: int) -> None:
    assert parse_signal(raw) == number


@pytest.mark.parametrize("raw", ["0x12", "foo", "RTMIN", "SIGRTMIN+1", "RTMIN+1", "SIGRTMAX-1",
                                 "rtmax", "SIGCLD", "SIGIOT", "SIGPOLL", "SIGUNUSED", " 18", "1_8",
                                 "١٨", "99999999999999999999", "SIG"])
def test_unknown_signals_like_runc(raw: str) -> None:
    with pytest.raises(KetchError) as e:
        parse_signal(raw)
    assert str(e.value) == "unknown signal " + '"' + raw + '"'


def test_signal_names_are_the_host_numbers() -> None:
    assert len(NAMES) == 31
    for name in NAMES:
        assert parse_signal(name) == int(getattr(signal, name))


def test_kill(ketch, fake) -> None:
    fake.add("x")
    assert ketch("kill", "x").rc == 0
    assert ketch("kill", "x", "KILL").rc == 0
    assert ketch("kill", "--all", "x", "9").rc == 0
    assert ketch("kill", "x", "-a").rc == 0           # flags after the ID are moved forward
    assert ketch("kill", "x", "").rc == 0             # runc: empty signal means SIGTERM
    assert ketch("kill", "x", "-9").rc == 0           # not a flag of kill: a positional
    sigs = [(c[2][0], c[3]["all"]) for c in fake.calls if c[0] == "signal"]
    assert sigs == [(15, False), (9, False), (9, True), (15, True), (15, False), (-9, False)]


def test_kill_loads_before_parsing_the_signal(ketch, fake) -> None:
    r = ketch("kill", "nope", "bogus")
    assert r.rc == 1 and msg(r.err) == "container does not exist"
    fake.add("x")
    r = ketch("kill", "x", "bogus")
    assert r.rc == 1 and msg(r.err) == 'unknown signal \\"bogus\\"'


def test_kill_bool_flag_takes_the_next_token_along(ketch, fake) -> None:
    # urfave reorders `kill x -a KILL` into `-a KILL x`: ID "KILL", signal "x" (as runc)
    fake.add("x")
    r = ketch("kill", "x", "-a", "KILL")
    assert r.rc == 1 and msg(r.err) == "container does not exist"
    assert fake.calls == [("load", "KILL", ("/run/ketch",), {})]


# ---------------------------------------------------------------- delete
def test_delete(ketch, fake) -> None:
    fake.add("x", status="stopped")
    assert ketch("delete", "x").rc == 0
    assert fake.calls[-1] == ("delete", "x", (), {"force": False})
    fake.add("y")
    assert ketch("delete", "y", "-f").rc == 0
    assert fake.calls[-1] == ("delete", "y", (), {"force": True})


def test_delete_missing(ketch, fake) -> None:
    r = ketch("delete", "nope")
    assert r.rc == 1 and msg(r.err) == "container does not exist"
    for force in ("-f", "--force", "-force", "--force=true"):
        r = ketch("delete", force, "nope")
        assert (r.rc, r.out, r.err) == (0, "", ""), force


def test_delete_library_error(ketch, fake) -> None:
    fake.add("x")
    fake.fail["delete"] = KetchError("cannot delete container x that is not stopped: running")
    r = ketch("delete", "x")
    assert r.rc == 1 and msg(r.err) == "cannot delete container x that is not stopped: running"


# ------------------------------------------------------------------ list
RUNC_TABLE = (
    "ID          PID         STATUS      BUNDLE      CREATED                          OWNER\n"
    "x           10794       running     /tmp/b      2026-11-29T11:40:32.740740953Z   root\n"
    "y           10829       created     /tmp/b      2026-11-29T11:40:32.784894448Z   root\n"
)  # `runc list` (runc 1.1.5) with two containers
RUNC_JSON = (
    '[{"ociVersion":"1.0.2-dev","id":"x","pid":10794,"status":"running","bundle":"/tmp/b",'
    '"rootfs":"/tmp/b/rootfs","created":"2026-11-29T11:40:32.740740953Z","owner":"root"},'
    '{"ociVersion":"1.0.2-dev","id":"y","pid":10829,"status":"created","bundle":"/tmp/b",'
    '"rootfs":"/tmp/b/rootfs","created":"2026-11-29T11:40:32.784894448Z","owner":"root"}]\n'
)  # `runc list -f json`


@pytest.fixture
def two(fake, tmp_path):
    fake.add("y", status="created", pid=10829, created="2026-11-29T11:40:32.784894448Z")
    fake.add("x", pid=10794, created="2026-11-29T11:40:32.740740953Z")
    for cid in ("x", "y"):
        (tmp_path / cid).mkdir()
    return tmp_path


@pytest.mark.skipif(os.geteuid() != 0, reason="owner column reads 'root' only as root")
def test_list_table_matches_runc(ketch, two) -> None:
    r = ketch("--root", str(two), "list")
    assert (r.rc, r.out, r.err) == (0, RUNC_TABLE, "")


@pytest.mark.skipif(os.geteuid() != 0, reason="owner column reads 'root' only as root")
def test_list_json_matches_runc(ketch, two) -> None:
    for args in (["list", "-f", "json"], ["list", "--format=json"], ["list", "-format", "json"]):
        r = ketch("--root", str(two), *args)
        assert (r.rc, r.out, r.err) == (0, RUNC_JSON, "")


def test_list_quiet(ketch, two) -> None:
    for args in (["list", "-q"], ["list", "--quiet", "-f", "yaml"]):   # quiet wins over --format
        r = ketch("--root", str(two), *args)
        assert (r.rc, r.out) == (0, "x\ny\n")


def test_list_empty(ketch, fake, tmp_path) -> None:
    r = ketch("--root", str(tmp_path), "list")
    assert r.out == "ID          PID         STATUS      BUNDLE      CREATED     OWNER\n"
    assert ketch("--root", str(tmp_path), "list", "-f", "json").out == "null\n"
    assert ketch("--root", str(tmp_path), "list", "-q").out == ""


def test_list_invalid_format(ketch, two) -> None:
    r = ketch("--root", str(two), "list", "-f", "yaml")
    assert (r.rc, r.out) == (1, "") and msg(r.err) == "invalid format option"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs chown")
def test_list_owner_without_a_name(ketch, two) -> None:
    os.chown(two / "x", 54321, 0)
    out = ketch("--root", str(two), "list").out
    assert out.splitlines()[1].endswith("   #54321")


def test_list_owner_from_state_wins(ketch, two, fake) -> None:
    fake.containers["x"].owner = "alice"
    assert ketch("--root", str(two), "list").out.splitlines()[1].endswith("   alice")


def test_list_long_cells_widen_columns() -> None:
    rows = [["ID", "PID"], ["a-very-long-container-id", "1"]]
    assert table(rows) == "ID                         PID\na-very-long-container-id   1\n"


def test_list_library_error(ketch, fake) -> None:
    def broken(root):
        raise ContainerNotExistError()

    fake.list_containers = broken
    r = ketch("list")
    assert r.rc == 1 and msg(r.err) == "container does not exist"


def test_systemd_cgroup_is_refused_with_a_clear_error(ketch, fake) -> None:
    r = ketch("--systemd-cgroup", "run", "-b", "/b", "c1")
    assert r.rc == 1 and "systemd" in msg(r.err)
    assert fake.calls == []
