"""Creates the gateway tests' database and users; prints their ids and session cookies.

Run as ``python -m tests.gateway.gateway_setup`` with the gateway test settings.
"""

from __future__ import annotations

import json

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import Permission  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402


def main() -> None:
    call_command("migrate", verbosity=0, interactive=False)
    model = get_user_model()
    out: dict[str, dict[str, object]] = {}
    for name, staff in (("alice", False), ("bob", True), ("carol", False)):
        user = model.objects.create_user(name, password="pw", is_staff=staff)
        if name == "carol":
            user.user_permissions.add(Permission.objects.get(codename="view_user"))
        client = Client()
        client.force_login(user)
        out[name] = {"pk": user.pk, "session": client.cookies["sessionid"].value}
    print(json.dumps(out))


main()
