"""Signing, checked against a verifier written from the Standard Webhooks spec, not from our code."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from displayd.delivery import signing
from displayd.delivery.signing import headers, sign

# The spec's (and svix's) published example: the one answer this must reproduce bit for bit.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def verify(secret: str, received: dict[str, str], body: bytes, *, now: float | None = None,
           tolerance: int = 300) -> bool:
    """A board's check, as the Standard Webhooks spec describes it (https://www.standardwebhooks.com/).

    The key is the base64 after `whsec_`; the signed content is `{id}.{timestamp}.{payload}`; the header
    is space-separated `version,signature` pairs, one of which must be a `v1` match; the timestamp must
    be within `tolerance` seconds of now.
    """
    msg_id, timestamp = received["webhook-id"], received["webhook-timestamp"]
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance:
        return False
    key = base64.b64decode(secret.split("_", 1)[1])
    content = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    for pair in received["webhook-signature"].split(" "):
        version, _, signature = pair.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return True
    return False


def test_reproduces_the_spec_example() -> None:
    assert sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_headers_carry_id_timestamp_signature_and_content_type() -> None:
    got = headers(SECRET, "so-sanh-chinh:3:1234", 1715040000, b'{"type":"show"}')
    assert set(got) == {"webhook-id", "webhook-timestamp", "webhook-signature", "content-type"}
    assert got["webhook-id"] == "so-sanh-chinh:3:1234"
    assert got["webhook-timestamp"] == "1715040000"
    assert got["content-type"] == "application/json"
    assert verify(SECRET, got, b'{"type":"show"}', now=1715040000)


@given(webhook_id=st.text(st.characters(codec="ascii", exclude_characters="\r\n"), min_size=1, max_size=60),
       body=st.binary(max_size=2000), timestamp=st.integers(min_value=0, max_value=2**33),
       key=st.binary(min_size=16, max_size=64))
def test_every_signature_verifies(webhook_id: str, body: bytes, timestamp: int, key: bytes) -> None:
    secret = "whsec_" + base64.b64encode(key).decode()
    assert verify(secret, headers(secret, webhook_id, timestamp, body), body, now=timestamp)


def test_tampering_fails_verification() -> None:
    body = '{"type":"show","content":{"text":"An toàn là bạn"}}'.encode()
    good = headers(SECRET, "b1:3:1234", 1715040000, body)
    assert verify(SECRET, good, body, now=1715040000)
    assert not verify(SECRET, good, body.replace(b"show", b"blank"), now=1715040000)  # tampered body
    other = "whsec_" + base64.b64encode(b"x" * 32).decode()
    assert not verify(other, good, body, now=1715040000)  # wrong secret
    assert not verify(SECRET, {**good, "webhook-id": "b1:3:1235"}, body, now=1715040000)  # wrong id
    assert not verify(SECRET, {**good, "webhook-timestamp": "1715040001"}, body, now=1715040000)  # moved timestamp
    assert not verify(SECRET, good, body, now=1715040000 + 3600)  # replayed an hour later


def displayd_verify(secret: str, received: dict[str, str], body: bytes, *, now: float) -> bool:
    try:
        signing.verify(secret, received, body, now=now)
    except signing.BadSignature:
        return False
    return True


@given(webhook_id=st.text(st.characters(codec="ascii", exclude_characters="\r\n "), min_size=1, max_size=60),
       body=st.binary(max_size=500), timestamp=st.integers(min_value=0, max_value=2**33),
       offset=st.integers(min_value=-400, max_value=400), flip=st.integers(min_value=0, max_value=499),
       tamper=st.booleans())
def test_displayd_verify_agrees_with_the_spec_verifier(webhook_id: str, body: bytes, timestamp: int, offset: int,
                                                       flip: int, tamper: bool) -> None:
    """The verify the demo boards use says yes exactly when the independent spec verifier does."""
    sent = headers(SECRET, webhook_id, timestamp, body)
    received = body
    if tamper and body:
        index = flip % len(body)
        received = body[:index] + bytes([body[index] ^ 1]) + body[index + 1:]
    now = timestamp + offset
    assert displayd_verify(SECRET, sent, received, now=now) == verify(SECRET, sent, received, now=now)


def test_displayd_verify_says_why_and_accepts_any_of_several_signatures() -> None:
    body = b'{"type":"blank"}'
    good = headers(SECRET, "b1:3:1234", 1715040000, body)
    other = "whsec_" + base64.b64encode(b"x" * 32).decode()
    rotated = {**good, "webhook-signature": f"{sign(other, 'b1:3:1234', 1715040000, body)} {good['webhook-signature']}"}
    assert signing.verify(SECRET, rotated, body, now=1715040000) == "b1:3:1234"
    for received, reason in [({k: v for k, v in good.items() if k != "webhook-id"}, "headers missing"),
                             ({**good, "webhook-timestamp": "soon"}, "not a number"),
                             (good, "too far")]:
        with pytest.raises(signing.BadSignature, match=reason):
            signing.verify(SECRET, received, body, now=1715040000 + (3600 if received is good else 0))
    with pytest.raises(signing.BadSignature, match="does not match"):
        signing.verify(other, good, body, now=1715040000)
