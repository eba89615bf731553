"""Decimal numbers as the gateway writes them, and the one average it derives.

Every place that turns a ``Decimal`` into text (the API, the broker wires, the
journal) uses ``decimal_to_str``, so a number reads the same everywhere and no
digit is ever rounded away on the way out.
"""

from __future__ import annotations

from decimal import Decimal

# Average prices are quotients; keep them exact to this many decimal places.
AVERAGE_PRICE_QUANTUM = Decimal("1e-9")


def decimal_to_str(d: Decimal) -> str:
    """Render ``d`` as a plain decimal string: no exponent, no trailing zeros.

    ``format(d, "f")`` is exact (it never consults the context precision, unlike
    ``normalize()``), so no digit is ever rounded away here. Non-finite values
    have no such form and are refused.
    """
    if not d.is_finite():
        raise ValueError(f"cannot write a non-finite decimal: {d}")
    if d.is_zero():
        return "0"  # also folds "-0" and "0E-9"
    text = format(d, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def average_price(notional: Decimal, quantity: Decimal) -> Decimal:
    """The average price of ``quantity`` worth ``notional`` (sum of price times quantity).

    Quantized to ``AVERAGE_PRICE_QUANTUM``: a quotient does not end on its own.
    """
    return (notional / quantity).quantize(AVERAGE_PRICE_QUANTUM)
