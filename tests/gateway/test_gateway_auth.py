"""Identity at the gateway: sessions (with an Origin check), Django-minted tokens, expiry,
access_token refresh, and refused joins that leave the socket usable."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from supa_realtime.gateway.tokens import mint_token, signing_key
from supa_realtime.phoenix.message import Message
from supa_realtime.testing.devserver import eventually
from tests.gateway.gateway_support import GatewayFactory, connect

READ_REFUSED = "Unauthorized: You do not have permissions to read from this Channel topic: "


class _User:
    """Stands in for a saved user when minting (only ``pk`` and ``is_authenticated``)."""

    is_authenticated = True

    def __init__(self, pk: Any) -> None:
        self.pk = pk


async def test_session_user_joins_authenticated_topics(
    gateway_factory: GatewayFactory, users: dict[str, Any]
) -> None:
    server = await gateway_factory(TOPICS={"members:*": {"join": "authenticated"}})
    async with await connect(server, session=users["alice"]["session"]) as alice:
        assert (await alice.join("members:1")).payload["status"] == "ok"
    async with await connect(server) as anonymous:
        reply = await anonymous.join("members:1")
        assert reply.payload == {
            "status": "error",
            "response": {"reason": READ_REFUSED + "members:1"},
        }


async def test_refused_join_leaves_the_socket_usable(gateway_factory: GatewayFactory) -> None:
    server = await gateway_factory()
    async with await connect(server) as client:
        refused = await client.join("private:1")
        assert refused.payload["response"] == {"reason": READ_REFUSED + "private:1"}
        assert (await client.join("room:1")).payload["status"] == "ok"
        ref = await client.push("realtime:private:1", "broadcast", {"event": "x", "payload": {}})
        reply = await client.expect("phx_reply", ref=ref)
        assert reply.payload["response"] == {"reason": "unmatched topic"}


async def test_session_needs_an_allowed_origin(
    gateway_factory: GatewayFactory, users: dict[str, Any]
) -> None:
    server = await gateway_factory(TOPICS={"members:*": {"join": "authenticated"}})
    with pytest.raises(InvalidStatus) as refused:
        await connect(server, session=users["alice"]["session"], origin="http://evil.example")
    assert refused.value.response.status_code == 403
    # without an Origin (not a browser) the session is not used: anonymous
    url = f"{server.url}/websocket?vsn=2.0.0"
    ws = await websockets.connect(
        url, additional_headers={"Cookie": f"sessionid={users['alice']['session']}"}
    )
    try:
        await ws.send('["1","1","realtime:members:1","phx_join",{"config":{}}]')
        assert "Unauthorized" in str(await ws.recv())
    finally:
        await ws.close()


async def test_token_user_and_topic_grants(
    gateway_factory: GatewayFactory, users: dict[str, Any]
) -> None:
    server = await gateway_factory(
        TOPICS={"staff:*": {"join": "staff"}, "perm:*": {"join": "auth.view_user"}}
    )
    bob = mint_token(_User(users["bob"]["pk"]))
    carol = mint_token(_User(users["carol"]["pk"]), topics={"granted:*": ["join"]})
    async with await connect(server, token=bob) as client:
        assert (await client.join("staff:1")).payload["status"] == "ok"
        assert (await client.join("perm:1")).payload["status"] == "error"
        assert (await client.join("granted:1")).payload["status"] == "error"
    async with await connect(server, token=carol) as client:
        assert (await client.join("staff:1")).payload["status"] == "error"
        assert (await client.join("perm:1")).payload["status"] == "ok"
        assert (await client.join("granted:1")).payload["status"] == "ok"


async def test_authorize_hook(gateway_factory: GatewayFactory, users: dict[str, Any]) -> None:
    server = await gateway_factory(AUTHORIZE="tests.gateway.gateway_hooks.authorize")
    async with await connect(server, session=users["alice"]["session"]) as alice:
        assert (await alice.join("user:alice")).payload["status"] == "ok"
        assert (await alice.join("user:bob")).payload["status"] == "error"
        assert (await alice.join("hook:open")).payload["status"] == "ok"
        ref = await alice.push(
            "realtime:hook:open", "broadcast", {"type": "broadcast", "event": "e", "payload": {}}
        )
        refused = await alice.expect("phx_reply", ref=ref)
        assert refused.payload["response"] == {
            "reason": "Unauthorized: You do not have permission to broadcast on this Channel "
            "topic: hook:open"
        }


async def test_expired_and_forged_tokens_are_refused(gateway_factory: GatewayFactory) -> None:
    server = await gateway_factory()
    expired = mint_token(None, ttl=-5)
    forged = jwt.encode(
        {"role": "authenticated", "exp": int(time.time()) + 60, "topics": {"*": ["*"]}},
        "not-the-gateway-signing-key-but-long-enough",
        algorithm="HS256",
    )
    for token in (expired, forged, "not-a-jwt"):
        with pytest.raises(InvalidStatus) as refused:
            await connect(server, token=token)
        assert refused.value.response.status_code == 403
    # the token names the key it was signed with: ours
    assert (
        jwt.decode(mint_token(None, ttl=60), signing_key(), algorithms=["HS256"])["role"] == "anon"
    )


async def test_join_with_expired_access_token_is_refused(gateway_factory: GatewayFactory) -> None:
    server = await gateway_factory()
    async with await connect(server) as client:
        reply = await client.join("room:1", access_token=mint_token(None, ttl=-10))
        reason = reply.payload["response"]["reason"]
        assert reason.startswith("InvalidJWTToken: Token has expired ")


async def test_access_token_refresh_and_expiry(gateway_factory: GatewayFactory) -> None:
    server = await gateway_factory(TOPICS={})
    short = mint_token(None, topics={"room:*": ["join"]}, ttl=2)
    async with await connect(server, token=short) as client:
        assert (await client.join("room:1")).payload["status"] == "ok"
        assert (await client.join("room:2")).payload["status"] == "ok"
        # room:1 gets a longer token: no reply, and it outlives the socket's token
        longer = mint_token(None, topics={"room:*": ["join"]}, ttl=60)
        await client.send(
            Message("realtime:room:1", "access_token", {"access_token": longer}, ref="9")
        )
        system = await client.expect("system", within=10)
        assert system.topic == "realtime:room:2"
        assert system.payload["message"].startswith("Token has expired ")
        assert (await client.recv()).event == "phx_close"
        # room:1 is still joined: a token without the grant stops it
        await client.send(
            Message(
                "realtime:room:1",
                "access_token",
                {"access_token": mint_token(None, topics={"other:*": ["join"]})},
            )
        )
        stopped = await client.expect("system")
        assert stopped.topic == "realtime:room:1"
        assert stopped.payload["message"] == (
            "You no longer have permission to read from this Channel topic: room:1"
        )
        assert (await client.recv()).event == "phx_close"
        # a malformed token is refused with Realtime's text
        assert (await client.join("room:3", access_token=longer)).payload["status"] == "ok"
        await client.send(Message("realtime:room:3", "access_token", {"access_token": "x.y"}))
        bad = await client.expect("system")
        assert bad.payload["message"] == "The token provided is not a valid JWT"


async def test_refusals_carry_realtime_status_and_text_under_uvicorn(
    gateway_factory: GatewayFactory,
) -> None:
    # uvicorn supports the ASGI websocket denial response; daphne answers a bare 403.
    server = await gateway_factory(asgi_server="uvicorn")
    with pytest.raises(InvalidStatus) as refused:
        await connect(server, token=mint_token(None, ttl=-5))
    assert refused.value.response.status_code == 401
    assert refused.value.response.body == b'{"error":"Token has expired"}'
    with pytest.raises(InvalidStatus) as refused:
        await connect(server, vsn="9.0.0")
    assert refused.value.response.status_code == 403
    async with await connect(server) as client:  # the gateway itself works there too
        assert (await client.join("room:1")).payload["status"] == "ok"


async def test_official_client_refreshes_its_token(gateway_factory: GatewayFactory) -> None:
    from realtime import AsyncRealtimeClient

    server = await gateway_factory(TOPICS={})
    grants = {"room:*": ["join", "broadcast"]}
    client = AsyncRealtimeClient(
        server.url, mint_token(None, topics=grants, ttl=2), auto_reconnect=False
    )
    got: list[Any] = []
    states: list[str] = []
    try:
        options: Any = {"config": {"broadcast": {"self": True}}}
        channel = client.channel("room:refresh", options)
        channel.on_broadcast("tick", got.append)
        await channel.subscribe(lambda state, err: states.append(str(state)))
        await eventually(lambda: "RealtimeSubscribeStates.SUBSCRIBED" in states)
        await client.set_auth(mint_token(None, topics=grants, ttl=60))
        # past the first token's expiry the channel is still joined and working
        deadline = time.time() + 3
        await eventually(lambda: time.time() > deadline, within=5, interval=0.1)
        assert channel.is_joined
        await channel.send_broadcast("tick", {"n": 1})
        await eventually(lambda: got)
        assert got[0]["payload"] == {"n": 1}
    finally:
        await client.close()
