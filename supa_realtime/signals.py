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
