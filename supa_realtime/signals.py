"""Django signals sent by supa_realtime.

The worker (``manage.py realtime_worker``) sends the first three in its own process for every
event it relays, whoever caused it: the Django ORM, a SQL console, another service. Receivers
may be sync (they run in a thread, so the ORM works) or async. A receiver that raises is
logged with its traceback and the relay goes on.

Every signal is sent with ``sender`` set to the class that sends it and one keyword argument,
``event``, an object from :mod:`supa_realtime.events`.
"""

from __future__ import annotations

from django.dispatch import Signal

#: A database change arrived. ``event``: :class:`supa_realtime.events.PostgresChange`.
postgres_change = Signal()

#: A broadcast arrived on a relayed topic.
#: ``event``: :class:`supa_realtime.events.BroadcastReceived`.
broadcast_received = Signal()

#: A presence state or diff arrived. ``event``: :class:`supa_realtime.events.PresenceChanged`.
presence_changed = Signal()

# Presence of browsers connected to the gateway (supa_realtime.gateway). Sent, with
# ``sender`` set to :class:`supa_realtime.presence.PresenceStore`, in the ASGI process that
# made the change (for an expiry, the process that swept it), with these arguments:
#   ``topic``: the wire topic (``realtime:room1``);
#   ``key``: the presence key;
#   ``meta``: the meta (the tracked payload plus ``phx_ref``);
#   ``user``: the Django user's primary key as a str, or ``None`` for anonymous users;
# and, for ``presence_left`` only, ``reason``: ``"untrack"``, ``"leave"`` (the channel left
# or its socket closed), ``"update"`` (replaced by a new meta of the same join, announced
# by ``presence_joined`` right after) or ``"expired"`` (its process died).

#: A browser started tracking presence on a topic (or updated its meta).
presence_joined = Signal()

#: A browser's presence meta went away.
presence_left = Signal()
