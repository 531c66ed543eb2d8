"""Kubernetes names without the API server: a real cgroup in the systemd ``kubepods``
layout gets the kubelet's ``pod``, ``namespace`` and ``container`` labels from a fake
``/var/log/containers`` + ``/var/log/pods`` tree in a temp dir, and they follow as pods
come and go.

The box-prefix rule: the test's groups live under ``/box/kubepods.slice/...`` (never a
real ``/kubepods``), and discovery is given only the Kubernetes factory, since the raw
catch-all would claim ``/box/kubepods.slice`` itself as a container; everything else
(walk, ``kubepods`` matching, name lookup, refs, the Prometheus and InfluxDB labels) is
the production path. The name parsers' properties are in tests/formats/test_kubelogs.py.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.discover import Discovery, KubernetesFactory
from collector.kubenames import KubeNames
from collector.lineproto import ref_tags
from collector.pipeline import Pipeline
from collector.sinks.prometheus import PrometheusSink
from tests.collector.conftest import CGROUP, V1_CONTROLLERS

CID = "c0ffee" + "0" * 52 + uuid.uuid4().hex[:6]
POD_UID = str(uuid.uuid4())


@pytest.fixture
def kube_group(request: pytest.FixtureRequest) -> Iterator[str]:
    """``/box/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/
    <runtime>-<id>.scope`` in every v1 controller (runtime ``cri-containerd`` unless the
    test asks for another); removed deepest first."""
    runtime = getattr(request, "param", "cri-containerd")
    pod_slice = f"kubepods-burstable-pod{POD_UID.replace('-', '_')}.slice"
    parts = ["box", "kubepods.slice", "kubepods-burstable.slice", pod_slice,
             f"{runtime}-{CID}.scope"]
    made: list[Path] = []
    for controller in V1_CONTROLLERS:
        base = CGROUP / controller
        if not base.is_dir():
            continue
        path = base.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        made.append(path)
    yield "/" + "/".join(parts)
    for path in made:
        for depth in range(4):  # the scope, the pod, the qos and the kubepods slices
            try:
                os.rmdir(path.parents[depth - 1] if depth else path)
            except OSError:
                break


def _link(logs: Path, pod: str, ns: str, container: str, cid: str) -> Path:
    target = logs / "pods" / f"{ns}_{pod}_{POD_UID}" / container / "0.log"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.touch()
    link = logs / "containers" / f"{pod}_{ns}_{container}-{cid}.log"
    link.parent.mkdir(exist_ok=True)
    link.symlink_to(target)
    return link


def _bump(d: Path) -> None:
    """Move a directory's mtime on (a fast test can change it twice within one tick)."""
    st = os.stat(d)
    os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_pod_container_gets_kubelet_names_that_follow_the_pods(kube_group: str,
                                                              tmp_path: Path) -> None:
    kube = KubeNames(str(tmp_path))
    discovery = Discovery([], "/sys/fs/cgroup", factories=(KubernetesFactory(),), kube=kube)
    prometheus = PrometheusSink()
    pipe = Pipeline(discovery, [prometheus])
    try:
        ref = discovery.scan()[kube_group]  # no log directories yet: no names
        assert (ref.pod, ref.namespace, ref.container) == ("", "", "")

        link = _link(tmp_path, "web-7d9f8", "shop", "nginx", CID)
        ref = discovery.scan()[kube_group]
        assert (ref.pod, ref.namespace, ref.container) == ("web-7d9f8", "shop", "nginx")
        assert str(tmp_path / "containers") in discovery.walked  # watched: a new pod wakes

        pipe.tick()
        text = prometheus.render().decode()
        [line] = [ln for ln in text.splitlines()
                  if ln.startswith("container_memory_usage_bytes{")
                  and f'id="{kube_group}"' in ln]
        assert 'container="nginx"' in line and 'namespace="shop"' in line
        assert 'pod="web-7d9f8"' in line
        assert ("pod", "web-7d9f8") in ref_tags(pipe.latest[kube_group].ref, "h")

        # the link goes (container restarted, new id): the pod dir still names the pod
        link.unlink()
        _bump(tmp_path / "containers")
        ref = discovery.scan()[kube_group]
        assert (ref.pod, ref.namespace, ref.container) == ("web-7d9f8", "shop", "")

        # the pod goes: no names
        for d in sorted((tmp_path / "pods").rglob("*"), reverse=True):
            d.unlink() if d.is_file() else d.rmdir()
        _bump(tmp_path / "pods")
        ref = discovery.scan()[kube_group]
        assert (ref.pod, ref.namespace, ref.container) == ("", "", "")
    finally:
        pipe.close()


def test_groups_outside_kubepods_get_no_kube_labels(kube_group: str, tmp_path: Path) -> None:
    """Without pod containers the kubelet's three label names are not added at all."""
    _link(tmp_path, "web", "shop", "nginx", "f" * 64)  # another container's link
    kube = KubeNames(str(tmp_path))
    kube.refresh()
    assert kube.names(CID, "/box/other") == ("", "", "")
    assert kube.names("f" * 64, "/whatever") == ("web", "shop", "nginx")
    discovery = Discovery([], "/sys/fs/cgroup", factories=(KubernetesFactory(),))
    prometheus = PrometheusSink()
    pipe = Pipeline(discovery, [prometheus])
    try:
        pipe.tick()
        text = prometheus.render().decode()
        assert 'namespace="' not in text and 'pod="' not in text
    finally:
        pipe.close()


@pytest.mark.parametrize("kube_group", ["docker"], indirect=True)
def test_docker_under_the_kubelet_keeps_its_state_file_and_gets_the_names(
        kube_group: str, tmp_path: Path) -> None:
    """A Docker container the kubelet runs (cri-dockerd): its state file names it, its
    group is under kubepods, and it gets the kubelet's three labels as well."""
    config = tmp_path / "docker" / "containers" / CID / "config.v2.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps({"ID": CID, "Name": "/k8s_nginx_web-7d9f8_shop",
                                  "Config": {"Image": "nginx"},
                                  "State": {"Running": True, "Pid": 0}}))
    _link(tmp_path / "logs", "web-7d9f8", "shop", "nginx", CID)
    discovery = Discovery([tmp_path / "docker"], "/sys/fs/cgroup",
                          factories=(KubernetesFactory(),), kube=KubeNames(str(tmp_path / "logs")))
    first = discovery.scan()[CID]
    assert (first.name, first.image, first.cgroup) == ("k8s_nginx_web-7d9f8_shop", "nginx",
                                                       kube_group)
    assert (first.pod, first.namespace, first.container) == ("web-7d9f8", "shop", "nginx")
    assert discovery.scan()[CID] == first  # an equal ref next scan: readers are not rebound
