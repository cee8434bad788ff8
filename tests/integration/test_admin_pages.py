"""The site admin pages over HTTP with web sessions (sqlite only: the pages read the same tables on either
backend): every /admin page is the 404 page for visitors and non-admins, 200 for a site admin; the repo table
sorts by size (LFS objects plus git); a running compute job is cancelled and a failed one retried through the
pages' forms (CSRF-checked); a failed dataset conversion is retried from /admin/conversions; the admin badge."""

from __future__ import annotations

import os
import re
import time

import httpx
import pytest
from huggingface_hub import HfApi

from support import Account, LiveServer, web_session

pytestmark = pytest.mark.parametrize("server", ["sqlite"], indirect=True)

PASSWORD = "admin-pages-pass-1234"
PAGES = ("/admin", "/admin/repos", "/admin/jobs", "/admin/conversions", "/admin/health")
PY = "hubstead/python"


def _wait(predicate, what: str, timeout: float = 60):  # type: ignore[no-untyped-def]
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def people(server: LiveServer) -> tuple[Account, Account, httpx.Client, str]:
    """A site admin, a user (both with the web password), and the admin's signed-in web client and CSRF token."""
    admin = server.account("apadm", admin=True, password=PASSWORD)
    user = server.account("apusr", password=PASSWORD)
    web, csrf = web_session(server, admin.name, PASSWORD)
    return admin, user, web, csrf


def test_admin_pages_only_for_site_admins(
    server: LiveServer, people: tuple[Account, Account, httpx.Client, str]
) -> None:
    admin, user, web, csrf = people
    anonymous = httpx.Client(base_url=server.url, timeout=30)
    missing = anonymous.get("/admin/no-such-page-here")
    web_user, user_csrf = web_session(server, user.name, PASSWORD)
    for path in PAGES:
        for client in (anonymous, web_user):
            answer = client.get(path)
            assert answer.status_code == 404 and "<html" in answer.text, (path, answer.status_code)
            assert "Site administration" not in answer.text and "admin-nav" not in answer.text, path
    assert missing.status_code == 404
    refused = web_user.post("/admin/repos/delete", data={"csrf_token": user_csrf, "repo_type": "model",
                                                         "repo_id": f"{user.name}/x", "confirm": f"{user.name}/x"})  # fmt: skip
    assert refused.status_code == 404
    assert 'href="/admin"' not in web_user.get("/").text

    for path in PAGES:
        answer = web.get(path)
        assert answer.status_code == 200, (path, answer.text[:2000])
        for link in (
            "/admin/users",
            "/admin/repos",
            "/admin/jobs",
            "/admin/conversions",
            "/admin/health",
            "/admin/audit",
        ):
            assert f'href="{link}"' in answer.text, (path, link)
    home = web.get("/").text
    assert 'href="/admin"' in home and "admin-badge" in home  # the header's link, for site admins only
    profile_badge = 'title="Site administrator">admin</span>'  # beside the name on an admin's profile only
    assert profile_badge in web.get(f"/{admin.name}").text and profile_badge not in web.get(f"/{user.name}").text
    health = web.get("/admin/health").text
    for shown in ("sqlite", "huggingface_hub", "hubstead", str(server.data_dir), "Compute lease", "Migration"):
        assert shown in health, shown
    assert re.search(r"<code>\d{4}", health), "the migration revision"
    assert web.get("/admin/repos", params={"sort": "nope"}).status_code == 400
    assert (
        web.post("/admin/repos/delete", data={"repo_type": "model", "repo_id": "a/b", "confirm": "a/b"}).status_code
        == 403
    )


def test_repo_table_sorts_by_size_and_deletes_with_confirmation(
    server: LiveServer, people: tuple[Account, Account, httpx.Client, str]
) -> None:
    _, owner, web, csrf = people
    api = HfApi(endpoint=server.url, token=owner.write_token)
    for name in ("small", "big", "mid"):
        api.create_repo(f"{owner.name}/{name}")
    # big: a 300 kB LFS object; mid: 60 kB of hex text in git (about 30 kB packed); small: only what creation wrote.
    api.upload_file(path_or_fileobj=os.urandom(300_000), path_in_repo="weights.bin", repo_id=f"{owner.name}/big")
    api.upload_file(path_or_fileobj=os.urandom(30_000).hex().encode(), path_in_repo="notes.txt",
                    repo_id=f"{owner.name}/mid")  # fmt: skip
    page = web.get("/admin/repos", params={"search": owner.name, "sort": "size"})
    assert page.status_code == 200
    shown = re.findall(r'data-repo="model:' + owner.name + r'/(\w+)" data-size="(\d+)"', page.text)
    assert [name for name, _ in shown] == ["big", "mid", "small"], shown
    assert int(shown[0][1]) > 300_000 and int(shown[2][1]) < 30_000, shown
    assert (
        len(
            re.findall(
                r'data-repo="model:', web.get("/admin/repos", params={"search": owner.name, "type": "dataset"}).text
            )
        )
        == 0
    )

    target = f"{owner.name}/small"
    wrong = web.post(
        "/admin/repos/delete", data={"csrf_token": csrf, "repo_type": "model", "repo_id": target, "confirm": "small"}
    )
    assert wrong.status_code == 400 and api.repo_exists(target)
    moved = web.post("/admin/repos/move", data={"csrf_token": csrf, "repo_type": "model", "repo_id": target,
                                                "to_id": f"{owner.name}/tiny"})  # fmt: skip
    assert moved.status_code == 303 and api.repo_exists(f"{owner.name}/tiny")
    done = web.post("/admin/repos/delete", data={"csrf_token": csrf, "repo_type": "model", "repo_id": f"{owner.name}/tiny",
                                                 "confirm": f"{owner.name}/tiny"})  # fmt: skip
    assert done.status_code == 303 and not api.repo_exists(f"{owner.name}/tiny")


def test_cancel_and_retry_jobs_and_conversions_from_the_pages(
    server: LiveServer, people: tuple[Account, Account, httpx.Client, str]
) -> None:
    _, owner, web, csrf = people
    api = HfApi(endpoint=server.url, token=owner.write_token)
    ns = owner.name
    sleeper = api.run_job(image=PY, command=["python", "-c", "import time; time.sleep(120)"], namespace=ns)
    failing = api.run_job(image=PY, command=["python", "-c", "raise SystemExit(3)"], namespace=ns)
    dataset = f"{ns}/broken"
    api.create_repo(dataset, repo_type="dataset")
    api.upload_file(path_or_fileobj=b"PAR1 this is not parquet at all", path_in_repo="data/train.parquet",
                    repo_id=dataset, repo_type="dataset")  # fmt: skip

    assert web.post(f"/admin/jobs/{sleeper.id}/cancel", data={}).status_code == 403  # no CSRF token
    listing = web.get("/admin/jobs").text
    assert f'action="/admin/jobs/{sleeper.id}/cancel"' in listing
    cancelled = web.post(f"/admin/jobs/{sleeper.id}/cancel", data={"csrf_token": csrf})
    assert cancelled.status_code == 303
    assert _wait(lambda: api.inspect_job(job_id=sleeper.id, namespace=ns).status.stage == "CANCELED", "cancel")

    _wait(lambda: api.inspect_job(job_id=failing.id, namespace=ns).status.stage == "ERROR", "the failing job")
    failed_row = web.get("/admin/jobs", params={"stage": "ERROR"}).text
    assert f'action="/admin/jobs/{failing.id}/retry"' in failed_row
    assert web.post(f"/admin/jobs/{failing.id}/retry", data={"csrf_token": csrf}).status_code == 303
    copies = [j for j in api.list_jobs(namespace=ns) if j.id not in (sleeper.id, failing.id)]
    assert len(copies) == 1 and copies[0].command == failing.command

    def failed_conversion() -> str | None:
        page = web.get("/admin/conversions", params={"status": "failed"}).text
        found = re.search(r'<tr data-job="(\d+)" data-status="failed">\s*<td>\d+</td>\s*<td><a href="/datasets/'
                          + re.escape(dataset), page)  # fmt: skip
        return found.group(1) if found else None

    job_id = _wait(failed_conversion, "the failed conversion", timeout=90)
    again = web.post(f"/admin/conversions/{job_id}/retry", data={"csrf_token": csrf})
    assert again.status_code == 303
    page = web.get("/admin/conversions").text
    newer = [int(j) for j in re.findall(r'<tr data-job="(\d+)"[^>]*>\s*<td>\d+</td>\s*<td><a href="/datasets/'
                                        + re.escape(dataset), page)]  # fmt: skip
    assert max(newer) > int(job_id), newer
    assert web.post(f"/admin/conversions/{job_id}/retry", data={"csrf_token": csrf}).status_code in (303, 409)
    assert web.post(f"/admin/conversions/{job_id}/cancel", data={"csrf_token": csrf}).status_code == 409  # it ended


def test_org_created_on_the_web_and_its_members_managed_by_its_admins(
    server: LiveServer, people: tuple[Account, Account, httpx.Client, str]
) -> None:
    """A user creates an org from the web (they become its admin), adds a member, changes their role, cannot
    demote themselves as the last admin (409), removes the member; a non-admin member gets the 404 page."""
    _, user, _, _ = people
    member = server.account("apmem", password=PASSWORD)
    web, csrf = web_session(server, user.name, PASSWORD)
    assert 'href="/organizations/new"' in web.get(f"/{user.name}").text
    org = server.unique("aporg")
    assert web.post("/organizations/new", data={"name": org}).status_code == 403  # no CSRF token
    created = web.post("/organizations/new", data={"name": org, "csrf_token": csrf})
    assert created.status_code == 303 and created.headers["location"] == f"/organizations/{org}/members"
    taken = web.post("/organizations/new", data={"name": org, "csrf_token": csrf})
    assert taken.status_code == 409 and "already taken" in taken.text
    base = f"/organizations/{org}/members"

    def roles() -> dict[str, str]:
        return dict(re.findall(r'data-member="([^"]+)" data-role="([^"]+)"', web.get(base).text))

    assert roles() == {user.name: "admin"}
    assert 'href="/organizations/' + org + '/members"' in web.get(f"/{org}").text
    assert web.post(base, data={"csrf_token": csrf, "username": member.name, "role": "read"}).status_code == 303
    assert roles() == {user.name: "admin", member.name: "read"}
    other, other_csrf = web_session(server, member.name, PASSWORD)
    assert other.get(base).status_code == 404
    assert (
        other.post(base, data={"csrf_token": other_csrf, "username": member.name, "role": "admin"}).status_code == 404
    )
    assert web.post(base, data={"csrf_token": csrf, "username": member.name, "role": "write"}).status_code == 303
    last = web.post(base, data={"csrf_token": csrf, "username": user.name, "role": "read"})
    assert last.status_code == 409
    assert web.post(base, data={"csrf_token": csrf, "username": member.name, "role": "owner"}).status_code == 400
    assert roles() == {user.name: "admin", member.name: "write"}
    removed = web.post(base, data={"csrf_token": csrf, "username": member.name, "action": "remove"})
    assert removed.status_code == 303 and roles() == {user.name: "admin"}
