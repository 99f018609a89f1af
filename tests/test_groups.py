"""group_for: the one topic → Channels group mapping (a public, versioned contract)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from channels.layers import BaseChannelLayer
from hypothesis import given
from hypothesis import strategies as st

import supa_realtime
from supa_realtime.groups import GROUP_NAME_MAX_LENGTH, group_for, topic_for_group

LEGAL = re.compile(r"[A-Za-z0-9._-]+", re.ASCII)

# Pinned outputs: a change here breaks every running worker/consumer pair. Do not edit rows;
# a new mapping needs a new major version and a migration note.
PINNED = [
    ("realtime:room1", "realtime.room1"),
    ("room1", "realtime.room1"),
    ("realtime:room:42", "realtime.room.3A42"),
    ("realtime:a.b", "realtime.a.2Eb"),
    ("realtime:a b/c", "realtime.a.20b.2Fc"),
    ("realtime:Zürich", "realtime.Z.C3.BCrich"),
    ("realtime:🙂", "realtime..F0.9F.99.82"),
    ("realtime:under_score-dash", "realtime.under_score-dash"),
    ("realtime:realtime:x", "realtime.realtime.3Ax"),
    ("realtime:", "realtime."),
    ("realtime:" + ":" * 30, "realtime." + ".3A" * 30),
    ("realtime:" + "x" * 90, "realtime." + "x" * 90),
    (
        "realtime:" + "x" * 91,
        "realtime-sha256-87b88e4e14bba7c4429183a1b7e80dbd146a5ca0278c3b7da0403e941f60373b",
    ),
    (
        "realtime:" + ":" * 31,
        "realtime-sha256-fb93d13e465c055326e7565313a3819fc543ee3aa52e096c149befbd2175df16",
    ),
]

topics = st.text(max_size=300)


@pytest.mark.parametrize(("topic", "group"), PINNED)
def test_pinned_outputs(topic: str, group: str) -> None:
    assert group_for(topic) == group


def test_exported_from_the_package() -> None:
    assert supa_realtime.group_for is group_for


def test_rejects_non_strings() -> None:
    with pytest.raises(TypeError, match="must be a str"):
        group_for(b"realtime:room1")  # type: ignore[arg-type]


@given(topics)
def test_always_legal_for_channels(topic: str) -> None:
    group = group_for(topic)
    assert LEGAL.fullmatch(group)
    assert len(group) < GROUP_NAME_MAX_LENGTH
    assert BaseChannelLayer().require_valid_group_name(group)


@given(topics)
def test_deterministic(topic: str) -> None:
    assert group_for(topic) == group_for(str(topic))


@given(topics)
def test_prefix_is_normalized(topic: str) -> None:
    assert group_for("realtime:" + topic) == group_for(topic) or topic.startswith("realtime:")


@given(topics, topics)
def test_injective(a: str, b: str) -> None:
    full_a = a if a.startswith("realtime:") else "realtime:" + a
    full_b = b if b.startswith("realtime:") else "realtime:" + b
    assert (group_for(a) == group_for(b)) == (full_a == full_b)


@given(st.lists(topics, min_size=2, max_size=50, unique=True))
def test_injective_on_sets(names: list[str]) -> None:
    full = {n if n.startswith("realtime:") else "realtime:" + n for n in names}
    assert len({group_for(n) for n in names}) == len(full)


@given(topics)
def test_readable_groups_reverse(topic: str) -> None:
    group = group_for(topic)
    full = topic if topic.startswith("realtime:") else "realtime:" + topic
    if group.startswith("realtime-sha256-"):
        assert topic_for_group(group) is None
    else:
        assert topic_for_group(group) == full


def test_lone_surrogates_have_a_group() -> None:
    assert group_for("realtime:\ud800") == "realtime..ED.A0.80"


def test_near_miss_names_do_not_reverse() -> None:
    assert topic_for_group("realtime.a.41") is None  # "A" is never escaped
    assert topic_for_group("realtime.a.4") is None
    assert topic_for_group("realtime.a.zz") is None
    assert topic_for_group("other.room1") is None


def test_importing_the_package_imports_no_django() -> None:
    code = "import sys, supa_realtime; sys.exit(any(m.startswith('django') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
