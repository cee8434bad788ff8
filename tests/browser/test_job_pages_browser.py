"""The Jobs pages in Chromium: a job that prints a line every half second shows its lines arriving in the log pane
while it runs (the EventSource on the job's log stream, with the browser's session), its badge turns from
Scheduling/Running by the polled status fragment, its duration counts up; Cancel from the page ends it (CANCELED,
the Cancel button gone); the namespace's list shows it with its badge (and a scheduled job), and refreshes its rows while a job is
going. Screenshots: ``test-screenshots/job-page.png``,
``job-cancelled.png``, ``jobs-list.png``,
``profile-jobs-tab.png`` (look at them)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from huggingface_hub import HfApi
from playwright.sync_api import Page, expect

from support import LiveServer

pytestmark = pytest.mark.slow
expect.set_options(timeout=30_000)

PASSWORD = "job-browser-pass-1234"
TICKER = "import time\nfor i in range(240):\n    print(f'tick {i}', flush=True)\n    time.sleep(0.5)\n"


def sign_in(page: Page, server: LiveServer, name: str) -> None:
    page.goto(server.url + "/login")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(server.url + "/")


def test_a_running_job_streams_its_log_live_and_is_cancelled_from_its_page(
    server: LiveServer, page: Page, shots_dir: Path
) -> None:
    """Lines appear in the pane one after another while the job runs (the last tick shown, then four more arrive
    without a reload); the badge says Running, CPU and memory show, the duration counts up; Cancel (after the
    confirm) turns it Canceled and the API agrees; on the list, a job cancelled elsewhere turns Canceled by
    itself."""
    if server.backend != "sqlite":
        pytest.skip("one backend is enough for the browser")
    owner = server.account("jbrow", password=PASSWORD)
    api = HfApi(endpoint=server.url, token=owner.write_token)
    done = api.run_job(image="hubstead/python", command=["python", "-c", "print('a finished job')"],
                       labels={"name": "warm-up"}, namespace=owner.name)  # fmt: skip
    api.wait_for_job(done.id, namespace=owner.name, timeout=90, poll_interval=0.3)
    job = api.run_job(image="hubstead/python", command=["python", "-c", TICKER], env={"MODE": "demo"},
                      secrets={"API_KEY": "hidden-value"}, labels={"name": "ticker"}, namespace=owner.name)  # fmt: skip

    sign_in(page, server, owner.name)
    page.goto(job.url)
    log = page.locator("#job-log")
    expect(log).to_contain_text("tick 2")
    last = max(int(n) for n in re.findall(r"tick (\d+)", log.inner_text()))
    assert f"tick {last + 4}" not in log.inner_text()  # not there yet: the next lines must arrive live
    expect(log).to_contain_text(f"tick {last + 4}")
    assert page.url == job.url  # no reload: the same page got the new lines
    expect(page.locator("#job-status .stage-badge")).to_have_attribute("data-stage", "RUNNING")
    expect(page.locator("#job-metrics")).to_be_visible()
    expect(page.locator("#job-cpu")).to_contain_text("%")
    seconds = page.locator("#job-status .job-duration").inner_text()
    expect(page.locator("#job-status .job-duration")).not_to_have_text(seconds)  # counts up
    assert "hidden-value" not in page.content()
    page.screenshot(path=str(shots_dir / "job-page.png"), full_page=True)

    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel").click()
    page.wait_for_url(job.url)
    expect(page.locator("#job-status .stage-badge")).to_have_attribute("data-stage", "CANCELED")
    expect(page.locator("#job-status")).to_contain_text(f"Canceled by {owner.name}")
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)
    expect(page.locator("#job-log")).to_contain_text("tick 1")  # a finished job's log is still read back
    assert api.inspect_job(job_id=job.id, namespace=owner.name).status.stage == "CANCELED"
    page.screenshot(path=str(shots_dir / "job-cancelled.png"), full_page=True)

    nightly = api.create_scheduled_job(image="hubstead/python", command=["python", "-c", "print('nightly')"],
                                       schedule="@daily", namespace=owner.name)  # fmt: skip
    page.goto(f"{server.url}/{owner.name}")
    page.screenshot(path=str(shots_dir / "profile-jobs-tab.png"))
    page.get_by_role("link", name="Jobs", exact=True).click()
    page.wait_for_url(f"{server.url}/jobs/{owner.name}")
    row = page.locator(f"#job-{job.id}")
    expect(row.locator(".stage-badge")).to_have_attribute("data-stage", "CANCELED")
    expect(row).to_contain_text("ticker")
    expect(page.locator(f"#job-{done.id} .stage-badge")).to_have_attribute("data-stage", "COMPLETED")
    expect(page.locator(f"#scheduled-{nightly.id}")).to_contain_text("@daily")
    page.screenshot(path=str(shots_dir / "jobs-list.png"), full_page=True)

    again = api.run_job(image="hubstead/python", command=["python", "-c", TICKER], namespace=owner.name)
    page.reload()
    badge = page.locator(f"#job-{again.id} .stage-badge")
    expect(badge).to_have_attribute("data-stage", re.compile("SCHEDULING|RUNNING"))
    url = page.url
    api.cancel_job(job_id=again.id, namespace=owner.name)
    expect(badge).to_have_attribute("data-stage", "CANCELED")  # the list refreshes itself while a job is going
    assert page.url == url
