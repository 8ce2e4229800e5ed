#!/usr/bin/env bash
# Installs the system packages the tests and the agent need: nmap (the attacker in the labs),
# nftables (kernel detection and blocking), iproute2 (network namespaces), tcpdump (reads the
# kernel detector's NFLOG group, see docs/kernel.md), hping3 (forged-source packets in the
# quarantine lab) and masscan (a second SYN scanner), tini (the container's init); systemd-analyze
# (package systemd: the install test verifies the unit), useradd (passwd), setpriv (util-linux) and
# curl (the control-plane lab runs requests as users it creates). Debian/Ubuntu; needs root. Safe to
# run again.
set -euo pipefail
need=()
command -v nmap >/dev/null 2>&1 || need+=(nmap)
command -v nft >/dev/null 2>&1 || need+=(nftables)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v tcpdump >/dev/null 2>&1 || need+=(tcpdump)
command -v hping3 >/dev/null 2>&1 || need+=(hping3)
command -v masscan >/dev/null 2>&1 || need+=(masscan)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v useradd >/dev/null 2>&1 || need+=(passwd)
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
command -v curl >/dev/null 2>&1 || need+=(curl)
if [ ${#need[@]} -eq 0 ]; then
  echo "setup-system: nmap, nft, ip, tcpdump, hping3, masscan, systemd-analyze, useradd, setpriv and curl are present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-system: need root to install ${need[*]} (apt-get); the lab tests will skip without them" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}"
echo "setup-system: installed ${need[*]}"
