"""In headless Chromium: a marketing staff member creates an activity with two brands and a cover
picture, schedules it, and sees it as the OA news card shoppers would get."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from marketing import activities
from marketing.models import Activity, ContentImage
from members.ledger import SHANGHAI
from tests.e2e.browser import headless_chromium, needs_chromium
from tests.e2e.desk_helpers import PASSWORD
from tests.e2e.test_content_console import marketing_console
from tests.integration.content_helpers import png
from tests.integration.members_helpers import uow
from wx_service.ground.db import utcnow

WAIT = 15


def _local(days: float) -> str:
    """A datetime-local value (store time) `days` from now."""
    return (utcnow() + timedelta(days=days)).astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M")


@needs_chromium
def test_marketing_creates_schedules_and_previews_an_activity_with_a_cover(app, base_url, tmp_path):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    console = marketing_console(app, base_url)
    for name in ("兰蔻", "雅诗兰黛", "山茶花"):
        assert console.post("/console/content/api/brand", {"name": name}).status_code == 201
    cover = tmp_path / "cover.png"
    cover.write_bytes(png((230, 120, 140), size=48))

    def wait(driver):
        return WebDriverWait(driver, WAIT, ignored_exceptions=(StaleElementReferenceException,))

    with headless_chromium("content-console") as driver:
        driver.get(f"{base_url}/console/login")
        driver.find_element(By.ID, "username").send_keys("mei")
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        driver.find_element(By.ID, "sign-in").click()
        wait(driver).until(lambda d: d.find_elements(By.ID, "content-link"))[0].click()
        wait(driver).until(lambda d: d.find_elements(By.ID, "new-activity"))[0].click()

        wait(driver).until(lambda d: d.find_elements(By.ID, "f-title"))[0].send_keys("冬日美妆节")
        driver.find_element(By.ID, "f-summary").send_keys("二楼美妆区 免费肌肤测试")
        # datetime-local inputs take their value from script alike in every locale.
        driver.execute_script("document.getElementById('f-starts_at').value = arguments[0];"
                              "document.getElementById('f-ends_at').value = arguments[1];", _local(2), _local(4))
        for box in driver.find_elements(By.CSS_SELECTOR, ".brand-choice")[:2]:
            box.click()
        driver.find_element(By.ID, "file-cover_image_id").send_keys(str(cover))
        # The upload answers with the picture's public URL, shown as the thumbnail.
        wait(driver).until(lambda d: d.execute_script(
            "const t = document.getElementById('thumb-cover_image_id');"
            "return !t.hidden && t.complete && t.naturalWidth === 48;"))
        driver.find_element(By.ID, "save").click()
        wait(driver).until(lambda d: "saved=1" in d.current_url and d.find_elements(By.ID, "publication"))
        assert driver.find_element(By.ID, "status").text == "draft"

        driver.execute_script("document.getElementById('publish-at').value = arguments[0];", _local(1))
        driver.find_element(By.ID, "schedule").click()
        when = wait(driver).until(lambda d: d.execute_script(
            "const s = document.getElementById('status');"
            "return s.textContent === 'scheduled' ? document.getElementById('when').textContent : null;"))
        assert when.startswith("publishes ") and _local(1)[:10] in when

        driver.find_element(By.ID, "preview-link").click()
        card = wait(driver).until(lambda d: d.execute_script(
            "const img = document.getElementById('news-cover');"
            "if (!img || !img.complete || !img.naturalWidth) return null;"
            "return [document.getElementById('news-title').textContent,"
            "        document.getElementById('news-description').textContent, img.naturalWidth,"
            "        document.getElementById('status').textContent];"))
        assert card == ["冬日美妆节", "二楼美妆区 免费肌肤测试", 48, "scheduled"]

    with uow(app) as session:
        activity = session.scalars(select(Activity)).one()
        assert activity.status == "scheduled" and len(activities.brand_ids(activity.id)) == 2
        # What the page sent as store time (+08:00) is the instant kept (to the minute the form shows).
        assert abs((activity.publish_at - utcnow()).total_seconds() - 86400) < 120
        assert session.get(ContentImage, activity.cover_image_id).size == cover.stat().st_size
