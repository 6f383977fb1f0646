"""The emulator's shopper page in a real (headless) Chromium: what a person clicking around sees.

Needs Debian's `chromium` and `chromium-driver` packages (/usr/bin/chromium, /usr/bin/chromedriver);
without them the module is skipped. Every wait is an explicit WebDriverWait on something visible.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.e2e.browser import headless_chromium, needs_chromium
from wx_service.ground.protocol.crypto import MessageCrypto
from wx_service.ground.protocol.xml import parse_xml

SCREENSHOT = "/tmp/shopper_page.png"
MEDIA_SCREENSHOT = "/tmp/shopper_page_media.png"
UNAVAILABLE = "该公众号暂时无法提供服务，请稍后再试"
REPO_ROOT = Path(__file__).resolve().parents[2]
WAIT = 20  # seconds an explicit wait may take before the test fails

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def browser():
    with headless_chromium("shopper-page") as driver:
        yield driver


@pytest.fixture
def page(browser, app, base_url, emulator):
    """The shopper page, freshly loaded for this test's emulator, with the first shopper selected."""
    browser.get(f"{base_url}/_emulator/")
    wait(browser).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#shoppers .shopper.active")) == 1)
    yield browser
    browser.get("about:blank")  # stop the page polling while the next test cleans up


def wait(driver, timeout: float = WAIT) -> WebDriverWait:
    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,))


@dataclass(frozen=True)
class Bubble:
    """One chat bubble as it stood at a single instant: the page redraws the chat while it polls,
    so a test keeps what it read, never the element (which a redraw makes stale)."""
    text: str
    kind: str | None
    via: str | None
    via_label: str
    rect: dict
    media_id: str | None = None  # of the picture or voice it shows
    image_width: int = 0  # the picture's natural width once it has loaded, else 0


_READ_BUBBLES = """
return Array.from(document.querySelectorAll(arguments[0])).map(b => {
  const r = b.getBoundingClientRect(), via = b.querySelector('.via');
  const media = b.querySelector('[data-media-id]'), img = b.querySelector('img.chat-image');
  return {text: b.innerText, kind: b.getAttribute('data-kind'), via: b.getAttribute('data-via'),
          via_label: via ? via.innerText : '', rect: {x: r.x, y: r.y, width: r.width, height: r.height},
          media_id: media ? media.getAttribute('data-media-id') : null,
          image_width: img && img.complete ? img.naturalWidth : 0};
});
"""


def read_bubbles(driver, sender: str | None = None) -> list[Bubble]:
    """Every bubble (from `sender`), read in one script so no redraw can fall between the reads."""
    selector = "#chat .bubble" + (f".from-{sender}" if sender else "")
    return [Bubble(**b) for b in driver.execute_script(_READ_BUBBLES, selector)]


def wait_for_bubble(driver, sender: str, text: str, via: str | None = None) -> Bubble:
    """The chat bubble from `sender` containing `text` (and, if given, marked `via`)."""
    def found(d):
        for b in read_bubbles(d, sender):
            if text in b.text and (via is None or b.via == via):
                return b
        return False
    return wait(driver).until(found, f"no bubble from {sender} containing {text!r}")


def send_text(driver, content: str) -> None:
    box = driver.find_element(By.ID, "message")
    box.clear()
    box.send_keys(content)
    driver.find_element(By.ID, "send").click()


def click_button(driver, css: str, label: str) -> None:
    """Find and click the button labelled `label` in one go (the page re-renders while polling)."""
    def clicked(d):
        for b in d.find_elements(By.CSS_SELECTOR, css):
            if b.text.strip() == label and b.is_displayed():
                b.click()
                return True
        return False
    wait(driver).until(clicked, f"no button {label!r} in {css}")


def current_openid(driver) -> str:
    return driver.find_element(By.CSS_SELECTOR, "#shoppers .shopper.active").get_attribute("data-openid")


def help_text(app) -> str:
    return app.extensions["wx"].settings.HELP_TEXT


# -- tests ---------------------------------------------------------------------------------------

def test_page_lists_the_shoppers_and_shows_the_account(page, emulator):
    names = [b.text for b in page.find_elements(By.CSS_SELECTOR, "#shoppers .shopper")]
    assert names == [s.nickname for s in emulator.shoppers.values()] == ["小美", "阿强", "Lily"]
    assert current_openid(page) == next(iter(emulator.shoppers))
    wait(page).until(lambda d: emulator.original_id in d.find_element(By.ID, "account").text)
    assert read_bubbles(page) == []
    assert "No menu pushed yet" in page.find_element(By.ID, "menu").text


def test_help_keyword_gets_the_help_reply_from_the_account(page, app, emulator):
    send_text(page, "帮助")
    mine = wait_for_bubble(page, "user", "帮助")
    reply = wait_for_bubble(page, "account", "您可以", via="passive")
    assert help_text(app).splitlines()[0] in reply.text
    assert "被动回复" in reply.via_label
    assert page.find_element(By.ID, "message").get_attribute("value") == ""
    # The shopper's own message sits on the right, the account's reply on the left.
    chat = page.find_element(By.ID, "chat").rect
    assert mine.rect["x"] + mine.rect["width"] > reply.rect["x"] + reply.rect["width"]
    assert mine.rect["x"] > reply.rect["x"]
    assert reply.rect["x"] - chat["x"] < chat["width"] / 4
    assert (chat["x"] + chat["width"]) - (mine.rect["x"] + mine.rect["width"]) < chat["width"] / 4
    # And the emulator recorded it for that shopper.
    chat_log = emulator.shoppers[current_openid(page)].chat
    assert [(m["from"], m["kind"]) for m in chat_log] == [("user", "text"), ("account", "text")]


def test_switching_shopper_shows_their_own_chat(page, emulator):
    first, second = list(emulator.shoppers)[:2]
    send_text(page, "帮助")
    wait_for_bubble(page, "account", "您可以")
    click_button(page, "#shoppers .shopper", "阿强")
    wait(page).until(lambda d: current_openid(d) == second and read_bubbles(d) == [])
    send_text(page, "你好")
    wait_for_bubble(page, "user", "你好")
    wait_for_bubble(page, "account", "您可以")
    assert [m.get("content") for m in emulator.shoppers[second].chat if m["from"] == "user"] == ["你好"]
    assert [m.get("content") for m in emulator.shoppers[first].chat if m["from"] == "user"] == ["帮助"]


@pytest.mark.parametrize("label, mode", [("plaintext", "plaintext"), ("compatible", "compatible"),
                                         ("safe (AES)", "safe")])
def test_each_push_mode_still_gets_a_reply(page, emulator, label, mode):
    start = "plaintext" if mode == "safe" else "safe"
    emulator.push_mode = start
    wait(page).until(lambda d: d.find_element(By.ID, "mode").get_attribute("value") == start)
    Select(page.find_element(By.ID, "mode")).select_by_visible_text(label)
    wait(page).until(lambda d: emulator.push_mode == mode, f"the page did not switch the emulator to {mode}")
    send_text(page, f"你好 {mode}")
    wait_for_bubble(page, "user", f"你好 {mode}")
    wait_for_bubble(page, "account", "您可以", via="passive")
    wait(page).until(lambda d: f"delivered ({mode}," in d.find_element(By.ID, "status").text)
    assert page.find_element(By.ID, "mode").get_attribute("value") == mode


def test_pushed_menu_appears_and_store_info_replies_with_the_address(page, app):
    from tests.e2e.test_webhook import this_weeks_activities
    from wx_service.edges.demo_content import DEMO_STORES
    from wx_service.edges.demo_data import load_demo_data
    from wx_service.ground.extensions import wechat_client

    with app.app_context(), app.extensions["wx"].db.unit_of_work():
        load_demo_data()
    this_weeks_activities(app)  # what 近期活动 answers: this store-week's activities
    with app.app_context():
        menu = json.loads((REPO_ROOT / "config" / "menu.json").read_text(encoding="utf-8"))
        wechat_client().menu.create(menu)

    wait(page).until(lambda d: "门店信息" in d.find_element(By.ID, "menu").text, "the pushed menu never appeared")
    tops = [b.text for b in page.find_elements(By.CSS_SELECTOR, "#menu > .top > button")]
    assert tops == ["☰ 商场资讯", "门店信息", "人工客服"]
    click_button(page, "#menu button", "门店信息")
    wait_for_bubble(page, "user", "STORE_INFO")
    reply = wait_for_bubble(page, "account", DEMO_STORES[0]["address"], via="passive")  # every store's hours today
    assert reply.kind == "text" and all(store["name"] in reply.text for store in DEMO_STORES)

    # A sub-menu opens from its top button, as in WeChat, and its entries answer too.
    click_button(page, "#menu > .top > button", "☰ 商场资讯")
    click_button(page, "#menu .sub button", "近期活动")
    wait_for_bubble(page, "user", "ACTIVITIES")
    wait(page).until(lambda d: any(b.kind == "news" for b in read_bubbles(d, "account")))
    wait(page).until(lambda d: not any(b.is_displayed() for b in d.find_elements(By.CSS_SELECTOR, "#menu .sub")))

    page.save_screenshot(SCREENSHOT)


def test_scanning_a_counter_code_welcomes_then_follows_up_by_customer_service(page, app, emulator, run_jobs):
    from wx_service.edges.demo_data import QR_CODES, load_demo_data

    with app.app_context(), app.extensions["wx"].db.unit_of_work():
        load_demo_data()
    follow_up = dict((scene, text) for scene, _, text in QR_CODES)["counter-cosmetics-l2"]

    scene = page.find_element(By.ID, "scene")
    scene.clear()
    scene.send_keys("counter-cosmetics-l2")
    page.find_element(By.ID, "scan").click()
    wait_for_bubble(page, "user", "counter-cosmetics-l2")
    wait_for_bubble(page, "account", app.extensions["wx"].settings.WELCOME_TEXT, via="passive")
    wait(page).until(lambda d: "following" in d.find_element(By.CSS_SELECTOR, "#shoppers .shopper.active").text)

    if not hasattr(app.extensions["wx"].queue, "wait_idle"):  # RQ: nothing runs until a worker does
        assert not [b for b in read_bubbles(page, "account") if b.via == "customer_service"]
    run_jobs()
    follow = wait_for_bubble(page, "account", follow_up, via="customer_service")  # arrives by polling
    assert follow.via_label == "客服消息"
    assert emulator.calls.get("message/custom/send", 0) == 1


def test_unreachable_webhook_shows_the_unavailable_notice(page, base_url, emulator):
    before = emulator.push_url
    try:
        requests.post(f"{base_url}/_emulator/control/push-url",
                      json={"url": "http://127.0.0.1:9/wechat"}).raise_for_status()
        send_text(page, "帮助")
        wait_for_bubble(page, "user", "帮助")
        notice = wait_for_bubble(page, "system", UNAVAILABLE)
        assert notice.kind == "notice"
        wait(page).until(lambda d: "not delivered" in d.find_element(By.ID, "status").text)
        assert read_bubbles(page, "account") == []
    finally:
        emulator.push_url = before  # the emulator's reset() keeps the push URL


# -- pictures, voices, msgmenu, templates and the mini-program's contact entry ----------------------
PNG_2X2 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP8z8Dwn4GBgYGJAQoAAP8AEAH/8J2/AAAAAElFTkSuQmCC")


def _emulator_token(base_url, settings) -> str:
    return requests.post(f"{base_url}/_emulator/cgi-bin/stable_token", json={
        "grant_type": "client_credential", "appid": settings.WECHAT_APPID, "secret": settings.WECHAT_SECRET},
        timeout=10).json()["access_token"]


def _custom_send(base_url, token, body) -> dict:
    return requests.post(f"{base_url}/_emulator/cgi-bin/message/custom/send", params={"access_token": token},
                         json=body, timeout=10).json()


def _pushed_rows(wx, openid) -> list:
    from sqlalchemy import select

    from wx_service.ground.models import InboundPush

    with wx.db.unit_of_work() as session:
        return list(session.scalars(select(InboundPush).where(InboundPush.openid == openid).order_by(InboundPush.id)))


def test_sending_a_picture_shows_it_on_the_right_and_pushes_it(page, wx, emulator, tmp_path):
    picture = tmp_path / "photo.png"
    picture.write_bytes(PNG_2X2)
    page.find_element(By.ID, "image-file").send_keys(str(picture))  # what choosing a file after #send-image does

    image = wait(page).until(lambda d: next((b for b in read_bubbles(d, "user") if b.image_width == 2), False),
                             "the picture never showed in the chat")
    wait_for_bubble(page, "account", "您可以", via="passive")  # the account answered the picture
    chat = page.find_element(By.ID, "chat").rect
    assert (chat["x"] + chat["width"]) - (image.rect["x"] + image.rect["width"]) < chat["width"] / 4
    openid = current_openid(page)
    media_id = image.media_id
    assert emulator.find_media(media_id).data == PNG_2X2
    assert [r.msg_type for r in _pushed_rows(wx, openid)] == ["image"]


def test_voice_button_sends_a_short_amr(page, wx, emulator):
    page.find_element(By.ID, "send-voice").click()
    voice = wait(page).until(lambda d: next((b for b in read_bubbles(d, "user") if b.kind == "voice"), False))
    assert emulator.find_media(voice.media_id).data.startswith(b"#!AMR\n")
    wait(page).until(lambda d: [r.msg_type for r in _pushed_rows(wx, current_openid(d))] == ["voice"])


def test_contact_entry_pushes_user_enter_tempsession(page, wx, emulator):
    box = page.find_element(By.ID, "contact-from")
    box.clear()
    box.send_keys("counter:LANCOME")
    page.find_element(By.ID, "contact-open").click()
    entry = wait_for_bubble(page, "user", "counter:LANCOME")
    assert entry.kind == "contact"
    wait(page).until(lambda d: "delivered" in d.find_element(By.ID, "status").text)
    rows = _pushed_rows(wx, current_openid(page))
    assert [(r.msg_type, r.event) for r in rows] == [("event", "user_enter_tempsession")]


def test_customer_service_media_menus_and_templates_show_on_the_left(page, wx, base_url, settings, emulator):
    from members.program import load_program

    openid = current_openid(page)
    requests.post(f"{base_url}/_emulator/shopper/subscribe", json={"openid": openid}, timeout=10)
    requests.post(f"{base_url}/_emulator/shopper/text", json={"openid": openid, "content": "人工"}, timeout=10)
    token = _emulator_token(base_url, settings)
    media_id = requests.post(f"{base_url}/_emulator/cgi-bin/media/upload", params={"access_token": token, "type": "image"},
                             files={"media": ("p.png", PNG_2X2, "image/png")}, timeout=10).json()["media_id"]
    assert _custom_send(base_url, token, {"touser": openid, "msgtype": "image", "image": {"media_id": media_id}})["errcode"] == 0
    menu = {"head_content": "请评价本次服务", "list": [{"id": "101", "content": "满意"}, {"id": "102", "content": "不满意"}],
            "tail_content": "谢谢"}
    assert _custom_send(base_url, token, {"touser": openid, "msgtype": "msgmenu", "msgmenu": menu})["errcode"] == 0
    template = requests.post(f"{base_url}/_emulator/cgi-bin/message/template/send", params={"access_token": token}, json={
        "touser": openid, "template_id": load_program().benefit_template_id,
        "data": {"first": {"value": "生日快乐"}, "keyword1": {"value": "生日礼券"}, "remark": {"value": "到店使用"}}},
        timeout=10).json()
    assert template["errcode"] == 0

    template_bubble = wait_for_bubble(page, "account", "生日礼券", via="template")
    assert "生日快乐" in template_bubble.text and "到店使用" in template_bubble.text
    assert template_bubble.via_label == "模板消息"
    sent = wait(page).until(lambda d: next((b for b in read_bubbles(d, "account") if b.kind == "image"), False))
    assert sent.media_id == media_id
    chat = page.find_element(By.ID, "chat").rect
    assert sent.rect["x"] - chat["x"] < chat["width"] / 4  # the account's side

    click_button(page, "#chat .msgmenu-option", "不满意")
    wait_for_bubble(page, "user", "不满意")
    wait(page).until(lambda d: [r.content for r in _pushed_rows(wx, openid)][-1:] == ["不满意"])
    tapped = MessageCrypto(settings.WECHAT_TOKEN, settings.WECHAT_AES_KEY, settings.WECHAT_APPID).decrypt(
        parse_xml(emulator.pushes[-1]["body"].encode())["Encrypt"])
    assert parse_xml(tapped)["bizmsgmenuid"] == "102"
    page.save_screenshot(MEDIA_SCREENSHOT)
