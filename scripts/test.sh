#!/usr/bin/env bash
# The project's test command (README "Test"): installs what the tests need on a fresh Debian machine,
# then type-checks and runs the whole jest suite (real sshd, real S3-compatible server, terraform
# validate, container builds with buildah).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pair in sshd:openssh-server sftp:openssh-client buildah:buildah debootstrap:debootstrap; do
  bin=${pair%%:*}; pkg=${pair#*:}
  command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || need+=("$pkg")
done
# debootstrap builds the test base image from Debian bookworm: it needs Debian's archive keyring
# (present on Debian, a package on Ubuntu runners).
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || need+=(debian-archive-keyring)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

npm ci --no-audit --no-fund --loglevel=error
npm run --silent typecheck
npx jest --ci "$@"
