import pytest

from ketch.image import oci
from ketch.image.errors import DigestError, ManifestError

GOOD = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize("digest", [GOOD, "sha512:" + "ab" * 64])
def test_valid_digests(digest: str) -> None:
    alg, hexd = oci.parse_digest(digest)
    assert f"{alg}:{hexd}" == digest


@pytest.mark.parametrize("digest", [
    "", "sha256", "sha256:", GOOD.upper(), "SHA256:" + GOOD[7:], GOOD[:-1], GOOD + "0",
    "sha256:" + "g" * 64, "sha256:../../../../etc/passwd", "sha256:" + "a" * 63 + "/",
    "md5:" + "a" * 32, "sha384:" + "a" * 96, "sha256:" + "a" * 64 + "\n", "../x:" + "a" * 64,
    None, 42,
])
def test_invalid_digests(digest: object) -> None:
    with pytest.raises(DigestError):
        oci.parse_digest(digest)


def test_verifier() -> None:
    data = b"hello"
    d = oci.sha256_digest(data)
    oci.verify_bytes(data, d, 5)
    with pytest.raises(DigestError, match="mismatch"):
        oci.verify_bytes(b"hellO", d, 5)
    with pytest.raises(DigestError, match="size"):
        oci.verify_bytes(data, d, 4)
    with pytest.raises(DigestError, match="size"):
        oci.verify_bytes(data, d, 6)


def _desc() -> dict:
    return {"mediaType": oci.OCI_CONFIG, "digest": GOOD, "size": 1}


def test_document_media_type() -> None:
    manifest = {"schemaVersion": 2, "config": _desc(), "layers": []}
    assert oci.document_media_type(manifest, None, "m") == oci.OCI_MANIFEST
    assert oci.document_media_type(manifest, oci.DOCKER_MANIFEST, "m") == oci.DOCKER_MANIFEST
    index = {"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": []}
    assert oci.document_media_type(index, oci.OCI_INDEX, "i") == oci.OCI_INDEX
    with pytest.raises(ManifestError, match="ambiguous"):
        oci.document_media_type({**manifest, "manifests": []}, None, "x")
    with pytest.raises(ManifestError, match="does not match"):
        oci.document_media_type({**manifest, "mediaType": oci.OCI_MANIFEST}, oci.OCI_INDEX, "x")
    with pytest.raises(ManifestError, match="schemaVersion"):
        oci.document_media_type({**manifest, "schemaVersion": 1}, None, "x")
    with pytest.raises(DigestError):
        oci.document_media_type({**manifest, "layers": [{**_desc(), "digest": "sha256:x"}]},
                                None, "x")
    with pytest.raises(ManifestError, match="size"):
        oci.document_media_type({**manifest, "layers": [{**_desc(), "size": -1}]}, None, "x")
