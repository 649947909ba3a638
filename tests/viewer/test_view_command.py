"""`geosensord view` command: its options, and what it says when it cannot start."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from daemon.commands import view


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    view.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_defaults_serve_on_localhost_with_an_hour_of_backfill() -> None:
    args = parse()
    assert args.listen == "127.0.0.1:8080"
    assert args.minutes == 60.0
    assert args.tiles == ""


def test_missing_web_libraries_are_named_with_the_install_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(view, "missing_dependencies", lambda: ["starlette", "uvicorn"])
    assert view.run(parse()) == 1
    err = capsys.readouterr().err
    assert "pip install 'geosensord[view]'" in err
    assert "missing: starlette, uvicorn" in err


def test_bad_listen_address_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(view, "missing_dependencies", list)
    assert view.run(parse("--listen", "localhost")) == 2
    assert "HOST:PORT" in capsys.readouterr().err


def test_missing_config_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(view, "missing_dependencies", list)
    assert view.run(parse("--config", str(tmp_path / "nope.toml"))) == 2
    assert "no such file" in capsys.readouterr().err
