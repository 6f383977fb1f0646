"""The mini-program's reservation routes end to end: real HTTP to the live server, the shopper
logged in through the emulated wx.login. Every JSON answer is checked against the OpenAPI document
the service serves (reservation times in the store's +08:00), and every refusal is checked to name
its problem and to change nothing in the database.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import jsonschema
import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from reservations import slots
from reservations.models import Booking, GoodsHold, HoldableVariant
from tests.fuzz.harness import Harness, deep_json, dumps, json_values, mutations
from tests.integration.reservation_helpers import counter_hours, on_grid, store_time, used, uow, variant
from tests.integration.reservation_helpers import service as make_service
from wx_service.edges.api.mp_openapi import SPEC
from wx_service.ground.db import utcnow
from wx_service.ground.qr_images import qr_png_bytes

TIMEOUT = 15
PNG = b"\x89PNG\r\n\x1a\n"


def _schema_for(method: str, path: str, status: int, content_type: str = "application/json") -> dict[str, Any]:
    operation = SPEC["paths"][path][method.lower()]
    response = operation["responses"].get(str(status))
    assert response is not None, f"{method} {path} answered {status}, which the spec does not document"
    return response["content"][content_type]["schema"]


def _check_times(value: Any) -> None:
    """Every reservation time carries the store's offset, so the shopper reads the store's clock."""
    if isinstance(value, dict):
        for key, item in value.items():
            if (key.endswith("_at") or key in ("change_until", "offered_until")) and item is not None:
                assert datetime.fromisoformat(item).utcoffset() == timedelta(hours=8), (key, item)
            _check_times(item)
    elif isinstance(value, list):
        for item in value:
            _check_times(item)


class Shopper:
    """A mini-program calling the reservation routes; each answer checked against the spec."""

    def __init__(self, app, base_url: str, openid: str) -> None:
        self.app, self.base, self.api = app, base_url, f"{base_url}/api/mp"
        code = requests.post(f"{base_url}/_emulator/mp/login-code", json={"openid": openid},
                             timeout=TIMEOUT).json()["code"]
        login = requests.post(f"{self.api}/login", json={"code": code}, timeout=TIMEOUT)
        assert login.status_code == 200, login.text
        self.token = login.json()["token"]
        self.member_id = login.json()["member"]["id"]

    def call(self, method: str, path: str, spec_path: str | None = None, *, key: str | None = None,
             **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        if key is not None:
            headers["Idempotency-Key"] = key
        response = requests.request(method, self.api + path, headers=headers, timeout=TIMEOUT, **kwargs)
        queue = self.app.extensions["wx"].queue
        if hasattr(queue, "wait_idle"):  # the notices a write queued are sent before the next request
            queue.wait_idle(timeout=15)
        assert response.headers["Cache-Control"] == "no-store"
        spec_path = spec_path or path.split("?")[0]
        if response.headers["Content-Type"].startswith("image/png"):
            assert response.status_code == 200 and response.content.startswith(PNG)
            _schema_for(method, spec_path, 200, "image/png")
            return response
        assert response.headers["Content-Type"].startswith("application/json"), response.text[:200]
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "components": SPEC["components"],
                  **_schema_for(method, spec_path, response.status_code)}
        jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(response.json())
        _check_times(response.json())
        return response

    def book(self, service_id: int, at: datetime | str, key: str | None = None, **extra: Any) -> requests.Response:
        starts = at if isinstance(at, str) else iso(at)
        return self.call("POST", "/bookings", key=key or new_key(),
                         json={"service_id": service_id, "starts_at": starts, **extra})


def iso(at: datetime) -> str:
    """As the mini-program sends it: the store's wall clock with +08:00."""
    return at.astimezone(slots.STORE_ZONE).isoformat()


def new_key() -> str:
    return str(uuid.uuid4())


def shopper_ids(emulator) -> list[str]:
    return [s.openid for s in emulator.shoppers.values()]


@pytest.fixture
def alice(app, base_url, emulator) -> Shopper:
    return Shopper(app, base_url, shopper_ids(emulator)[0])


@pytest.fixture
def bob(app, base_url, emulator) -> Shopper:
    return Shopper(app, base_url, shopper_ids(emulator)[1])


def rows(app) -> tuple:
    """Row counts of every table and the state of every order: 'nothing changed' is this, equal."""
    return Harness(app, "rows").fingerprint()


def count(app, model, *where) -> int:
    with uow(app) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def status_of(app, booking_id: int) -> str:
    with uow(app) as session:
        return session.get(Booking, booking_id).status


# -- services and slots ------------------------------------------------------------------------------

def test_services_and_a_days_slots_in_store_time(app, alice):
    service, _ = make_service(app, capacity=2, resources=2, duration=30, buffer=10)
    listed = alice.call("GET", "/services").json()
    assert [s["id"] for s in listed["services"]] == [service]
    assert listed["services"][0] | {} == {"id": service, "code": "facial", "name": "肌肤测试", "counter": "LANCOME",
                                         "duration_minutes": 30, "description": "", "lead_minutes": 60,
                                         "horizon_days": 30}
    assert listed["subscribe_template_ids"] == ["DEMO_reservation_subscribe"]

    day = slots.store_day(utcnow()) + timedelta(days=2)
    answer = alice.call("GET", f"/services/{service}/slots?day={day.isoformat()}",
                        "/services/{service_id}/slots").json()
    assert answer["day"] == day.isoformat()
    first, second = answer["slots"][:2]
    assert first["starts_at"] == f"{day.isoformat()}T00:00:00+08:00"  # open round the clock from midnight
    assert first["ends_at"] == f"{day.isoformat()}T00:30:00+08:00"
    assert second["starts_at"] == f"{day.isoformat()}T00:40:00+08:00"  # every duration + buffer
    assert (first["capacity"], first["free"], first["waiting"], first["can_book"]) == (4, 4, 0, True)
    assert len(answer["slots"]) == 36  # 24 h / 40 min

    at = datetime.fromisoformat(first["starts_at"])
    assert alice.book(service, at).status_code == 201
    again = alice.call("GET", f"/services/{service}/slots?day={day.isoformat()}", "/services/{service_id}/slots")
    assert again.json()["slots"][0]["free"] == 3


@pytest.mark.parametrize("query,problem", [("", "YYYY-MM-DD"), ("?day=tomorrow", "YYYY-MM-DD"),
                                           ("?day=2026-13-01", "YYYY-MM-DD"), ("?day=9999-12-31", "within"),
                                           ("?day=0001-01-01", "within")])
def test_a_bad_day_is_a_400_naming_it(app, alice, query, problem):
    service, _ = make_service(app)
    answer = alice.call("GET", f"/services/{service}/slots{query}", "/services/{service_id}/slots")
    assert answer.status_code == 400 and answer.json()["field"] == "day" and problem in answer.json()["message"]


def test_an_unknown_service_has_no_slots(app, alice):
    day = slots.store_day(utcnow()).isoformat()
    for service_id in (999, 2**40):
        answer = alice.call("GET", f"/services/{service_id}/slots?day={day}", "/services/{service_id}/slots")
        assert answer.status_code == 404 and answer.json()["error"] == "not_found"


# -- booking -----------------------------------------------------------------------------------------

def test_booking_answers_the_booking_with_its_visit_code_and_qr(app, alice):
    service, resource = make_service(app, capacity=2)
    at = on_grid(app, service)
    made = alice.book(service, at)
    assert made.status_code == 201, made.text
    booking = made.json()["booking"]
    assert booking["status"] == "booked" and booking["channel"] == "mp"
    assert datetime.fromisoformat(booking["starts_at"]) == at
    assert booking["resource"]["id"] == resource and booking["service"]["id"] == service
    assert booking["visit_code"].startswith("B") and booking["can_cancel"] is True
    assert booking["qr_url"] == f"/api/mp/bookings/{booking['id']}/qr.png"
    qr = alice.call("GET", booking["qr_url"].removeprefix("/api/mp"), "/bookings/{booking_id}/qr.png")
    assert qr.content == qr_png_bytes(booking["visit_code"])  # the code the counter scans
    assert alice.call("GET", f"/bookings/{booking['id']}", "/bookings/{booking_id}").json()["booking"] == booking
    assert used(app, resource) == 1


def test_a_retried_tap_books_once_and_answers_the_same_booking(app, alice):
    service, resource = make_service(app, capacity=5)
    at = on_grid(app, service)
    key = new_key()
    first = alice.book(service, at, key)
    retries = [alice.book(service, at, key) for _ in range(3)]
    assert first.status_code == 201 and [r.status_code for r in retries] == [200] * 3
    assert {r.json()["booking"]["id"] for r in retries} == {first.json()["booking"]["id"]}
    assert count(app, Booking) == 1 and used(app, resource) == 1
    # The same key for another time is a client bug, not a retry: refused, nothing booked.
    other = alice.book(service, on_grid(app, service, hours_ahead=48), key)
    assert other.status_code == 422 and other.json()["error"] == "idempotency_key_reused"
    assert count(app, Booking) == 1


def test_a_booking_needs_an_idempotency_key(app, alice):
    service, _ = make_service(app)
    at = iso(on_grid(app, service))
    before = rows(app)
    missing = alice.call("POST", "/bookings", json={"service_id": service, "starts_at": at})
    assert missing.status_code == 400 and missing.json()["error"] == "idempotency_key_required"
    bad = alice.call("POST", "/bookings", key="has spaces and é", json={"service_id": service, "starts_at": at})
    assert bad.status_code == 400 and "Idempotency-Key" in bad.json()["message"]
    assert rows(app) == before


def _limited_hours(app) -> int:
    """A counter open 10:00-22:00 every day; its service: 60 minutes, every hour, 30 days ahead."""
    counter_hours(app, "DIOR", opens=600, closes=1320)
    service, _ = make_service(app, counter="DIOR", code="alteration", duration=60, buffer=0, lead=120,
                              horizon=30, hours=False)
    return service


def test_each_bad_time_is_refused_naming_its_problem_and_changes_nothing(app, alice):
    service = _limited_hours(app)
    today = slots.store_day(utcnow())
    now = utcnow()
    cases = {
        "past": (store_time(today - timedelta(days=1), "11:00"), 422, "passed"),
        "outside hours": (store_time(today + timedelta(days=2), "23:00"), 422, "open 10:00-22:00"),
        "off the grid": (store_time(today + timedelta(days=2), "10:30"), 422, "not a start time"),
        "beyond the horizon": (store_time(today + timedelta(days=40), "11:00"), 422, "at most 30 days ahead"),
        "inside the lead time": (now + timedelta(minutes=30), 422, "at least 120 minutes ahead"),
    }
    before = rows(app)
    for name, (at, status, words) in cases.items():
        answer = alice.book(service, at)
        assert answer.status_code == status, (name, answer.text)
        assert answer.json()["error"] == "bad_time" and words in answer.json()["message"], (name, answer.json())
    naive = alice.book(service, store_time(today + timedelta(days=2), "11:00").astimezone(slots.STORE_ZONE)
                       .replace(tzinfo=None).isoformat())
    assert naive.status_code == 400 and naive.json()["error"] == "bad_time"
    assert naive.json()["field"] == "starts_at" and "zone offset" in naive.json()["message"]
    for junk in ("next tuesday", "2026-02-30T10:00:00+08:00", "9999-12-31T23:59:59-14:00", "\x00"):
        answer = alice.book(service, junk)
        assert answer.status_code == 400 and answer.json()["field"] == "starts_at", junk
    assert rows(app) == before
    # and a good time still books
    assert alice.book(service, store_time(today + timedelta(days=2), "11:00")).status_code == 201


def test_unknown_service_or_resource_is_a_404_and_books_nothing(app, alice):
    service, resource = make_service(app)
    other, other_resource = make_service(app, code="other", hours=False)
    at = on_grid(app, service)
    before = rows(app)
    for body, words in (({"service_id": 4242}, "no service"), ({"resource_id": 4242}, "no resource"),
                        ({"resource_id": other_resource}, "no resource")):  # another service's resource
        answer = alice.book(body.pop("service_id", service), at, **body)
        assert answer.status_code == 404 and words in answer.json()["message"], answer.text
    huge = alice.book(2**63, at)
    assert huge.status_code == 400 and huge.json()["field"] == "service_id"
    assert rows(app) == before


def test_a_full_slot_says_so_and_points_to_the_waiting_list(app, alice, bob):
    service, resource = make_service(app, capacity=1)
    at = on_grid(app, service)
    assert alice.book(service, at).status_code == 201
    before = rows(app)
    full = bob.book(service, at)
    assert full.status_code == 409 and full.json()["error"] == "full"
    assert full.json()["can_join_waitlist"] is True and "waiting list" in full.json()["message"]
    assert rows(app) == before

    day = slots.store_day(at).isoformat()
    slot = next(s for s in bob.call("GET", f"/services/{service}/slots?day={day}",
                                    "/services/{service_id}/slots").json()["slots"]
                if datetime.fromisoformat(s["starts_at"]) == at)
    assert (slot["free"], slot["can_book"], slot["can_join_waitlist"]) == (0, False, True)
    joined = bob.call("POST", "/waitlist", json={"service_id": service, "starts_at": iso(at)})
    assert joined.status_code == 201 and joined.json()["place"]["position"] == 1
    again = bob.call("POST", "/waitlist", json={"service_id": service, "starts_at": iso(at)})
    assert again.status_code == 200 and again.json()["place"]["id"] == joined.json()["place"]["id"]
    mine = bob.call("GET", "/bookings").json()
    assert mine["bookings"] == [] and [p["id"] for p in mine["waitlist"]] == [joined.json()["place"]["id"]]
    # a slot with room is booked, not waited for
    roomy = bob.call("POST", "/waitlist", json={"service_id": service,
                                                "starts_at": iso(on_grid(app, service, hours_ahead=48))})
    assert roomy.status_code == 409 and "book it instead" in roomy.json()["message"]

    place = joined.json()["place"]["id"]
    assert alice.call("DELETE", f"/waitlist/{place}", "/waitlist/{entry_id}").status_code == 404  # not hers
    left = bob.call("DELETE", f"/waitlist/{place}", "/waitlist/{entry_id}")
    assert left.status_code == 200 and left.json()["place"]["status"] == "left"
    assert bob.call("GET", "/bookings").json()["waitlist"] == []


def test_a_released_place_is_offered_to_the_waiting_shopper_who_accepts_once(app, alice, bob):
    service, resource = make_service(app, capacity=1)
    at = on_grid(app, service, hours_ahead=30)
    booking = alice.book(service, at).json()["booking"]["id"]
    place = bob.call("POST", "/waitlist", json={"service_id": service, "starts_at": iso(at)}).json()["place"]["id"]
    assert alice.call("POST", f"/bookings/{booking}/cancel", "/bookings/{booking_id}/cancel",
                      json={"reason": "有事"}).status_code == 200
    offered = bob.call("GET", "/bookings").json()["waitlist"]
    assert offered[0]["status"] == "offered" and offered[0]["offered_until"]
    assert alice.book(service, at).status_code == 409  # kept for bob, not grabbed by a passer-by
    key = new_key()
    taken = bob.call("POST", f"/waitlist/{place}/accept", "/waitlist/{entry_id}/accept", key=key)
    assert taken.status_code == 201 and taken.json()["booking"]["channel"] == "waitlist"
    retried = bob.call("POST", f"/waitlist/{place}/accept", "/waitlist/{entry_id}/accept", key=key)
    assert retried.status_code == 200 and retried.json()["booking"]["id"] == taken.json()["booking"]["id"]
    assert used(app, resource) == 1
    missing = bob.call("POST", f"/waitlist/{place}/accept", "/waitlist/{entry_id}/accept")
    assert missing.status_code == 400 and missing.json()["error"] == "idempotency_key_required"


def test_the_limit_of_open_bookings_is_a_409(app, alice, wx):
    service, _ = make_service(app, capacity=5)
    for hours in (24, 48, 72):
        assert alice.book(service, on_grid(app, service, hours_ahead=hours)).status_code == 201
    before = rows(app)
    fourth = alice.book(service, on_grid(app, service, hours_ahead=96))
    assert fourth.status_code == 409 and fourth.json()["error"] == "limit_reached"
    assert f"{wx.settings.RESERVATION_MAX_OPEN} open bookings" in fourth.json()["message"]
    assert rows(app) == before


# -- mine, and someone else's --------------------------------------------------------------------------

def test_my_reservations_lists_bookings_places_and_holds(app, alice, bob):
    service, _ = make_service(app, capacity=1)
    soon, later = on_grid(app, service, hours_ahead=24), on_grid(app, service, hours_ahead=48)
    second = alice.book(service, later).json()["booking"]["id"]
    first = alice.book(service, soon).json()["booking"]["id"]
    bob.book(service, on_grid(app, service, hours_ahead=72))
    item = variant(app, holdable=2)
    day = (slots.store_day(utcnow()) + timedelta(days=1)).isoformat()
    held = alice.call("POST", "/holds", key=new_key(), json={"variant_id": item, "visit_day": day}).json()["hold"]
    mine = alice.call("GET", "/bookings").json()
    assert [b["id"] for b in mine["bookings"]] == [first, second]  # soonest first, only hers
    assert [h["id"] for h in mine["holds"]] == [held["id"]] and mine["waitlist"] == []


def test_someone_elses_booking_is_a_404_everywhere_and_stays_as_it_was(app, alice, bob):
    service, resource = make_service(app, capacity=2)
    at = on_grid(app, service, hours_ahead=30)
    booking = alice.book(service, at).json()["booking"]["id"]
    before = rows(app)
    for method, path, spec_path, kwargs in (
            ("GET", f"/bookings/{booking}", "/bookings/{booking_id}", {}),
            ("GET", f"/bookings/{booking}/qr.png", "/bookings/{booking_id}/qr.png", {}),
            ("POST", f"/bookings/{booking}/cancel", "/bookings/{booking_id}/cancel", {"json": {"reason": "x"}}),
            ("POST", f"/bookings/{booking}/reschedule", "/bookings/{booking_id}/reschedule",
             {"json": {"starts_at": iso(on_grid(app, service, hours_ahead=50))}, "key": new_key()})):
        answer = bob.call(method, path, spec_path, **kwargs)
        assert answer.status_code == 404 and answer.json()["error"] == "not_found", (path, answer.text)
        assert answer.json()["message"] == f"no booking {booking}"
    for huge in (2**31, 10**30):
        answer = bob.call("GET", f"/bookings/{huge}", "/bookings/{booking_id}")
        assert answer.status_code == 404
    assert rows(app) == before and status_of(app, booking) == "booked" and used(app, resource) == 1


# -- cancel and reschedule -------------------------------------------------------------------------------

def test_cancel_with_a_reason_gives_the_place_back(app, alice):
    service, resource = make_service(app, capacity=1)
    booking = alice.book(service, on_grid(app, service)).json()["booking"]["id"]
    done = alice.call("POST", f"/bookings/{booking}/cancel", "/bookings/{booking_id}/cancel",
                      json={"reason": "临时出差"})
    assert done.status_code == 200
    assert (done.json()["booking"]["status"], done.json()["booking"]["cancel_reason"]) == ("cancelled", "临时出差")
    assert done.json()["booking"]["can_cancel"] is False and used(app, resource) == 0
    twice = alice.call("POST", f"/bookings/{booking}/cancel", "/bookings/{booking_id}/cancel", json={})
    assert twice.status_code == 409 and twice.json()["error"] == "not_allowed"
    nul = alice.call("POST", f"/bookings/{booking}/cancel", "/bookings/{booking_id}/cancel",
                     json={"reason": "a\x00b"})
    assert nul.status_code == 400 and nul.json()["field"] == "reason"


def test_inside_the_cut_off_cancel_and_move_are_too_late(app, alice, wx):
    service, resource = make_service(app, capacity=1, lead=10)
    soon = on_grid(app, service, hours_ahead=1)  # inside the 120-minute cut-off
    assert soon - utcnow() < timedelta(minutes=wx.settings.RESERVATION_CUTOFF_MINUTES)
    made = alice.book(service, soon).json()["booking"]
    assert made["can_cancel"] is False and made["can_reschedule"] is False
    before = rows(app)
    late = alice.call("POST", f"/bookings/{made['id']}/cancel", "/bookings/{booking_id}/cancel", json={})
    assert late.status_code == 409 and late.json()["error"] == "too_late"
    assert "120 minutes before" in late.json()["message"]
    moved = alice.call("POST", f"/bookings/{made['id']}/reschedule", "/bookings/{booking_id}/reschedule",
                       key=new_key(), json={"starts_at": iso(on_grid(app, service, hours_ahead=30))})
    assert moved.status_code == 409 and moved.json()["error"] == "too_late"
    assert rows(app) == before and status_of(app, made["id"]) == "booked"


def test_reschedule_books_the_new_time_keeps_the_chain_and_retries_once(app, alice):
    service, resource = make_service(app, capacity=1)
    old = alice.book(service, on_grid(app, service)).json()["booking"]["id"]
    to = on_grid(app, service, hours_ahead=48)
    key = new_key()
    moved = alice.call("POST", f"/bookings/{old}/reschedule", "/bookings/{booking_id}/reschedule", key=key,
                       json={"starts_at": iso(to)})
    assert moved.status_code == 201, moved.text
    new = moved.json()["booking"]
    assert new["previous_id"] == old and datetime.fromisoformat(new["starts_at"]) == to
    again = alice.call("POST", f"/bookings/{old}/reschedule", "/bookings/{booking_id}/reschedule", key=key,
                       json={"starts_at": iso(to)})
    assert again.status_code == 200 and again.json()["booking"]["id"] == new["id"]
    assert status_of(app, old) == "rescheduled" and used(app, resource) == 1
    assert [b["id"] for b in alice.call("GET", "/bookings").json()["bookings"]] == [new["id"]]
    naive = alice.call("POST", f"/bookings/{new['id']}/reschedule", "/bookings/{booking_id}/reschedule",
                       key=new_key(), json={"starts_at": to.replace(tzinfo=None).isoformat()})
    assert naive.status_code == 400 and naive.json()["error"] == "bad_time"


def test_a_reschedule_to_a_full_time_leaves_the_booking_as_it_was(app, alice, bob):
    service, resource = make_service(app, capacity=1)
    mine = alice.book(service, on_grid(app, service)).json()["booking"]["id"]
    taken = on_grid(app, service, hours_ahead=48)
    bob.book(service, taken)
    before = rows(app)
    refused = alice.call("POST", f"/bookings/{mine}/reschedule", "/bookings/{booking_id}/reschedule",
                         key=new_key(), json={"starts_at": iso(taken)})
    assert refused.status_code == 409 and refused.json()["error"] == "full"
    assert rows(app) == before and status_of(app, mine) == "booked"


# -- goods holds ---------------------------------------------------------------------------------------

def test_goods_filter_hold_retry_sold_out_cancel_and_qr(app, alice, bob):
    item = variant(app, holdable=1)
    with uow(app) as session:
        session.add(HoldableVariant(counter_code="DIOR", brand="迪奥", product="999 口红", variant="#999",
                                    holdable=3, held=0))
    everything = alice.call("GET", "/goods").json()["goods"]
    assert len(everything) == 2
    lancome = alice.call("GET", "/goods?counter=LANCOME").json()["goods"]
    assert [(g["id"], g["brand"], g["available"]) for g in lancome] == [(item, "兰蔻", 1)]
    assert [g["brand"] for g in alice.call("GET", "/goods?brand=%E8%BF%AA%E5%A5%A5").json()["goods"]] == ["迪奥"]
    too_long = alice.call("GET", "/goods?brand=" + "x" * 65)
    assert too_long.status_code == 400 and too_long.json()["field"] == "brand"

    day = (slots.store_day(utcnow()) + timedelta(days=1)).isoformat()
    key = new_key()
    made = alice.call("POST", "/holds", key=key, json={"variant_id": item, "visit_day": day})
    assert made.status_code == 201, made.text
    hold = made.json()["hold"]
    assert hold["status"] == "held" and hold["visit_code"].startswith("H") and hold["visit_day"] == day
    assert hold["expires_at"] == f"{(slots.store_day(utcnow()) + timedelta(days=2)).isoformat()}T00:00:00+08:00"
    retried = alice.call("POST", "/holds", key=key, json={"variant_id": item, "visit_day": day})
    assert retried.status_code == 200 and retried.json()["hold"]["id"] == hold["id"]
    before = rows(app)
    sold_out = bob.call("POST", "/holds", key=new_key(), json={"variant_id": item, "visit_day": day})
    assert sold_out.status_code == 409 and sold_out.json()["error"] == "sold_out"
    for body, status in (({"variant_id": 4242, "visit_day": day}, 404),
                         ({"variant_id": item, "visit_day": "2001-01-01"}, 422),
                         ({"variant_id": item, "visit_day": "01/02/2030"}, 400)):
        answer = bob.call("POST", "/holds", key=new_key(), json=body)
        assert answer.status_code == status, (body, answer.text)
    assert rows(app) == before

    qr = alice.call("GET", f"/holds/{hold['id']}/qr.png", "/holds/{hold_id}/qr.png")
    assert qr.content == qr_png_bytes(hold["visit_code"])
    assert bob.call("GET", f"/holds/{hold['id']}/qr.png", "/holds/{hold_id}/qr.png").status_code == 404
    assert bob.call("POST", f"/holds/{hold['id']}/cancel", "/holds/{hold_id}/cancel").status_code == 404
    done = alice.call("POST", f"/holds/{hold['id']}/cancel", "/holds/{hold_id}/cancel")
    assert done.status_code == 200 and done.json()["hold"]["status"] == "cancelled"
    assert alice.call("GET", "/goods?counter=LANCOME").json()["goods"][0]["available"] == 1
    with uow(app) as session:
        assert session.get(GoodsHold, hold["id"]).status == "cancelled"


# -- consents, auth, the spec --------------------------------------------------------------------------

def test_subscribe_consents_are_recorded_one_message_each(app, alice, emulator, run_jobs):
    from wx_service.edges.emulator.shopper import ShopperClient

    with app.app_context():  # the phone's popup, twice (WeChat keeps a consent per accept)
        for _ in range(2):
            ShopperClient(emulator).request_subscribe_message(
                list(emulator.shoppers.values())[0].mp_openid, {"DEMO_reservation_subscribe": "accept"})
    answer = alice.call("POST", "/subscribe-consents",
                        json={"accepted": ["DEMO_reservation_subscribe", "DEMO_reservation_subscribe"],
                              "source": "booking-page"})
    assert answer.status_code == 200 and answer.json() == {"recorded": 2, "remaining": 2}
    service, _ = make_service(app)
    alice.book(service, on_grid(app, service))
    run_jobs()  # the confirmation goes out as a subscribe message and spends one
    again = alice.call("POST", "/subscribe-consents", json={"accepted": []})
    assert again.json() == {"recorded": 0, "remaining": 1}
    bad = alice.call("POST", "/subscribe-consents", json={"accepted": ["x" * 65]})
    assert bad.status_code == 400 and bad.json()["field"].startswith("accepted")


def test_every_reservation_route_needs_the_session(app, base_url):
    for path, ops in SPEC["paths"].items():
        if path in ("/login", "/openapi.json") or not any(
                o["operationId"] in {op["operationId"] for op in _reservation_ops()} for o in ops.values()):
            continue
        for method in ops:
            url = base_url + "/api/mp" + path.replace("{service_id}", "1").replace("{booking_id}", "1") \
                .replace("{entry_id}", "1").replace("{hold_id}", "1")
            answer = requests.request(method, url, timeout=TIMEOUT, json={})
            assert answer.status_code == 401 and answer.json()["error"] == "unauthorized", (method, path)


def _reservation_ops() -> list[dict]:
    from wx_service.edges.api.mp_openapi import RESERVATION_PATHS
    return [op for ops in RESERVATION_PATHS.values() for op in ops.values()]


def test_the_spec_documents_the_idempotency_key_on_every_creating_write():
    from wx_service.edges.api.mp_openapi import RESERVATION_PATHS
    for path in ("/bookings", "/bookings/{booking_id}/reschedule", "/waitlist/{entry_id}/accept", "/holds"):
        params = RESERVATION_PATHS[path]["post"]["parameters"]
        assert any(p["name"] == "Idempotency-Key" and p["required"] for p in params), path


# -- hostile input: never a 5xx, a refusal changes nothing ------------------------------------------------

@pytest.fixture
def signed_in(app, alice):
    service, resource = make_service(app, capacity=3)
    at = on_grid(app, service)
    booking = alice.book(service, at).json()["booking"]["id"]
    return alice, service, resource, at, booking


@pytest.mark.parametrize("route", ["/bookings", "/bookings/{id}/reschedule", "/bookings/{id}/cancel", "/waitlist",
                                   "/holds", "/subscribe-consents"])
def test_hostile_bodies_never_give_a_5xx(app, signed_in, route):
    alice, service, resource, at, booking = signed_in
    bases = {"/bookings": {"service_id": service, "starts_at": iso(at), "resource_id": resource},
             "/bookings/{id}/reschedule": {"starts_at": iso(at)}, "/bookings/{id}/cancel": {"reason": "x"},
             "/waitlist": {"service_id": service, "starts_at": iso(at)},
             "/holds": {"variant_id": 1, "visit_day": "2030-01-01"},
             "/subscribe-consents": {"accepted": ["T1"], "source": "mp"}}
    client = app.test_client()
    path = "/api/mp" + route.replace("{id}", str(booking))
    with Harness(app, f"mp-reservations:{route}") as harness:
        @given(body=mutations(bases[route]).map(dumps) | json_values.map(dumps) | deep_json.map(str.encode)
               | st.binary(max_size=64), key=st.sampled_from(["k-fixed", str(uuid.uuid4())]))
        def run(body: bytes, key: str) -> None:
            harness.check(lambda: client.post(path, data=body, headers={
                "Authorization": f"Bearer {alice.token}", "Content-Type": "application/json",
                "Idempotency-Key": key}))
        run()


def test_hostile_paths_and_queries_never_give_a_5xx(app, signed_in):
    alice, service, *_ = signed_in
    client = app.test_client()
    headers = {"Authorization": f"Bearer {alice.token}"}
    with Harness(app, "mp-reservations:paths") as harness:
        for path in (f"/bookings/{2**64}", f"/bookings/{10**40}/qr.png", "/bookings/-1", "/bookings/0",
                     f"/holds/{2**63}/qr.png", f"/services/{2**63}/slots?day=2030-01-01",
                     f"/services/{service}/slots?day=%00", f"/services/{service}/slots?day=%ED%A0%80",
                     "/goods?counter=%00", "/goods?brand=%ED%A0%80", "/bookings/abc"):
            harness.check(lambda p=path: client.get("/api/mp" + p, headers=headers), path)
        for path in (f"/waitlist/{2**63}", "/waitlist/0"):
            assert harness.check(lambda p=path: client.delete("/api/mp" + p, headers=headers), path) == 404
        for path in (f"/bookings/{2**63}/cancel", f"/holds/{2**63}/cancel"):
            assert harness.check(lambda p=path: client.post("/api/mp" + p, headers=headers, json={}), path) == 404
        assert harness.check(lambda: client.post("/api/mp/bookings", headers={
            **headers, "Idempotency-Key": "x" * 65}, json={})) == 400


def test_times_round_trip_near_midnight_on_the_right_store_day(app, alice):
    """23:30 in the store is 15:30 UTC: listed under, and booked on, the store's day."""
    service, _ = make_service(app, capacity=2, duration=30, buffer=0)
    day = slots.store_day(utcnow()) + timedelta(days=3)
    listed = alice.call("GET", f"/services/{service}/slots?day={day.isoformat()}",
                        "/services/{service_id}/slots").json()["slots"]
    assert listed[-1]["starts_at"] == f"{day.isoformat()}T23:30:00+08:00"
    made = alice.book(service, listed[-1]["starts_at"]).json()["booking"]
    assert made["starts_at"] == f"{day.isoformat()}T23:30:00+08:00"
    with uow(app) as session:
        stored = session.get(Booking, made["id"]).starts_at
    assert stored.utcoffset() == timedelta(0) and stored.hour == 15 and slots.store_day(stored) == day
    same_instant = alice.book(service, stored.isoformat().replace("+00:00", "Z"))
    assert same_instant.status_code == 201  # any offset names the same instant
    assert same_instant.json()["booking"]["starts_at"] == made["starts_at"]


def test_the_popups_accepts_reach_the_api_and_the_confirmation_comes_as_a_subscribe_message(
        app, alice, emulator, run_jobs):
    """The whole consent loop as a phone plays it: wx.requestSubscribeMessage on the emulated phone
    (WeChat keeps one consent per accept), the mini-program reports the accepts to our API, a booking
    spends one on its confirmation, sent as a subscribe message; the next goes the same way."""
    from wx_service.edges.emulator.shopper import ShopperClient

    template = app.extensions["wx"].settings.RESERVATION_SUBSCRIBE_TEMPLATE_ID
    phone = list(emulator.shoppers.values())[0]
    with app.app_context():
        answer = ShopperClient(emulator).request_subscribe_message(
            phone.mp_openid, {template: "accept"}, report=(alice.base, alice.token))
    assert answer[template] == "accept" and answer["reported"] == 200
    assert phone.subscribe_consents[template] == 1
    service, _ = make_service(app, capacity=2)
    booked = alice.book(service, on_grid(app, service))
    assert booked.status_code == 201
    run_jobs()
    shown = [line for line in phone.chat if line["via"] == "subscribe"]
    assert len(shown) == 1 and booked.json()["booking"]["visit_code"] in str(shown[0])
    assert phone.subscribe_consents[template] == 0  # WeChat spent the one consent
    assert alice.call("POST", "/subscribe-consents", json={"accepted": []}).json()["remaining"] == 0
