"""The risk limits file: strict parsing, hot reload, a bad reload keeping the last good."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.risk import LimitsFile, LimitsFileError, RiskLimits, parse_limits
from gateway.risk.bucket import TokenBucket

GOOD = """
[defaults]
max_order_quantity = 1000
max_order_notional = 250000.10   # a TOML float, read as an exact decimal
max_open_orders = 50
price_collar_percent = "5"
denied_symbols = ["GME"]

[accounts.acct-1]
max_order_quantity = 100
allowed_symbols = ["AAPL", "MSFT"]
"""


def test_a_good_file_gives_defaults_and_merged_overrides() -> None:
    limits = parse_limits(GOOD)
    assert limits.defaults.max_order_notional == Decimal("250000.10")
    assert limits.defaults.max_order_quantity == 1000
    merged = limits.for_account("acct-1")
    assert merged.max_order_quantity == 100  # its own
    assert merged.max_open_orders == 50  # the default's
    assert merged.allowed_symbols == frozenset({"AAPL", "MSFT"})
    assert merged.denied_symbols == frozenset({"GME"})
    assert limits.for_account("other") == limits.defaults
    assert not limits.is_empty
    assert parse_limits("").is_empty


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[defaults]\nmax_order_qty = 5", "max_order_qty"),  # a typo never lifts a limit
        ("[defaults]\nmax_order_quantity = -5", "max_order_quantity"),
        ("[defaults]\nmax_order_quantity = 0", "max_order_quantity"),
        ("[defaults]\nmax_order_quantity = 'nan'", "max_order_quantity"),
        ("[defaults]\nmax_order_quantity = 'lots'", "max_order_quantity"),
        ("[defaults]\nmax_order_quantity = true", "max_order_quantity"),
        ("[defaults]\nmax_open_orders = 2.5", "max_open_orders"),
        ("[defaults]\ndenied_symbols = 'GME'", "denied_symbols"),
        ("[limits]\nmax_open_orders = 1", "limits"),
        ("[accounts]\nacct-1 = 5", "accounts.acct-1"),
        ("[defaults\n", "TOML"),
    ],
)
def test_a_bad_file_is_refused_naming_the_problem(text: str, named: str) -> None:
    with pytest.raises(LimitsFileError) as caught:
        parse_limits(text, "limits.toml")
    assert named in str(caught.value)
    assert "limits.toml" in str(caught.value)


def write(path: Path, text: str, mtime_ns: int) -> None:
    path.write_text(text)
    # Distinct modification times: the watcher must not depend on the clock's grain.
    os.utime(path, ns=(mtime_ns, mtime_ns))


def test_the_file_reloads_when_it_changes_and_a_bad_version_keeps_the_last_good(
    tmp_path: Path,
) -> None:
    path = tmp_path / "limits.toml"
    write(path, "[defaults]\nmax_order_quantity = 10\n", 1_000_000_000)
    seen: list[RiskLimits] = []
    watched = LimitsFile(path, seen.append)
    watched.load()
    assert seen[-1].defaults.max_order_quantity == 10
    assert not watched.poll()  # unchanged: nothing happens

    write(path, "[defaults]\nmax_order_quantity = 20\n", 2_000_000_000)
    assert watched.poll()
    assert seen[-1].defaults.max_order_quantity == 20
    assert watched.healthy
    assert watched.reloads == 1

    write(path, "[defaults]\nmax_order_quantity = -1\n", 3_000_000_000)
    assert not watched.poll()
    assert watched.limits.defaults.max_order_quantity == 20  # the last good stays
    assert len(seen) == 2
    assert not watched.healthy
    assert "max_order_quantity" in watched.last_error
    assert watched.failures == 1
    assert not watched.poll()  # the same bad version is refused once, not on every poll
    assert watched.failures == 1

    path.unlink()
    assert not watched.poll()
    assert watched.limits.defaults.max_order_quantity == 20
    write(path, "[defaults]\nmax_order_quantity = 30\n", 4_000_000_000)
    assert watched.poll()
    assert watched.healthy
    assert watched.limits.defaults.max_order_quantity == 30


def test_a_bad_file_at_start_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "limits.toml"
    path.write_text("[defaults]\nmax_position = 'x'\n")
    with pytest.raises(LimitsFileError, match="max_position"):
        LimitsFile(path, lambda _: None).load()
    with pytest.raises(LimitsFileError, match=r"unreadable|No such file"):
        LimitsFile(tmp_path / "absent.toml", lambda _: None).load()


def test_the_bucket_lets_a_burst_through_then_refills_at_the_rate() -> None:
    bucket = TokenBucket(Decimal(2), 3, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert not bucket.take(0.4)  # 0.8 of a token
    assert bucket.take(0.5)  # one whole token after half a second at 2/s
    assert not bucket.take(0.5)
    assert TokenBucket(Decimal("0.5"), None, now=0.0).burst == 1


def test_the_documented_example_file_is_valid() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
    text = docs.read_text(encoding="utf-8")
    example = text.split("```toml\n", 1)[1].split("```", 1)[0]
    limits = parse_limits(example, "docs/operations.md")
    assert limits.defaults.max_order_notional == 250000
    assert limits.for_account("acct-1").allowed_symbols == frozenset({"AAPL", "MSFT"})
    assert limits.for_account("acct-1").max_open_orders == 200  # the default, kept
