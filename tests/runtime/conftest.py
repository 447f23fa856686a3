"""Fixtures for the end-to-end runtime tests: real containers, run as root, with
runc 1.1.5 side by side as the reference.

- A busybox-static root filesystem is built once per session (``/bin/busybox``
  and one symlink per applet, ``/etc/passwd``, ``/etc/group``, empty ``proc``,
  ``sys``, ``dev`` and ``tmp``); every bundle gets a hard-linked copy of it.
- ``config.json`` starts from ``ketch spec`` (generated once per session) with
  ``process.terminal`` false and the test's ``process.args``.
- Each runtime gets its own ``--root`` under the test's ``tmp_path``; container
  ids are unique per test (the cgroup directories are named after them).
- The pytest process is a child subreaper, so every process a runtime leaves
  behind is re-parented to us: the bad-config tests look for such leftovers and
  teardown reaps zombies and kills anything still alive.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

BUSYBOX = "/bin/busybox"
PR_SET_CHILD_SUBREAPER = 36
DEBIAN_PACKAGES = {"runc": "runc", "busybox": "busybox-static", "script": "bsdutils"}

PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "user:x:1000:1000:user:/home/user:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
)
GROUP = (
    "root:x:0:\n"
    "wheel:x:10:user\n"
    "audio:x:29:\n"
    "user:x:1000:\n"
    "nogroup:x:65534:\n"
)


def ketch_path() -> str:
    """The venv's ``ketch`` console script (``$KETCH`` overrides)."""
    env = os.environ.get("KETCH")
    if env:
        return env
    beside = Path(sys.executable).with_name("ketch")
    if beside.exists():
        return str(beside)
    found = shutil.which("ketch")
    if not found:
        raise RuntimeError("ketch console script not found next to the interpreter nor on PATH")
    return found


def runc_path() -> str:
    return os.environ.get("RUNC") or shutil.which("runc") or "/usr/sbin/runc"


def is_root() -> bool:
    return os.geteuid() == 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test here creates real containers: mark it ``root`` and skip it when not root
    (CI runs as root, so nothing is skipped there)."""
    here = Path(__file__).parent
    skip = pytest.mark.skip(reason="needs root (namespaces, mounts, cgroups)")
    for item in items:
        if Path(str(item.fspath)).parent != here:
            continue
        item.add_marker(pytest.mark.root)
        if not is_root():
            item.add_marker(skip)



# -- processes --------------------------------------------------------------------------


def set_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def reap_zombies() -> list[int]:
    """Reap every exited child (only call when no subprocess.Popen is outstanding)."""
    reaped = []
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        reaped.append(pid)
    return reaped


def proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, ppid) of ``pid``, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    rest = data[data.rindex(")") + 2:].split()
    return rest[0], int(rest[1])


def alive(pid: int) -> bool:
    """``pid`` exists and is not a zombie."""
    st = proc_stat(pid)
    return st is not None and st[0] not in "ZX"


def children() -> dict[int, str]:
    """Our direct children (pid -> state letter), zombies included."""
    me = os.getpid()
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        st = proc_stat(int(entry))
        if st and st[1] == me:
            out[int(entry)] = st[0]
    return out


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except (FileNotFoundError, ProcessLookupError):
        return []


def wait_until(pred: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return pred()


def cgroup_leftovers(container_id: str) -> list[str]:
    """Cgroup directories named after the container (v1 controllers and v2)."""
    pats = [f"/sys/fs/cgroup/*/{container_id}", f"/sys/fs/cgroup/{container_id}",
            f"/sys/fs/cgroup/*/*/{container_id}"]
    return sorted({p for pat in pats for p in glob.glob(pat)})


# -- runtimes ---------------------------------------------------------------------------

_MSG_RE = re.compile(r'msg="((?:[^"\\]|\\.)*)"')


@dataclass
class Result:
    argv: list[str]
    rc: int
    out: str
    err: str

    @property
    def msg(self) -> str:
        """The logrus ``msg="..."`` text of the last error line (else the last stderr line)."""
        lines = [line for line in self.err.splitlines() if line.strip()]
        for line in reversed(lines):
            m = _MSG_RE.search(line)
            if m:
                return json.loads('"' + m.group(1) + '"')
        return lines[-1] if lines else ""

    def __str__(self) -> str:
        return f"{self.argv!r} -> rc={self.rc}\nstdout: {self.out!r}\nstderr: {self.err!r}"


@dataclass
class Runtime:
    """One runtime binary with its own ``--root``."""

    name: str
    binary: str
    root: Path
    ids: list[str] = field(default_factory=list)

    def argv(self, *args: str) -> list[str]:
        return [self.binary, "--root", str(self.root), *args]

    def __call__(self, *args: str, timeout: float = 30, input: str | None = None,
                 **kw) -> Result:
        """Run the runtime; stdout and stderr go to temporary files, not pipes: a
        detached container (``create``) inherits them and would hold a pipe open."""
        argv = self.argv(*args)
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            p = subprocess.run(argv, stdout=out, stderr=err, timeout=timeout,
                               input=input.encode() if input is not None else None,
                               stdin=None if input is not None else subprocess.DEVNULL, **kw)
            out.seek(0)
            err.seek(0)
            return Result(argv, p.returncode, out.read().decode(errors="replace"),
                          err.read().decode(errors="replace"))

    def norm(self, msg: str) -> str:
        """``msg`` with the program name (``runc`` or ``ketch``) replaced by ``RUNTIME``:
        runc says ``runc create failed: ...`` where ketch says ``ketch create failed: ...``,
        and ketch may quote runc's text (``... if runc will detach ...``) verbatim."""
        return re.sub(r"\b(runc|ketch)\b", "RUNTIME", msg)

    def new_id(self, tag: str = "c") -> str:
        cid = f"kt-{tag}-{uuid.uuid4().hex[:10]}"
        self.ids.append(cid)
        return cid

    def state(self, cid: str) -> dict | None:
        r = self("state", cid)
        return json.loads(r.out) if r.rc == 0 else None

    def status(self, cid: str) -> str | None:
        st = self.state(cid)
        return st["status"] if st else None

    def cleanup(self) -> None:
        if not self.root.is_dir():
            return
        for entry in sorted(os.listdir(self.root)):
            if (self.root / entry).is_dir():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self("delete", "--force", entry, timeout=20)


# -- bundles ----------------------------------------------------------------------------


def build_rootfs(dest: Path) -> None:
    """busybox + one symlink per applet, /etc/passwd, /etc/group, empty mount points."""
    for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "root", "home/user"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    os.chmod(dest / "tmp", 0o1777)
    shutil.copy2(BUSYBOX, dest / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    for applet in applets:
        if applet != "busybox" and not (dest / "bin" / applet).exists():
            os.symlink("busybox", dest / "bin" / applet)
    (dest / "etc" / "passwd").write_text(PASSWD)
    (dest / "etc" / "group").write_text(GROUP)
    os.chown(dest / "home" / "user", 1000, 1000)


@pytest.fixture(scope="session")
def runtime_prereqs(tmp_path_factory: pytest.TempPathFactory,
                    ensure_debian_packages) -> dict:
    """Debian packages, the subreaper bit, the rootfs template and ``ketch spec``'s config."""
    if not is_root():
        pytest.skip("needs root")
    ensure_debian_packages(*DEBIAN_PACKAGES.values())
    for tool in (BUSYBOX, runc_path(), ketch_path()):
        assert os.access(tool, os.X_OK), f"{tool} missing"
    set_subreaper()
    base = tmp_path_factory.mktemp("runtime-template")
    build_rootfs(base / "rootfs")
    spec_dir = base / "spec"
    spec_dir.mkdir()
    p = subprocess.run([ketch_path(), "spec", "--bundle", str(spec_dir)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, f"ketch spec failed: {p.stderr}"
    config = json.loads((spec_dir / "config.json").read_text())
    return {"rootfs": base / "rootfs", "config": config}


@pytest.fixture
def make_bundle(runtime_prereqs: dict, tmp_path: Path) -> Callable[..., Path]:
    """``make_bundle(args, *, terminal=False, edit=None, name="bundle")``: a bundle
    directory under ``tmp_path``; ``edit(config)`` may change the config in place."""
    counter = iter(range(1000))

    def make(args: list[str] | None, *, terminal: bool = False,
             edit: Callable[[dict], None] | None = None, name: str | None = None) -> Path:
        bundle = tmp_path / (name or f"bundle{next(counter)}")
        bundle.mkdir()
        shutil.copytree(runtime_prereqs["rootfs"], bundle / "rootfs", symlinks=True,
                        copy_function=os.link)
        config = json.loads(json.dumps(runtime_prereqs["config"]))
        config["process"]["terminal"] = terminal
        if args is not None:
            config["process"]["args"] = args
        if edit is not None:
            edit(config)
        write_config(bundle, config)
        return bundle

    return make


def write_config(bundle: Path, config: dict) -> None:
    (bundle / "config.json").write_text(json.dumps(config, indent=2))


def read_config(bundle: Path) -> dict:
    return json.loads((bundle / "config.json").read_text())


@pytest.fixture
def _reaper(runtime_prereqs: dict) -> Iterator[None]:
    """Before and after each test: reap zombies; after: kill live leftovers."""
    reap_zombies()
    yield
    reap_zombies()
    for pid in children():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_until(lambda: bool(reap_zombies()) or not children(), timeout=5)


@pytest.fixture
def ketch(tmp_path: Path, _reaper: None) -> Iterator[Runtime]:
    rt = Runtime("ketch", ketch_path(), tmp_path / "ketch-root")
    yield rt
    rt.cleanup()


@pytest.fixture
def runc(tmp_path: Path, _reaper: None) -> Iterator[Runtime]:
    rt = Runtime("runc", runc_path(), tmp_path / "runc-root")
    yield rt
    rt.cleanup()


@pytest.fixture
def known_bug(request: pytest.FixtureRequest) -> Callable[..., None]:
    """``known_bug(reason, runtime=None, strict=True)``: this test documents a ketch
    difference from runc that is not fixed yet. It is marked xfail (strict: once
    ketch is fixed the XPASS fails, and the marker must go), only when it runs
    against ketch (``runtime`` None or the ketch Runtime). The assertions stay exact."""

    def mark(reason: str, runtime: Runtime | None = None, strict: bool = True) -> None:
        if runtime is None or runtime.name == "ketch":
            request.applymarker(pytest.mark.xfail(reason="ketch bug: " + reason, strict=strict))

    return mark


@pytest.fixture(params=["runc", "ketch"])
def any_runtime(request: pytest.FixtureRequest) -> Runtime:
    """Each test using this runs once under runc (the reference) and once under ketch."""
    return request.getfixturevalue(request.param)
