"""``boxwatch web`` in a real browser (Playwright driving Debian's Chromium) against a live
local stack (``boxwatch up``) with real containers: the overview and its sparklines, the
container page's charts (history, then live, then InfluxDB ranges), logs from the store
into the live tail (a new line within a second; a killed server resumed with no gap and no
duplicate), the exec console (echo; ``stty size`` follows the window). Screenshots of
every page go to build/test-output/web/."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.support.wait import wait_until as wait
from tests.web.conftest import OtherHost, api, collector_rows
from tests.web.stack import SHOTS, Stack

pytestmark = pytest.mark.slow  # a whole stack, a browser

pytest.importorskip("playwright.sync_api", reason="playwright not installed")
if not os.access("/usr/bin/chromium", os.X_OK):
    pytest.skip("Debian's chromium is not installed (scripts/bootstrap installs it)",
                allow_module_level=True)


def test_overview_lists_the_containers_and_a_sparkline_moves(stack: Stack, page: Any) -> None:
    wait(lambda: collector_rows(stack, "wburn") >= 3, 60, "the collector sampling wburn",
         logs=stack.logs())
    page.goto(stack.url + "/")
    row = page.locator(f'tr[data-id="{stack.ids["wburn"]}"]')
    row.wait_for(timeout=20000)
    assert page.locator(f'tr[data-id="{stack.ids["wchat"]}"]').count() == 1
    assert "running" in row.inner_text()
    assert re.fullmatch(r"\d+m \d+s|\d+h \d+m", row.locator(".uptime").inner_text())
    spark = row.locator("canvas.cpu")
    wait(lambda: spark.get_attribute("data-last"), 20, "a first live CPU point for wburn")
    first = spark.get_attribute("data-last")
    moved = wait(lambda: (v := spark.get_attribute("data-last")) != first and v, 20,
                 "the CPU sparkline gaining a point", seen=lambda: spark.get_attribute("data-last"))
    assert float(moved) > float(first)
    chat = page.locator(f'tr[data-id="{stack.ids["wchat"]}"] .cpuv')

    def busier() -> bool:  # a burner under --cpus 0.5 against a logger (a loaded machine)
        burn, idle = (float((x.inner_text().split() or ["0"])[0])
                      for x in (row.locator(".cpuv"), chat))
        return burn > 1 and burn > 2 * idle

    wait(busier, 20, "the burner's CPU above the logger's",
         seen=lambda: (row.locator(".cpuv").inner_text(), chat.inner_text()))
    page.locator("#filter").fill("wburn")  # (a simulated host's "wchat" may be listed too)
    assert page.locator("#containers tbody tr").count() == 1
    assert page.locator("#containers tbody tr").get_attribute("data-id") == stack.ids["wburn"]
    page.locator("#filter").fill("")
    page.screenshot(path=str(SHOTS / "overview.png"), full_page=True)


def test_an_oom_kill_is_an_alert_on_top_and_an_event_on_its_page(stack: Stack,
                                                                  page: Any) -> None:
    cid = stack.box.ok("run", "-d", "--name", "woom", "--network", "none", "-m", "16m",
                       "busybox", "sh", "-c", "sleep 3; x=a; while :; do x=$x$x; done").strip()
    stack.ids["woom"] = cid  # removed with the others
    page.goto(stack.url + "/")
    alerts = page.locator("#alerts")

    def alerted() -> bool:
        page.reload()
        page.locator("#count").wait_for()
        return "woom" in alerts.inner_text()

    wait(alerted, 90, "woom's OOM alert on the overview", seen=alerts.inner_text,
         logs=stack.logs())
    assert "ContainerOOMKilled" in alerts.inner_text()
    page.screenshot(path=str(SHOTS / "overview-alert.png"), full_page=True)
    page.goto(stack.url + "/c/" + cid)
    wait(lambda: "oom_kill" in page.locator("#events").inner_text(), 30,
         "the oom_kill event on the container page", seen=lambda: page.locator("#events")
         .inner_text())


def chart_times(page: Any) -> list[float]:
    return page.evaluate("window.bwCharts.cpu ? window.bwCharts.cpu.data[0] : []")


def test_container_page_has_history_then_live_points(stack: Stack, page: Any) -> None:
    wait(lambda: collector_rows(stack, "wburn") >= 5, 60, "5 s of collector history")
    started = time.time()
    page.goto(stack.url + "/c/" + stack.ids["wburn"])
    first = wait(lambda: chart_times(page), 20, "the CPU chart drawn from history")
    assert len(first) >= 4 and first[0] < started - 3  # points from before the page opened
    cpu = page.evaluate("window.bwCharts.cpu.data[1]")
    assert max(v for v in cpu if v is not None) > 10
    mem = page.evaluate("window.bwCharts.mem.data")
    assert mem[3][-1] == 64 * 1024 * 1024  # the limit line
    # A sample taken just before the page opened can arrive live; wait for one sampled after.
    live = wait(lambda: (t := chart_times(page)) and t[-1] > max(first[-1], started) and t,
                20, "a live point sampled after the page opened",
                seen=lambda: chart_times(page)[-3:])
    assert first[-1] in live  # live points extend the history
    assert page.locator("#events").inner_text() is not None
    page.screenshot(path=str(SHOTS / "container-live.png"), full_page=True)
    page.locator('button[data-range="1h"]').click()
    wait(lambda: page.locator("#chart-cpu").get_attribute("data-points") not in (None, "0")
         and page.locator('button[data-range="1h"].on').count(), 20,
         "the 1 h range from InfluxDB",
         seen=lambda: (page.locator("#errors").inner_text(), api(stack, "/api/containers/"
                                                                 + stack.ids["wburn"]
                                                                 + "/range?range=1h")))
    page.screenshot(path=str(SHOTS / "container-1h.png"), full_page=True)


def chat_numbers(page: Any) -> list[int]:
    text = page.locator("#lines").inner_text()
    return [int(n) for n in re.findall(r"chat line (\d+)", text)]


def assert_contiguous(numbers: list[int]) -> None:
    assert numbers, "no lines"
    expected = list(range(numbers[0], numbers[0] + len(numbers)))
    if numbers != expected:
        gaps = sorted(set(expected) - set(numbers))[:5]
        dups = sorted({n for n in numbers if numbers.count(n) > 1})[:5]
        raise AssertionError(f"not contiguous: missing {gaps}, duplicated {dups}, "
                             f"{numbers[:5]}...{numbers[-5:]}")


def test_logs_history_runs_into_the_live_tail(stack: Stack, page: Any) -> None:
    time.sleep(3)  # some lines in the store before the page opens
    page.goto(stack.url + "/logs?c=wchat&since=1h")
    wait(lambda: len(chat_numbers(page)) > 10, 20, "history lines")
    assert page.locator("#lines span[style*='color']").count() > 0  # ANSI green rendered
    assert "\x1b" not in page.locator("#lines").inner_text()
    wait(lambda: page.locator("#status").inner_text() == "live", 10, "the live stream")
    stack.box.ok("exec", "wchat", "sh", "-c", "echo marker-one-second > /proc/1/fd/1")
    written = time.monotonic()
    page.locator("#lines", has_text="marker-one-second").wait_for(timeout=5000)
    assert time.monotonic() - written < 1.0, "the line took longer than a second"
    numbers = chat_numbers(page)
    assert numbers[0] == 1  # the whole history since the container started
    assert_contiguous(numbers)
    page.screenshot(path=str(SHOTS / "logs.png"), full_page=True)


def test_logs_search_stream_filter_and_download(stack: Stack, page: Any) -> None:
    page.goto(stack.url + "/logs?c=wchat&grep=line%201%5B0-9%5D%5Cb")  # "line 1[0-9]\b"
    wait(lambda: len(chat_numbers(page)) >= 10, 20, "the lines matching the search",
         seen=lambda: page.locator("#lines").inner_text()[-300:])
    assert set(chat_numbers(page)[:10]) == set(range(10, 20))
    assert page.locator("#lines mark").first.inner_text() == "line 10"
    page.goto(stack.url + "/logs?c=wchat&stream=stderr")
    wait(lambda: "chat err 10" in page.locator("#lines").inner_text(), 20, "stderr lines")
    assert chat_numbers(page) == []  # stdout left out
    assert page.locator("#lines .err").count() == page.locator("#lines .line").count()
    with page.expect_download() as dl:
        page.locator("#download").click()
    text = Path(dl.value.path()).read_text()
    assert "chat err 10" in text and "chat line" not in text


def remote_numbers(page: Any) -> list[int]:
    return [int(n) for n in re.findall(r"remote line (\d+)", page.locator("#lines").inner_text())]


def test_a_killed_sse_connection_resumes_exactly(stack: Stack, node2: OtherHost,
                                                 page: Any) -> None:
    """Local files and another host's store tail in one view, across a killed server."""
    page.goto(stack.url + "/logs?c=wchat&c=wburn&c=wchat%40node2&since=1h")
    wait(lambda: page.locator("#status").inner_text() == "live", 20, "the live stream")
    wait(lambda: len(chat_numbers(page)) > 5, 10, "lines")
    before = chat_numbers(page)[-1]
    wait(lambda: remote_numbers(page), 10, "another host's lines")
    remote_before = remote_numbers(page)[-1]
    web = stack.status()["web"]
    os.kill(web["pid"], signal.SIGKILL)  # the server side of the stream dies
    wait(lambda: page.locator("#status").inner_text() == "reconnecting…", 10, "the drop seen")
    time.sleep(2)  # lines written while no server runs
    wait(lambda: (r := stack.status()["web"])["health"] == "healthy" and r["pid"] != web["pid"],
         60, "the web UI restarted by the supervisor", logs=stack.logs())
    wait(lambda: chat_numbers(page)[-1] > before + 20, 30, "lines after the reconnect",
         seen=lambda: chat_numbers(page)[-3:])
    wait(lambda: remote_numbers(page)[-1] > remote_before + 3, 30,
         "another host's lines after the reconnect", seen=lambda: remote_numbers(page)[-3:])
    assert_contiguous(chat_numbers(page))
    assert remote_numbers(page) == list(range(1, remote_numbers(page)[-1] + 1))


def term_text(page: Any) -> str:
    return page.evaluate("""() => { const b = window.bwTerm.buffer.active, out = [];
        for (let i = 0; i < b.length; i++) out.push(b.getLine(i).translateToString(true));
        return out.join('\\n'); }""")


def test_exec_console_runs_echo_and_follows_the_window_size(stack: Stack, page: Any) -> None:
    page.goto(stack.url + "/c/" + stack.ids["wchat"])
    page.locator("#console-open").click()
    wait(lambda: "#" in term_text(page), 20, "the shell's prompt", seen=lambda: term_text(page))
    page.keyboard.type("echo hello-$((6*7))\n")
    wait(lambda: "hello-42" in term_text(page).replace("echo hello-$((6*7))", ""), 10,
         "echo's output", seen=lambda: term_text(page))
    page.screenshot(path=str(SHOTS / "console.png"), full_page=True)
    for width, height in ((1000, 700), (1400, 1000)):
        page.set_viewport_size({"width": width, "height": height})
        page.evaluate("window.dispatchEvent(new Event('resize'))")
        time.sleep(0.5)
        rows, cols = page.evaluate("[window.bwTerm.rows, window.bwTerm.cols]")
        tag = f"size-{width}"
        page.keyboard.type(f"echo {tag} $(stty size)\n")
        found = wait(lambda tag=tag: re.search(rf"{tag} (\d+) (\d+)", term_text(page)), 10,
                     "stty size's answer", seen=lambda: term_text(page)[-300:])
        assert (int(found.group(1)), int(found.group(2))) == (rows, cols)


def test_a_non_loopback_server_without_the_token_answers_401(tmp_path: Path,
                                                             browser: Any) -> None:
    from tests.support.servers import free_port

    web = [sys.executable, "-m", "boxwatch.cli", "web"]
    bare = subprocess.run([*web, "--listen", "0.0.0.0:1"], capture_output=True, text=True,
                          timeout=30)
    assert bare.returncode == 2 and "not loopback" in bare.stderr
    assert len(bare.stderr.strip().splitlines()) == 1
    token = tmp_path / "token"
    token.write_text("s3cret-token\n")
    port = free_port()
    proc = subprocess.Popen([*web, "--listen", f"0.0.0.0:{port}",
                             "--auth-token-file", str(token), "--collector-url", "",
                             "--influx-url", "", "--alertmanager-url", ""],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        wait(lambda: _status(base + "/healthz") == 200, 20, "the server")
        for path in ("/", "/api/overview", "/api/logs?c=x", "/static/common.js",
                     "/ws/exec/x", "/c/x"):
            code, body = _get(base + path)
            assert (code, body) == (401, b"401 Unauthorized\n"), path
        code, _ = _get(base + "/api/config", {"Authorization": "Bearer wrong"})
        assert code == 401
        code, body = _get(base + "/api/config", {"Authorization": "Bearer s3cret-token"})
        assert code == 200 and json.loads(body) == {"exec": False}
        code, _ = _get(base + "/api/config", {"Cookie": "boxwatch_token=s3cret-token"})
        assert code == 200
        ctx = browser.new_context(viewport={"width": 1280, "height": 500})
        try:  # the browser: a bare 401, then the page once the link carried the token
            page = ctx.new_page()
            resp = page.goto(base + "/")
            assert resp.status == 401
            assert page.locator("body").inner_text().strip() == "401 Unauthorized"
            page.screenshot(path=str(SHOTS / "unauthorized.png"))
            page.goto(base + "/?token=s3cret-token")
            page.locator("#count").wait_for()
            assert "token" not in page.url
            assert page.evaluate("fetch('/api/config').then(r => r.status)") == 200
        finally:
            ctx.close()
    finally:
        proc.terminate()
        proc.wait(10)


def test_pages_say_which_part_is_down(browser: Any) -> None:
    """A web UI whose collector, InfluxDB and Alertmanager are all down still serves every
    page, each naming what is missing."""
    from tests.support.servers import free_port

    port, closed = free_port(), f"http://127.0.0.1:{free_port()}"
    proc = subprocess.Popen([sys.executable, "-m", "boxwatch.cli", "web", "--listen",
                             f"127.0.0.1:{port}", "--collector-url", closed, "--influx-url",
                             closed, "--alertmanager-url", closed],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    ctx = browser.new_context(viewport={"width": 1280, "height": 700})
    try:
        wait(lambda: _status(base + "/healthz") == 200, 20, "the server")
        page = ctx.new_page()
        page.goto(base + "/")
        banner = page.locator("#errors")
        wait(lambda: "collector unavailable" in banner.inner_text(), 20, "the collector banner")
        text = banner.inner_text()
        assert "InfluxDB unavailable" in text and "Alertmanager unavailable" in text
        page.screenshot(path=str(SHOTS / "degraded-overview.png"))
        page.goto(base + "/c/" + "0" * 64)
        wait(lambda: "collector unavailable" in banner.inner_text(), 20, "the container banner")
        page.goto(base + "/logs?c=nothing-here")
        wait(lambda: "log store unavailable" in banner.inner_text(), 20, "the logs banner")
    finally:
        ctx.close()
        proc.terminate()
        proc.wait(10)


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _status(url: str) -> int:
    try:
        return _get(url)[0]
    except OSError:
        return 0


def test_the_readme_shows_a_screenshot_of_a_page() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    shots = re.findall(r"!\[[^\]]*\]\((docs/[^)]+\.png)\)", readme)
    assert shots, "no screenshot in the README"
    for rel in shots:
        data = (Path(__file__).resolve().parents[2] / rel).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, rel
