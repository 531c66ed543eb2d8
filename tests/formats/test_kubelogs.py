"""The kubelet's log names (``formats.kubelogs``): what is written parses back, anything
else is refused, and the pod uid is found in both cgroup drivers' paths."""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from formats.kubelogs import (
    ContainerLog,
    PodDir,
    parse_container_log,
    parse_pod_dir,
    pod_uid_of_cgroup,
)

DNS = st.from_regex(r"\A[a-z0-9]([a-z0-9.-]{0,30}[a-z0-9])?\Z", fullmatch=True)
CID = st.text("0123456789abcdef", min_size=64, max_size=64)


@settings(max_examples=300)
@given(pod=DNS, ns=DNS, container=DNS, cid=CID)
def test_container_log_names_parse_back(pod: str, ns: str, container: str, cid: str) -> None:
    name = f"{pod}_{ns}_{container}-{cid}.log"
    assert parse_container_log(name) == ContainerLog(pod, ns, container, cid)
    assert parse_container_log(name[:-4]) is None
    assert parse_container_log(f"{pod}_{ns}-{cid}.log") is None
    assert parse_container_log(f"{pod}_{ns}_{container}-{cid[:-1]}.log") is None


@settings(max_examples=300)
@given(text=st.text(max_size=120))
def test_anything_else_is_no_name(text: str) -> None:
    log = parse_container_log(text)
    assert log is None or text == f"{log.pod}_{log.namespace}_{log.container}-" \
                                  f"{log.container_id}.log"
    pod = parse_pod_dir(text)
    assert pod is None or text == f"{pod.namespace}_{pod.pod}_{pod.uid}"


@given(pod=DNS, ns=DNS)
def test_pod_dirs_and_cgroups_give_the_same_uid(pod: str, ns: str) -> None:
    uid = str(uuid.uuid4())
    assert parse_pod_dir(f"{ns}_{pod}_{uid}") == PodDir(ns, pod, uid)
    cid = "a" * 64
    systemd = (f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod"
               f"{uid.replace('-', '_')}.slice/cri-containerd-{cid}.scope")
    assert pod_uid_of_cgroup(systemd) == uid
    assert pod_uid_of_cgroup(f"/kubepods.slice/kubepods-pod{uid.replace('-', '_')}.slice/"
                             f"crio-{cid}.scope") == uid
    assert pod_uid_of_cgroup(f"/kubepods/burstable/pod{uid}/{cid}") == uid
    assert pod_uid_of_cgroup(f"/kubepods/pod{uid}/{cid}") == uid
    assert pod_uid_of_cgroup(f"/docker/{cid}") == ""
