#!/usr/bin/env bash
# Sets a fresh Debian 12 machine up for ktstr: installs every system package
# it needs (apt-get), builds the ktstr binary, and builds (or reuses from the
# cache) the default guest kernel with the sample sched_ext schedulers.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  # guest kernel build
  make gcc flex bison bc libelf-dev libssl-dev dwarves linux-source-6.12
  # sched_ext schedulers (BPF needs clang-19; clang-14 miscompiles scx_flatcg)
  clang-19 llvm-19 pkg-config zlib1g-dev
  # the kernel's sched_ext selftests runner links libzstd
  libzstd-dev
  # VMs and initramfs
  qemu-system-x86 busybox-static jq cpio
  # payloads scenarios run (stress-ng, fio, hackbench and cyclictest)
  stress-ng fio rt-tests
  # the own KVM VMM's tests: as/ld/objcopy for the tiny guests, iasl (ACPI),
  # dtc (aarch64 device tree)
  binutils acpica-tools device-tree-compiler
  # misc tools the pipeline and tests call
  xz-utils gzip tar git ca-certificates
  # the stats report's test renders it in a real headless browser
  chromium fonts-dejavu-core
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust from rustup.rs" >&2; exit 1; }
# `--dev` builds the debug profile instead: what `cargo test` builds too,
# so the test suite reuses every dependency (Polars included) instead of
# compiling them a second time, optimized (CI and the README's test
# command use it).
if [ "${1:-}" = "--dev" ]; then
  cargo build --workspace --tests --locked
  ./target/debug/ktstr kernel build
else
  cargo build --release --locked
  ./target/release/ktstr kernel build
fi
