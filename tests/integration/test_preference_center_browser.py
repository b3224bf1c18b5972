"""The preference center and the unsubscribe page in a real headless browser: Debian's chromium
driven by Selenium through /usr/bin/chromedriver, against the preferences handler served on
127.0.0.1 (fidelio.local.function_url) over the moto stand-in.

The browser is a requirement, not an option: `make test` installs it (`make browser`) and this
test fails when it is missing. Set FIDELIO_SKIP_BROWSER=1 to skip it on purpose."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from fidelio.local.function_url import serve_function_url
from fidelio.local.runner import LocalRunner
from functions.dal import signing_keys
from functions.dal.consent import consent_history
from functions.dal.members import import_history, load_profile
from functions.domain import events as ev
from functions.domain.tokens import LinkClaims, parse_keys, sign
from functions.handlers import deps

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Everything that would reach for the network on a closed machine is off.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage")
NOW = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # the local_stack fixture's clock
MEMBER = "m-browser"


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if os.environ.get("FIDELIO_SKIP_BROWSER") == "1":
        pytest.skip("FIDELIO_SKIP_BROWSER=1: the headless-browser test is skipped on request")
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: run `make browser` (apt-get install chromium "
                    "chromium-driver), or set FIDELIO_SKIP_BROWSER=1 to skip this test on purpose")
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never try to download
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    browser = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    browser.set_page_load_timeout(30)
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture
def site(local_stack: Any) -> Iterator[dict[str, Any]]:
    """A member who consented to offers by email, and the preferences function on 127.0.0.1."""
    runner = LocalRunner(local_stack)
    deps.use(runner._deps["preferences"])
    signing_keys.clear_cache()
    enrolled = NOW - timedelta(days=30)
    import_history([
        ev.MemberEnrolled(event_id="b-e", member_id=MEMBER, occurred_at=enrolled, email="bo@example.com",
                          first_name="Bo"),
        ev.ConsentChanged(event_id="b-c", member_id=MEMBER, occurred_at=enrolled, channel=ev.Channel.EMAIL,
                          topic=ev.Topic.OFFERS, granted=True, source="signup_form"),
    ])
    keys = parse_keys(local_stack.client("secretsmanager").get_secret_value(
        SecretId=local_stack.link_signing_secret)["SecretString"])
    with serve_function_url(lambda event: runner.invoke("preferences", event)) as base_url:
        yield {"base_url": base_url, "keys": keys}


def _link(site: dict[str, Any], path: str, purpose: str, topic: str | None = None) -> str:
    claims = LinkClaims(MEMBER, purpose, "email" if topic else None, topic, int((NOW + timedelta(days=60)).timestamp()))
    return f"{site['base_url']}{path}?token={quote(sign(claims, site['keys']), safe='')}"


def _consent(key: str) -> tuple[bool, str] | None:
    profile = load_profile(MEMBER)
    assert profile is not None
    record = profile.consent.get(key)
    return None if record is None else (record.granted, record.source)


def _wait_for_text(driver: Any, text: str) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # The old page's body goes stale while the form's answer loads: look again until it is there.
    WebDriverWait(driver, 30, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: text in d.find_element("tag name", "body").text)


def test_a_member_changes_preferences_with_keyboard_and_mouse(driver: Any, site: dict[str, Any],
                                                             tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    # Given the preference center opened from the member's link
    driver.get(_link(site, "/preferences", "preferences"))
    assert driver.title == "Your communication preferences"
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    offers = driver.find_element(By.ID, "consent-email-offers")
    points = driver.find_element(By.ID, "consent-email-points")
    assert offers.is_selected() and not points.is_selected()
    # and transactional messages shown as on, and not changeable
    transactional = driver.find_element(By.ID, "consent-email-transactional")
    assert transactional.is_selected() and not transactional.is_enabled()
    # When the member turns points on with the keyboard (focus, space) and offers off by
    # clicking its label, then saves
    points.send_keys(Keys.SPACE)
    driver.find_element(By.CSS_SELECTOR, "label[for='consent-email-offers']").click()
    assert points.is_selected() and not offers.is_selected()
    driver.find_element(By.CSS_SELECTOR, "button[value='save']").click()
    _wait_for_text(driver, "Your preferences are saved.")
    # Then the page shows the new state
    assert driver.find_element(By.ID, "consent-email-points").is_selected()
    assert not driver.find_element(By.ID, "consent-email-offers").is_selected()
    driver.save_screenshot(str(tmp_path / "preferences.png"))
    # and DynamoDB holds it: the profile changed, and the history proves both changes
    assert _consent("email:points") == (True, "preference_center")
    assert _consent("email:offers") == (False, "preference_center")
    assert sorted((e.topic, e.granted, e.source) for e in consent_history(MEMBER)) == [
        ("offers", False, "preference_center"), ("points", True, "preference_center")]


def test_a_member_unsubscribes_from_the_confirmation_page(driver: Any, site: dict[str, Any]) -> None:
    from selenium.webdriver.common.by import By

    # Given the unsubscribe link opened in the browser: a question, nothing changed yet
    driver.get(_link(site, "/unsubscribe", "unsubscribe", topic="offers"))
    assert driver.title == "Unsubscribe"
    assert _consent("email:offers") == (True, "signup_form")
    # When the member presses Unsubscribe
    driver.find_element(By.CSS_SELECTOR, "form[method='post'] button").click()
    _wait_for_text(driver, "You will no longer receive offers and discounts by email.")
    # Then the profile and the history record the withdrawal
    assert _consent("email:offers") == (False, "one_click_unsubscribe")
    (entry,) = consent_history(MEMBER)
    assert (entry.topic, entry.granted, entry.source) == ("offers", False, "one_click_unsubscribe")
    # and the link to the preference center works from there
    driver.find_element(By.LINK_TEXT, "Manage all your preferences").click()
    _wait_for_text(driver, "choose what we may send you")
    assert not driver.find_element(By.ID, "consent-email-offers").is_selected()
