"""Every host the store knows, and events as they happen, in a real browser against the
live stack: a second host is simulated by writing its points and log lines (tagged
``host=node2``) into the stack's real InfluxDB, for a container named like a local one.
The overview lists it on its host; its page draws the store's points and gains new ones;
its logs come from the store, history then live (polled), numbered without a gap or a
duplicate, and stay apart from the local container of the same name. A container whose
healthcheck flips shows the health event on its open page without a reload."""

from __future__ import annotations

import os
import re
import time
from typing import Any

import pytest

from tests.support.wait import wait_until as wait
from tests.web.conftest import REMOTE_ID, OtherHost, api
from tests.web.stack import SHOTS, Stack

pytestmark = pytest.mark.slow  # a whole stack, a browser

pytest.importorskip("playwright.sync_api", reason="playwright not installed")
if not os.access("/usr/bin/chromium", os.X_OK):
    pytest.skip("Debian's chromium is not installed (scripts/bootstrap installs it)",
                allow_module_level=True)

def numbers(page: Any, word: str) -> list[int]:
    return [int(n) for n in re.findall(rf"{word} line (\d+)", page.locator("#lines")
                                       .inner_text())]


def test_the_overview_lists_another_hosts_container(stack: Stack, node2: OtherHost,
                                                    page: Any) -> None:
    page.goto(stack.url + "/")
    row = page.locator(f'tr[data-id="{REMOTE_ID}"]')
    row.wait_for(timeout=20000)
    cells = row.inner_text()
    assert "node2" in cells and "running" in cells and "busybox" in cells
    assert re.fullmatch(r"[1-9]m \d+s", row.locator(".uptime").inner_text())  # its start
    local = page.locator(f'tr[data-id="{stack.ids["wchat"]}"]')
    assert "node2" not in local.inner_text() and local.locator("td").nth(1).inner_text()
    spark = row.locator("canvas.cpu")
    wait(lambda: int(spark.get_attribute("data-n") or 0) >= 2, 20,
         "the remote CPU sparkline from the store")
    assert "30.0 MiB / 96.0 MiB" in row.locator(".memv").inner_text()
    assert row.locator("td.num").first.inner_text() == "0"  # restarts: a start, no restart
    last = float(spark.get_attribute("data-last"))
    wait(lambda: float(spark.get_attribute("data-last")) > last, 20,
         "the remote sparkline moving without a reload")
    assert 20 < float(row.locator(".cpuv").inner_text().split()[0]) < 40
    assert row.locator("a", has_text="logs").get_attribute("href") == "/logs?c=wchat%40node2"
    page.screenshot(path=str(SHOTS / "overview-two-hosts.png"), full_page=True)
    page.locator("#filter").fill("node2")  # the filter knows hosts
    assert page.locator("#containers tbody tr").count() == 1


def test_another_hosts_container_page_draws_the_store_then_live(stack: Stack,
                                                                node2: OtherHost,
                                                                page: Any) -> None:
    time.sleep(3)  # a few seconds of points in the store
    page.goto(stack.url + "/c/" + REMOTE_ID)
    times = "window.bwCharts.cpu ? window.bwCharts.cpu.data[0] : []"
    first = wait(lambda: page.evaluate(times), 20, "the CPU chart from the store")
    assert "on node2" in page.locator("#title").inner_text()
    assert not page.locator("#console-open").is_visible()  # box exec runs on its own host
    cpu = [v for v in page.evaluate("window.bwCharts.cpu.data[1]") if v is not None]
    assert cpu and abs(cpu[-1] - 30) < 3  # 0.3 s of CPU a second
    wait(lambda: page.evaluate(times)[-1] > first[-1] + 1.5, 20, "live points from the store",
         seen=lambda: page.evaluate(times)[-3:])
    assert page.locator("#errors").inner_text() == ""
    page.screenshot(path=str(SHOTS / "container-remote.png"), full_page=True)


def test_another_hosts_logs_run_from_history_into_the_polled_store(stack: Stack,
                                                                  node2: OtherHost,
                                                                  page: Any) -> None:
    time.sleep(2)
    page.goto(stack.url + "/logs?c=wchat%40node2&since=1h")
    wait(lambda: len(numbers(page, "remote")) >= 3, 20, "the remote history",
         seen=lambda: page.locator("#lines").inner_text()[-300:])
    at_load = numbers(page, "remote")[-1]
    wait(lambda: numbers(page, "remote")[-1] >= at_load + 4, 20, "live remote lines",
         seen=lambda: numbers(page, "remote")[-3:])
    got = numbers(page, "remote")
    assert got == list(range(1, len(got) + 1)), got  # no gap, no duplicate at the seam
    assert numbers(page, "chat") == []  # the local wchat stays out
    assert "wchat@node2" in page.locator("#lines .c").first.inner_text()
    page.screenshot(path=str(SHOTS / "logs-remote.png"), full_page=True)
    local = api(stack, "/api/logs?c=wchat&since=1h")
    assert not any("remote line" in e["m"] for e in local["entries"])
    both = api(stack, "/api/logs?c=wchat&c=wchat%40node2&since=1h")
    labels = {e["c"] for e in both["entries"]}
    assert labels == {"wchat", "wchat@node2"}


def test_a_health_flip_shows_on_the_open_page(stack: Stack, page: Any) -> None:
    cid = stack.box.ok("run", "-d", "--name", "whealth", "--network", "none",
                       "--health-cmd", "test ! -e /tmp/bad", "--health-interval", "1s",
                       "--health-retries", "1", "busybox", "sleep", "600").strip()
    stack.ids["whealth"] = cid  # removed with the others
    wait(lambda: '"healthy"' in stack.box.ok("inspect", "-f", "{{json .State.Health.Status}}",
                                             cid), 30, "whealth healthy")
    page.goto(stack.url + "/c/" + cid)
    wait(lambda: page.evaluate("window.bwCharts.cpu ? window.bwCharts.cpu.data[0].length : 0"),
         30, "the charts")
    events = page.locator("#events")
    assert "unhealthy" not in events.inner_text()
    stack.box.ok("exec", cid, "touch", "/tmp/bad")
    wait(lambda: "health_status: unhealthy" in events.inner_text(), 15,
         "the unhealthy event pushed to the open page", seen=events.inner_text)
    marked = page.evaluate("""() => { const u = window.bwCharts.cpu, t = u.data[0];
        return window.bwEvents().filter(e => e.action === 'health_status: unhealthy')
          .map(e => [e.t, t[0], t[t.length - 1]]); }""")
    assert marked and all(lo - 1 <= t <= hi + 2 for t, lo, hi in marked)  # on the chart
    stack.box.ok("exec", cid, "rm", "/tmp/bad")
    wait(lambda: "health_status: healthy" in events.inner_text(), 15,
         "the healthy event", seen=events.inner_text)
    page.screenshot(path=str(SHOTS / "container-health.png"), full_page=True)
