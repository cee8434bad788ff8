"""The Community pages' access rules through HTTP (a signed-in browser's cookie and CSRF token): a private repo's
pages are 404s like its files, a gated repo's Files changed hides the diff, every form needs the CSRF token, a
refusal is a page that says why, and a reader's README edit becomes a pull request through pulls' one rule.
The pages in a real browser: tests/browser/test_community.py."""

from __future__ import annotations

import re
import uuid

import httpx
from huggingface_hub import HfApi

from support import Account, LiveServer, web_session


def _person(server: LiveServer, prefix: str) -> tuple[Account, httpx.Client, str]:
    password = uuid.uuid4().hex
    account = server.account(prefix, password=password)
    client, csrf = web_session(server, account.name, password)
    return account, client, csrf


def _repo(server: LiveServer, owner: Account, *, private: bool = False) -> tuple[HfApi, str]:
    api = HfApi(endpoint=server.url, token=owner.write_token)
    repo_id = f"{owner.name}/{server.unique('community')}"
    api.create_repo(repo_id, private=private)
    api.upload_file(path_or_fileobj=b"line one\nline two\n", path_in_repo="notes.txt", repo_id=repo_id)
    return api, repo_id


def test_a_private_repos_community_pages_are_404_to_those_who_cannot_read_it(server: LiveServer) -> None:
    """List, thread, Files changed and every form of a private repo answer 404 to anonymous visitors and to a
    signed-in stranger (with a valid CSRF token), and the stranger's comment lands nowhere; the owner reads them."""
    owner, owner_web, _ = _person(server, "privowner")
    _, stranger_web, stranger_csrf = _person(server, "privstranger")
    api, repo_id = _repo(server, owner, private=True)
    pr = api.upload_file(path_or_fileobj=b"secret text\n", path_in_repo="s.txt", repo_id=repo_id, create_pr=True)
    num = pr.pr_num
    assert num is not None
    pages = ["/discussions", f"/discussions/{num}", f"/discussions/{num}/files"]
    for path in pages:
        assert httpx.get(f"{server.url}/{repo_id}{path}", timeout=30).status_code == 404, path
        theirs = stranger_web.get(f"/{repo_id}{path}")
        assert theirs.status_code == 404 and "secret" not in theirs.text and pr.commit_message not in theirs.text
        mine = owner_web.get(f"/{repo_id}{path}")
        assert mine.status_code == 200, (path, mine.text[:500])
    for path, data in ((f"/discussions/{num}/comment", {"content": "hello"}), ("/discussions", {"title": "x"}),
                       (f"/discussions/{num}/merge", {}), (f"/discussions/{num}/status", {"status": "closed"})):  # fmt: skip
        answer = stranger_web.post(f"/{repo_id}{path}", data={**data, "csrf_token": stranger_csrf})
        assert answer.status_code == 404, (path, answer.status_code)
    details = api.get_discussion_details(repo_id, num)
    assert details.status == "open" and [e.type for e in details.events] == ["commit"]
    assert [d.num for d in api.get_repo_discussions(repo_id)] == [num]


def test_a_gated_repos_files_changed_shows_the_diff_only_with_file_access(server: LiveServer) -> None:
    """On a gated repo the thread is public (title, commit event), but Files changed shows only paths and the
    request-access gate to a stranger; the owner sees the added lines."""
    owner, owner_web, _ = _person(server, "gateowner")
    _, stranger_web, _ = _person(server, "gatestranger")
    api, repo_id = _repo(server, owner)
    pr = api.upload_file(path_or_fileobj=b"gated words\n", path_in_repo="g.txt", repo_id=repo_id, create_pr=True,
                         commit_message="Add gated words")  # fmt: skip
    api.update_repo_settings(repo_id, gated="manual")
    files = f"/{repo_id}/discussions/{pr.pr_num}/files"
    thread = stranger_web.get(f"/{repo_id}/discussions/{pr.pr_num}")
    assert thread.status_code == 200 and "Add gated words" in thread.text
    theirs = stranger_web.get(files)
    assert theirs.status_code == 200 and "g.txt" in theirs.text
    assert "gated words" not in theirs.text.replace("Add gated words", "") and "Request access" in theirs.text
    anonymous = httpx.get(server.url + files, timeout=30)
    assert anonymous.status_code == 200 and "+gated words" not in anonymous.text
    mine = owner_web.get(files)
    assert mine.status_code == 200 and re.search(r'<span class="add">\+gated words</span>', mine.text), mine.text


def test_forms_need_the_csrf_token_and_refusals_are_pages_in_words(server: LiveServer) -> None:
    """A comment, a rename, a new discussion posted with the session cookie but without (or with a wrong) CSRF
    token are 403s that change nothing; with it they land. A reader pressing merge gets the thread page (HTML,
    not JSON) saying who may merge, and the PR stays open."""
    owner, owner_web, owner_csrf = _person(server, "csrfowner")
    reader, reader_web, reader_csrf = _person(server, "csrfreader")
    api, repo_id = _repo(server, owner)
    thread = api.create_discussion(repo_id, title="Question", description="How?")
    url = f"/{repo_id}/discussions/{thread.num}"
    for data in ({"content": "forged"}, {"content": "forged", "csrf_token": reader_csrf[::-1]}):
        assert reader_web.post(url + "/comment", data=data).status_code == 403
    assert reader_web.post(url + "/title", data={"title": "Forged"}).status_code == 403
    assert reader_web.post(f"/{repo_id}/discussions", data={"title": "Forged", "content": "x"}).status_code == 403
    details = api.get_discussion_details(repo_id, thread.num)
    assert details.title == "Question" and len(details.events) == 1
    assert [d.num for d in api.get_repo_discussions(repo_id)] == [thread.num]

    posted = reader_web.post(url + "/comment", data={"content": "**Thanks**", "csrf_token": reader_csrf})
    assert posted.status_code == 303 and posted.headers["location"].startswith(url + "#event-")
    page = reader_web.get(url)
    assert "<strong>Thanks</strong>" in page.text
    created = reader_web.post(f"/{repo_id}/discussions", data={"title": "  Another  one ", "content": "Body",
                                                              "csrf_token": reader_csrf})  # fmt: skip
    assert created.status_code == 303
    assert api.get_discussion_details(repo_id, int(created.headers["location"].rsplit("/", 1)[1])).title == "Another one"

    pr = api.upload_file(path_or_fileobj=b"x\n", path_in_repo="x.txt", repo_id=repo_id, create_pr=True)
    assert pr.pr_num is not None
    refused = reader_web.post(f"/{repo_id}/discussions/{pr.pr_num}/merge", data={"csrf_token": reader_csrf})
    assert refused.status_code == 403 and refused.headers["content-type"].startswith("text/html")
    assert f"Only people with write access to {repo_id} can merge pull requests" in refused.text
    assert 'id="thread-title"' in refused.text  # the thread page itself, with the reason on it
    empty = owner_web.post(url + "/comment", data={"content": "   ", "csrf_token": owner_csrf})
    assert empty.status_code == 400 and "A comment cannot be empty" in empty.text
    assert api.get_discussion_details(repo_id, pr.pr_num).status == "open"


def test_a_readers_readme_edit_opens_a_pull_request_and_direct_commits_are_refused(server: LiveServer) -> None:
    """The README editor offers a reader only the pull request choice; their edit opens refs/pr/N (main is
    untouched) with the thread the API would open; a forged "commit directly" is refused on the form, in words."""
    owner, _, _ = _person(server, "editowner")
    reader, reader_web, reader_csrf = _person(server, "editreader")
    api, repo_id = _repo(server, owner)
    form = reader_web.get(f"/{repo_id}/edit/main/README.md")
    assert form.status_code == 200
    assert 'value="pr"' in form.text and 'value="direct"' not in form.text
    edit = f"/{repo_id}/edit/main/README.md"
    forged = reader_web.post(edit, data={"content": "# Forged\n", "mode": "direct", "csrf_token": reader_csrf})
    assert forged.status_code == 403 and "# Forged" in forged.text and 'class="error"' in forged.text
    opened = reader_web.post(edit, data={"content": "# Better card\n", "message": "Improve the card",
                                         "description": "A clearer title.", "mode": "pr", "csrf_token": reader_csrf})  # fmt: skip
    assert opened.status_code == 303, opened.text[:1000]
    num = int(opened.headers["location"].rsplit("/", 1)[1])
    details = api.get_discussion_details(repo_id, num)
    assert details.is_pull_request and details.status == "open" and details.title == "Improve the card"
    assert details.author == reader.name and details.git_reference == f"refs/pr/{num}"
    assert [e.type for e in details.events] == ["comment", "commit"]
    assert "README.md" not in api.list_repo_files(repo_id)
    card = httpx.get(f"{server.url}/{repo_id}/resolve/refs%2Fpr%2F{num}/README.md", timeout=30)
    assert card.status_code == 200 and card.text == "# Better card\n"


def test_a_readers_upload_to_a_dataset_opens_a_pull_request_and_its_pages_answer(server: LiveServer) -> None:
    """The upload form of a dataset (``/datasets/…``), posted by a reader, opens refs/pr/N holding the files (LFS
    for the binary one) and main is untouched; the dataset's list and thread pages show it; a forged direct
    upload is refused."""
    owner, _, _ = _person(server, "upowner")
    _, reader_web, reader_csrf = _person(server, "upreader")
    api = HfApi(endpoint=server.url, token=owner.write_token)
    repo_id = f"{owner.name}/{server.unique('updata')}"
    api.create_repo(repo_id, repo_type="dataset")
    form = reader_web.get(f"/datasets/{repo_id}/upload/main")
    assert form.status_code == 200 and 'value="pr"' in form.text and 'value="direct"' not in form.text
    weights = bytes(range(256)) * 8
    files = [("files", ("data.csv", b"a,b\n1,2\n", "text/csv")), ("files", ("blob.bin", weights, "application/x"))]
    forged = reader_web.post(f"/datasets/{repo_id}/upload/main", files=files,
                             data={"csrf_token": reader_csrf, "mode": "direct"})  # fmt: skip
    assert forged.status_code == 403
    posted = reader_web.post(f"/datasets/{repo_id}/upload/main", files=files,
                             data={"csrf_token": reader_csrf, "mode": "pr", "message": "Add data"})  # fmt: skip
    assert posted.status_code == 303, posted.text[:1000]
    location = posted.headers["location"]
    assert location.startswith(f"/datasets/{repo_id}/discussions/")
    num = int(location.rsplit("/", 1)[1])
    assert api.list_repo_files(repo_id, repo_type="dataset") == [".gitattributes"]
    pr_files = api.list_repo_files(repo_id, repo_type="dataset", revision=f"refs/pr/{num}")
    assert {"data.csv", "blob.bin"} <= set(pr_files)
    blob = httpx.get(f"{server.url}/datasets/{repo_id}/resolve/refs%2Fpr%2F{num}/blob.bin", follow_redirects=True,
                     timeout=30)  # fmt: skip
    assert blob.content == weights
    listing = reader_web.get(f"/datasets/{repo_id}/discussions")
    assert listing.status_code == 200 and f'href="/datasets/{repo_id}/discussions/{num}"' in listing.text
    thread = reader_web.get(location)
    assert thread.status_code == 200 and "Add data" in thread.text and f"--repo-type dataset --revision refs/pr/{num}" in thread.text


def test_rename_and_edit_own_comment_from_the_thread_page(server: LiveServer) -> None:
    """The author renames their thread and edits their comment (marked edited, history kept, the API sees both);
    another reader may do neither: the thread page says why and nothing changes."""
    owner, _, _ = _person(server, "renowner")
    author, author_web, author_csrf = _person(server, "renauthor")
    _, other_web, other_csrf = _person(server, "renother")
    api, repo_id = _repo(server, owner)
    created = author_web.post(f"/{repo_id}/discussions", data={"title": "Typo", "content": "first words",
                                                              "csrf_token": author_csrf})  # fmt: skip
    url = created.headers["location"]
    num = int(url.rsplit("/", 1)[1])
    comment_id = api.get_discussion_details(repo_id, num).events[0].id
    refused = other_web.post(f"{url}/title", data={"title": "Hijacked", "csrf_token": other_csrf})
    assert refused.status_code == 403 and "Only the author of this discussion" in refused.text
    refused = other_web.post(f"{url}/comment/{comment_id}/edit", data={"content": "hijacked", "csrf_token": other_csrf})
    assert refused.status_code == 403 and "Only the author of a comment can edit it" in refused.text
    assert author_web.post(f"{url}/title", data={"title": "Typo in the card", "csrf_token": author_csrf}).status_code == 303
    edited = author_web.post(f"{url}/comment/{comment_id}/edit", data={"content": "better words", "csrf_token": author_csrf})
    assert edited.status_code == 303
    page = author_web.get(url)
    assert "Typo in the card" in page.text and "better words" in page.text and ">edited<" in page.text
    assert "changed the title from <del>Typo</del>" in page.text
    details = api.get_discussion_details(repo_id, num)
    assert details.title == "Typo in the card"
    first = details.events[0]
    assert first.content == "better words" and first.edited and details.events[-1].type == "title-change"
