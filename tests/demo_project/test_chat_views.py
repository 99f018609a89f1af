"""The demo chat room's pages through Django's test client (presence from a real Redis)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client


@pytest.fixture
def chat_settings(settings: Any, redis_server: str) -> Any:
    settings.SUPA_REALTIME = {
        "KEY": "tests-only-server-key-abc",
        "REDIS_URL": redis_server,
        "REDIS_PREFIX": f"chat-{uuid.uuid4().hex[:10]}",
    }
    settings.LOGIN_URL = "chat-join"
    return settings


@pytest.mark.django_db
def test_the_room_needs_a_signed_in_user(client: Client, chat_settings: Any) -> None:
    response = client.get("/chat/")
    assert response.status_code == 302
    assert response["Location"] == "/chat/join/?next=/chat/"


@pytest.mark.django_db
def test_a_guest_joins_and_sees_the_room(client: Client, chat_settings: Any) -> None:
    response = client.post("/chat/join/", {"name": "alice", "next": "/chat/"})
    assert response.status_code == 302
    assert response["Location"] == "/chat/"
    user = get_user_model().objects.get(username="alice")
    assert not user.has_usable_password()

    html = client.get("/chat/").content.decode()
    assert '<strong id="me">alice</strong>' in html
    assert (
        '<ul class="realtime-presence" data-realtime-presence="chat:lobby"'
        ' data-realtime-key="alice"></ul>'
    ) in html
    assert '<ul id="messages" data-realtime-events="chat:lobby" data-realtime-names="message">' in (
        html
    )
    assert '<script src="/static/supa_realtime/supa-realtime-tags.js"></script>' in html
    assert "tests-only-server-key-abc" not in html


@pytest.mark.django_db
def test_a_taken_name_is_refused_and_next_stays_on_this_site(
    client: Client, chat_settings: Any
) -> None:
    get_user_model().objects.create_user(username="bob")
    response = client.post("/chat/join/", {"name": "bob"})
    assert response.status_code == 200
    assert "That name is taken; pick another." in response.content.decode()

    response = client.post("/chat/join/", {"name": "carol", "next": "https://evil.example/"})
    assert response["Location"] == "/chat/"
