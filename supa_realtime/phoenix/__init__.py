"""Sans-I/O core of the Supabase Realtime protocol.

Nothing in this package performs I/O or imports asyncio, websockets or Django: it turns
text and bytes into :class:`Message` objects and back, and holds the pure state of
channels, presence and postgres_changes bindings. The asyncio client, the local server
and the Django consumer all build on it.
"""

from .message import Message, full_topic, reply, subtopic, user_broadcast
from .serializer import Serializer, V1Serializer, V2Serializer, serializer_for

__all__ = [
    "Message",
    "Serializer",
    "V1Serializer",
    "V2Serializer",
    "full_topic",
    "reply",
    "serializer_for",
    "subtopic",
    "user_broadcast",
]
