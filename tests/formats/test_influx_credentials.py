"""The InfluxDB credentials file (netrc form) the stack writes and every reader parses:
round trip, host entries, and errors that never quote a token (it may be the password)."""

from __future__ import annotations

from pathlib import Path

import pytest

from formats.influx import credentials_text, parse_credentials, read_credentials


def test_round_trip_and_host_entries(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    path.write_text(credentials_text("boxwatch", "p4ss-word_1"))
    assert read_credentials(str(path)) == ("boxwatch", "p4ss-word_1")
    text = ("# comment\nmachine db.example login alice password a1\n"
            "default\n  login bob\n  password b2\n")
    assert parse_credentials(text, "db.example") == ("alice", "a1")
    assert parse_credentials(text, "other") == parse_credentials(text) == ("bob", "b2")


@pytest.mark.parametrize("text", ["default login u password", "secret-token-here\n",
                                  "machine h login u password p\n"])
def test_bad_files_are_one_line_without_their_content(tmp_path: Path, text: str) -> None:
    path = tmp_path / "credentials"
    path.write_text(text)
    with pytest.raises(ValueError) as err:
        read_credentials(str(path))
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert "secret-token-here" not in str(err.value)


def test_missing_file_and_unwritable_values(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="No such file"):
        read_credentials(str(tmp_path / "none"))
    for user, password in (("u", "with space"), ("", "p"), ("u", "")):
        with pytest.raises(ValueError):
            credentials_text(user, password)
