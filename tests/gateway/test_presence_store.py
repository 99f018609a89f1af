"""The Redis presence store: track/update/untrack diffs, merged state with the upstream
source, expiry sweeps of dead processes, and the presence signals."""

from __future__ import annotations

import time
import uuid
from typing import Any

from supa_realtime.groups import group_for
from supa_realtime.presence import PresenceStore
from supa_realtime.signals import presence_joined, presence_left
from supa_realtime.testing import GroupCapture
from supa_realtime.testing.devserver import eventually

TOPIC = "realtime:room:p"


async def _no_upstream(client: Any, store: PresenceStore) -> bool:
    return not await client.exists(store.keys.upstream(TOPIC))


def _store(client: Any, layer: Any, prefix: str, **options: Any) -> PresenceStore:
    return PresenceStore(client, layer, prefix=prefix, **options)


async def test_track_update_untrack_diffs_and_state(
    aredis: Any, channel_layer: Any, capture_group: Any
) -> None:
    prefix = uuid.uuid4().hex
    store = _store(aredis, channel_layer, prefix)
    capture: GroupCapture = await capture_group(group_for(TOPIC))
    entry = store.entry_id("c1", 1)
    first = await store.track(TOPIC, "alice", entry, {"status": "online"}, user="7")
    assert first is not None
    meta = first["joins"]["alice"]["metas"][0]
    assert meta["status"] == "online"
    assert len(meta["phx_ref"]) == 16
    assert first["leaves"] == {}
    assert await store.track(TOPIC, "alice", entry, {"status": "online"}) is None
    update = await store.track(TOPIC, "alice", entry, {"status": "away"}, user="7")
    assert update is not None
    new = update["joins"]["alice"]["metas"][0]
    assert new["phx_ref_prev"] == meta["phx_ref"]
    assert update["leaves"] == {"alice": {"metas": [meta]}}
    tab = store.entry_id("c2", 2)
    await store.track(TOPIC, "alice", tab, {"status": "tab 2"})
    state = await store.state(TOPIC)
    assert sorted(m["status"] for m in state["alice"]["metas"]) == ["away", "tab 2"]
    left = await store.untrack(TOPIC, entry)
    assert left == {"joins": {}, "leaves": {"alice": {"metas": [new]}}}
    assert await store.untrack(TOPIC, entry) is None
    messages = await capture.wait_for(4)
    assert [m["type"] for m in messages] == ["realtime.presence_diff"] * 4
    assert messages[0] == {"type": "realtime.presence_diff", "topic": TOPIC, **first}
    assert messages[3]["leaves"] == left["leaves"]


async def test_state_merges_the_upstream_source(aredis: Any) -> None:
    store = _store(aredis, None, uuid.uuid4().hex)
    await store.track(TOPIC, "django-user", store.entry_id("c", 1), {"via": "django"})
    await store.replace_upstream(
        TOPIC,
        {
            "mobile": {"metas": [{"phx_ref": "r1", "via": "supabase"}]},
            "django-user": {"metas": [{"phx_ref": "r2", "via": "phone"}]},
        },
    )
    state = await store.state(TOPIC)
    assert [m["via"] for m in state["mobile"]["metas"]] == ["supabase"]
    assert sorted(m["via"] for m in state["django-user"]["metas"]) == ["django", "phone"]
    await store.apply_upstream_diff(
        TOPIC,
        {"tablet": {"metas": [{"phx_ref": "r3", "via": "supabase"}]}},
        {"mobile": {"metas": [{"phx_ref": "r1"}]}},
    )
    state = await store.state(TOPIC)
    assert "mobile" not in state
    assert state["tablet"]["metas"][0]["phx_ref"] == "r3"
    await store.replace_upstream(
        TOPIC, {"mobile": {"metas": [{"phx_ref": "r4"}]}}, ttl=0.05
    )  # a worker that stops writing: its state expires
    await eventually(lambda: _no_upstream(aredis, store))


async def test_dead_process_entries_are_swept_with_leave_diffs_and_signals(
    aredis: Any, channel_layer: Any, capture_group: Any
) -> None:
    prefix = uuid.uuid4().hex
    dead = _store(aredis, channel_layer, prefix, ttl=0.5, refresh=0.2, sweep=0.2)
    alive = _store(aredis, channel_layer, prefix, ttl=0.5, refresh=0.2, sweep=0.2)
    joined: list[dict[str, Any]] = []
    left: list[dict[str, Any]] = []

    def on_joined(sender: Any, **kwargs: Any) -> None:
        joined.append(kwargs)

    async def on_left(sender: Any, **kwargs: Any) -> None:
        left.append(kwargs)

    presence_joined.connect(on_joined)
    presence_left.connect(on_left)
    capture: GroupCapture = await capture_group(group_for(TOPIC))
    try:
        await dead.track(TOPIC, "ghost", dead.entry_id("c", 1), {"n": 1}, user="3")
        await alive.track(TOPIC, "living", alive.entry_id("c", 1), {"n": 2})
        assert [j["key"] for j in joined] == ["ghost", "living"]
        assert joined[0]["user"] == "3"
        assert joined[0]["topic"] == TOPIC
        alive.start()  # refreshes its own entry, sweeps others'; `dead` never refreshes
        try:
            await eventually(lambda: left, within=10)
        finally:
            await alive.stop()
        assert left[0]["key"] == "ghost"
        assert left[0]["reason"] == "expired"
        assert left[0]["user"] == "3"
        state = await alive.state(TOPIC)
        assert list(state) == ["living"]
        messages = await capture.wait_for(3)
        assert messages[2]["leaves"]["ghost"]["metas"][0]["n"] == 1
    finally:
        presence_joined.disconnect(on_joined)
        presence_left.disconnect(on_left)


async def test_only_one_process_sweeps_at_a_time(aredis: Any) -> None:
    prefix = uuid.uuid4().hex
    one = _store(aredis, None, prefix, ttl=0.01, sweep=5.0)
    two = _store(aredis, None, prefix, ttl=0.01, sweep=5.0)
    await one.track(TOPIC, "k", one.entry_id("c", 1), {})
    await eventually(lambda: aredis.zcount(one.keys.expiry(TOPIC), 0, time.time()))
    assert await one.sweep() == 1
    assert await two.sweep() == 0  # the lock is held for most of a sweep interval
