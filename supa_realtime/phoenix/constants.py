"""Every string and number of the wire vocabulary, in one place (PROTOCOL.md)."""

from __future__ import annotations

from typing import Final

# Serializer versions (PROTOCOL.md §1.4). Missing ``vsn`` means 1.0.0.
VSN_1: Final = "1.0.0"
VSN_2: Final = "2.0.0"
VSNS: Final = (VSN_1, VSN_2)

# Topics.
TOPIC_PREFIX: Final = "realtime:"
PHOENIX_TOPIC: Final = "phoenix"

# Events sent by clients.
PHX_JOIN: Final = "phx_join"
PHX_LEAVE: Final = "phx_leave"
HEARTBEAT: Final = "heartbeat"
ACCESS_TOKEN: Final = "access_token"
BROADCAST: Final = "broadcast"
PRESENCE: Final = "presence"

# Events sent by the server.
PHX_REPLY: Final = "phx_reply"
PHX_CLOSE: Final = "phx_close"
PHX_ERROR: Final = "phx_error"
PRESENCE_STATE: Final = "presence_state"
PRESENCE_DIFF: Final = "presence_diff"
POSTGRES_CHANGES: Final = "postgres_changes"
SYSTEM: Final = "system"

# Reply statuses.
STATUS_OK: Final = "ok"
STATUS_ERROR: Final = "error"

# Presence push events (case-insensitive on the server).
PRESENCE_TRACK: Final = "track"
PRESENCE_UNTRACK: Final = "untrack"

# ``system`` message extensions.
EXTENSION_POSTGRES_CHANGES: Final = "postgres_changes"
EXTENSION_SYSTEM: Final = "system"

# Binary frame kinds (PROTOCOL.md §1.7). Only 3 and 4 are produced in practice.
KIND_PUSH: Final = 0
KIND_REPLY: Final = 1
KIND_BROADCAST: Final = 2
KIND_USER_BROADCAST_PUSH: Final = 3
KIND_USER_BROADCAST: Final = 4

BINARY_KIND_NAMES: Final = {
    KIND_PUSH: "push",
    KIND_REPLY: "reply",
    KIND_BROADCAST: "broadcast",
    KIND_USER_BROADCAST_PUSH: "user broadcast push",
    KIND_USER_BROADCAST: "user broadcast",
}

# Payload encodings inside binary kinds 3 and 4.
ENCODING_BINARY: Final = 0
ENCODING_JSON: Final = 1

# Server limits and defaults (PROTOCOL.md §1.8, §2, §7.4, §8).
MAX_FRAME_BYTES: Final = 5_000_000
IDLE_TIMEOUT_S: Final = 60.0
HEARTBEAT_INTERVAL_S: Final = 25.0
PUSH_TIMEOUT_S: Final = 10.0
MAX_CHANNELS_PER_CLIENT: Final = 100
MAX_IN_FILTER_VALUES: Final = 100
PRESENCE_MAX_CALLS: Final = 5
PRESENCE_WINDOW_S: Final = 30.0
MAX_PAYLOAD_KB: Final = 3000
POLL_MAX_RECORD_BYTES: Final = 1_048_576
OVERSIZE_FIELD_BYTES: Final = 64

# Close codes used by the server (PROTOCOL.md §1.8).
CLOSE_NORMAL: Final = 1000
CLOSE_GOING_AWAY: Final = 1001
CLOSE_MESSAGE_TOO_BIG: Final = 1009
CLOSE_INTERNAL_ERROR: Final = 1011
CLOSE_SERVICE_RESTART: Final = 1012

# Subscribe states reported to users (the official clients' names).
SUBSCRIBED: Final = "SUBSCRIBED"
CHANNEL_ERROR: Final = "CHANNEL_ERROR"
TIMED_OUT: Final = "TIMED_OUT"
CLOSED: Final = "CLOSED"
