#!/usr/bin/env bash
# Installs the Debian packages kubelift's tests talk to: protoc (the CRI client's build script),
# a real containerd and runc, and a static busybox (the only image the tests run).
set -euo pipefail

packages=(protobuf-compiler containerd runc busybox-static)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
