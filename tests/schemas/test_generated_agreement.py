"""The generated config.json validator agrees with jsonschema (runtime-spec config.md, config-linux.md).

For runc's and Ketch's default specs, hand-written configs touching every section,
and thousands of schema-guided mutations of them, both validators must accept or
reject alike; when they reject, the generated validator's field must name a path
jsonschema also blames (itself, or the object that lacks a required member).
"""

from __future__ import annotations

import pytest

import ketch.schemas
from ketch.runtime.errors import ConfigError
from ketch.runtime.spec import _generated_config_validator as generated

from . import samples
from .mutations import mutations, parse_field


def _verdict(doc: object) -> ConfigError | None:
    try:
        generated.validate(doc)
    except ConfigError as err:
        return err
    return None


def _disagreements(docs, config_jsonschema) -> tuple[list[str], int, int]:
    problems: list[str] = []
    rejected = total = 0
    for desc, doc in docs:
        total += 1
        errors = list(config_jsonschema.iter_errors(doc))
        err = _verdict(doc)
        if (err is None) != (not errors):
            problems.append(f"{desc}: jsonschema={[e.message for e in errors][:2]} generated={err}")
            continue
        if err is None:
            continue
        rejected += 1
        ours = parse_field(err.field)
        blamed = {tuple(e.absolute_path) for e in errors}
        if ours not in blamed and ours[:-1] not in blamed:
            problems.append(f"{desc}: generated blames {err.field!r}, jsonschema {sorted(blamed)}")
    return problems, rejected, total


@pytest.mark.parametrize("name", sorted(samples.VALID_CONFIGS))
def test_valid_samples_accepted_by_both(name, config_jsonschema):
    doc = samples.VALID_CONFIGS[name]()
    assert list(config_jsonschema.iter_errors(doc)) == []
    generated.validate(doc)


def test_runc_spec_accepted_by_both(runc_spec, runc_spec_rootless, config_jsonschema):
    for doc in (runc_spec, runc_spec_rootless):
        assert list(config_jsonschema.iter_errors(doc)) == []
        generated.validate(doc)


_MUTATED = {f"{name}:{section}": doc
            for name in ("default", "full", "joined-namespaces", "rootless")
            for section, doc in samples.sections(samples.VALID_CONFIGS[name]()).items()}


@pytest.mark.parametrize("name", sorted(_MUTATED))
def test_mutations_of_samples_agree(name, config_jsonschema):
    schema = ketch.schemas.load_schema("runtime", "config")
    problems, rejected, total = _disagreements(mutations(_MUTATED[name], schema),
                                               config_jsonschema)
    assert problems == [], f"{len(problems)} of {total} disagree:\n" + "\n".join(problems[:20])
    assert rejected > total // 3  # the mutation set really exercises rejections


def test_mutation_set_size():
    schema = ketch.schemas.load_schema("runtime", "config")
    assert sum(len(list(mutations(doc, schema))) for doc in _MUTATED.values()) > 8000


def test_mutations_of_runc_spec_agree(runc_spec, runc_spec_rootless, config_jsonschema):
    schema = ketch.schemas.load_schema("runtime", "config")
    for spec in (runc_spec, runc_spec_rootless):
        for doc in samples.sections(spec).values():
            problems, rejected, total = _disagreements(mutations(doc, schema), config_jsonschema)
            assert problems == [], "\n".join(problems[:20])
            assert rejected > total // 3


@pytest.mark.parametrize("doc", [None, [], "config", 7, True, {}], ids=repr)
def test_non_object_documents(doc, config_jsonschema):
    assert (_verdict(doc) is None) == config_jsonschema.is_valid(doc)


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda d: d.pop("ociVersion"), "ociVersion: is required"),
    (lambda d: d.update(ociVersion="1.0"), "ociVersion: must be a SemVer 2.0.0 version such as 1.0.2"),
    (lambda d: d.pop("root"), "root: is required"),
    (lambda d: d["root"].pop("path"), "root.path: is required"),
    (lambda d: d["root"].update(path=3), "root.path: must be a string"),
    (lambda d: d["root"].update(readonly="yes"), "root.readonly: must be a boolean"),
    (lambda d: d["process"].update(args=[]), "process.args: must be a non-empty array"),
    (lambda d: d["process"].update(args="sh"), "process.args: must be a non-empty array"),
    (lambda d: d["process"].update(args=["sh", 1]), "process.args[1]: must be a string"),
    (lambda d: d["process"].pop("cwd"), "process.cwd: is required"),
    (lambda d: d["process"]["user"].update(uid=-1), "process.user.uid: must not be negative"),
    (lambda d: d["process"]["user"].update(gid=2**32), "process.user.gid: must be at most 4294967295"),
    (lambda d: d["process"]["user"].update(uid=True), "process.user.uid: must be an integer"),
    (lambda d: d["process"]["rlimits"][0].update(type="RLIMIT_FOO"),
     'process.rlimits[0].type: unknown value "RLIMIT_FOO"'),
    (lambda d: d["process"].update(oomScoreAdj=1001), "process.oomScoreAdj: must be at most 1000"),
    (lambda d: d["process"].update(ioPriority={"class": "IOPRIO_CLASS_BE", "priority": 8}),
     "process.ioPriority.priority: must be at most 7"),
    (lambda d: d["mounts"][2].pop("destination"), "mounts[2].destination: is required"),
    (lambda d: d["mounts"][1].update(options="ro"), "mounts[1].options: must be an array"),
    (lambda d: d["mounts"][0].update(uidMappings=[]), "mounts[0].gidMappings: is required when uidMappings is set"),
    (lambda d: d["linux"]["namespaces"][0].update(type="foo"),
     'linux.namespaces[0].type: must be one of "pid", "network", "mount", "ipc", "uts", '
     '"user", "cgroup", "time"'),
    (lambda d: d["linux"].update(sysctl={"net.ipv4.ip_forward": 1}),
     'linux.sysctl["net.ipv4.ip_forward"]: must be a string'),
    (lambda d: d.update(annotations={"": "x"}), 'annotations[""]: key must not be empty'),
    (lambda d: d["linux"].update(devices=[{"type": "c", "path": "/dev/x", "major": 1}]),
     "linux.devices[0].minor: is required"),
    (lambda d: d["linux"]["resources"].update(blockIO={"weightDevice": [{"major": 8, "minor": 0}]}),
     "linux.resources.blockIO.weightDevice[0]: must set at least one of weight, leafWeight"),
    (lambda d: d["linux"]["resources"].update(hugepageLimits=[{"pageSize": "2M", "limit": 1}]),
     "linux.resources.hugepageLimits[0].pageSize: must be a size like 64KB, 2MB or 1GB"),
    (lambda d: d["linux"]["resources"]["devices"][0].update(access="rwx"),
     "linux.resources.devices[0].access: must be made of the letters r, w and m"),
    (lambda d: d["linux"].update(intelRdt={"memBwSchema": "MB:0=20\n"}),
     "linux.intelRdt.memBwSchema: must start with MB: and contain no newline"),
    (lambda d: d["linux"].update(seccomp={"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "m"}),
     "linux.seccomp.listenerPath: is required when listenerMetadata is set"),
    (lambda d: d["linux"].update(timeOffsets={"realtime": {"secs": 1}}),
     'linux.timeOffsets["realtime"]: key must be one of "monotonic", "boottime"'),
    (lambda d: d.update(hooks={"poststart": [{"path": "/bin/x", "timeout": 0}]}),
     "hooks.poststart[0].timeout: must be at least 1"),
])
def test_generated_messages(mutate, expected):
    doc = samples.full_config()
    mutate(doc)
    err = _verdict(doc)
    assert err is not None
    assert str(err) == expected


def test_root_message():
    err = _verdict(["not", "an", "object"])
    assert err is not None and err.field == "" and str(err) == "config.json must be an object"
