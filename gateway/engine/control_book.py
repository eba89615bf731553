"""Positions and halts: the state the control events build, with its durable view.

Owned by the ledger (the actor's task). Changes go through ``apply`` (live
and replayed alike); reads through ``durable_*`` see only what is committed,
as order reads do, so no client sees a position a crash could take back.
"""

from __future__ import annotations

from gateway.domain.controls import (
    ControlEvent,
    ControlState,
    Position,
    PositionChanged,
    TradingHalt,
    TradingMode,
    stricter,
)

_Key = tuple[str, str]


class ControlBook:
    """Positions by (account, symbol) and halts by scope ("" is gateway-wide)."""

    def __init__(self) -> None:
        self._positions: dict[_Key, Position] = {}
        self._halts: dict[str, TradingHalt] = {}
        # What changed since the last commit, as it was at it (None: absent).
        self._positions_before: dict[_Key, Position | None] = {}
        self._halts_before: dict[str, TradingHalt | None] = {}

    # -------------------------------------------------------------- writes

    def apply(self, event: ControlEvent, *, durable: bool = False) -> None:
        """Apply one control event (``durable``: replayed, already committed)."""
        if isinstance(event, PositionChanged):
            self.put_position(event.position, durable=durable)
            return
        halt = event.halt
        scope = halt.scope_account
        if not durable and scope not in self._halts_before:
            self._halts_before[scope] = self._halts.get(scope)
        if halt.mode is TradingMode.ACTIVE:
            self._halts.pop(scope, None)
        else:
            self._halts[scope] = halt

    def put_position(self, position: Position, *, durable: bool = False) -> None:
        """Set a position (from a ``PositionChanged``): the fill path's short cut."""
        key = (position.account, position.symbol)
        if not durable and key not in self._positions_before:
            self._positions_before[key] = self._positions.get(key)
        self._positions[key] = position

    def committed(self) -> None:
        """Everything applied so far is durable."""
        self._positions_before.clear()
        self._halts_before.clear()

    def restore(self, state: ControlState) -> None:
        """Load a checkpoint's positions and halts (all durable)."""
        self._positions = {(p.account, p.symbol): p for p in state.positions}
        self._halts = {h.scope_account: h for h in state.halts}

    def snapshot(self) -> ControlState:
        """Everything, for a checkpoint (taken when nothing is pending)."""
        return ControlState(list(self._positions.values()), list(self._halts.values()))

    # --------------------------------------------------------------- reads

    def position(self, account: str, symbol: str) -> Position | None:
        """The latest position (committed or not): what the next change builds on."""
        return self._positions.get((account, symbol))

    def halts(self) -> list[TradingHalt]:
        """Every halt in force (latest), the gateway-wide one first, then by account."""
        return sorted(self._halts.values(), key=lambda h: (h.scope_account != "", h.scope_account))

    def halt(self, scope: str) -> TradingHalt | None:
        """The halt of ``scope`` in force (latest), if any."""
        return self._halts.get(scope)

    def mode(self, account: str) -> TradingMode:
        """The effective trading mode of ``account``, including changes not yet durable.

        The actor checks new orders against it: a halt applied in this batch
        already stops orders behind it in the same batch.
        """
        if not self._halts:
            return TradingMode.ACTIVE  # the common case: one dict test
        mode = TradingMode.ACTIVE
        for scope in ("", account):
            halt = self._halts.get(scope)
            if halt is not None:
                mode = stricter(mode, halt.mode)
        return mode

    def durable_positions(self, account: str, symbols: frozenset[str]) -> list[Position]:
        """The committed positions of ``account`` (only ``symbols``, if any), by symbol."""
        found: list[Position] = []
        for key, latest in self._positions.items():
            if key[0] != account or (symbols and key[1] not in symbols):
                continue
            position = self._positions_before.get(key, latest)
            if position is not None:
                found.append(position)
        return sorted(found, key=lambda p: p.symbol)

    def durable_halts(self) -> list[TradingHalt]:
        """The committed halts, the gateway-wide one first, then by account."""
        halts = dict(self._halts)
        for scope, before in self._halts_before.items():
            if before is None:
                halts.pop(scope, None)
            else:
                halts[scope] = before
        return sorted(halts.values(), key=lambda h: (h.scope_account != "", h.scope_account))
