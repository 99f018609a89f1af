"""A model that broadcasts its changes, for tests/test_model_broadcasts.py."""

from __future__ import annotations

from decimal import Decimal

from django.db import models

from supa_realtime.model_broadcasts import broadcasts_changes


@broadcasts_changes(topics=["orders:{pk}", "orders"], fields=["number", "total", "customer"])
class Order(models.Model):
    number = models.CharField(max_length=20)
    total = models.DecimalField(max_digits=8, decimal_places=2, default=Decimal("0.00"))
    customer = models.CharField(max_length=50, default="")
    note = models.TextField(default="")  # not broadcast

    class Meta:
        app_label = "broadcast_app"


class Quiet(models.Model):
    """Not registered: its saves send nothing."""

    name = models.CharField(max_length=20)

    class Meta:
        app_label = "broadcast_app"
