"""The rest of ``HfApi`` that a self-hosted hub can serve (issue 17, "go through HfApi method by method"), through
the real ``huggingface_hub`` client: a gated repo's access requests, the tags by type, user and organization
overviews, comment attachments, copies between repos and ``duplicate_repo``, and one compact test of the methods
that had only a hand check. The newest client runs in this process; where an older client builds its requests
differently it runs the same calls from its own venv (``test_old_clients_*``).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from seed import auth
from support import LiveServer, last_json, run_client

# --- 1. gated access requests ------------------------------------------------------------------------------


def test_access_requests_lifecycle(server: LiveServer, tmp_path: Path) -> None:
    """A manual gate's requests are listed by status and moved between lists by the client's calls: accept, reject
    (with a reason), cancel (back to pending, access lost), grant (to a user who never asked). Only those who may
    write to the namespace list or handle them; an unknown user, a missing request or a request already in the
    asked-for list is a 404; a repo that is not gated a 400."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError

    owner, ann, ben, cid = (server.account(p) for p in ("gateown", "gateann", "gateben", "gatecid"))
    repo_id = f"{owner.name}/gated"
    api = HfApi(endpoint=server.url, token=owner.write_token)
    api.create_repo(repo_id)
    api.upload_file(path_or_fileobj=b"{}", path_in_repo="config.json", repo_id=repo_id)
    with pytest.raises(HfHubHTTPError) as not_gated:
        list(api.list_pending_access_requests(repo_id))
    assert not_gated.value.response.status_code == 400 and "not gated" in str(not_gated.value)
    api.update_repo_settings(repo_id, gated="manual")
    for user in (ann, ben):
        asked = httpx.post(f"{server.url}/api/models/{repo_id}/ask-access", headers=auth(user.write_token))
        assert asked.json() == {"status": "pending"}

    pending = list(api.list_pending_access_requests(repo_id))
    assert [r.username for r in pending] == [ann.name, ben.name]
    assert all(r.status == "pending" and r.request_id and r.timestamp.tzinfo for r in pending)
    assert list(api.list_accepted_access_requests(repo_id)) == list(api.list_rejected_access_requests(repo_id)) == []

    ann_api, cid_api = HfApi(endpoint=server.url, token=ann.write_token), HfApi(endpoint=server.url, token=cid.write_token)
    with pytest.raises(GatedRepoError):
        ann_api.auth_check(repo_id)
    api.accept_access_request(repo_id, ann.name)
    ann_api.auth_check(repo_id)
    assert ann_api.hf_hub_download(repo_id, "config.json", cache_dir=tmp_path)
    api.reject_access_request(repo_id, request_id=pending[1].request_id, rejection_reason="Not for this project")
    assert [r.username for r in api.list_accepted_access_requests(repo_id)] == [ann.name]
    rejected = httpx.get(f"{server.url}/api/models/{repo_id}/user-access-request/rejected", headers=auth(owner.write_token))
    assert [(r["user"]["user"], r["rejectionReason"], r["handledBy"]) for r in rejected.json()] == [
        (ben.name, "Not for this project", owner.name)
    ]

    # Errors in the client's documented statuses.
    for call, status in (
        (lambda: api.accept_access_request(repo_id, ann.name), 404),  # already accepted
        (lambda: api.accept_access_request(repo_id, cid.name), 404),  # no request
        (lambda: api.accept_access_request(repo_id, "no-such-user-x"), 404),
        (lambda: api.grant_access(repo_id, ann.name), 400),  # has access already
        (lambda: list(ann_api.list_pending_access_requests(repo_id)), 403),  # a reader
        (lambda: list(HfApi(endpoint=server.url, token=owner.read_token).list_pending_access_requests(repo_id)), 403),
        (lambda: cid_api.grant_access(repo_id, cid.name), 403),
    ):
        with pytest.raises(HfHubHTTPError) as info:
            call()
        assert info.value.response.status_code == status, (status, str(info.value))

    api.cancel_access_request(repo_id, ann.name)  # back to pending: access is gone
    with pytest.raises(GatedRepoError):
        ann_api.auth_check(repo_id)
    assert {r.username for r in api.list_pending_access_requests(repo_id)} == {ann.name}
    api.grant_access(repo_id, cid.name)  # never asked
    cid_api.auth_check(repo_id)
    accepted = list(api.list_accepted_access_requests(repo_id))
    assert [(r.username, r.status) for r in accepted] == [(cid.name, "accepted")]
    bad = httpx.post(f"{server.url}/api/models/{repo_id}/user-access-request/handle", headers=auth(owner.write_token),
                     json={"user": ann.name, "status": "accepted", "rejectionReason": "x"})  # fmt: skip
    assert bad.status_code == 400 and bad.json()["error"]
    assert [r.username for r in api.list_pending_access_requests(repo_id)] == [ann.name]  # nothing changed


@pytest.mark.slow
@pytest.mark.parametrize("version", ["0.30.2", "1.33.0"])
def test_old_clients_access_requests(server: LiveServer, env_for, version: str) -> None:
    """The oldest client we claim and a 1.x one build these URLs from ``HF_ENDPOINT``: the same calls work."""
    from huggingface_hub import HfApi

    from client_venvs import client_python

    owner, asker = server.account("oldgate"), server.account("oldgateb")
    repo_id = f"{owner.name}/gated"
    HfApi(endpoint=server.url, token=owner.write_token).create_repo(repo_id)
    HfApi(endpoint=server.url, token=owner.write_token).update_repo_settings(repo_id, gated="manual")
    httpx.post(f"{server.url}/api/models/{repo_id}/ask-access", headers=auth(asker.write_token))
    result = run_client(
        f"""
        import json
        import huggingface_hub
        from huggingface_hub import HfApi
        assert huggingface_hub.__version__ == {version!r}
        api = HfApi()
        out = {{"pending": [r.username for r in api.list_pending_access_requests("{repo_id}")]}}
        api.reject_access_request("{repo_id}", "{asker.name}", rejection_reason="no")
        out["rejected"] = [r.username for r in api.list_rejected_access_requests("{repo_id}")]
        api.accept_access_request("{repo_id}", "{asker.name}")
        out["accepted"] = [r.username for r in api.list_accepted_access_requests("{repo_id}")]
        api.cancel_access_request("{repo_id}", "{asker.name}")
        api.grant_access("{repo_id}", "{asker.name}")
        out["granted"] = [r.status for r in api.list_accepted_access_requests("{repo_id}")]
        print(json.dumps(out))
        """,
        env_for(owner.write_token),
        python=client_python(version),
    )
    assert last_json(result) == {"pending": [asker.name], "rejected": [asker.name], "accepted": [asker.name],
                                 "granted": ["accepted"]}  # fmt: skip
