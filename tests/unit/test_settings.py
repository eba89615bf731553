"""Flags, environment variables and --help all come from the config dataclasses."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.cli import SETTINGS, build_parser, config_from_args
from gateway.config import GatewayConfig


def parse(*args: str, **environ: str) -> GatewayConfig:
    return config_from_args(build_parser(environ=environ).parse_args(list(args)))


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.flag)
def test_every_setting_names_a_real_field_and_says_what_it_does(setting: object) -> None:
    from gateway.cli.settings import Setting

    assert isinstance(setting, Setting)
    fields = {f.name for f in dataclasses.fields(setting.owner)}
    assert setting.field in fields
    assert len(setting.describe()) > 20


def test_flags_and_names_are_unique() -> None:
    flags = [s.flag for s in SETTINGS]
    assert len(flags) == len(set(flags))


def test_nothing_given_is_the_dataclass_defaults() -> None:
    assert parse() == GatewayConfig()


def test_environment_and_flags_reach_nested_configs_and_a_flag_wins() -> None:
    config = parse(
        "--ack-wait",
        "0.5",
        "--sim-prices",
        "AAPL=187.25",
        GATEWAY_ACK_WAIT="9",
        GATEWAY_HEARTBEAT_INTERVAL="1.5",
        GATEWAY_MAX_STREAMS_PER_PRINCIPAL="7",
        GATEWAY_LOG_FORMAT="json",
        GATEWAY_INSECURE="yes",
        GATEWAY_DATA_DIR="/var/lib/gw",
    )
    assert config.engine.ack_wait == 0.5
    assert config.service.heartbeat_interval == 1.5
    assert config.limits.max_streams == 7
    assert config.log.format == "json"
    assert config.insecure is True
    assert config.data_dir == Path("/var/lib/gw")
    assert config.sim.symbols["AAPL"].price == Decimal("187.25")


def test_a_switch_flag_beats_its_variable() -> None:
    assert parse("--no-reflection", GATEWAY_REFLECTION="true").reflection is False
    assert parse(GATEWAY_REFLECTION="off").reflection is False


def test_salvage_is_never_taken_from_the_environment() -> None:
    assert parse(GATEWAY_SALVAGE_JOURNAL="true").salvage_journal is False
    assert parse("--salvage-journal").salvage_journal is True


def test_retention_flags_reach_the_engine_and_refuse_negative_values(
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = parse("--retention", "0", GATEWAY_RETENTION_CACHE="25")
    assert (config.engine.retention, config.engine.retention_cache) == (0.0, 25)
    assert parse().engine.retention == 3600.0
    for bad in (("--retention", "-1"), ("--retention", "nan"), ("--retention-cache", "-2")):
        with pytest.raises(SystemExit):
            parse(*bad)
        assert bad[0] in capsys.readouterr().err
