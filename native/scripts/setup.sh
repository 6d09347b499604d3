#!/usr/bin/env bash
# Install what building and testing lkl needs, on a fresh Debian machine.
set -euo pipefail

need_apt=()
[ -f /usr/src/linux-source-6.12.tar.xz ] || need_apt+=(linux-source-6.12)
for tool in gcc make bc bison flex rsync ccache ip ethtool; do
	command -v "$tool" >/dev/null || need_apt+=("$tool")
done
command -v ip >/dev/null || need_apt+=(iproute2)
# lkl.proxy: its sandbox (libseccomp through ctypes), its tests and bench/proxy.py;
# unmodified programs on the preload library (tests/test_preload.py).
ldconfig -p | grep -q 'libseccomp\.so\.2 ' || need_apt+=(libseccomp2)
for tool in curl iperf3 socat nginx; do
	command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || need_apt+=("$tool")
done
# The attach and capture tests: sysctl (procps), tcpdump, strace.
for tool in sysctl tcpdump strace; do
	command -v "$tool" >/dev/null || need_apt+=("$tool")
done
if [ ${#need_apt[@]} -gt 0 ]; then
	# Tool names that are not package names.
	pkgs=()
	for p in "${need_apt[@]}"; do
		case "$p" in
		ip) pkgs+=(iproute2) ;;
		nginx) pkgs+=(nginx-light) ;;
		sysctl) pkgs+=(procps) ;;
		*) pkgs+=("$p") ;;
		esac
	done
	echo "[lkl setup] apt-get install ${pkgs[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "${pkgs[@]}" libelf-dev >/dev/null
fi
echo "[lkl setup] system packages present"

# Python tools for building and testing (already present ones are kept).
python3 -m pip install -q --disable-pip-version-check \
	"cython>=3" setuptools wheel pytest pytest-timeout hypothesis pyroute2 psutil \
	ruff mypy
# uvloop: the host-side reference loop of bench/python_net.py.
python3 -m pip install -q --disable-pip-version-check uvloop
# TLS, DNS and CLI tests (lkl.ssl, lkl.resolver): test certificates, DNS messages, an HTTPS client.
python3 -m pip install -q --disable-pip-version-check cryptography dnspython requests
python3 -m pip install -q --disable-pip-version-check dpkt	# pcap checks (test_capture.py)
echo "[lkl setup] python packages present"
