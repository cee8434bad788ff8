"""The dataset viewer end to end: push datasets made here, wait for the conversion job, and check every
API answer against rows computed independently with pyarrow, the libraries, and hostile input."""

from __future__ import annotations

import io
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from support import Account, LiveServer, last_json, run_client


def _push(server: LiveServer, account: Account, name: str, files: dict[str, bytes | str]) -> str:
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(endpoint=server.url, token=account.write_token)
    repo_id = f"{account.name}/{name}"
    api.create_repo(repo_id, repo_type="dataset", exist_ok=True)
    operations = [CommitOperationAdd(path, content.encode() if isinstance(content, str) else content) for path, content in files.items()]
    return api.create_commit(repo_id, repo_type="dataset", operations=operations, commit_message="data").oid


def _wait(server: LiveServer, account: Account, repo_id: str, commit: str, timeout: float = 120) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {account.read_token}"}
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = httpx.get(f"{server.url}/api/datasets/{repo_id}/viewer-status", headers=headers).json()
        job = status["job"]
        if job and job["revision"] == commit and job["status"] in ("succeeded", "failed"):
            return status
        time.sleep(0.3)
    raise AssertionError(f"conversion of {repo_id} did not finish: {status}")


def _get(server: LiveServer, account: Account | None, path: str, **params: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {account.read_token}"} if account else {}
    return httpx.get(f"{server.url}/datasets-server/{path}", params=params, headers=headers, timeout=60)


def _all_rows(server: LiveServer, account: Account, repo_id: str, config: str, split: str) -> list[dict[str, Any]]:
    rows, offset = [], 0
    while True:
        page = _get(server, account, "rows", dataset=repo_id, config=config, split=split, offset=offset, length=100).json()
        rows += [r["row"] for r in page["rows"]]
        assert [r["row_idx"] for r in page["rows"]] == list(range(offset, offset + len(page["rows"])))
        offset += 100
        if offset >= page["num_rows_total"]:
            return rows


def _csv_table(data: bytes, sep: str = ",") -> pa.Table:
    return pacsv.read_csv(io.BytesIO(data), parse_options=pacsv.ParseOptions(delimiter=sep))


@pytest.fixture(scope="module")
def owner(server: LiveServer) -> Account:
    return server.account("viewer")


def _rows_csv(n: int, seed: int = 0) -> bytes:
    lines = ["id,text,label,score"]
    for i in range(n):
        lines.append(f'{i},"{["a cat", "the dog", "some birds"][i % 3]} number {i + seed}, with a comma",{i % 4},{(i * 37 % 101) / 7:.4f}')
    return ("\n".join(lines) + "\n").encode()


def test_every_format_converts_to_the_same_rows(server: LiveServer, owner: Account) -> None:
    train_csv, test_csv = _rows_csv(250), _rows_csv(40, seed=1000)
    jsonl = "\n".join(json.dumps({"q": f"question {i}", "n": i, "tags": ["x"] * (i % 3)}) for i in range(120)) + "\n"
    json_array = json.dumps([{"a": i, "b": f"text {i}"} for i in range(30)])
    tsv = "col1\tcol2\n" + "\n".join(f"{i}\tvalue {i}" for i in range(50)) + "\n"
    table = pa.table({"x": list(range(5000)), "y": [f"row {i}" for i in range(5000)]})
    big_groups = io.BytesIO()
    pq.write_table(table, big_groups, row_group_size=5000)  # one 5000-row group in the source
    arrow_stream = io.BytesIO()
    with ipc.new_stream(arrow_stream, table.schema) as writer:
        writer.write_table(table.slice(0, 300))
    text = "first line\nsecond line\n\nfourth line after a blank\n"
    cases = {
        "csv": ({"train.csv": train_csv, "test.csv": test_csv}, {"train": _csv_table(train_csv), "test": _csv_table(test_csv)}),
        "jsonl": ({"data/train.jsonl": jsonl}, {"train": pa.Table.from_pylist([json.loads(line) for line in jsonl.splitlines()])}),
        "json-array": ({"records.json": json_array}, {"train": pa.Table.from_pylist(json.loads(json_array))}),
        "tsv": ({"train.tsv": tsv}, {"train": _csv_table(tsv.encode(), "\t")}),
        "parquet": ({"data/train-00000-of-00001.parquet": big_groups.getvalue()}, {"train": table}),
        "arrow": ({"train/data.arrow": arrow_stream.getvalue()}, {"train": table.slice(0, 300)}),
        "text": ({"notes.txt": text}, {"train": pa.table({"text": text.splitlines()})}),
    }
    commits = {name: _push(server, owner, f"fmt-{name}", files) for name, (files, _) in cases.items()}
    for name, (_, expected) in cases.items():
        repo_id = f"{owner.name}/fmt-{name}"
        status = _wait(server, owner, repo_id, commits[name])
        assert status["job"]["status"] == "succeeded", json.dumps(status)
        splits = _get(server, owner, "splits", dataset=repo_id).json()["splits"]
        assert sorted(s["split"] for s in splits) == sorted(expected), (name, splits)
        for split, want in expected.items():
            got = _all_rows(server, owner, repo_id, "default", split)
            assert got == _jsonable(want.to_pylist()), (name, split)
            size = _get(server, owner, "size", dataset=repo_id).json()["size"]
            assert sum(s["num_rows"] for s in size["splits"] if s["split"] == split) == want.num_rows


def _jsonable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return json.loads(json.dumps(rows, default=str))


def test_row_groups_are_small_and_pages_are_exact(server: LiveServer, owner: Account) -> None:
    rows = [{"id": i, "body": ("lorem ipsum dolor sit amet " * 20) + str(i)} for i in range(12_000)]
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer, row_group_size=12_000)
    commit = _push(server, owner, "wide", {"train.parquet": buffer.getvalue()})
    _wait(server, owner, f"{owner.name}/wide", commit)
    page = _get(server, owner, "rows", dataset=f"{owner.name}/wide", config="default", split="train", offset=11_950, length=100).json()
    assert [r["row"]["id"] for r in page["rows"]] == list(range(11_950, 12_000)) and page["num_rows_total"] == 12_000
    listing = httpx.get(f"{server.url}/api/datasets/{owner.name}/wide/parquet/default/train",
                        headers={"Authorization": f"Bearer {owner.read_token}"}).json()
    shard = httpx.get(listing[0], headers={"Authorization": f"Bearer {owner.read_token}"}, follow_redirects=True)
    metadata = pq.ParquetFile(io.BytesIO(shard.content)).metadata
    assert metadata.num_row_groups > 5
    biggest = max(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
    assert biggest < 3 * 1024 * 1024, biggest  # one page never reads more than a few MB
    too_long = _get(server, owner, "rows", dataset=f"{owner.name}/wide", config="default", split="train", length=101)
    assert too_long.status_code == 422 and too_long.headers["x-error-code"] == "InvalidParameter"
    past_end = _get(server, owner, "rows", dataset=f"{owner.name}/wide", config="default", split="train", offset=50_000)
    assert past_end.status_code == 200 and past_end.json()["rows"] == []


def test_search_filter_and_statistics_match_pyarrow(server: LiveServer, owner: Account) -> None:
    data = _rows_csv(600)
    commit = _push(server, owner, "query", {"train.csv": data})
    repo_id = f"{owner.name}/query"
    _wait(server, owner, repo_id, commit)
    table = _csv_table(data).to_pylist()
    found = _get(server, owner, "search", dataset=repo_id, config="default", split="train", query="birds", length=100)
    assert found.status_code == 200, found.text
    found = found.json()
    assert found["num_rows_total"] == sum("birds" in r["text"] for r in table)
    assert all("birds" in r["row"]["text"] for r in found["rows"])
    filtered = _get(server, owner, "filter", dataset=repo_id, config="default", split="train",
                    where='"label" = 2 AND "score" > 5', orderby='"score" DESC', length=100).json()
    want = sorted((r for r in table if r["label"] == 2 and r["score"] > 5), key=lambda r: (-r["score"], r["id"]))
    assert filtered["num_rows_total"] == len(want)
    assert [r["row"]["id"] for r in filtered["rows"]] == [r["id"] for r in want][:100]
    assert [r["row_idx"] for r in filtered["rows"]] == [r["id"] for r in want][:100]
    stats = {s["column_name"]: s for s in _get(server, owner, "statistics", dataset=repo_id, config="default", split="train").json()["statistics"]}
    scores = [r["score"] for r in table]
    numbers = stats["score"]["column_statistics"]
    assert stats["score"]["column_type"] == "float"
    assert numbers["min"] == pytest.approx(min(scores)) and numbers["max"] == pytest.approx(max(scores))
    assert numbers["mean"] == pytest.approx(statistics.fmean(scores), abs=1e-4)
    assert numbers["median"] == pytest.approx(statistics.median(scores), abs=1e-4)
    assert numbers["std"] == pytest.approx(statistics.stdev(scores), abs=1e-4)
    assert sum(numbers["histogram"]["hist"]) == len(scores) and len(numbers["histogram"]["bin_edges"]) == 11
    labels = stats["label"]["column_statistics"]
    assert stats["label"]["column_type"] == "int" and labels["min"] == 0 and labels["max"] == 3
    text = stats["text"]
    assert text["column_type"] == "string_text"
    assert text["column_statistics"]["max"] == max(len(r["text"]) for r in table)


def test_hostile_filters_are_refused(server: LiveServer, owner: Account) -> None:
    """A few hostile ``where`` conditions sent through HTTP to one converted dataset are each a 422 whose message
    says the filter is invalid, and the server stays healthy. (Every refusal, case by case, is proven against the
    parser in ``tests/unit/test_viewer_filters.py``; this checks the route's wiring of those refusals.)"""
    commit = _push(server, owner, "hostile", {"train.csv": _rows_csv(20)})
    _wait(server, owner, f"{owner.name}/hostile", commit)
    for where in ("1; DROP TABLE data", "read_csv('/etc/passwd')", "\"label\" IN (SELECT 1)", "\"nope\" = 1"):
        response = _get(server, owner, "filter", dataset=f"{owner.name}/hostile", config="default", split="train", where=where)
        assert response.status_code == 422, (where, response.text)
        assert "filter" in response.json()["error"].lower(), where
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    sane = _get(server, owner, "filter", dataset=f"{owner.name}/hostile", config="default", split="train", where='"label" = 1')
    assert sane.status_code == 200 and sane.json()["num_rows_total"] == 5


def test_bad_files_fail_in_words_and_leave_others_alone(server: LiveServer, owner: Account) -> None:
    ragged = "a,b\n1,2\n3,4,5\n"
    commit = _push(server, owner, "ragged", {"train.csv": ragged, "test.csv": "a,b\n1,2\n"})
    status = _wait(server, owner, f"{owner.name}/ragged", commit)
    splits = {s["split"]: s for s in status["conversion"]["splits"]}
    assert splits["test"]["status"] == "ok" and splits["train"]["status"] == "failed"
    assert "train.csv" in splits["train"]["error"] and "column" in splits["train"]["error"].lower()
    assert status["conversion"]["status"] == "partial"
    failed = _get(server, owner, "rows", dataset=f"{owner.name}/ragged", config="default", split="train")
    assert failed.status_code == 500 and "train.csv" in failed.json()["error"]
    mixed = "n,v\n" + "\n".join(f"{i},{i}" for i in range(30_000)) + "\n30000,not a number\n"
    commit = _push(server, owner, "mixed", {"data.csv": mixed})
    status = _wait(server, owner, f"{owner.name}/mixed", commit)
    assert status["conversion"]["status"] == "ok"
    rows = _get(server, owner, "rows", dataset=f"{owner.name}/mixed", config="default", split="train", offset=29_999, length=2).json()
    assert [r["row"]["v"] for r in rows["rows"]] == ["29999", "not a number"]
    commit = _push(server, owner, "empty", {"train.csv": ""})
    status = _wait(server, owner, f"{owner.name}/empty", commit)
    assert status["job"]["status"] == "failed" and "empty" in status["job"]["error"]
    bad_json = '{"a": 1}\n{"a": 2\n'
    commit = _push(server, owner, "badjson", {"train.jsonl": bad_json})
    status = _wait(server, owner, f"{owner.name}/badjson", commit)
    assert status["job"]["status"] == "failed" and "train.jsonl" in status["job"]["error"]
    assert _get(server, owner, "is-valid", dataset=f"{owner.name}/mixed").json()["viewer"] is True


def test_card_configs_new_commits_and_image_folders(server: LiveServer, owner: Account) -> None:
    card = "---\nconfigs:\n- config_name: en\n  data_files:\n  - split: train\n    path: en/*.csv\n- config_name: fr\n  data_files: fr.csv\n---\n# Two languages\n"
    commit = _push(server, owner, "multi", {"README.md": card, "en/a.csv": "t\nhello\n", "fr.csv": "t\nbonjour\nsalut\n"})
    _wait(server, owner, f"{owner.name}/multi", commit)
    splits = _get(server, owner, "splits", dataset=f"{owner.name}/multi").json()["splits"]
    assert sorted((s["config"], s["split"]) for s in splits) == [("en", "train"), ("fr", "train")]
    commit = _push(server, owner, "multi", {"fr.csv": "t\nbonjour\nsalut\ncoucou\n"})
    _wait(server, owner, f"{owner.name}/multi", commit)
    assert _all_rows(server, owner, f"{owner.name}/multi", "fr", "train") == [{"t": "bonjour"}, {"t": "salut"}, {"t": "coucou"}]
    # Each test draws its own image: identical bytes would be deduplicated by the Xet client against
    # another user's private upload from this same process, which the CAS refuses to link across users.
    png = _png((200, 30, 30))
    commit = _push(server, owner, "pets", {"train/cat/1.png": png, "train/dog/2.png": png, "test/cat/3.png": png})
    _wait(server, owner, f"{owner.name}/pets", commit)
    first = _get(server, owner, "first-rows", dataset=f"{owner.name}/pets", config="default", split="train").json()
    features = {f["name"]: f["type"] for f in first["features"]}
    assert features["image"] == {"_type": "Image"} and features["label"]["names"] == ["cat", "dog"]
    src = first["rows"][0]["row"]["image"]["src"]
    assert httpx.get(src, headers={"Authorization": f"Bearer {owner.read_token}"}, follow_redirects=True).content == png
    stats = _get(server, owner, "statistics", dataset=f"{owner.name}/pets", config="default", split="train").json()
    label = next(s for s in stats["statistics"] if s["column_name"] == "label")
    assert label["column_type"] == "class_label" and label["column_statistics"]["frequencies"] == {"cat": 1, "dog": 1}


def test_private_datasets_need_access(server: LiveServer, owner: Account) -> None:
    from huggingface_hub import HfApi

    HfApi(endpoint=server.url, token=owner.write_token).create_repo(f"{owner.name}/secret-data", repo_type="dataset", private=True)
    commit = _push(server, owner, "secret-data", {"train.csv": "a\n1\n"})
    _wait(server, owner, f"{owner.name}/secret-data", commit)
    assert _get(server, None, "splits", dataset=f"{owner.name}/secret-data").status_code == 404
    stranger = server.account("stranger")
    assert _get(server, stranger, "rows", dataset=f"{owner.name}/secret-data", config="default", split="train").status_code == 404
    assert _get(server, owner, "rows", dataset=f"{owner.name}/secret-data", config="default", split="train").status_code == 200


@pytest.mark.slow
def test_libraries_read_the_same_rows(server: LiveServer, owner: Account, env_for) -> None:  # type: ignore[no-untyped-def]
    train, test = _rows_csv(300), _rows_csv(25, seed=7)
    commit = _push(server, owner, "libs", {"train.csv": train, "test.csv": test})
    _wait(server, owner, f"{owner.name}/libs", commit)
    script = f"""
        import json
        import datasets, pandas, duckdb, polars
        from huggingface_hub import HfFileSystem
        repo = "{owner.name}/libs"
        out = {{}}
        full = datasets.load_dataset(repo)
        out["load"] = {{s: full[s].to_list() for s in full}}
        stream = datasets.load_dataset(repo, split="train", streaming=True)
        out["stream"] = list(stream)
        path = f"hf://datasets/{{repo}}@refs%2Fconvert%2Fparquet/default/train/0000.parquet"
        out["pandas"] = pandas.read_parquet(path).to_dict("records")
        fs = HfFileSystem()
        con = duckdb.connect()
        con.register_filesystem(fs)
        out["duckdb"] = con.execute(f"SELECT count(*), sum(id) FROM read_parquet('{{path}}')").fetchone()
        with fs.open(path, "rb") as f:
            out["polars"] = polars.read_parquet(f).height
        out["original"] = pandas.read_csv(f"hf://datasets/{{repo}}/train.csv").shape[0]
        print(json.dumps(out, default=str))
    """
    result = last_json(run_client(script, env_for(owner.read_token)))
    assert isinstance(result, dict)
    want = {"train": _csv_table(train).to_pylist(), "test": _csv_table(test).to_pylist()}
    for split, rows in want.items():
        assert [r["id"] for r in result["load"][split]] == [r["id"] for r in rows]
        assert all(math.isclose(a["score"], b["score"]) and a["text"] == b["text"] for a, b in zip(result["load"][split], rows, strict=True))
    assert [r["id"] for r in result["stream"]] == [r["id"] for r in want["train"]]
    assert [r["id"] for r in result["pandas"]] == [r["id"] for r in want["train"]]
    assert result["duckdb"] == [300, sum(range(300))]
    assert result["polars"] == 300 and result["original"] == 300


def test_parquet_listing_and_statistics_of_labels(server: LiveServer, owner: Account) -> None:
    lines = ["kind,flag"] + [f"{['spam', 'ham'][i % 2]},{'true' if i % 3 == 0 else 'false'}" for i in range(90)]
    commit = _push(server, owner, "labels", {"train.csv": "\n".join(lines) + "\n"})
    _wait(server, owner, f"{owner.name}/labels", commit)
    stats = {s["column_name"]: s for s in _get(server, owner, "statistics", dataset=f"{owner.name}/labels", config="default", split="train").json()["statistics"]}
    assert stats["kind"]["column_type"] == "string_label" and stats["kind"]["column_statistics"]["frequencies"] == {"spam": 45, "ham": 45}
    assert stats["flag"]["column_type"] == "bool" and stats["flag"]["column_statistics"]["frequencies"] == {"True": 30, "False": 60}
    listing = _get(server, owner, "parquet", dataset=f"{owner.name}/labels").json()
    assert [f["filename"] for f in listing["parquet_files"]] == ["0000.parquet"]
    redirect = httpx.get(f"{server.url}/api/datasets/{owner.name}/labels/parquet/default/train/0.parquet",
                         headers={"Authorization": f"Bearer {owner.read_token}"})
    assert redirect.status_code == 302 and "refs%2Fconvert%2Fparquet" in redirect.headers["location"]
    info = _get(server, owner, "info", dataset=f"{owner.name}/labels", config="default").json()
    assert info["dataset_info"]["splits"]["train"]["num_examples"] == 90
    assert Path(info["dataset_info"]["builder_name"]).name == "csv"


def test_existing_datasets_are_converted_at_start(own_server: LiveServer, tmp_path: Path) -> None:
    """Datasets that predate the viewer (or were written while the server was down) convert at start."""
    account = own_server.account("early")
    folder = tmp_path / "early"
    folder.mkdir()
    (folder / "train.csv").write_text("a,b\n1,x\n2,y\n")
    own_server.kill()
    own_server.cli("import", str(folder), f"{account.name}/early", "--repo-type", "dataset")
    # Simulate a hub from before the viewer: no job recorded for this dataset.
    import sqlite3

    with sqlite3.connect(own_server.data_dir / "hubstead.db") as db:
        db.execute("DELETE FROM jobs")
    own_server.start()
    head = httpx.get(f"{own_server.url}/api/datasets/{account.name}/early", headers={"Authorization": f"Bearer {account.read_token}"}).json()["sha"]
    _wait(own_server, account, f"{account.name}/early", head)
    assert _all_rows(own_server, account, f"{account.name}/early", "default", "train") == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]


def _png(color: tuple[int, int, int]) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4, 3), color).save(buffer, format="PNG")
    return buffer.getvalue()
