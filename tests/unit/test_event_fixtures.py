"""Each AWS event fixture exists once: tests read spotops's shipped examples in place."""

from __future__ import annotations

from tests.support.events import EVENTS_DIR, PACKAGE_EVENTS_DIR, event_path, load_event


def test_no_fixture_in_tests_events_copies_one_that_spotops_ships() -> None:
    shipped = {path.read_bytes(): path.name for path in PACKAGE_EVENTS_DIR.glob("*.json")}

    copies = sorted(
        f"{path.name} = spotops/data/events/{shipped[path.read_bytes()]}"
        for path in EVENTS_DIR.glob("*.json")
        if path.read_bytes() in shipped
    )

    assert shipped, f"no event examples found in {PACKAGE_EVENTS_DIR}"
    assert copies == [], "load_event reads the package's copy; remove these from tests/events/"


def test_every_shipped_example_loads_by_name_from_the_package() -> None:
    for path in PACKAGE_EVENTS_DIR.glob("*.json"):
        name = path.stem

        assert event_path(name) == path
        assert load_event(name)  # parses as JSON, not empty


def test_the_tests_own_fixtures_are_read_from_tests_events() -> None:
    assert event_path("ecrImageActionPush") == EVENTS_DIR / "ecrImageActionPush.json"
