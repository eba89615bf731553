#!/usr/bin/env bash
# Install Debian packages that the build or the tests need, without starting any
# daemon they contain: `tools/apt-install.sh nginx maven`. Used by .ci/run (for
# everything missing) and by `make test` (nginx, for tests/e2e/test_nginx_proxy.py).
# Needs root, as CI has; callers check that and say what to do otherwise.
set -euo pipefail
(($#)) || exit 0
export DEBIAN_FRONTEND=noninteractive
echo "installing with apt-get: $*"
timeout 10m apt-get update -q
# A daemon installed here must not start: the tests start nginx themselves, on
# their own ports. policy-rc.d answering 101 tells the package scripts so.
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
timeout 15m apt-get install -y -q --no-install-recommends "$@"
