"""A stand-in for ``ketch.runtime.container`` that records what the verbs call."""

from __future__ import annotations

from ketch.runtime.errors import ContainerExistsError, ContainerNotExistError, KetchError


class FakeContainer:
    def __init__(self, backend: FakeBackend, root: str, cid: str, bundle: str, **kwargs: object) -> None:
        self.backend = backend
        self.root = root
        self.id = cid
        self.bundle = bundle
        self.kwargs = kwargs
        self.status = "created"
        self.pid = 4242
        self.created = "2026-11-29T11:40:32.740740950Z"
        self.owner = ""
        self.annotations: dict[str, str] = {}
        self.exit_code = 0

    def _call(self, name: str, *args: object, **kwargs: object) -> None:
        self.backend.calls.append((name, self.id, args, kwargs))
        failure = self.backend.fail.get(name)
        if failure is not None:
            raise failure

    # --- the library API -------------------------------------------------
    @classmethod
    def _bind(cls, backend: FakeBackend) -> type:
        class Bound(cls):  # type: ignore[misc, valid-type]
            @classmethod
            def create(klass, root: str, container_id: str, bundle: str, **kwargs: object) -> FakeContainer:
                backend.calls.append(("create", container_id, (root, bundle), kwargs))
                if "create" in backend.fail:
                    raise backend.fail["create"]
                if container_id in backend.containers:
                    raise ContainerExistsError(container_id)
                c = klass(backend, root, container_id, bundle, **kwargs)
                backend.containers[container_id] = c
                return c

            @classmethod
            def load(klass, root: str, container_id: str) -> FakeContainer:
                backend.calls.append(("load", container_id, (root,), {}))
                c = backend.containers.get(container_id)
                if c is None:
                    raise ContainerNotExistError(container_id)
                return c

        return Bound

    def start(self) -> None:
        self._call("start")
        if self.status != "created":
            raise KetchError("cannot start an already running container")
        self.status = "running"

    def wait_foreground(self) -> int:
        self._call("wait_foreground")
        self.status = "stopped"
        return self.exit_code

    def pids(self) -> list[int]:
        return [self.pid] if self.status != "stopped" else []

    def process_template(self) -> dict:
        return {"args": ["sh"], "env": ["PATH=/bin"], "cwd": "/", "user": {"uid": 0, "gid": 0},
                "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"],
                                 "permitted": ["CAP_KILL"]}}

    def exec(self, process: dict, **kwargs: object) -> int:
        self._call("exec", process, **kwargs)
        return self.exit_code

    def signal(self, sig: int, all: bool = False) -> None:
        self._call("signal", sig, all=all)

    def delete(self, force: bool = False) -> None:
        self._call("delete", force=force)
        self.backend.containers.pop(self.id, None)

    def state(self) -> dict:
        st = {
            "ociVersion": "1.0.2-dev",
            "id": self.id,
            "pid": self.pid if self.status != "stopped" else 0,
            "status": self.status,
            "bundle": self.bundle,
            "rootfs": self.bundle + "/rootfs",
            "created": self.created,
            "owner": self.owner,
        }
        if self.annotations:
            st["annotations"] = self.annotations
        return st


class FakeBackend:
    """Has ``Container`` and ``list_containers`` like ``ketch.runtime.container``."""

    def __init__(self) -> None:
        self.containers: dict[str, FakeContainer] = {}
        self.calls: list[tuple[str, str, tuple, dict]] = []
        self.fail: dict[str, BaseException] = {}
        self.Container = FakeContainer._bind(self)

    def remove_stale_state(self, root: str, container_id: str) -> None:
        self.calls.append(("remove_stale_state", container_id, (root,), {}))

    def list_containers(self, root: str) -> list[FakeContainer]:
        self.calls.append(("list_containers", "", (root,), {}))
        return list(self.containers.values())

    def add(self, cid: str, bundle: str = "/tmp/b", status: str = "running", **attrs: object) -> FakeContainer:
        c = self.Container(self, "/run/ketch", cid, bundle)
        c.status = status
        for k, v in attrs.items():
            setattr(c, k, v)
        self.containers[cid] = c
        return c

    def names(self) -> list[str]:
        return [call[0] for call in self.calls]


def install() -> FakeBackend:
    """Install a fresh fake as the CLI's backend (used by subprocess tests)."""
    from ketch.runtime.cli import backend

    fake = FakeBackend()
    backend.use(fake)
    return fake
