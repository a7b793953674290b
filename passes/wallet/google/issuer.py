"""Everything loyalpass needs from Google Wallet, configured once per process: the issuer id, the
service account, the REST clients and where our images live. Input is a CardView or Branding."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from passes.wallet.google.callback_keys import DEFAULT_KEYS_URL, RootKeySource
from passes.wallet.google.client import DEFAULT_ENDPOINT, WalletApi
from passes.wallet.google.objects import (
    ImageUrls,
    essential_class,
    essential_object,
    loyalty_class,
    loyalty_object,
)
from passes.wallet.google.save_link import JwtTooLong, ServiceAccount, save_jwt, save_url
from passes.wallet.view import Branding, CardView

__all__ = ["GoogleIssuer", "load_service_account"]

#: Where Google posts save and delete callbacks, under PUBLIC_URL.
CALLBACK_PATH = "/google/callbacks"

#: Clicking "Add to Google Wallet" waits for at most one quick try; the sender retries patiently.
INTERACTIVE_TIMEOUT = 5.0


def load_service_account(path: Path) -> dict[str, Any]:
    """The service-account key file as downloaded from Google Cloud; ValueError if it is not one."""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read the Google service-account file {path}: {exc}") from exc
    except ValueError as exc:
        raise ValueError(f"the Google service-account file {path} is not JSON: {exc}") from exc
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise ValueError(f"{path} is not a service-account key file (type must be service_account)")
    missing = [key for key in ("client_email", "private_key", "token_uri") if not info.get(key)]
    if missing:
        raise ValueError(f"the Google service-account file {path} lacks {', '.join(missing)}")
    return info


@dataclass
class GoogleIssuer:
    """Builds class and object bodies, save links, and holds the REST clients."""

    issuer_id: str
    account: ServiceAccount
    api: WalletApi  # patient: retries 429/5xx (the background sender)
    interactive_api: WalletApi  # one quick try (a member waiting for the save link)
    public_url: str
    origins: tuple[str, ...]
    service_account_info: dict[str, Any] = field(repr=False)  # holds the private key
    endpoint: str = DEFAULT_ENDPOINT
    # Google's root keys that sign the save/delete callbacks.
    callback_keys: RootKeySource = field(default_factory=RootKeySource, repr=False)

    @property
    def callback_url(self) -> str | None:
        """Where Google reports saves and deletions; None unless PUBLIC_URL is https (Google
        calls https addresses only)."""
        if not self.public_url.startswith("https://"):
            return None
        return f"{self.public_url}{CALLBACK_PATH}"

    @classmethod
    def create(
        cls,
        *,
        issuer_id: str,
        service_account_info: dict[str, Any],
        public_url: str,
        endpoint: str = DEFAULT_ENDPOINT,
        origins: tuple[str, ...] = (),
        callback_keys_url: str = DEFAULT_KEYS_URL,
    ) -> GoogleIssuer:
        if not issuer_id.isdigit():
            raise ValueError(
                f"the Google issuer id is the number shown in the Pay & Wallet Console, "
                f"not {issuer_id!r}"
            )
        return cls(
            issuer_id=issuer_id,
            account=ServiceAccount.from_info(service_account_info),
            api=WalletApi(service_account_info, endpoint=endpoint),
            interactive_api=WalletApi(
                service_account_info, endpoint=endpoint, timeout=INTERACTIVE_TIMEOUT, attempts=1
            ),
            public_url=public_url.rstrip("/"),
            origins=origins or (public_url.rstrip("/"),),
            service_account_info=service_account_info,
            endpoint=endpoint,
            callback_keys=RootKeySource(callback_keys_url),
        )

    def new_api(self, before_request: Callable[[], None] | None = None) -> WalletApi:
        """Another patient client, for a sender thread (HTTP sessions are not shared);
        ``before_request`` runs before every request, e.g. to take a rate-limit token."""
        return WalletApi(
            self.service_account_info, endpoint=self.endpoint, before_request=before_request
        )

    def image_urls(self, branding: Branding) -> ImageUrls:
        """Our public image routes, versioned by design so Google refetches after a redesign."""
        base = f"{self.public_url}/p/{branding.program_key}/google"
        version = f"?v={branding.design_version}"
        return ImageUrls(logo=f"{base}/logo.png{version}", hero=f"{base}/hero.png{version}")

    def class_body(self, branding: Branding) -> dict[str, Any]:
        return loyalty_class(
            branding,
            issuer_id=self.issuer_id,
            images=self.image_urls(branding),
            callback_url=self.callback_url,
        )

    def object_body(self, view: CardView) -> dict[str, Any]:
        program = view.branding.program_key
        return loyalty_object(
            view,
            issuer_id=self.issuer_id,
            offer_image=lambda offer: f"{self.public_url}/p/{program}/offers/{offer.key}.png",
        )

    def skinny_save_url(self, object_body: dict[str, Any]) -> str:
        """The link for an object that exists at Google: the JWT names only its ids."""
        reference = {"id": object_body["id"], "classId": object_body["classId"]}
        return save_url(save_jwt(self.account, objects=[reference], origins=self.origins))

    def full_save_url(
        self, object_body: dict[str, Any], class_body: dict[str, Any] | None = None
    ) -> str:
        """The fallback when the API could not be reached: Google creates the object (and the
        class, if given: when Google may not have it yet) as the member saves. Only their
        essentials travel, to fit into a link; the sender adds the rest later. The class's
        callback URL travels too when there is room (else Google reports saves only once the
        sender has written the class). Raises JwtTooLong when even the essentials do not fit."""
        objects = [essential_object(object_body)]
        if class_body is None:
            return save_url(save_jwt(self.account, objects=objects, origins=self.origins))
        try:
            return save_url(
                save_jwt(
                    self.account,
                    objects=objects,
                    classes=[essential_class(class_body, with_callback=True)],
                    origins=self.origins,
                )
            )
        except JwtTooLong:
            pass
        return save_url(
            save_jwt(
                self.account,
                objects=objects,
                classes=[essential_class(class_body)],
                origins=self.origins,
            )
        )
