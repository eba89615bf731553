"""The paper venue shares only the matching core with the gateway (venue/README.md).

It is its own distribution; what it imports from ``gateway`` is pinned here,
so a new dependency on the engine, journal, service or Alpaca adapter is a
decision, not an accident.
"""

from __future__ import annotations

import ast
from pathlib import Path

import paper_venue

# The simulated exchange and the values it takes and returns.
MATCHING_CORE = {
    "gateway.brokers.simulated.exchange",
    "gateway.brokers.simulated.config",
    "gateway.brokers.base",
    "gateway.brokers.errors",
    "gateway.domain",
}


def gateway_imports() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in Path(paper_venue.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            for name in names:
                if name == "gateway" or name.startswith("gateway."):
                    found.setdefault(name, set()).add(path.name)
    return found


def test_the_venue_imports_only_the_matching_core_from_the_gateway() -> None:
    imports = gateway_imports()
    assert imports  # the scan sees the venue's modules
    assert set(imports) <= MATCHING_CORE, {
        m: f for m, f in imports.items() if m not in MATCHING_CORE
    }


def test_the_gateway_does_not_ship_the_venue() -> None:
    import gateway

    assert not (Path(gateway.__file__).parent / "venue").exists()
