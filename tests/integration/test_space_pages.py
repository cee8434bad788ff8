"""The space web pages over HTTP: the App tab (header, badge, sandboxed iframe or the reason there is none), its
status fragment, the space settings forms (through ``spaces.service``, CSRF-checked, writers only, bad input shown
on the page), the spaces list's cards, "Create a new space" from a template and "Duplicate this Space". Secrets'
values never appear in any page."""

from __future__ import annotations

import re

import httpx
from huggingface_hub import HfApi

from support import LiveServer, web_session

PASSWORD = "space-pages-pass-1234"


def _space(server: LiveServer, api: HfApi, owner: str, name: str, *, private: bool = False) -> str:
    repo_id = f"{owner}/{server.unique(name)}"
    api.create_repo(repo_id, repo_type="space", space_template="static-html", private=private)
    return repo_id


def test_space_page_for_anonymous_reader_and_writer_and_private_hidden(server: LiveServer) -> None:
    """The App tab shows the header's emoji and title, a stage badge, and either the app in an iframe without
    ``allow-same-origin`` (under the hub's origin) or a panel with the stage; writers see Settings, others not; a
    private space is a 404 to anonymous and to a stranger, on the page, the status fragment and the list."""
    owner = server.account("sown", password=PASSWORD)
    stranger = server.account("sstr", password=PASSWORD)
    api = HfApi(endpoint=server.url, token=owner.write_token)
    public = _space(server, api, owner.name, "pub")
    private = _space(server, api, owner.name, "priv", private=True)

    anonymous = httpx.get(f"{server.url}/spaces/{public}")
    assert anonymous.status_code == 200, anonymous.text[:1000]
    assert "📄" in anonymous.text and "stage-badge" in anonymous.text
    assert f'href="/spaces/{public}/settings"' not in anonymous.text
    frames = re.findall(r"<iframe[^>]*>", anonymous.text)
    if frames:  # already RUNNING: the proxied app, sandboxed without the hub's origin
        assert f'src="/spaces/{public}/app/"' in frames[0] and 'sandbox="allow-scripts' in frames[0]
        assert "allow-same-origin" not in frames[0]
    else:
        assert "space-message" in anonymous.text
    fragment = httpx.get(f"{server.url}/spaces/{public}/-/status")
    assert fragment.status_code == 200 and 'id="space-status"' in fragment.text

    writer, _ = web_session(server, owner.name, PASSWORD)
    assert f'href="/spaces/{public}/settings"' in writer.get(f"/spaces/{public}").text
    assert writer.get(f"/spaces/{private}").status_code == 200

    other, _ = web_session(server, stranger.name, PASSWORD)
    for client in (httpx.Client(base_url=server.url), other):
        assert client.get(f"/spaces/{private}").status_code == 404
        assert client.get(f"/spaces/{private}/-/status").status_code == 404
        assert private not in client.get(f"/spaces?search={owner.name}").text


def test_settings_forms_change_the_space_and_never_show_secret_values(server: LiveServer) -> None:
    """Each settings form changes the state the API reports (variables, secrets, sleep time, hardware, pause,
    restart); bad input is a 400 page with the error and changes nothing; without CSRF or as a non-writer the
    post is refused; a secret's value is in no page (settings, app, list, status)."""
    owner = server.account("sset", password=PASSWORD)
    stranger = server.account("ssx", password=PASSWORD)
    api = HfApi(endpoint=server.url, token=owner.write_token)
    repo_id = _space(server, api, owner.name, "set")
    client, csrf = web_session(server, owner.name, PASSWORD)
    url = f"/spaces/{repo_id}/-/settings"

    def post(**data: str) -> httpx.Response:
        return client.post(url, data={"csrf_token": csrf, **data})

    page = client.get(f"/spaces/{repo_id}/settings")
    assert page.status_code == 200 and "Sleep time" in page.text and "Add secret" in page.text
    assert post(action="variable", key="GREETING", value="hello there", description="a word").status_code == 303
    assert post(action="secret", key="API_KEY", value="s3cret-never-shown").status_code == 303
    assert post(action="sleep", sleep_time="900").status_code == 303
    assert {k: v.value for k, v in api.get_space_variables(repo_id).items()} == {"GREETING": "hello there"}
    assert list(api.get_space_secrets(repo_id)) == ["API_KEY"]
    assert api.get_space_runtime(repo_id).sleep_time == 900

    bad = post(action="variable", key="1-not a name", value="x")
    assert bad.status_code == 400 and 'class="error"' in bad.text
    assert set(api.get_space_variables(repo_id)) == {"GREETING"}
    bad_hw = post(action="hardware", hardware="no-such-flavor")
    assert bad_hw.status_code == 400 and "no-such-flavor" in bad_hw.text
    assert client.post(url, data={"action": "pause"}).status_code in (400, 403)
    assert api.get_space_runtime(repo_id).stage != "PAUSED"

    for path in (f"/spaces/{repo_id}/settings", f"/spaces/{repo_id}", f"/spaces/{repo_id}/-/status",
                 f"/spaces?search={owner.name}"):  # fmt: skip
        text = client.get(path).text
        assert "s3cret-never-shown" not in text, path
    settings_page = client.get(f"/spaces/{repo_id}/settings").text
    assert "API_KEY" in settings_page and "hello there" in settings_page

    other, other_csrf = web_session(server, stranger.name, PASSWORD)
    refused = other.post(url, data={"csrf_token": other_csrf, "action": "secret", "key": "X", "value": "y"})
    assert refused.status_code in (403, 404)
    assert list(api.get_space_secrets(repo_id)) == ["API_KEY"]

    assert post(action="delete-variable", key="GREETING").status_code == 303
    assert post(action="delete-secret", key="API_KEY").status_code == 303
    assert api.get_space_variables(repo_id) == {} and api.get_space_secrets(repo_id) == {}
    assert post(action="pause").status_code == 303
    assert api.get_space_runtime(repo_id).stage == "PAUSED"
    assert "Resume" in client.get(f"/spaces/{repo_id}/settings").text
    assert post(action="restart").status_code == 303
    assert api.get_space_runtime(repo_id).stage != "PAUSED"


def test_new_space_form_duplicate_form_and_cards(server: LiveServer) -> None:
    """"Create a new space" commits the chosen template's files and opens the space; a bad name shows the form
    again with the error; "Duplicate this Space" copies files and variables (not secrets) into the viewer's
    namespace; the spaces list shows a card with the header's emoji and gradient, and an SDK facet."""
    owner = server.account("snew", password=PASSWORD)
    visitor = server.account("sdup", password=PASSWORD)
    client, csrf = web_session(server, owner.name, PASSWORD)
    form = client.get("/new-space")
    assert form.status_code == 200 and "Streamlit: hello" in form.text and "Gradio: chat" in form.text
    assert httpx.get(f"{server.url}/new-space").status_code in (302, 303)
    name = server.unique("made")
    made = client.post("/new-space", data={"csrf_token": csrf, "namespace": owner.name, "name": name,
                                           "template": "gradio-blank", "visibility": "public"})  # fmt: skip
    assert made.status_code == 303 and made.headers["location"] == f"/spaces/{owner.name}/{name}"
    api = HfApi(endpoint=server.url, token=owner.write_token)
    files = set(api.list_repo_files(f"{owner.name}/{name}", repo_type="space"))
    assert {"README.md", "app.py", "requirements.txt"} <= files
    assert api.space_info(f"{owner.name}/{name}").sdk == "gradio"
    again = client.post("/new-space", data={"csrf_token": csrf, "namespace": owner.name, "name": name,
                                            "template": "static-html"})  # fmt: skip
    assert again.status_code == 409 and 'class="error"' in again.text
    assert client.post("/new-space", data={"namespace": owner.name, "name": "x", "template": "static-html"}).status_code in (400, 403)

    source = _space(server, api, owner.name, "src")
    api.add_space_variable(source, "GREETING", "hi")
    api.add_space_secret(source, "TOKEN", "secret-value-xyz")
    other, other_csrf = web_session(server, visitor.name, PASSWORD)
    assert "Duplicate this Space" in other.get(f"/spaces/{source}").text
    copy_name = server.unique("copy")
    dup = other.post(f"/spaces/{source}/-/duplicate", data={"csrf_token": other_csrf, "namespace": visitor.name,
                                                             "new_name": copy_name, "visibility": "private"})  # fmt: skip
    assert dup.status_code == 303 and dup.headers["location"] == f"/spaces/{visitor.name}/{copy_name}"
    mine = HfApi(endpoint=server.url, token=visitor.write_token)
    copy_id = f"{visitor.name}/{copy_name}"
    assert mine.space_info(copy_id).private
    assert "index.html" in mine.list_repo_files(copy_id, repo_type="space")
    assert {k: v.value for k, v in mine.get_space_variables(copy_id).items()} == {"GREETING": "hi"}
    assert mine.get_space_secrets(copy_id) == {}

    listing = httpx.get(f"{server.url}/spaces?search={owner.name}")
    card = re.search(r'<a class="card space-card" href="/spaces/' + re.escape(source) + r'"[^>]*>(.*?)</a>', listing.text, re.S)
    assert card, listing.text[:3000]
    assert "--from: var(--c-indigo)" in card.group(0) and "📄" in card.group(1)
    assert "<h4>SDK</h4>" in listing.text
    static_only = httpx.get(f"{server.url}/spaces?search={owner.name}&library=static").text
    assert source in static_only and f"{owner.name}/{name}" not in static_only
