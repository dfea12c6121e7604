#!/usr/bin/env bash
# A workspace of three services (host strategy, scratch, static) where one service changes per
# commit: `cargo docker-release --workspace` against the cargo incremental build of that change
# alone, side by side. Each round makes a fresh commit whose changed service's binary really
# differs, then runs, in turn:
#   1. plain cargo: `cargo build --release --locked --target <host> -p <changed>` (static, as the
#      tool builds it) in a second copy of the workspace with its own target dir;
#   2. the release of the whole workspace (`--force`: the version stays, the revision moves).
# One warm-up round is not counted. Prints each round, the medians and the median of
# (release - cargo): what the release adds to the build (the goal of issue 9: at most 2 s).
#
# usage: benches/workspace-one-changed.sh [ROUNDS]   (default: 5)
#
# Needs: a Docker engine, cargo, jq, python3, git. The images it made are removed at exit.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
rounds="${1:-5}"
for tool in docker cargo jq git python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool: install it first" >&2; exit 2; }
done

id="$$-$(date +%s)"
work="$(mktemp -d)"
services=(alpha beta gamma)
cleanup() {
  for s in "${services[@]}"; do
    docker images --format '{{.ID}}' "cdr-bench/ws-$id-$s" | sort -u | xargs -r docker rmi -f >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
since() { python3 -c "import sys, time; print(f'{time.time() - float(sys.argv[1]):.2f}')" "$1"; }
median() { python3 -c "import statistics, sys; print(f'{statistics.median(map(float, sys.argv[1:])):.2f}')" "$@"; }
commit() { git -c user.name=bench -c user.email=bench@localhost commit -qam "$1"; }

# A service that says its name and stays up (the test stage checks that it is still running).
service_main() {
  printf 'fn main() {\n    println!("%s");\n    loop {\n        std::thread::park();\n    }\n}\n' "$1"
}

echo "== a workspace of ${#services[@]} services in $work/ws"
mkdir -p "$work/ws" && cd "$work/ws"
printf '[workspace]\nmembers = [%s]\nresolver = "3"\n' \
  "$(printf '"%s", ' "${services[@]}" | sed 's/, $//')" > Cargo.toml
for s in "${services[@]}"; do
  mkdir -p "$s/src"
  cat > "$s/Cargo.toml" <<EOF
[package]
name = "$s"
version = "1.0.0"
edition = "2024"
publish = false

[package.metadata.docker]
image = "cdr-bench/ws-$id-$s"
EOF
  service_main "$s" > "$s/src/main.rs"
done
printf '/target\n' > .gitignore
cargo generate-lockfile --offline --quiet
git init -q . && git add -A && commit "bench workspace"

echo "== building cargo-docker-release (release) and warming both target dirs"
(cd "$root" && cargo build --quiet --locked --release --bin cargo-docker-release)
tool="$root/target/release/cargo-docker-release"
target="$(rustc -vV | sed -n 's/^host: //p')"
git clone -q "$work/ws" "$work/plain"
build_plain() {
  (cd "$work/plain" && RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --quiet --release --locked --target "$target" -p "$1")
}
for s in "${services[@]}"; do build_plain "$s"; done
"$tool" docker-release --workspace --force --manifest-path "$work/ws/Cargo.toml" >"$work/release.log" 2>&1 || {
  cat "$work/release.log" >&2; echo "the first release failed" >&2; exit 1; }

stamp=0
# A commit changing service alpha's binary, in both copies.
change() {
  stamp=$((stamp + 1))
  for dir in "$work/ws" "$work/plain"; do
    service_main "alpha $stamp" > "$dir/alpha/src/main.rs"
    (cd "$dir" && commit "bench $stamp")
  done
}

cargo_times=() release_times=() overheads=()
for round in $(seq 0 "$rounds"); do
  change
  start="$(now)"; build_plain alpha; c="$(since "$start")"
  start="$(now)"
  "$tool" docker-release --workspace --force --message-format json \
    --manifest-path "$work/ws/Cargo.toml" > "$work/report.json" 2>"$work/release.log" || {
    cat "$work/release.log" >&2; echo "the release failed" >&2; exit 1; }
  r="$(since "$start")"
  built="$(jq '[.services[] | select(.reused | not)] | length' "$work/report.json")"
  [[ "$built" == 1 ]] || { echo "round $round built $built services, expected 1" >&2; exit 1; }
  o="$(python3 -c "print(f'{$r - $c:.2f}')")"
  if [[ "$round" == 0 ]]; then
    echo "warm-up: cargo ${c}s, release ${r}s"
    continue
  fi
  echo "round $round: cargo ${c}s, release ${r}s, release - cargo ${o}s"
  cargo_times+=("$c") release_times+=("$r") overheads+=("$o")
done
echo
echo "median cargo incremental build of the changed service: $(median "${cargo_times[@]}")s"
echo "median release of the workspace (1 of ${#services[@]} changed): $(median "${release_times[@]}")s"
echo "median release - cargo: $(median "${overheads[@]}")s (goal: at most 2 s)"
