"""Server-side presence vocabulary (PROTOCOL.md §6.3, §6.4): refs, keys and diff shapes.

Pure functions shared by the local Realtime server and the Django gateway's Redis store.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Mapping
from typing import Any

__all__ = ["diff_payload", "generated_key", "new_phx_ref", "tracked_meta"]


def new_phx_ref() -> str:
    """A fresh ``phx_ref``: URL-safe base64 of 12 random bytes (16 characters)."""
    return base64.urlsafe_b64encode(os.urandom(12)).decode("ascii")


def generated_key() -> str:
    """The key of a join whose ``config.presence.key`` is empty: a fresh UUIDv1."""
    return str(uuid.uuid1())


def tracked_meta(payload: Mapping[str, Any], previous: Mapping[str, Any] | None) -> dict[str, Any]:
    """The meta of a track: the payload plus a fresh ``phx_ref`` (and ``phx_ref_prev`` when
    it replaces ``previous``, the meta of an earlier track by the same join)."""
    meta: dict[str, Any] = {**payload, "phx_ref": new_phx_ref()}
    if previous is not None:
        meta["phx_ref_prev"] = previous["phx_ref"]
    return meta


def diff_payload(
    joins: Mapping[str, list[dict[str, Any]]], leaves: Mapping[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    """A ``presence_diff`` payload; both ``joins`` and ``leaves`` are always present."""
    return {
        "joins": {k: {"metas": v} for k, v in joins.items()},
        "leaves": {k: {"metas": v} for k, v in leaves.items()},
    }
