#!/usr/bin/env bash
# Installs what the test suites use (Debian packages, cargo-nextest) when missing, so
# `make test` works on a fresh machine. Runs apt-get only if something is missing.
set -euo pipefail
pkgs=(runc crun busybox-static umoci skopeo iproute2 nftables iputils-ping curl jq tmux
      util-linux python3 protobuf-compiler libprotobuf-dev
      docker-registry apache2-utils openssl python3-jwt python3-cryptography sqlite3)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
sudo=""
if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update
    $sudo apt-get install -y --no-install-recommends "${missing[@]}"
fi
if ! cargo nextest --version >/dev/null 2>&1; then
    cargo install cargo-nextest --locked
fi
