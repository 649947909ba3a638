"""`geosensord view` command: its options, and what it says when it cannot start."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from daemon.commands import view
from daemon.commands.view import view_options
from daemon.config import Config, ConfigErrors, load_config


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    view.add_arguments(parser)
    return parser.parse_args(list(argv))


def config_with(tmp_path: Path, view_table: str = "") -> Config:
    path = tmp_path / "config.toml"
    path.write_text(f'[station]\nid = "s"\nlat = 1.0\nlon = 2.0\n{view_table}')
    return load_config(str(path))


def test_defaults_serve_on_localhost_with_an_hour_of_backfill(tmp_path: Path) -> None:
    chosen = view_options(parse(), config_with(tmp_path).view)
    assert chosen == {"listen": "127.0.0.1:8080", "minutes": 60.0, "max_backfill": 20_000,
                      "max_cells": 1000, "tiles": ""}


def test_the_view_table_sets_the_defaults_and_flags_override_it(tmp_path: Path) -> None:
    config = config_with(tmp_path, '[view]\nlisten = "0.0.0.0:9000"\nminutes = 15.0\n'
                                   'tiles = "https://tiles.example/{z}/{x}/{y}.png"\n')
    chosen = view_options(parse(), config.view)
    assert chosen["listen"] == "0.0.0.0:9000" and chosen["minutes"] == 15.0
    assert chosen["tiles"] == "https://tiles.example/{z}/{x}/{y}.png"
    chosen = view_options(parse("--listen", "127.0.0.1:7000", "--max-cells", "50"), config.view)
    assert chosen["listen"] == "127.0.0.1:7000" and chosen["max_cells"] == 50
    assert chosen["minutes"] == 15.0


def test_a_bad_view_table_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigErrors) as err:
        config_with(tmp_path, '[view]\nlisten = "localhost"\nmax_cels = 5\n')
    text = str(err.value)
    assert "view.listen" in text and "HOST:PORT" in text
    assert "view.max_cels" in text and "max_cells" in text  # did you mean


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
