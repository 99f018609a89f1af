"""``manage.py demo_superuser``: create (or reset) the demo's admin account."""

from __future__ import annotations

import os
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

PASSWORD_VARIABLE = "DEMO_ADMIN_PASSWORD"


class Command(BaseCommand):
    help = (
        "Create the demo's superuser, or reset its password, from the DEMO_ADMIN_PASSWORD "
        "environment variable (not an option: command lines are visible to other users)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin", help="Its name (default admin).")

    def handle(self, *args: Any, **options: Any) -> None:
        password = os.environ.get(PASSWORD_VARIABLE)
        if not password:
            raise CommandError(f"set {PASSWORD_VARIABLE} to the password to give the account")
        model = get_user_model()
        user, created = model._default_manager.get_or_create(
            **{model.USERNAME_FIELD: options["username"]}
        )
        user.is_staff = True
        user.is_superuser = True
        user.set_password(password)
        user.save()
        self.stdout.write(f"{'Created' if created else 'Updated'} superuser {options['username']}")
