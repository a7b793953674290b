"""Google's class and object bodies come from the same CardView as the Apple pass."""

from __future__ import annotations

from dataclasses import replace

from passes.wallet.google.objects import (
    ImageUrls,
    class_id,
    loyalty_class,
    loyalty_object,
    object_id,
    object_state_changes,
)
from passes.wallet.sample import SAMPLE_BRANDING, sample_card_view

ISSUER = "3388000000022222222"
IMAGES = ImageUrls(logo="https://shop.test/logo.png?v=1", hero="https://shop.test/hero.png?v=1")


def test_ids_keep_only_the_characters_google_allows() -> None:
    assert class_id(ISSUER, "zerno-2") == f"{ISSUER}.zerno-2"
    assert object_id(ISSUER, "ab/c d+é.1_x") == f"{ISSUER}.ab_c_d__.1_x"


def test_the_object_shows_what_the_apple_pass_shows() -> None:
    view = sample_card_view()
    body = loyalty_object(view, issuer_id=ISSUER)
    assert body["id"] == object_id(ISSUER, view.serial_number)
    assert body["classId"] == class_id(ISSUER, view.branding.program_key)
    assert body["state"] == "ACTIVE"
    assert body["accountId"] == view.display_number
    assert body["accountName"] == view.member_name
    assert body["loyaltyPoints"] == {
        "label": view.branding.points_label,
        "balance": {"int": view.points_balance},
    }
    assert body["secondaryLoyaltyPoints"]["balance"] == {"string": view.tier_name}
    assert body["barcode"] == {
        "type": "QR_CODE",
        "value": view.barcode_payload,
        "alternateText": view.display_number,
    }
    assert [message["header"] for message in body["messages"]] == [view.offers[0].title]


def test_a_member_without_a_tier_has_no_secondary_points() -> None:
    body = loyalty_object(sample_card_view(tier_name=None, offers=()), issuer_id=ISSUER)
    assert "secondaryLoyaltyPoints" not in body and body["messages"] == []


def test_the_class_carries_branding_images_and_stores() -> None:
    body = loyalty_class(SAMPLE_BRANDING, issuer_id=ISSUER, images=IMAGES)
    assert body["reviewStatus"] == "UNDER_REVIEW"
    assert body["issuerName"] == SAMPLE_BRANDING.organization_name
    assert body["programName"] == SAMPLE_BRANDING.program_name
    assert body["programLogo"]["sourceUri"]["uri"] == IMAGES.logo
    assert body["heroImage"]["sourceUri"]["uri"] == IMAGES.hero
    assert body["hexBackgroundColor"] == SAMPLE_BRANDING.background_color
    assert body["merchantLocations"] == [
        {"latitude": place.latitude, "longitude": place.longitude}
        for place in SAMPLE_BRANDING.locations
    ]
    assert {module["id"] for module in body["textModulesData"]} == {"terms", "contact"}


def test_at_most_ten_stores_and_none_is_fine() -> None:
    many = replace(SAMPLE_BRANDING, locations=SAMPLE_BRANDING.locations * 8)
    assert len(loyalty_class(many, issuer_id=ISSUER, images=IMAGES)["merchantLocations"]) == 10
    none = replace(SAMPLE_BRANDING, locations=(), website=None, terms="")
    body = loyalty_class(none, issuer_id=ISSUER, images=ImageUrls(logo=IMAGES.logo, hero=None))
    assert body["merchantLocations"] == [] and "homepageUri" not in body
    assert "heroImage" not in body


def test_a_patch_names_only_what_changed_and_clears_what_disappeared() -> None:
    before = loyalty_object(sample_card_view(), issuer_id=ISSUER)
    after = loyalty_object(sample_card_view(points_balance=1300, tier_name=None), issuer_id=ISSUER)
    assert object_state_changes(before, after) == {
        "loyaltyPoints": after["loyaltyPoints"],
        "secondaryLoyaltyPoints": None,
    }
    assert object_state_changes(after, after) == {}
    assert object_state_changes(None, after) == after


def test_fixed_labels_come_with_their_russian_translations() -> None:
    body = loyalty_class(SAMPLE_BRANDING, issuer_id=ISSUER, images=IMAGES)
    assert body["localizedAccountIdLabel"] == {
        "defaultValue": {"language": "en", "value": "Card number"},
        "translatedValues": [{"language": "ru", "value": "Номер карты"}],
    }
    headers = {m["id"]: m["localizedHeader"] for m in body["textModulesData"]}
    assert headers["terms"]["translatedValues"] == [{"language": "ru", "value": "Условия"}]
    # The shop's own words are not translated by us.
    assert "translatedValues" not in body["localizedProgramName"]


def test_an_offer_with_a_picture_shows_it_as_an_image_module() -> None:
    from passes.wallet.view import Offer

    view = replace(
        sample_card_view(),
        offers=(Offer("c7", "Кофе", "Половина цены", has_image=True), Offer("c8", "Чай", "Даром")),
    )
    body = loyalty_object(
        view, issuer_id=ISSUER, offer_image=lambda o: f"https://x.example/{o.key}.png"
    )
    assert body["imageModulesData"] == [
        {
            "id": "offer-c7",
            "mainImage": {
                "sourceUri": {"uri": "https://x.example/c7.png"},
                "contentDescription": {"defaultValue": {"language": "en", "value": "Кофе"}},
            },
        }
    ]
    assert "imageModulesData" not in loyalty_object(view, issuer_id=ISSUER)
