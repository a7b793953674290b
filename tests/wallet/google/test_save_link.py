"""The "Add to Google Wallet" JWT: Google's claims, signed with the service account's key, and
short enough for a link even with the longest names a shop realistically has."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from passes.wallet.google.issuer import GoogleIssuer
from passes.wallet.google.objects import ImageUrls, loyalty_class, loyalty_object
from passes.wallet.google.save_link import (
    MAX_JWT_LENGTH,
    SAVE_URL,
    JwtTooLong,
    ServiceAccount,
    save_jwt,
    save_url,
)
from passes.wallet.sample import SAMPLE_BRANDING, sample_card_view
from passes.wallet.view import CardView

ISSUER = "3388000000022222222"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def account(key: rsa.RSAPrivateKey) -> ServiceAccount:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return ServiceAccount.from_info(
        {
            "client_email": "loyalpass@shop-project.iam.gserviceaccount.com",
            "private_key": pem,
            "private_key_id": "0123456789abcdef0123456789abcdef01234567",
        }
    )


def decode(token: str, key: rsa.RSAPrivateKey) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(
        token, key.public_key(), algorithms=["RS256"], audience="google"
    )
    return claims


def longest_view() -> CardView:
    """Names at the limits of what shops and members really use, in Cyrillic (two bytes each)."""
    branding = replace(
        SAMPLE_BRANDING,
        program_key="kofeinya-zerno-na-pokrovke-i-u-patriarshih",
        organization_name="Сеть кофеен и пекарен «Зерно и Хлеб» на Покровке и у Патриарших",
        program_name="Клуб друзей кофейни «Зерно и Хлеб»",
    )
    return sample_card_view(
        branding,
        member_name="Констанция-Александра Вольдемаровна Римская-Корсакова-Голенищева",
        serial_number="f" * 64,
        tier_name="Платиновый гурман высшей категории",
    )


def test_claims_and_signature_verify_with_the_service_account_public_key(
    account: ServiceAccount, key: rsa.RSAPrivateKey
) -> None:
    token = save_jwt(
        account,
        objects=[{"id": f"{ISSUER}.card-1", "classId": f"{ISSUER}.zerno"}],
        origins=["https://loyalpass.test"],
        now=1_790_000_000,
    )
    claims = decode(token, key)
    assert claims == {
        "iss": account.email,
        "aud": "google",
        "typ": "savetowallet",
        "iat": 1_790_000_000,
        "origins": ["https://loyalpass.test"],
        "payload": {"loyaltyObjects": [{"id": f"{ISSUER}.card-1", "classId": f"{ISSUER}.zerno"}]},
    }
    assert jwt.get_unverified_header(token) == {
        "alg": "RS256",
        "typ": "JWT",
        "kid": account.key_id,
    }


def test_a_token_signed_by_another_key_does_not_verify(account: ServiceAccount) -> None:
    token = save_jwt(account, objects=[{"id": f"{ISSUER}.a", "classId": f"{ISSUER}.b"}])
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(jwt.InvalidSignatureError):
        decode(token, stranger)


def test_the_skinny_jwt_for_the_longest_names_fits_a_link(
    account: ServiceAccount, key: rsa.RSAPrivateKey
) -> None:
    body = loyalty_object(longest_view(), issuer_id=ISSUER)
    reference = {"id": body["id"], "classId": body["classId"]}
    origins = ["https://very-long-shop-domain-name-for-loyalty.example.com"]
    token = save_jwt(account, objects=[reference], origins=origins)
    assert len(token) <= MAX_JWT_LENGTH
    assert decode(token, key)["payload"]["loyaltyObjects"] == [reference]
    assert save_url(token) == SAVE_URL + token


def test_a_full_class_and_object_for_the_longest_names_is_refused_not_truncated(
    account: ServiceAccount,
) -> None:
    view = longest_view()
    images = ImageUrls(
        logo="https://loyalpass.test/p/x/google/logo.png?v=1",
        hero="https://loyalpass.test/p/x/google/hero.png?v=1",
    )
    with pytest.raises(JwtTooLong, match="at most 1800"):
        save_jwt(
            account,
            objects=[loyalty_object(view, issuer_id=ISSUER)],
            classes=[loyalty_class(view.branding, issuer_id=ISSUER, images=images)],
        )


def test_a_service_account_file_without_a_key_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="private_key"):
        ServiceAccount.from_info({"client_email": "a@b.iam.gserviceaccount.com"})


def issuer(key: rsa.RSAPrivateKey) -> GoogleIssuer:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return GoogleIssuer.create(
        issuer_id=ISSUER,
        service_account_info={
            "type": "service_account",
            "client_email": "loyalpass@shop-project.iam.gserviceaccount.com",
            "private_key": pem,
            "private_key_id": "0123456789abcdef0123456789abcdef01234567",
            "token_uri": "https://oauth2.googleapis.com/token",
        },
        public_url="https://loyalpass.test",
    )


def test_a_fallback_link_carries_the_callback_url_while_it_fits(key: rsa.RSAPrivateKey) -> None:
    """Without the API, the link creates the class: with its callback URL (so the save about
    to happen is reported) when there is room, without it rather than no link at all."""
    google = issuer(key)
    carried: list[bool] = []
    for length in range(10, 200, 5):
        view = sample_card_view(member_name="Я" * length, tier_name=None)
        try:
            url = google.full_save_url(google.object_body(view), google.class_body(view.branding))
        except JwtTooLong:
            break
        (klass,) = decode(url[len(SAVE_URL) :], key)["payload"]["loyaltyClasses"]
        carried.append("callbackOptions" in klass)
    assert carried[0] is True and carried[-1] is False  # it fit; later only without it
    assert carried == sorted(carried, reverse=True)  # dropped once, for longer names only
