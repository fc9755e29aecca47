#!/usr/bin/env bash
# System packages the project's real parts need (Debian): Java + Maven for the Kafka broker
# (keytool, from the JRE, and openssl make the security test's certificates), Prometheus (server
# and promtool) and kcat for the outside-tool tests, chromium for the live page's browser test
# (driven by Playwright, never a browser download) and npm to vendor the page's chart library. Installs only what is missing; needs root or
# sudo for apt-get. It never stops or kills a process it did not start: the services the new
# packages would start (the Debian prometheus package starts a server on :9090) are kept from
# starting by a policy-rc.d for the time of the install.
set -euo pipefail
missing=()
command -v java >/dev/null 2>&1 || missing+=(default-jre-headless)
command -v keytool >/dev/null 2>&1 || missing+=(default-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-system-deps: java, keytool, mvn, openssl, prometheus, promtool, kcat, chromium and npm are present"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

# invoke-rc.d and deb-systemd-invoke ask /usr/sbin/policy-rc.d before starting a service; exit
# code 101 means "not now". Ours exists only during the install, and an existing one is kept.
policy=${POLICY_RC_D:-/usr/sbin/policy-rc.d} # overridden by the tests only
added_policy=""
remove_policy() {
  if [ -n "$added_policy" ]; then $sudo rm -f "$policy"; fi
}
trap remove_policy EXIT
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# install-system-deps.sh: no service starts during its apt-get install\nexit 101\n' \
    | $sudo tee "$policy" >/dev/null
  $sudo chmod 755 "$policy"
  added_policy=1
fi

echo "install-system-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
  $(printf '%s\n' "${missing[@]}" | sort -u) >/dev/null

# A policy-rc.d that was there before may have let the new prometheus service start: stop that
# service (only it, by its unit name), and only when this run installed the package.
if [ -z "$added_policy" ] && printf '%s\n' "${missing[@]}" | grep -qx prometheus; then
  if command -v systemctl >/dev/null 2>&1; then
    $sudo systemctl stop prometheus.service 2>/dev/null || true
  elif command -v service >/dev/null 2>&1; then
    $sudo service prometheus stop 2>/dev/null || true
  fi
fi
