"""The deployment recipe's files (deploy/, docs/deploy.md) stay true to the code: every manifest parses, every
``hubstead`` command line in them is one ``hubstead serve`` accepts, every ``HUBSTEAD_*`` setting they set is
one the hub reads, the compose file and the docs name the same services, the Kubernetes probes point at the
real endpoints, and the nginx configuration passes ``nginx -t`` where nginx is installed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SRC = ROOT / "src" / "hubstead"


def _compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def _k8s() -> list[dict[str, Any]]:
    return [doc for path in sorted((DEPLOY / "k8s").glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text())
            if doc and doc["kind"] != "Kustomization"]  # fmt: skip


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return list(doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []))


def _settings_read() -> set[str]:
    """Every environment variable name the hub's source mentions (what it can read)."""
    return {name for path in SRC.rglob("*.py") for name in re.findall(r"\b(?:HUBSTEAD|AWS)_[A-Z0-9_]+", path.read_text())}


def test_every_manifest_parses() -> None:
    paths = [*DEPLOY.glob("*.yml"), *(DEPLOY / "k8s").glob("*.yaml")]
    assert len(paths) >= 7
    for path in paths:
        docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        assert docs and all(isinstance(doc, dict) for doc in docs), path
    kustomized = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())["resources"]
    assert sorted(kustomized) == sorted(p.name for p in (DEPLOY / "k8s").glob("*.yaml") if p.stem != "kustomization")


def test_command_lines_are_ones_hubstead_serve_accepts() -> None:
    from hubstead.cli import build_parser

    lines = [s["command"] for s in _compose()["services"].values()
             if s.get("image", "").startswith("hubstead") and "entrypoint" not in s]  # fmt: skip
    lines += [c["args"] for doc in _k8s() for c in _containers(doc) if c["image"].startswith("hubstead") and "args" in c]
    assert len(lines) >= 6
    roles = []
    for line in lines:
        args = build_parser().parse_args(line)  # exits (SystemExit) on a flag serve does not have
        assert args.command == "serve"
        roles.append(args.role)
    assert {"api", "compute"} <= set(roles)


def test_settings_they_set_are_ones_the_hub_reads() -> None:
    read = _settings_read()
    set_here = set(_compose()["x-hubstead"]["environment"])
    for doc in _k8s():
        if doc["kind"] in ("ConfigMap", "Secret"):
            set_here |= set(doc.get("data") or doc.get("stringData") or {})
    unknown = sorted(name for name in set_here if name not in read)
    assert unknown == []


def test_compose_and_docs_name_the_same_services() -> None:
    services = set(_compose()["services"])
    docs = (ROOT / "docs" / "deploy.md").read_text()
    # docs/deploy.md lists the compose services in a table whose rows start with | `name` |
    table = set(re.findall(r"^\| `([a-z0-9-]+)` \|", docs, flags=re.M))
    assert table == services
    assert {"nginx", "postgres", "seaweedfs", "ray-head", "ray-worker"} <= services
    assert sum(1 for name in services if name.startswith("api-")) >= 2
    assert sum(1 for name in services if name.startswith("compute-")) >= 1


def test_kubernetes_probes_replicas_and_shared_volume() -> None:
    docs = {(doc["kind"], doc["metadata"]["name"]): doc for doc in _k8s()}
    api = docs[("Deployment", "hubstead-api")]
    container = _containers(api)[0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    compute = docs[("Deployment", "hubstead-compute")]
    assert compute["spec"]["replicas"] == 2  # one elected, one standby
    assert docs[("PersistentVolumeClaim", "hubstead-data")]["spec"]["accessModes"] == ["ReadWriteMany"]
    for doc in docs.values():  # every hub pod mounts the shared data dir
        for c in _containers(doc):
            assert {"name": "data", "mountPath": "/data"} in c.get("volumeMounts", []), doc["metadata"]["name"]
    assert ("Ingress", "hubstead") in docs and ("Service", "hubstead-api") in docs


def test_nginx_conf_passes_nginx_t(tmp_path: Path) -> None:
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        pytest.skip("nginx is not installed (scripts/install installs nginx-light)")
    text = (DEPLOY / "nginx.conf").read_text()
    for needed in ("proxy_request_buffering off", "proxy_buffering off", "client_max_body_size",
                   "proxy_read_timeout 3600s", "$connection_upgrade"):  # fmt: skip
        assert needed in text, needed
    # The compose hostnames resolve only inside compose: point them at loopback for the check.
    conf = tmp_path / "nginx.conf"
    conf.write_text(re.sub(r"server api-\d+:8000", "server 127.0.0.1:8000", text))
    result = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(conf), "-g", f"pid {tmp_path}/nginx.pid;"],
                            capture_output=True, text=True, timeout=30)  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_docker_compose_config_where_docker_compose_exists() -> None:
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("docker compose is not installed here")
    result = subprocess.run([docker, "compose", "-f", str(DEPLOY / "docker-compose.yml"), "config", "--quiet"],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
