"""The parts of two-step sign-in (app/services/two_step.py) that need no request: the codes against
the published test vectors (RFC 6238 appendix B, RFC 4226 appendix D), how a typed code is read,
the sealing key and the required roles from the configuration, and a sealed secret bound to its
key and to its user."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from app.models import TwoStep, User
from app.services.two_step import (
    MAX_CODE_LENGTH,
    MIN_KEY_LENGTH,
    TwoStepService,
    base32,
    normalised,
    required_roles,
    sealing_key,
    step_at,
    totp,
)
from tests.conftest import TEST_CONFIG

#: RFC 6238's SHA-1 seed: the ASCII of "12345678901234567890".
RFC_SECRET = b"12345678901234567890"

#: RFC 6238 appendix B, the SHA-1 column: Unix time -> the eight-digit code.
RFC_6238_SHA1 = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]

#: RFC 4226 appendix D: the six-digit HOTP values of counters 0..9 (a TOTP is HOTP of the step).
RFC_4226_HOTP = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"]


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


@pytest.mark.parametrize(("seconds", "expected"), RFC_6238_SHA1)
def test_totp_gives_the_rfc_6238_sha1_codes(seconds: int, expected: str) -> None:
    step = step_at(at(seconds))
    assert step == seconds // 30
    assert totp(RFC_SECRET, step, digits=8) == expected


@pytest.mark.parametrize(("seconds", "expected"), RFC_6238_SHA1)
def test_six_digit_codes_are_the_last_six_digits_zero_padded(seconds: int, expected: str) -> None:
    code = totp(RFC_SECRET, step_at(at(seconds)))
    assert code == expected[-6:]
    assert len(code) == 6 and code.isdigit()


def test_totp_of_a_counter_is_rfc_4226_hotp() -> None:
    assert [totp(RFC_SECRET, counter) for counter in range(10)] == RFC_4226_HOTP


def test_step_at_is_the_30_second_step_of_a_moment() -> None:
    assert step_at(at(0)) == 0
    assert step_at(at(29)) == 0
    assert step_at(at(30)) == 1
    assert step_at(at(59)) == 1
    assert step_at(datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)) == 1767603600 // 30


def test_base32_is_unpadded_and_reads_back() -> None:
    import base64

    text = base32(RFC_SECRET)
    assert text == "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" and "=" not in text
    odd = b"\x01\x02\x03"  # a length whose base32 needs padding
    assert "=" not in base32(odd)
    assert base64.b32decode(base32(odd) + "=" * (-len(base32(odd)) % 8)) == odd


@pytest.mark.parametrize(("typed", "expected"), [
    ("123456", "123456"),
    (" 123 456 ", "123456"),
    ("123\t456\n", "123456"),
    ("123-456", "123456"),
    ("ABCDE-FGHIJ", "abcdefghij"),
    ("abcde fghij", "abcdefghij"),
    ("AbCdE--FgHiJ", "abcdefghij"),
    ("", ""),
    ("x" * MAX_CODE_LENGTH, "x" * MAX_CODE_LENGTH),
])
def test_normalised_drops_spaces_and_dashes_and_lowers_the_case(typed: str, expected: str) -> None:
    assert normalised(typed) == expected


@pytest.mark.parametrize("typed", [None, 123456, 12.5, b"123456", ["123456"], {"code": "123456"},
                                   "1" * (MAX_CODE_LENGTH + 1)])
def test_normalised_is_none_for_what_is_no_text_or_too_long(typed: Any) -> None:
    assert normalised(typed) is None


def test_sealing_key_refuses_a_short_two_step_key() -> None:
    with pytest.raises(ValueError, match="TWO_STEP_KEY must be at least 32"):
        sealing_key({"SECRET_KEY": "s", "TWO_STEP_KEY": "k" * (MIN_KEY_LENGTH - 1)})
    with pytest.raises(ValueError):
        sealing_key({"SECRET_KEY": "s", "TWO_STEP_KEY": "short"})


def test_sealing_key_is_256_bits_and_depends_on_the_key_it_is_given() -> None:
    own = sealing_key({"SECRET_KEY": "s", "TWO_STEP_KEY": "k" * MIN_KEY_LENGTH})
    assert len(own) == 32
    assert own == sealing_key({"SECRET_KEY": "another", "TWO_STEP_KEY": "k" * MIN_KEY_LENGTH})  # SECRET_KEY aside
    assert own != sealing_key({"SECRET_KEY": "s", "TWO_STEP_KEY": "l" * MIN_KEY_LENGTH})
    derived = sealing_key({"SECRET_KEY": "s", "TWO_STEP_KEY": None})
    assert len(derived) == 32 and derived == sealing_key({"SECRET_KEY": "s"})
    assert derived != sealing_key({"SECRET_KEY": "t"}) and derived != own
    assert derived != b"s".ljust(32, b"\0")


def test_required_roles_reads_a_comma_separated_list() -> None:
    assert required_roles({}) == frozenset()
    assert required_roles({"TWO_STEP_REQUIRED_ROLES": ""}) == frozenset()
    assert required_roles({"TWO_STEP_REQUIRED_ROLES": None}) == frozenset()
    assert required_roles({"TWO_STEP_REQUIRED_ROLES": " Admin, auditor ,,"}) == frozenset({"admin", "auditor"})
    assert required_roles({"TWO_STEP_REQUIRED_ROLES": "agent"}) == frozenset({"agent"})


def test_required_roles_refuses_an_unknown_role() -> None:
    with pytest.raises(ValueError, match="root") as refused:
        required_roles({"TWO_STEP_REQUIRED_ROLES": "admin,root"})
    assert "admin" in str(refused.value)  # the message lists the roles there are
    with pytest.raises(ValueError, match="admins"):
        required_roles({"TWO_STEP_REQUIRED_ROLES": "admins"})


def test_an_app_with_a_bad_two_step_setting_does_not_start(tmp_path: Any) -> None:
    from app import create_app

    url = f"sqlite:///{tmp_path / 'x.sqlite3'}"
    with pytest.raises(ValueError, match="TWO_STEP_KEY"):
        create_app({**TEST_CONFIG, "DATABASE_URL": url, "TWO_STEP_KEY": "too-short"})
    with pytest.raises(ValueError, match="TWO_STEP_REQUIRED_ROLES"):
        create_app({**TEST_CONFIG, "DATABASE_URL": url, "TWO_STEP_REQUIRED_ROLES": "agent,superuser"})


# -- the secret at rest ------------------------------------------------------------------------------


def service_with(services: Any, **config: Any) -> TwoStepService:
    return TwoStepService(services.session, services.audit, services.runtime.clock, services.users,
                          services.notifications, {**TEST_CONFIG, **config})


def row_of(user: User, sealed: str) -> TwoStep:
    return TwoStep(user_id=user.id, sealed_secret=sealed, created_at=at(0), last_step=0)


def test_a_sealed_secret_opens_for_its_user_under_its_key_only(services: Any) -> None:
    secret = bytes(range(20))
    rita, rick = User(id=7, username="rita"), User(id=8, username="rick")
    own = services.two_step
    sealed = own._seal(rita, secret)
    assert sealed.startswith("v1.") and base32(secret) not in sealed and secret.hex() not in sealed
    assert own._open(rita, row_of(rita, sealed)) == secret
    assert own._seal(rita, secret) != sealed  # a fresh nonce each time

    # copied onto another user's row it does not open
    assert own._open(rick, row_of(rick, sealed)) is None
    # nor under another key: another TWO_STEP_KEY, or another SECRET_KEY it is derived from
    assert service_with(services, TWO_STEP_KEY="k" * 32)._open(rita, row_of(rita, sealed)) is None
    assert service_with(services, SECRET_KEY="another-secret-key")._open(rita, row_of(rita, sealed)) is None
    # the same configuration opens it (the key is not random per service)
    assert service_with(services)._open(rita, row_of(rita, sealed)) == secret

    keyed = service_with(services, TWO_STEP_KEY="k" * 32)
    sealed_keyed = keyed._seal(rita, secret)
    assert keyed._open(rita, row_of(rita, sealed_keyed)) == secret
    assert own._open(rita, row_of(rita, sealed_keyed)) is None


@pytest.mark.parametrize("damage", [
    lambda s: s.replace("v1.", "v2.", 1),
    lambda s: s[3:],
    lambda s: s[:-4] + ("AAAA" if not s.endswith("AAAA") else "BBBB"),
    lambda s: s[:20],
    lambda s: "v1.",
    lambda s: "v1.!!!not base64!!!",
    lambda s: "",
])
def test_a_damaged_sealed_secret_does_not_open(services: Any, damage: Any) -> None:
    rita = User(id=7, username="rita")
    sealed = services.two_step._seal(rita, bytes(range(20)))
    assert services.two_step._open(rita, row_of(rita, damage(sealed))) is None
