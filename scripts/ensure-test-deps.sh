#!/usr/bin/env bash
# System packages the tests need, installed when missing (npm test runs this first, as `pretest`):
# Debian's Chromium for the Web UI browser test (Playwright's own browser download cannot work on these machines),
# and Debian's OpenSSH server: the ssh tests start real sshd processes on loopback ports, standing for hosts.
# (The PowerShell grammar that checks the Windows templates is an npm devDependency: npm install brings it.)
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)   # a self-signed certificate for the TLS probe test
command -v tmux >/dev/null 2>&1 || missing+=(tmux)         # a real terminal for the `cutover watch` test

if [ ${#missing[@]} -eq 0 ]; then exit 0; fi

if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
  echo "cutover: the tests need ${missing[*]} (Debian packages); install them, or run npm test as root" >&2
  exit 1
fi
echo "cutover: installing ${missing[*]} for the tests (apt-get)"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
