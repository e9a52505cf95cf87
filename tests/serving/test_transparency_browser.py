"""The transparency page in a real headless Chromium against a real uvicorn server on loopback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from recsys.explain import POPULAR_TEXT
from recsys.serving import create_app
from tests.serving.helpers import LiveServer, user_token

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def browser(tmp_path):
    if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
        pytest.skip(f"needs Chromium and chromedriver ({CHROMIUM}, {CHROMEDRIVER}): "
                    "apt-get install chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={tmp_path / 'chrome-profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _submit(driver, button_id: str) -> None:
    """Click a form's button and wait until the next page has replaced this one."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    from selenium.common.exceptions import WebDriverException

    old_page = driver.find_element(By.TAG_NAME, "html")

    def replaced(_driver) -> bool:
        # Chromium reports a node of a replaced document either as stale or as "Node with
        # given id does not belong to the document"; both mean the next page is in
        try:
            old_page.is_enabled()
        except WebDriverException:
            return True
        return False

    driver.find_element(By.ID, button_id).click()
    WebDriverWait(driver, 20).until(replaced)
    WebDriverWait(driver, 20).until(lambda d: d.execute_script("return document.readyState") == "complete")
    WebDriverWait(driver, 20).until(
        expected_conditions.presence_of_element_located((By.ID, "list-label")))


def _items(driver):
    from selenium.webdriver.common.by import By

    return [li.get_attribute("data-item-id") for li in driver.find_elements(By.CSS_SELECTOR, "li.item")]


def test_reasons_and_the_personalisation_switch(bundles, make_settings, browser):
    """Without authentication (insecure_local): the page asks for an id."""
    from selenium.webdriver.common.by import By

    app = create_app(make_settings(bundles["hand_ease"], k_default=3, insecure_local=True))
    with LiveServer(app) as server:
        browser.get(f"{server.url}/transparency")
        browser.find_element(By.ID, "user_id").send_keys("u0")
        _submit(browser, "show")

        label = browser.find_element(By.ID, "list-label")
        assert (label.get_attribute("data-basis"), label.text) == (
            "history", "Personalised for you, from your history")
        assert _items(browser) == ["c", "d", "e"]
        first = browser.find_elements(By.CSS_SELECTOR, "li.item")[0]
        first.find_element(By.TAG_NAME, "summary").click()  # "Why am I seeing this?"
        assert first.find_element(By.CLASS_NAME, "why-text").text == "Because you watched Alien"
        reasons = first.find_elements(By.CLASS_NAME, "reason")
        assert [r.get_attribute("data-item-id") for r in reasons] == ["a"]
        assert reasons[0].text.startswith("Alien (weight 0.4")

        _submit(browser, "toggle-personalisation")
        state = browser.find_element(By.ID, "personalisation-state")
        assert state.get_attribute("data-personalisation") == "off"
        label = browser.find_element(By.ID, "list-label")
        assert (label.get_attribute("data-basis"), label.text) == (
            "opted_out", "Not personalised: popular items (you turned personalisation off)")
        assert _items(browser) == ["a", "b", "c"]  # the popularity list, seen items included
        first = browser.find_elements(By.CSS_SELECTOR, "li.item")[0]
        first.find_element(By.TAG_NAME, "summary").click()
        assert first.find_element(By.CLASS_NAME, "why-text").text == POPULAR_TEXT
        assert app.state.consent.allows_personalisation("u0") is False

        _submit(browser, "toggle-personalisation")
        assert browser.find_element(By.ID, "list-label").get_attribute("data-basis") == "history"
        assert _items(browser) == ["c", "d", "e"]


def test_signed_in_through_a_token_link_the_page_and_its_switch_work(bundles, make_settings, browser):
    """With authentication: the application's link signs the browser in; the CSP, the session
    cookie and the CSRF token let the real page and its form work, and nothing else."""
    from selenium.webdriver.common.by import By

    app = create_app(make_settings(bundles["hand_ease"], k_default=3))
    with LiveServer(app) as server:
        browser.get(f"{server.url}/transparency")
        assert "Not signed in" in browser.find_element(By.ID, "error").text

        browser.get(f"{server.url}/transparency?token={user_token('u0')}")
        assert browser.current_url == f"{server.url}/transparency"  # the token left the address bar
        assert not browser.find_elements(By.ID, "lookup")
        label = browser.find_element(By.ID, "list-label")
        assert label.get_attribute("data-basis") == "history"
        assert _items(browser) == ["c", "d", "e"]
        first = browser.find_elements(By.CSS_SELECTOR, "li.item")[0]
        first.find_element(By.TAG_NAME, "summary").click()
        assert first.find_element(By.CLASS_NAME, "why-text").text == "Because you watched Alien"
        cookies = {c["name"]: c for c in browser.get_cookies()}
        assert cookies["fairrec_session"]["httpOnly"] and cookies["fairrec_session"]["sameSite"] == "Lax"
        assert cookies["fairrec_csrf"]["sameSite"] == "Strict"

        _submit(browser, "toggle-personalisation")
        assert browser.find_element(By.ID, "list-label").get_attribute("data-basis") == "opted_out"
        assert app.state.consent.allows_personalisation("u0") is False
        _submit(browser, "toggle-personalisation")
        assert browser.find_element(By.ID, "list-label").get_attribute("data-basis") == "history"
        # the style is allowed by the page's CSP hash: it applied (a blocked style would leave 8px)
        assert browser.execute_script("return getComputedStyle(document.body).marginTop") == "32px"

        # another user's id on the signed-in page: refused, the same as for an unknown id
        browser.get(f"{server.url}/transparency?user_id=u1")
        assert browser.find_element(By.ID, "error").text.startswith("authorization: the token is for another user")


def test_swagger_ui_renders_offline_for_the_operator(bundles, make_settings, browser):
    """``/docs`` in a real browser with no network but loopback: Swagger UI's files come from the
    service, its inline script passes the CSP, and it lists the operations."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.serving.helpers import AS_OPERATOR

    app = create_app(make_settings(bundles["hand_ease"]))
    with LiveServer(app) as server:
        browser.execute_cdp_cmd("Network.enable", {})
        browser.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": AS_OPERATOR})
        browser.get(f"{server.url}/docs")
        WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path"))
        paths = {e.get_attribute("data-path") for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
        assert {"/users/{user_id}/recommendations", "/admin/reload", "/transparency"} <= paths
        assert browser.find_element(By.CSS_SELECTOR, ".info .title").text.startswith("fairrec")
