from __future__ import annotations

import time

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from django_microkit.conf import microkit_settings
from django_microkit.testing import ServiceAPIClient, trust_test_service
from tests.service_auth_keys import auth_settings, code_of


def test_service_client_calls_as_the_named_service() -> None:
    client = ServiceAPIClient("orders", scopes=["orders:write", "orders:read"])
    for _ in range(2):  # a new token each time: no replay
        response = client.get("/service-auth/scoped/")
        assert response.status_code == 200
        assert response.json()["service"] == "orders"
        assert response.json()["scopes"] == ["orders:read", "orders:write"]


def test_service_client_without_scopes_is_refused_a_scoped_endpoint() -> None:
    response = ServiceAPIClient("orders").post("/service-auth/scoped/")
    assert response.status_code == 403
    assert code_of(response) == "insufficient_scope"


def test_service_client_for_a_service_the_settings_do_not_know() -> None:
    # The test suite's settings have no SERVICE_AUTH at all.
    response = ServiceAPIClient("billing").get("/service-auth/service/")
    assert response.status_code == 200
    assert response.json()["service"] == "billing"


def test_service_client_keeps_the_configured_keys_of_the_service() -> None:
    with override_settings(MICROKIT=auth_settings()):
        response = ServiceAPIClient("orders").get("/service-auth/service/")
        assert response.status_code == 200
        assert len(microkit_settings.SERVICE_AUTH["PEERS"]["orders"]) == 2


def test_service_client_for_another_audience_is_refused() -> None:
    response = ServiceAPIClient("orders", audience="billing").get(
        "/service-auth/service/"
    )
    assert response.status_code == 401
    assert code_of(response) == "wrong_audience"


def test_explicit_credentials_win() -> None:
    client = ServiceAPIClient("orders")
    client.credentials(HTTP_AUTHORIZATION="Bearer nonsense")
    response = client.get("/service-auth/service/")
    assert response.status_code == 401
    assert code_of(response) == "token_invalid"


def test_trust_test_service_mints_custom_tokens() -> None:
    with trust_test_service("orders") as orders:
        now = int(time.time())
        expired = orders.token(iat=now - 100, nbf=now - 100, exp=now - 50)
        response = APIClient().get(
            "/service-auth/service/", HTTP_AUTHORIZATION=f"Bearer {expired}"
        )
        assert response.status_code == 401
        assert code_of(response) == "token_expired"
        fresh = orders.token(["x"], lifetime=30)
        response = APIClient().get(
            "/service-auth/service/", HTTP_AUTHORIZATION=f"Bearer {fresh}"
        )
        assert response.json()["scopes"] == ["x"]
        assert orders.service == "orders"
    assert "SERVICE_AUTH" not in microkit_settings.user_settings()


@pytest.mark.parametrize(
    ("algorithms", "alg"),
    [(["HS512"], "HS512"), (["ES256", "RS256"], "ES256"), (["RS256"], "RS256")],
)
def test_test_key_follows_the_allowed_algorithms(
    algorithms: list[str], alg: str
) -> None:
    with (
        override_settings(
            MICROKIT={**auth_settings(ALGORITHMS=algorithms, PEERS={}, SIGNING_KEYS=[])}
        ),
        trust_test_service("orders"),
    ):
        (key,) = microkit_settings.SERVICE_AUTH["PEERS"]["orders"]
        assert key["alg"] == alg
        response = ServiceAPIClient("orders").get("/service-auth/service/")
        assert response.status_code == 200


def test_no_allowed_algorithm_for_a_test_key() -> None:
    with (
        override_settings(MICROKIT=auth_settings(ALGORITHMS=[])),
        pytest.raises(ValueError, match="allows none of"),
        trust_test_service("orders"),
    ):
        pass
