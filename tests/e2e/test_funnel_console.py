"""The funnel page over HTTP (the hand-computed week of tests/integration/test_funnel_fixture.py:
the table, the chart, the CSV, the form's refusals, who may open it) and once in headless Chromium
(the chart and the table render)."""
from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from urllib.parse import quote

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from members import staff as staff_service
from tests.e2e.browser import headless_chromium, needs_chromium
from tests.e2e.desk_helpers import PASSWORD, make_plain_staff, sign_in
from tests.integration.members_helpers import uow
from tests.integration.test_funnel_fixture import week  # noqa: F401  (fixture)

RANGE = "since=2026-11-02&until=2026-11-08"
SVG = "{http://www.w3.org/2000/svg}"


def staff_with(app, username: str, role: str) -> None:
    make_plain_staff(app, username)
    with uow(app):
        staff_service.grant_role(username, role)


@pytest.fixture
def analyst(app, base_url):
    staff_with(app, "lin", "analyst")
    return sign_in(base_url, "lin", PASSWORD)


def cells(html: str, key: str) -> list[str]:
    """The text of each cell of the table row for `key`, rate notes included."""
    row = re.search(rf'<tr data-key="{re.escape(key)}"[^>]*>(.*?)</tr>', html, re.S)
    assert row, key
    return [" ".join(re.sub(r"<[^>]+>", " ", c).split()) for c in re.findall(r"<td>(.*?)</td>", row.group(1), re.S)]


def test_the_table_shows_the_hand_computed_week_with_rates(app, analyst, week):  # noqa: F811
    page = analyst.get(f"/console/funnel?{RANGE}&view=last&grouping=campaign")
    assert page.status_code == 200
    assert cells(page.text, "c-spring") == ["c-spring", "2", "2 100.0%", "1 50.0%", "1 100.0%", "1 100.0%",
                                            "300.00", "50.0%"]
    assert cells(page.text, "c-vip")[1:7] == ["2", "1 50.0%", "1 100.0%", "2 200.0%", "3 150.0%", "620.00"]
    assert cells(page.text, "*") == ["合计 total", "4", "3 75.0%", "2 66.7%", "5 250.0%", "7 140.0%", "1,220.00",
                                     "175.0%"]
    first = analyst.get(f"/console/funnel?{RANGE}&view=first&grouping=campaign")
    assert cells(first.text, "c-spring")[1:7] == ["2", "2 100.0%", "1 50.0%", "2 200.0%", "2 100.0%", "500.00"]


def test_the_chart_is_inline_svg_with_a_bar_per_stage_sized_by_shoppers(app, analyst, week):  # noqa: F811
    page = analyst.get(f"/console/funnel?{RANGE}")
    svg = page.text[page.text.index("<svg"):page.text.index("</svg>") + 6]
    root = ET.fromstring(svg)
    bars = {r.get("data-stage"): float(r.get("width")) for r in root.iter(f"{SVG}rect")}
    assert list(bars) == ["scans", "follows", "members", "visits", "paying", "sales_fen"]
    # Totals 4, 3, 2, 5, 7 shoppers: the widest is paying (7), the others in proportion.
    assert bars["paying"] == max(bars.values())
    assert bars["scans"] == pytest.approx(bars["paying"] * 4 / 7, abs=1)
    assert "<script" not in page.text.split("<svg")[1].split("</svg>")[0]


def test_by_brand_names_the_brands(app, analyst, week):  # noqa: F811
    page = analyst.get(f"/console/funnel?{RANGE}&view=last&grouping=brand")
    assert cells(page.text, str(week["L1-01"]))[:7] == ["Lanvin", "1", "0 0.0%", "0 —", "3 —", "3 100.0%", "430.00"]
    assert cells(page.text, "")[0] == "— 无品牌 no brand"


def test_the_csv_is_the_table(app, analyst, week):  # noqa: F811
    response = analyst.get(f"/console/funnel?{RANGE}&view=first&grouping=brand&format=csv")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/csv")
    assert 'filename="funnel-brand-first-2026-11-02-2026-11-08.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0][:8] == ["key", "name", "scans", "follows", "members", "visits", "paying members", "sales (yuan)"]
    by_key = {r[0]: r[2:8] for r in rows[1:]}
    assert by_key == {str(week["L1-01"]): ["1", "0", "0", "3", "3", "500.00"],
                      str(week["L2-05"]): ["0", "0", "0", "2", "2", "500.00"],
                      "": ["0", "0", "2", "0", "2", "220.00"],
                      "*": ["1", "0", "2", "5", "7", "1220.00"]}


@pytest.mark.parametrize("query, words", [
    ("since=2026-11-08&until=2026-11-01", "ends before it starts"),
    ("since=yesterday", "since is a date"),
    ("view=middle", "view is one of"),
    ("grouping=floor", "grouping is one of"),
    ("since=2024-01-01&until=2026-01-01", "at most 366 days"),
])
def test_a_bad_form_is_refused_with_the_reason(app, analyst, query, words):
    response = analyst.get(f"/console/funnel?{query}")
    assert response.status_code == 400 and words in response.text


def test_counter_staff_are_refused_and_marketing_may_look(app, base_url):
    make_plain_staff(app, "kai")
    with uow(app):
        staff_service.grant_role("kai", "counter", "L1-01")
    assert sign_in(base_url, "kai", PASSWORD).get("/console/funnel").status_code == 403
    staff_with(app, "ming", "marketing")
    page = sign_in(base_url, "ming", PASSWORD).get("/console/funnel")
    assert page.status_code == 200 and 'id="empty"' in page.text  # nothing happened in the last 28 days


@needs_chromium
def test_the_page_shows_the_chart_and_the_table_in_chromium(app, base_url, week):  # noqa: F811
    staff_with(app, "lin", "analyst")
    with headless_chromium("funnel-console") as driver:
        driver.get(f"{base_url}/console/login?next=" + quote(f"/console/funnel?{RANGE}", safe="/"))
        driver.find_element(By.ID, "username").send_keys("lin")
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        driver.find_element(By.ID, "sign-in").click()
        wait = WebDriverWait(driver, 20, ignored_exceptions=(StaleElementReferenceException,))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#funnel-table tr.total"))
        # One script reads what the page drew: the bars the browser laid out and the table's rows.
        seen = driver.execute_script("""
            const bars = [...document.querySelectorAll('#chart svg rect.stage')]
                .map(r => [r.dataset.stage, Math.round(r.getBoundingClientRect().width)]);
            const rows = [...document.querySelectorAll('#funnel-table tbody tr')]
                .map(tr => [...tr.cells].map(td => td.innerText.trim()));
            return {bars, rows};""")
        stages = [b[0] for b in seen["bars"]]
        assert stages == ["scans", "follows", "members", "visits", "paying", "sales_fen"]
        widths = dict(seen["bars"])
        assert widths["paying"] > widths["visits"] > widths["scans"] > widths["members"] > 0
        assert [r[0] for r in seen["rows"]] == ["L1-01", "c-spring", "c-vip", "— 无活动 unattributed", "合计 total"]
        assert seen["rows"][-1][6] == "1,220.00"
