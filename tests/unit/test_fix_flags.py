"""--broker fix and --fix-config: the file is read at parse time, its errors named."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import build_parser, config_from_args
from gateway.config import GatewayConfig


def parse(*args: str) -> GatewayConfig:
    return config_from_args(build_parser(environ={}).parse_args(list(args)))


def test_broker_fix_reads_the_session_file(tmp_path: Path) -> None:
    path = tmp_path / "fix.toml"
    path.write_text(
        'host = "127.0.0.1"\nport = 9878\nsender_comp_id = "GW"\ntarget_comp_id = "B"\n'
        '[accounts]\nmain = "ACC-1"\n'
    )
    config = parse("--broker", "fix", "--fix-config", str(path))
    assert config.broker == "fix"
    assert config.fix is not None
    assert (config.fix.port, config.fix.accounts) == (9878, {"main": "ACC-1"})


def test_broker_fix_without_a_file_is_refused() -> None:
    with pytest.raises(ValueError, match="--fix-config"):
        parse("--broker", "fix")


def test_a_bad_file_is_a_usage_error_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "fix.toml"
    path.write_text('host = "h"\nport = 70000\nsender_comp_id = "A"\ntarget_comp_id = "B"\n')
    with pytest.raises(SystemExit):
        parse("--broker", "fix", "--fix-config", str(path))
    assert "port 70000 is not a TCP port" in capsys.readouterr().err
