"""The web page in a real headless chromium against a real gateway (synthetic weights)."""
from __future__ import annotations

import re
import time

import pytest
import torch

from tests.service.gateway import LONG, TOKEN
from tests.web.conftest import SAMPLE

pytestmark = pytest.mark.slow

#: Records every progress value the job list shows, as "stage:frames_done".
_WATCH_PROGRESS = """() => {
  window.__progress = [];
  const seen = (node) => {
    if (node.dataset && node.dataset.stage) window.__progress.push(node.dataset.stage + ':' + node.dataset.done);
  };
  new MutationObserver((records) => {
    for (const r of records) for (const n of r.addedNodes) if (n.querySelectorAll) {
      if (n.matches('progress')) seen(n);
      n.querySelectorAll('progress').forEach(seen);
    }
  }).observe(document.getElementById('jobs'), {childList: true, subtree: true});
}"""


def sign_in(page, url: str, token: str = TOKEN) -> None:
    page.goto(url + "/")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="New job").wait_for()


def fill_job(page, preset: str, **fields: str) -> None:
    page.get_by_label("Preset").select_option(preset)
    for label, value in fields.items():
        control = page.get_by_label(label, exact=True)
        control.select_option(value) if control.evaluate("e => e.tagName") == "SELECT" else control.fill(value)
    page.get_by_label(re.compile("^Synthetic weights")).check()


def card(page, job_state: str):
    return page.locator(f"li.job[data-state={job_state}]")


def wait_until(page, expression: str, *, timeout_s: float) -> None:
    """Poll `expression` from the test side (the page's CSP forbids the eval that
    `page.wait_for_function` would use) until it is true, or fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"not true after {timeout_s} s: {expression}"
        page.wait_for_timeout(250)

def test_sign_in_refuses_a_wrong_token_and_keeps_the_token_in_an_httponly_cookie(web_gateway, context):
    page = context.new_page()
    page.goto(web_gateway.url + "/")
    assert page.evaluate("fetch('/v1/jobs').then(r => r.status)") == 401
    page.get_by_label("API token").fill("not-the-token-0123456789")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("alert").filter(has_text="not valid").wait_for()
    assert context.cookies() == []

    page.get_by_label("API token").fill(TOKEN)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="New job").wait_for()
    [cookie] = context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and TOKEN not in cookie["value"]
    assert page.evaluate("document.cookie") == ""
    assert TOKEN not in page.url
    assert page.evaluate("fetch('/v1/jobs').then(r => r.status)") == 200
    # A state-changing call without the page's CSRF header is refused even with the cookie.
    refused = page.evaluate("fetch('/v1/jobs/' + '0'.repeat(32) + '/cancel', {method: 'POST'})"
                            ".then(async r => [r.status, (await r.json()).code])")
    assert refused == [403, "csrf"]

    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="Sign in").wait_for()
    assert page.evaluate("fetch('/v1/jobs').then(r => r.status)") == 401


def test_upload_submit_follow_progress_and_play_an_output(web_gateway, context, offsite):
    page = context.new_page()
    sign_in(page, web_gateway.url)
    page.evaluate(_WATCH_PROGRESS)
    page.get_by_label("Video file").set_input_files(str(SAMPLE))
    fill_job(page, "depth", **{"Max frames": "8", "Depth input size": "56", "Device": "cpu", "Frames per batch": "2"})
    page.get_by_role("button", name="Submit job").click()

    done = card(page, "succeeded")
    done.wait_for(timeout=300_000)
    seen = page.evaluate("window.__progress")
    depth = [int(s.split(":")[1]) for s in seen if s.startswith("depth:")]
    assert depth and depth[-1] == 8, seen
    assert min(depth) < 8, f"the list never showed partial progress: {seen}"
    assert "8/8 frames" in done.inner_text()

    done.get_by_role("link").click()
    page.get_by_role("heading", name="Outputs").wait_for()
    # The RGB|depth preview (H.264 MP4) decodes a frame in the page's video element.
    wait_until(page, "(() => { const v = document.querySelector('[data-name=\"depth_preview.mp4\"] video');"
                     " return v && v.readyState >= 2 && v.videoWidth > 0; })()", timeout_s=60)
    wait_until(page, "(() => { const i = document.querySelector('.frames img');"
                     " return i && i.complete && i.naturalWidth > 0; })()", timeout_s=30)
    page.get_by_label("Frame (depth_png16)").fill("7")
    assert "frame 8 / 8" in page.locator(".frames").inner_text()
    assert page.locator("svg.chart rect[data-stage=depth]").count() == 1
    assert page.get_by_role("link", name=re.compile(r"^Download")).count() >= 4
    assert offsite.urls == []


def test_cancel_and_delete_a_job_from_the_list(web_gateway, context):
    page = context.new_page()
    page.on("dialog", lambda d: d.accept())
    sign_in(page, web_gateway.url)
    page.get_by_label("Path on the server").check()
    page.get_by_label("Path under an input root").fill(LONG)
    fill_job(page, "depth", **{"Device": "cpu", "Frames per batch": "1"})
    page.get_by_role("button", name="Submit job").click()

    job = page.locator("li.job").first
    job.locator("[data-state=queued], [data-state=running]").wait_for()
    job.get_by_role("button", name=re.compile("^Cancel job")).click()
    job.locator("[data-state=cancelled]").wait_for(timeout=120_000)
    job_id = job.get_attribute("data-id")
    job.get_by_role("button", name=re.compile("^Delete job")).click()
    page.locator(f"#job-{job_id}").wait_for(state="detached")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU to fail the job")
def test_a_failed_job_says_why_in_words(web_gateway, context):
    page = context.new_page()
    sign_in(page, web_gateway.url)
    page.get_by_label("Path on the server").check()
    page.get_by_label("Path under an input root").fill(LONG)
    fill_job(page, "depth", **{"Max frames": "2", "Depth input size": "56", "Device": "cuda"})
    page.get_by_role("button", name="Submit job").click()
    failed = card(page, "failed")
    failed.wait_for(timeout=120_000)
    failed.get_by_role("link").click()
    problem = page.locator("#job-error")
    problem.filter(has_text="This job failed.").wait_for()
    assert "cuda" in problem.inner_text() and "CPU-only" in problem.inner_text()
    page.get_by_role("button", name="Delete").click()  # no confirm handler: the dialog is dismissed
    assert page.get_by_role("button", name="Delete").is_enabled()


def test_bad_option_is_named_before_anything_is_sent(web_gateway, context):
    page = context.new_page()
    sign_in(page, web_gateway.url)
    page.get_by_label("Path on the server").check()
    page.get_by_label("Path under an input root").fill(LONG)
    page.get_by_label("Preset").select_option("depth")
    page.get_by_label("Depth input size").fill("5")
    page.get_by_role("button", name="Submit job").click()
    alert = page.locator("#submit-error")
    alert.wait_for()
    assert "Depth input size" in alert.inner_text() and "28" in alert.inner_text()
    assert page.evaluate("document.activeElement.id") == "opt-depth-input_size"
    page.get_by_label("Depth input size").fill("56")
    page.get_by_label("Path under an input root").fill("../../etc/passwd")
    page.get_by_role("button", name="Submit job").click()
    page.locator("#submit-error").filter(has_text=re.compile(r"\.\.|input roots|outside")).wait_for()


def test_phone_sized_and_keyboard_only(web_gateway, phone):
    page = phone.new_page()
    page.goto(web_gateway.url + "/")
    # the token field takes the focus when the page opens (once its script has run)
    wait_until(page, "document.activeElement && document.activeElement.id === 'token'", timeout_s=30)
    page.keyboard.type(TOKEN)
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="New job").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "submit-button":
            break
    else:
        pytest.fail("the submit button cannot be reached with Tab")


def test_docs_and_redoc_render_without_internet(web_gateway, context, offsite):
    page = context.new_page()
    page.goto(web_gateway.url + "/docs")
    page.locator(".swagger-ui .info .title").filter(has_text="vdp gateway").wait_for()
    assert page.locator(".opblock").count() >= 10
    page.goto(web_gateway.url + "/redoc")
    page.locator("h2", has_text="Submit a job").first.wait_for()
    assert offsite.urls == [], offsite.urls
