"""The deployment files: ``compose/docker-compose.yml`` checked by Debian's
``docker-compose config`` and against the repository (every mounted path and referenced
file exists; pinned images; healthchecks, restart policies, read-only host mounts), and
``compose/kubernetes/`` validated offline against the Kubernetes JSON schemas
(``kubernetes-validate``, strict: unknown fields fail)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "compose"
K8S = COMPOSE / "kubernetes"
K8S_VERSION = "1.30.0"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    exe = shutil.which("docker-compose")
    assert exe, "docker-compose is missing: scripts/bootstrap installs Debian's docker-compose"
    proc = subprocess.run([exe, "--env-file", ".env.example", "config"], cwd=COMPOSE,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load(proc.stdout)


def test_compose_config_is_valid_and_complete(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"influxdb", "loki", "prometheus", "alertmanager", "grafana",
                             "collector", "shipper"}
    for name, svc in services.items():
        assert svc.get("restart") == "unless-stopped", name
        assert "healthcheck" in svc, name
        if "build" not in svc:
            assert re.search(r":v?\d+\.\d+\.\d+$", svc["image"]), f"{name}: unpinned {svc['image']}"
    assert services["grafana"]["image"] == "grafana/grafana:11.6.0"
    assert services["influxdb"]["image"].startswith("influxdb:2.")
    assert set(compose["volumes"]) >= {"influxdb-data", "grafana-data", "shipper-registry"}
    # the lifecycle API would let any local user POST /-/quit to the published port
    assert "--web.enable-lifecycle" not in services["prometheus"]["command"]


def test_compose_mounts_exist_and_host_paths_are_read_only(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        for vol in svc.get("volumes", []):
            source, target, mode = (vol.split(":") + ["rw"])[:3] if isinstance(vol, str) else \
                (vol["source"], vol["target"], "ro" if vol.get("read_only") else "rw")
            if source.startswith(str(REPO)):
                assert Path(source).exists(), f"{name}: {source} is not in the repo"
                assert mode == "ro", f"{name}: repo file {source} mounted {mode}"
            elif source.startswith("/"):
                assert mode == "ro", f"{name}: host path {source} mounted {mode}"
            else:
                assert source in compose["volumes"], f"{name}: unknown volume {source}"
    collector = compose["services"]["collector"]
    assert collector["pid"] == "host"
    mounts = {v.split(":")[0]: v.split(":")[2] for v in collector["volumes"]}
    assert mounts == {"/sys/fs/cgroup": "ro", "/var/lib/docker": "ro", "/proc": "ro"}
    shipper = compose["services"]["shipper"]
    assert "/var/lib/docker/containers:/var/lib/docker/containers:ro" in shipper["volumes"]
    assert any(v.startswith("shipper-registry:/var/lib/boxwatch") for v in shipper["volumes"])
    for svc in (collector, shipper):
        assert svc["cap_drop"] == ["ALL"] and svc["read_only"] is True
        assert svc["build"]["dockerfile"] == "compose/Dockerfile"


def test_compose_references_resolve_in_the_repo() -> None:
    prom = yaml.safe_load((COMPOSE / "prometheus.yml").read_text())
    assert prom["rule_files"] == ["/etc/prometheus/rules/rules.yml"]
    text = (COMPOSE / "docker-compose.yml").read_text()
    assert "../grafana/prometheus/rules.yml:/etc/prometheus/rules/rules.yml:ro" in text
    provider = yaml.safe_load((REPO / "grafana/provisioning/dashboards/boxwatch.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards/boxwatch"
    assert "../grafana/dashboards:/var/lib/grafana/dashboards/boxwatch:ro" in text
    yaml.safe_load((COMPOSE / "alertmanager.yml").read_text())
    dockerfile = (COMPOSE / "Dockerfile").read_text()
    for base in re.findall(r"^FROM (\S+)", dockerfile, re.M):
        assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base), base
    copied = set()
    for src in re.findall(r"^COPY (?!--)(.+) \S+$", dockerfile, re.M):
        for item in src.split():
            assert (REPO / item).exists(), f"Dockerfile copies {item}, not in the repo"
            copied.add(item)
    # the image's programs and the bottom layer they import (tests/test_layering.py)
    assert {"collector", "shipper", "boxwatch", "formats", "cgroupstats"} <= copied
    assert re.search(r"^USER 10001", dockerfile, re.M)
    env_example = (COMPOSE / ".env.example").read_text()
    used = set(re.findall(r"\$\{(\w+)", text))
    defined = set(re.findall(r"^(\w+)=", env_example, re.M))
    assert used <= defined, f"not in .env.example: {sorted(used - defined)}"


def k8s_docs() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            out += [(path.name, d) for d in yaml.safe_load_all(path.read_text()) if d]
    return out


@pytest.mark.parametrize("name,doc", k8s_docs(), ids=lambda v: v if isinstance(v, str) else "")
def test_kubernetes_manifests_validate_against_the_schemas(name: str, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_validator_catches_mistakes() -> None:
    doc = next(d for n, d in k8s_docs() if d["kind"] == "DaemonSet")
    bad = yaml.safe_load(yaml.safe_dump(doc))
    bad["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["pth"] = "/x"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


def test_daemonsets_have_what_a_node_agent_needs() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    docs = dict((d["kind"] + "/" + d["metadata"]["name"], d) for _, d in k8s_docs())
    sa = docs["ServiceAccount/boxwatch"]
    assert sa["automountServiceAccountToken"] is False
    assert not any(k.startswith(("Role", "ClusterRole")) for k in docs)  # no API access
    for name, port in (("boxwatch-collector", 9180), ("boxwatch-shipper", 9181)):
        ds = docs[f"DaemonSet/{name}"]
        pod = ds["spec"]["template"]
        spec = pod["spec"]
        assert pod["metadata"]["annotations"] == {"prometheus.io/scrape": "true",
                                                  "prometheus.io/port": str(port),
                                                  "prometheus.io/path": "/metrics"}
        assert spec["tolerations"] == [{"operator": "Exists"}]
        assert spec["serviceAccountName"] == "boxwatch"
        (c,) = spec["containers"]
        assert c["resources"]["requests"] and c["resources"]["limits"]
        for probe in ("livenessProbe", "readinessProbe"):
            assert c[probe]["httpGet"]["path"] == "/healthz"
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
        host = {v["name"]: v["hostPath"]["path"] for v in spec["volumes"] if "hostPath" in v}
        for m in c["volumeMounts"]:
            if m["name"] in host and host[m["name"]] != "/var/lib/boxwatch":
                assert m.get("readOnly") is True, f"{name}: {m['name']} is writable"
        refs = [e["configMapRef"]["name"] for e in c.get("envFrom", [])]
        assert refs == ["boxwatch-config"]
        config_keys = set(docs["ConfigMap/boxwatch-config"]["data"])
        for arg in c["args"]:
            for var in re.findall(r"\$\((\w+)\)", arg):
                assert var in config_keys or var in {e["name"] for e in c.get("env", [])}, var
    assert docs["DaemonSet/boxwatch-collector"]["spec"]["template"]["spec"]["hostPID"] is True
    # Kubernetes names from the kubelet's log directories, read-only (collector.kubenames)
    collector = docs["DaemonSet/boxwatch-collector"]["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m for m in collector["containers"][0]["volumeMounts"]}
    for path in ("/var/log/containers", "/var/log/pods", "/var/lib/containerd"):
        assert mounts[path]["readOnly"] is True
    assert "--kube-log-root=/var/log" in collector["containers"][0]["args"]
