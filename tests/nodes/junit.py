"""The guest's pytest results (JUnit XML) read on the host, one outcome per test, so each
kernel test node 1 runs under its own pytest is reported by name on the host; and the
names the host expects, read from the test files without importing them."""

from __future__ import annotations

import ast
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Outcome:
    """One test's result in the guest: "passed", "failed", "error" or "skipped"."""

    status: str
    message: str = ""
    detail: str = ""
    seconds: float = 0.0


def expected(repo: Path, files: tuple[str, ...]) -> list[str]:
    """``path::test_name`` of every module-level test function in ``files``."""
    ids = []
    for rel in files:
        tree = ast.parse((repo / rel).read_text(), rel)
        ids += [f"{rel}::{node.name}" for node in tree.body
                if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")]
    return ids


def parse(xml: str) -> dict[str, Outcome]:
    """``path::name`` -> Outcome, from pytest's --junitxml (classname "tests.x.test_y")."""
    if not xml.strip():
        return {}
    out: dict[str, Outcome] = {}
    for case in ET.fromstring(xml).iter("testcase"):
        path = case.get("classname", "").replace(".", "/") + ".py"
        name = case.get("name", "")
        seconds = float(case.get("time") or 0)
        status, message, detail = "passed", "", ""
        for tag in ("failure", "error", "skipped"):
            found = case.find(tag)
            if found is not None:
                status = "failed" if tag == "failure" else tag
                message = found.get("message", "")
                detail = found.text or ""
                break
        key = f"{path}::{name}"
        if key in out and out[key].status != "passed" and status == "passed":
            continue  # a teardown error is a second <testcase> of the same name
        out[key] = Outcome(status, message, detail, seconds)
    return out
