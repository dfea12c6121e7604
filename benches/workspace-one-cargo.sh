#!/usr/bin/env bash
# Two services of one workspace that share their dependencies (serde_json, regex), released
# together: the release's cargo phase (one `cargo build -p a -p b`, from the report's
# `timings.cargo_ms`) against the hand-written `cargo build --release -p a -p b` of the same
# workspace, both from a cold target directory, alternating, PAIRS times (default 2). Prints
# each pair and the median ratio (the issue's target: <= 1.1).
#
# usage: benches/workspace-one-cargo.sh [PAIRS]
# Needs: a Docker engine, cargo (crates.io reachable, or the two crates in its cache), python3,
# git. The images it made are removed at exit.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
pairs="${1:-2}"
cargo build -q --release --manifest-path "$root/Cargo.toml"
tool="$root/target/release/cargo-docker-release"
work="$(mktemp -d)"
prefix="cdr-bench-$$"
trap 'docker images --format "{{.Repository}}:{{.Tag}}" | grep "^$prefix" | xargs -r docker rmi >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

ws="$work/ws"
mkdir -p "$ws"
printf '[workspace]\nmembers = ["alpha", "beta"]\nresolver = "3"\n' >"$ws/Cargo.toml"
for name in alpha beta; do
  mkdir -p "$ws/$name/src"
  sed "s/hello/$name/g" "$root/examples/hello/src/main.rs" >"$ws/$name/src/main.rs"
  # The shared dependencies, used so that they are linked in.
  printf '\n#[allow(dead_code)]\nfn shared() -> String { let re = regex::Regex::new("a+").unwrap(); serde_json::json!({"m": re.is_match("aa")}).to_string() }\n' >>"$ws/$name/src/main.rs"
  cat >"$ws/$name/Cargo.toml" <<TOML
[package]
name = "$name"
version = "0.1.0"
edition = "2024"
license = "MIT"
publish = false

[dependencies]
regex = "1"
serde_json = "1"

[package.metadata.docker]
image = "$prefix/$name"
strategy = "host"
base = "scratch"
expose = [8080]

[package.metadata.docker.test]
ready = { timeout = "30s", http = { path = "/healthz", status = 200 } }
TOML
done
(cd "$ws" && cargo generate-lockfile -q && git init -q && git add -A \
  && git -c user.name=bench -c user.email=bench@example.com commit -qm bench)
cp -r "$ws" "$work/hand"

ratios=()
for pair in $(seq "$pairs"); do
  rm -rf "$ws/target" "$work/hand/target"
  docker images --format '{{.Repository}}:{{.Tag}}' | grep "^$prefix" | xargs -r docker rmi >/dev/null 2>&1 || true
  # A fresh commit each round, so that nothing is reused.
  (cd "$ws" && echo "// $pair" >>alpha/src/main.rs && echo "// $pair" >>beta/src/main.rs \
    && git -c user.name=bench -c user.email=bench@example.com commit -qam "round $pair")
  (cd "$ws" && "$tool" docker-release --workspace --message-format json >"$work/report.json" 2>"$work/release.err") \
    || { cat "$work/release.err" >&2; exit 1; }
  release_ms=$(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(max(s['timings']['cargo_ms'] for s in r['services']))" "$work/report.json")
  static=(--target "$(rustc -vV | sed -n 's/^host: //p')")
  hand_ms=$(cd "$work/hand" && python3 - "${static[@]}" <<'PY'
import os, subprocess, sys, time
start = time.monotonic()
subprocess.run(["cargo", "build", "--release", "-q", "--locked", "-p", "alpha", "--bin", "alpha", "-p", "beta", "--bin", "beta", *sys.argv[1:]],
               check=True, env={**os.environ, "RUSTFLAGS": "-C target-feature=+crt-static"})
print(int((time.monotonic() - start) * 1000))
PY
)
  ratio=$(python3 -c "print(f'{$release_ms / $hand_ms:.2f}')")
  ratios+=("$ratio")
  printf 'pair %s: release cargo phase %5d ms, hand cargo build %5d ms, ratio %s\n' "$pair" "$release_ms" "$hand_ms" "$ratio"
done
printf 'median ratio: %s\n' "$(printf '%s\n' "${ratios[@]}" | python3 -c 'import sys,statistics; print(f"{statistics.median(float(x) for x in sys.stdin):.2f}")')"
