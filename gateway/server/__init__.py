"""The gRPC server's own concerns: interceptor, drain gate, health, connection options."""

from gateway.server.drain import DrainGate
from gateway.server.health import ClosableHealthServicer, HealthReporter
from gateway.server.interceptor import GatewayInterceptor

__all__ = ["ClosableHealthServicer", "DrainGate", "GatewayInterceptor", "HealthReporter"]
