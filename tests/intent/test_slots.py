"""Slot extraction and normalisation rules."""

from __future__ import annotations

import pytest

from hotpath.intent.slots import extract_location, extract_person, extract_slots, extract_team
from hotpath.intent.types import Intent, Slots


@pytest.mark.parametrize(
    ("text", "location"),
    [
        ("Need a supervisor at loading dock four", "dock 4"),
        ("loading dock 4", "dock 4"),
        ("summon cleaning crew to aisle five", "aisle 5"),
        ("What is the PPE policy for zone B?", "zone b"),
        ("zone bravo", "zone b"),
        ("bring the electrician to warehouse-B", "warehouse b"),
        ("WAREHOUSE C", "warehouse c"),
        ("dock #4", "dock 4"),
        ("dock number 12", "dock 12"),
        ("dock no. 7", "dock 7"),
        ("line twenty one", "line 21"),
        ("line twenty-one", "line 21"),
        ("isle 3", "aisle 3"),
        ("send someone to dock for", "dock 4"),
        ("bay12", "bay 12"),
        ("meet me in the cold room", "cold room"),
        ("ring maria in receiving", "receiving"),
        ("aisle a", "aisle a"),
        ("call technician nguyen", None),
        ("", None),
    ],
)
def test_location_normalisation(text: str, location: str | None) -> None:
    assert extract_location(text) == location


@pytest.mark.parametrize(
    ("text", "person"),
    [
        ("Call technician Nguyen", "technician nguyen"),
        ("Dial the safety officer", "safety officer"),
        ("File John", "john"),
        ("get me the shift supervisor on the line", "shift supervisor"),
        ("connect me with the dock manager please", "dock manager"),
        ("hey watch call Priya now", "priya"),
        ("I need to talk to the plant manager", "plant manager"),
        ("phone mr hoang at dock 4", "mr hoang"),
        ("Gọi kỹ thuật viên Nguyễn", "ky thuat vien nguyen"),
        ("call the line lead at line 4", "line lead"),
    ],
)
def test_person(text: str, person: str) -> None:
    assert extract_person(text) == person


@pytest.mark.parametrize(
    ("text", "team"),
    [
        ("Summon cleaning crew to aisle 5", "cleaning crew"),
        ("Need a supervisor at loading dock 4", "supervisor"),
        ("Get the floor lead here now", "floor lead"),
        ("send the cleaning grew to dock 2", "cleaning crew"),
        ("get maintain ants to line 3", "maintenance"),
        ("dispatch the spill team to zone bravo", "spill team"),
        ("call off the cleaning crew", "cleaning crew"),
        ("what is the weather", None),
    ],
)
def test_team(text: str, team: str | None) -> None:
    assert extract_team(text) == team


def test_slots_depend_on_intent() -> None:
    assert extract_slots("call technician nguyen at dock 4", Intent.DIAL_PERSON) == Slots(
        person="technician nguyen", location="dock 4"
    )
    assert extract_slots("need a supervisor at loading dock four", Intent.SUMMON_TEAM) == Slots(
        team="supervisor", location="dock 4"
    )
    assert extract_slots("fire in warehouse-B", Intent.EMERGENCY) == Slots(location="warehouse b")
    assert extract_slots("tell me a joke", Intent.OOS) == Slots()
