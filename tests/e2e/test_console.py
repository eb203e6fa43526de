"""The operator console in a real headless browser (Debian's chromium, driven by
Selenium): every page is loaded and every action used; a screenshot of each page is
kept in build/console-screenshots/."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.sim.upstream import JobSpec
from bridge.store.embedded import EmbeddedRedis
from tests.e2e.harness import TOKEN, running_bridge, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
SHOTS = Path(__file__).parents[2] / "build" / "console-screenshots"
SETTINGS = """
[delivery]
allow_private_targets = true
retry_schedule = [0.1]
"""

needs_browser = pytest.mark.skipif(
    not (CHROMIUM and DRIVER), reason="chromium and chromedriver (Debian packages) not installed"
)


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000",
                "--disable-dev-shm-usage"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    driver.set_page_load_timeout(30)
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


@needs_browser
async def test_the_console_in_a_browser(
    tmp_path: Path, redis_server: EmbeddedRedis, prefix: str, browser: Any
) -> None:
    """Sign in (the cookie is HttpOnly and SameSite=Strict, no token in any URL), see the
    overview, watches and a watch's poll timeline, create a subscription (its secret
    shown once), rotate, disable and enable it, send a test, retry a dead delivery from
    the dead letters and see it succeed, recover, and sign out; a form without its CSRF
    token is refused."""
    from selenium.webdriver.common.by import By

    async with running_bridge(tmp_path, redis_server.url, prefix, extra=SETTINGS) as run:
        base = run.api
        await run.subscribe("down")
        run.receiver.scripts["down"] = [(500, {})] * 2  # the first event dies, then it heals
        run.sim.add_job(JobSpec(provider="fullstory", id="console-job", duration=0.2))
        await run.http.post(f"{base}/v1/watches", json={"source": "fs", "job_id": "console-job"})

        async def dead() -> bool:
            page = await (await run.http.get(f"{base}/v1/deliveries?status=dead")).json()
            return bool(page["items"])

        await wait_until(dead, 20, "a dead delivery")
        await run.bridge.flush_trends()  # what the charts draw (every 10 s otherwise)

        def api_has(path: str, timeout_s: float = 20) -> bool:
            """Seen from this thread: does the admin API list anything at path?"""
            import json
            import time
            import urllib.request

            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                auth = {"Authorization": f"Bearer {TOKEN}"}
                req = urllib.request.Request(base + path, headers=auth)  # noqa: S310 - loopback
                with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - loopback
                    if json.load(resp)["items"]:
                        return True
                time.sleep(0.1)  # another process's work, seen from outside
            return False

        def drive() -> dict[str, Any]:
            """The whole visit, in a thread: the bridge runs on this test's event loop."""

            def go(path: str, shot: str) -> str:
                browser.get(base + path)
                browser.save_screenshot(str(SHOTS / f"{shot}.png"))
                text: str = browser.find_element(By.TAG_NAME, "body").text
                return text

            def click(label: str, within: Any = None) -> str:
                """Press a form's button and wait for the page it leads to: a mark set on
                this page's window is gone once the next page has loaded. (Asking whether
                an element went stale can meet chromedriver mid-navigation and fail.)"""
                from selenium.common.exceptions import WebDriverException
                from selenium.webdriver.support.ui import WebDriverWait

                browser.execute_script("window.__leaving = true;")
                scope = within or browser
                scope.find_element(By.XPATH, f".//button[normalize-space()='{label}']").click()
                loaded = (
                    "return window.__leaving === undefined && document.readyState === 'complete';"
                )
                WebDriverWait(browser, 15, ignored_exceptions=(WebDriverException,)).until(
                    lambda driver: driver.execute_script(loaded)
                )
                text: str = browser.find_element(By.TAG_NAME, "body").text
                return text

            def sub_row() -> Any:
                return browser.find_element(By.XPATH, "//tr[td[contains(., '/ui')]]")

            seen: dict[str, Any] = {}
            assert "Sign in" in go("/ui", "01-sign-in")  # redirected
            browser.find_element(By.NAME, "token").send_keys(TOKEN)
            click("Sign in")
            seen["cookie"] = browser.get_cookie("bridge_session")
            assert TOKEN not in browser.current_url
            overview = go("/ui", "02-overview")
            assert "Sources" in overview and "fs" in overview and "healthy" in overview
            assert "console-job" in go("/ui/watches", "03-watches")
            link = browser.find_element(By.PARTIAL_LINK_TEXT, "w_").get_attribute("href")
            watch_path = str(link).removeprefix(base)
            detail = go(watch_path, "04-watch")
            assert "Polls (newest first)" in detail and "COMPLETED" in detail
            dead_page = go("/ui/deliveries?status=dead", "05-dead-letters")
            assert "Dead letters" in dead_page and "dead" in dead_page
            assert "queued again" in click("Retry")
            assert api_has("/v1/deliveries?status=succeeded"), "the retry did not succeed"
            assert "succeeded" in go("/ui/deliveries", "06-deliveries")
            go("/ui/subscriptions", "07-subscriptions")
            browser.find_element(By.NAME, "url").send_keys(run.receiver.url("ui"))
            click("Subscribe")
            browser.save_screenshot(str(SHOTS / "08-created.png"))
            seen["secret"] = browser.find_element(By.ID, "secret").text
            assert seen["secret"] not in browser.current_url
            run.receiver.secrets["ui"] = seen["secret"]
            go("/ui/subscriptions", "09-subscriptions")
            assert "test event" in click("Send a test", sub_row())
            for label, said in (("Disable", "disabled"), ("Enable", "enabled"),
                                ("Recover dead", "queued again")):  # fmt: skip
                assert said in click(label, sub_row()), label
            click("Rotate secret", sub_row())
            browser.save_screenshot(str(SHOTS / "10-rotated.png"))
            seen["rotated"] = browser.find_element(By.ID, "secret").text

            # a watch registered and deleted from the console
            go("/ui/watches", "12-watches")
            browser.find_element(By.NAME, "job_id").send_keys("ui-job")
            browser.find_element(By.NAME, "metadata").send_keys("tenant=acme")
            registered = click("Register")
            assert "ui-job registered" in registered and "tenant=acme" in registered
            seen["registered"] = browser.current_url.removeprefix(base)
            browser.save_screenshot(str(SHOTS / "13-registered.png"))
            assert "no longer polled" in click("Delete this watch")

            # the event browser, an event's page and a delivery's page
            go("/ui/events?type=import.completed&source=fs", "14-events")
            event_link = browser.find_element(By.PARTIAL_LINK_TEXT, "evt_")
            event_path = str(event_link.get_attribute("href")).removeprefix(base)
            event_page = go(event_path, "15-event")
            assert "Deliveries" in event_page and "console-job" in event_page
            assert "queued for every subscriber again" in click("Replay to every subscriber")
            delivery_link = browser.find_element(By.PARTIAL_LINK_TEXT, "dlv_")
            delivery_path = str(delivery_link.get_attribute("href")).removeprefix(base)
            delivery_page = go(delivery_path, "16-delivery")
            assert "webhook-signature" in delivery_page and "v1,••••••" in delivery_page
            assert "Attempts (newest first)" in delivery_page

            # every page, on a wide screen and on a phone: nothing wider than the window
            overview = go("/ui", "11-overview-again")
            assert len(browser.find_elements(By.CSS_SELECTOR, "svg.chart")) == 3, overview
            drawn = browser.find_elements(By.CSS_SELECTOR, "svg.chart rect, svg.chart polyline")
            assert len(drawn) >= 3, "the charts draw the polls and the delivery attempts"
            assert "no delivery attempts" not in overview
            pages = {"overview": "/ui", "watches": "/ui/watches", "watch": watch_path,
                     "events": "/ui/events", "event": event_path, "deliveries": "/ui/deliveries",
                     "delivery": delivery_path, "dead-letters": "/ui/deliveries?status=dead",
                     "subscriptions": "/ui/subscriptions", "sources": "/ui/sources"}  # fmt: skip
            overflow = "return document.documentElement.scrollWidth - window.innerWidth;"
            for width in (1280, 390, 360):
                browser.set_window_size(width, 1000)
                for name, path in pages.items():
                    go(path, f"{width}-{name}")
                    assert browser.execute_script(overflow) <= 0, f"{name} overflows at {width}"
            browser.set_window_size(1400, 1000)

            go("/ui/subscriptions", "17-subscriptions")
            assert "deleted" in click("Delete", sub_row())
            assert "Sign in" in click("Sign out")
            return seen

        seen = await asyncio.to_thread(drive)
        cookie, secret = seen["cookie"], seen["secret"]
        assert cookie and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert secret.startswith("whsec_") and seen["rotated"].startswith("whsec_")
        assert seen["rotated"] != secret

        async def pinged() -> bool:
            return any(r.verified for r in run.receiver.for_path("ui"))

        await wait_until(pinged, 20, "the test event, verified with the secret shown")
        session = {"bridge_session": str(cookie["value"])}
        gone = await run.http.get(f"{base}/ui", cookies=session, allow_redirects=False)
        assert gone.status == 303  # signed out: the session is over
