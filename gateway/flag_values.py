"""Moved to ``gateway.cli.flag_values``; kept only for ``gateway.venue``.

The paper venue is leaving this package (issue 18, item 2) and imports this
name; delete this module when it does.
"""

from gateway.cli.flag_values import symbol_prices

__all__ = ["symbol_prices"]
