import pytest

from ketch.image.errors import AuthError
from ketch.image.registry.auth import basic_header, is_loopback, parse_challenges


def test_bearer_challenge_with_quoted_commas() -> None:
    [c] = parse_challenges('Bearer realm="https://auth.example/token",service="registry.example",'
                           'scope="repository:lib/app:pull,push"')
    assert c.scheme == "bearer"
    assert c.params == {"realm": "https://auth.example/token", "service": "registry.example",
                        "scope": "repository:lib/app:pull,push"}


def test_challenge_spacing_case_escapes_and_unquoted() -> None:
    [c] = parse_challenges('BEARER  Realm = "https://a/t?x=1" ,  SERVICE=reg ,'
                           'error="insufficient_scope", detail="say \\"hi\\", ok"')
    assert c.scheme == "bearer"
    assert c.params["realm"] == "https://a/t?x=1"
    assert c.params["service"] == "reg"
    assert c.params["error"] == "insufficient_scope"
    assert c.params["detail"] == 'say "hi", ok'


def test_multiple_challenges() -> None:
    cs = parse_challenges('Basic realm="Registry Realm", Bearer realm="https://t/x",service="s"')
    assert [c.scheme for c in cs] == ["basic", "bearer"]
    assert cs[0].params == {"realm": "Registry Realm"}
    assert cs[1].params == {"realm": "https://t/x", "service": "s"}


def test_token68_and_bare_scheme() -> None:
    cs = parse_challenges("Negotiate, Basic dXNlcjpwYXNz==, Bearer realm=x")
    assert [(c.scheme, c.params) for c in cs] == [
        ("negotiate", {}), ("basic", {"": "dXNlcjpwYXNz=="}), ("bearer", {"realm": "x"})]


@pytest.mark.parametrize("header", ['Bearer realm="unterminated', 'Bearer realm="a" service="b"',
                                    "=x"])
def test_malformed_challenges(header: str) -> None:
    with pytest.raises(AuthError):
        parse_challenges(header)


def test_basic_header_and_loopback() -> None:
    assert basic_header("user", "pa:ss") == "Basic dXNlcjpwYTpzcw=="
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert is_loopback("LOCALHOST") and is_loopback("Api.Localhost")  # host names have no case
    assert not is_loopback("registry.example") and not is_loopback("10.0.0.1")
