"""Settings of the RPC layer: plain values, importable without grpc or protobuf."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """What the RPC layer decides on its own."""

    heartbeat_interval: float = 5.0
    """Seconds of silence on an update stream before a heartbeat is sent."""

    replay_page: int = 500
    """Journal records read per page while replaying for after_sequence."""
