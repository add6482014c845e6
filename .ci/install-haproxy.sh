#!/usr/bin/env bash
# HAProxy for the cluster tests (tests/cluster), Debian's package: the load balancer they
# put in front of three Bazaar hosts. Run by tests as a process of their own, never as a
# system service.
set -euo pipefail
if command -v haproxy >/dev/null; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends haproxy >/dev/null
# The package starts a service on its default configuration: the tests need none of it.
if command -v systemctl >/dev/null && systemctl is-active --quiet haproxy 2>/dev/null; then
    systemctl stop haproxy
fi
haproxy -v | sed -n 1p
