#!/usr/bin/env bash
# Installs a Vulkan driver the LiteRT GPU accelerator accepts, where missing.
#
# On machines without a GPU the accelerator runs on Mesa's software driver
# (lavapipe). Debian 12's own Mesa 22.3 is refused ("No adapters found");
# Mesa 25 from bookworm-backports works. Needs root; a no-op when a Vulkan
# driver of Mesa >= 25 (or any other ICD) is already installed.
set -euo pipefail

have_driver() {
  local version
  ls /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1 || return 1
  version=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null) || return 0
  dpkg --compare-versions "$version" ge 25 && dpkg -s libvulkan1 >/dev/null 2>&1
}

if have_driver; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install_vulkan: run as root, or install libvulkan1 and" \
       "mesa-vulkan-drivers (>= 25, bookworm-backports) yourself" >&2
  exit 0  # the GPU tests then fail and say what to install
fi
. /etc/os-release
if [ "${VERSION_CODENAME:-}" = "bookworm" ]; then
  echo "deb http://deb.debian.org/debian bookworm-backports main" \
    > /etc/apt/sources.list.d/bookworm-backports.list
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
else
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    mesa-vulkan-drivers libvulkan1 >/dev/null
fi
