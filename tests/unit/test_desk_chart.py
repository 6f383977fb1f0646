"""The metrics chart is a pure function: well-formed SVG, a bar per day and series, no script
or external reference, and the pure helpers the desk's pages lean on."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, timedelta

from service_desk.library import _like, _snippet
from service_desk.metrics import DayMetrics, chart_svg
from service_desk.panel import mask_phone

SVG = "{http://www.w3.org/2000/svg}"


def week() -> list[DayMetrics]:
    start = date(2024, 3, 4)
    return [DayMetrics(start + timedelta(days=n), opened=n * 3, resolved=n * 2,
                       first_response_avg_s=None if n == 2 else 30.0 * (n + 1), csat_count=0) for n in range(7)]


def test_the_chart_parses_and_has_one_bar_per_day_for_each_series():
    text = chart_svg(week())
    root = ET.fromstring(text)
    assert root.tag == f"{SVG}svg" and root.get("viewBox") == "0 0 720 260"
    bars = [r for r in root.iter(f"{SVG}rect") if r.get("class", "").startswith("bar-")]
    assert len([b for b in bars if b.get("class") == "bar-opened"]) == 7
    assert len([b for b in bars if b.get("class") == "bar-resolved"]) == 7
    assert all(float(b.get("height")) >= 0 for b in bars)
    assert len(list(root.iter(f"{SVG}circle"))) == 6  # the day without an answer has no dot
    assert len(list(root.iter(f"{SVG}polyline"))) == 1
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert "03-04" in labels and "03-10" in labels
    lowered = text.lower()
    assert "<script" not in lowered and "href" not in lowered and "url(" not in lowered


def test_the_tallest_bar_fits_inside_the_plot():
    root = ET.fromstring(chart_svg(week()))
    for bar in root.iter(f"{SVG}rect"):
        if bar.get("class") == "bar-opened":
            assert float(bar.get("y")) >= 0 and float(bar.get("y")) + float(bar.get("height")) <= 260


def test_an_empty_range_and_a_single_day_still_give_a_valid_svg():
    assert ET.fromstring(chart_svg([])).tag == f"{SVG}svg"
    one = ET.fromstring(chart_svg([DayMetrics(date(2024, 1, 1))]))
    assert len([r for r in one.iter(f"{SVG}rect") if r.get("class") == "bar-opened"]) == 1


def test_phones_are_masked_and_like_patterns_are_literal():
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("") == "" and mask_phone(None) == "" and mask_phone("12345") == "*2345"
    assert _like("100%_a\\b") == "%100\\%\\_a\\\\b%"
    assert _snippet("abc", "zz") == "abc"
    assert _snippet("x" * 40 + "Needle" + "y" * 40, "needle") == "…" + "x" * 30 + "Needle" + "y" * 30 + "…"
