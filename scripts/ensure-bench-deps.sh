#!/usr/bin/env bash
# System packages the benchmark needs, installed when missing (bench/ansible.ts runs this before the Ansible leg):
# Debian's ansible-core, the Ansible the issue compares against; xargs and flock come with every Debian.
set -euo pipefail

missing=()
command -v ansible-playbook >/dev/null 2>&1 || missing+=(ansible-core)

if [ ${#missing[@]} -eq 0 ]; then exit 0; fi

if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
  echo "cutover: the benchmark needs ${missing[*]} (Debian packages); install them, or run npm run bench as root" >&2
  exit 1
fi
echo "cutover: installing ${missing[*]} for the benchmark (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
