"""Time functions (local_hour, local_weekday, local_date, local_time) and the
request time they read: `request.ts`, else the time the engine decided."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from policy_engine.builtins import implementation
from policy_engine.context import Context
from policy_engine.decision import Effect

PARIS = ZoneInfo("Europe/Paris")


def at(zone: ZoneInfo, *fields: int) -> float:
    return dt.datetime(*fields, tzinfo=zone).timestamp()


@pytest.mark.parametrize(
    "ts,hour,day,date,time",
    [
        (at(PARIS, 2026, 3, 29, 1, 59), 1, "sun", "2026-03-29", "01:59"),  # the night clocks go forward
        (at(PARIS, 2026, 3, 29, 1, 59) + 60, 3, "sun", "2026-03-29", "03:00"),  # one minute later: 02:00 never was
        (at(PARIS, 2026, 10, 25, 2, 30), 2, "sun", "2026-10-25", "02:30"),  # and back
        (at(PARIS, 2026, 12, 31, 23, 59), 23, "thu", "2026-12-31", "23:59"),
        (at(PARIS, 2027, 1, 1, 0, 0), 0, "fri", "2027-01-01", "00:00"),
    ],
)
def test_local_parts_in_paris(ts: float, hour: int, day: str, date: str, time: str) -> None:
    got = [implementation(f)(ts, "Europe/Paris") for f in ("local_hour", "local_weekday", "local_date", "local_time")]
    assert got == [hour, day, date, time]


def test_null_and_out_of_range_times_are_null() -> None:
    for f in ("local_hour", "local_weekday", "local_date", "local_time"):
        assert implementation(f)(None, "UTC") is None
        assert implementation(f)(1e300, "UTC") is None


OFFICE = """
let paris_hour = local_hour(request.ts, "Europe/Paris")

rule outside_office_hours {
  throttle when account.tier == "free"
    and (local_weekday(request.ts, "Europe/Paris") in ["sat", "sun"] or paris_hour < 9 or paris_hour >= 18)
  reason "free accounts are served in office hours"
}

limit per_local_day {
  key account.id, local_date(request.ts, "Asia/Tokyo")
  count
  window 2d
  max 1
  deny
  reason "one a day"
}
"""


def test_office_hours_and_a_key_per_local_date(make_policy) -> None:
    p = make_policy(OFFICE)
    free = {"account": {"id": "a", "tier": "free"}}
    monday_10 = at(PARIS, 2026, 6, 1, 10, 0)
    d = p.decide({**free, "request": {"ts": monday_10}})
    assert d.effect is Effect.ALLOW and d.limits[0].key == "a|2026-06-01"
    d = p.decide({**free, "request": {"ts": monday_10 + 3600}})  # the same Tokyo date: over
    assert d.effect is Effect.DENY
    d = p.decide({**free, "request": {"ts": at(PARIS, 2026, 6, 1, 17, 30)}})  # 00:30 on the 2nd in Tokyo
    assert d.effect is Effect.ALLOW and d.limits[0].key == "a|2026-06-02"
    other = {"account": {"id": "a2", "tier": "free"}}
    d = p.decide({**other, "request": {"ts": at(PARIS, 2026, 6, 1, 18, 0)}})
    assert d.effect is Effect.THROTTLE and d.rules == ["outside_office_hours"]
    d = p.decide({**other, "request": {"ts": at(PARIS, 2026, 6, 6, 11, 0)}})  # a Saturday
    assert d.rules == ["outside_office_hours"]


def test_a_request_without_ts_reads_the_decision_time(make_policy) -> None:
    p = make_policy(OFFICE)
    ctx = Context.from_dict({"account": {"id": "b", "tier": "free"}})
    assert ctx.request_ts is None
    d = p.engine.decide_sync(ctx, at(PARIS, 2026, 6, 2, 20, 0))  # the server's clock, here injected
    assert ctx.request_ts == at(PARIS, 2026, 6, 2, 20, 0)
    assert d.rules == ["outside_office_hours"] and d.limits[0].key == "b|2026-06-03"
    ctx = Context.from_dict({"account": {"id": "c", "tier": "free"}})
    p.engine.decide_sync(ctx)  # no clock given: the real one
    assert ctx.request_ts is not None and abs(ctx.request_ts - dt.datetime.now().timestamp()) < 3600
