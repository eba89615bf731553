"""The benchmark harness behind ``make bench`` (run as ``python -m bench``).

It starts a gateway (defaults: simulated broker, durable SQLite journal) and a
bare grpc.aio echo server of the same API in separate processes, drives both
with the same load generators (``ghz`` for unary calls, ``streamclient`` for
streams), and writes ``docs/benchmarks.md``, ``docs/benchmarks.json`` and the
plots. Every figure is printed with its ratio to the echo ceiling measured in
the same run, and each target with pass/short: a benchmark never fails CI.
"""
