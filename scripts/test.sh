#!/usr/bin/env bash
# The project's test command (README "Test"): installs what the tests need on a fresh Debian machine,
# then type-checks and runs the whole jest suite (real sshd, real S3-compatible server, terraform
# validate, container builds with buildah).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pair in sshd:openssh-server sftp:openssh-client buildah:buildah debootstrap:debootstrap pkill:procps unshare:util-linux setfacl:acl proftpd:proftpd-core; do
  bin=${pair%%:*}; pkg=${pair#*:}
  command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || need+=("$pkg")
done
# /usr/bin/time measures peak RSS in the lister's memory tests (`time` alone is a shell keyword).
[ -x /usr/bin/time ] || need+=(time)
# The SFTP test servers: ProFTPD's mod_sftp, and an object-store-like server on Debian's asyncssh
# (run by Debian's own python3, whatever python3 is first on PATH).
[ -f /usr/lib/proftpd/mod_sftp.so ] || need+=(proftpd-mod-crypto)
/usr/bin/python3 -c 'import asyncssh' >/dev/null 2>&1 || need+=(python3-asyncssh)
# debootstrap builds the test base image from Debian bookworm: it needs Debian's archive keyring
# (present on Debian, a package on Ubuntu runners).
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || need+=(debian-archive-keyring)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # With recommends, as on the machines these tests were proven on (buildah brings its runtimes).
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

npm ci --no-audit --no-fund --loglevel=error
npm run --silent typecheck
npm run --silent lint
npm run --silent format:check
npx jest --ci "$@"
