"""Attacks on the OOM alert sender: one alert that cannot be encoded or sent ended the
sender thread (every later OOM kill went unreported), and a webhook URL with
``user:password@`` was taken by urllib for a host name (the alert never left) and its
password printed in error lines. Now each alert's error is counted and the next is
sent; credentials become Basic auth; URLs are redacted in every line."""

from __future__ import annotations

import base64
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

from cgroupstats.model import ContainerRef
from collector.alert_sender import AlertError, OomAlert, Sender, check_url

PASSWORD = "s3cr3t-pw"


def _alert(name: str, logs: list) -> OomAlert:
    ref = ContainerRef(id="a" * 64, name=name, image="busybox", cgroup=f"/box/{'a' * 64}",
                       cgroup_version=1, cgroup_paths={})
    return OomAlert(time_ns=time.time_ns(), ref=ref, host="h", oom_kills=1,
                    memory_limit=1 << 20, memory_peak=1 << 20, logs=logs)


def test_a_bad_alert_does_not_end_the_sender_and_credentials_are_basic_auth() -> None:
    seen: list[tuple[str, str | None]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((self.path, self.headers.get("Authorization")))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    errors: list[str] = []
    url = f"http://alerts:{PASSWORD}@127.0.0.1:{server.server_port}/hook"
    sender = Sender(url, timeout=5, retries=0, on_error=errors.append)
    sender.start()
    try:
        sender.put(_alert("bad", [{1: object()}]))  # cannot be encoded
        sender.put(_alert("good", []))
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sender.close()
        server.shutdown()
        server.server_close()
    assert seen == [("/hook", "Basic " + base64.b64encode(f"alerts:{PASSWORD}".encode()).decode())]
    assert sender.sent == 1 and sender.errors == 1
    assert len(errors) == 1 and "bad" in errors[0]
    assert all(PASSWORD not in e for e in errors)


def test_a_bad_url_is_named_redacted() -> None:
    try:
        check_url(f"ftp://alerts:{PASSWORD}@127.0.0.1/hook")
    except AlertError as e:
        assert PASSWORD not in str(e) and "xxxxx" in str(e)
    else:
        raise AssertionError("an ftp URL was accepted")
