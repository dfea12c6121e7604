#!/usr/bin/env bash
# Releases an example service twice, side by side in one run, and compares:
#   1. `cargo docker-release` (build context assembled in-process: the Dockerfile + one binary);
#   2. the equivalent hand-written sequence: `cargo build` + `docker build .` (the same generated
#      Dockerfile, classic builder, context = the crate directory) + `docker run` + wait until
#      ready + `docker tag`.
# It reports wall time and the bytes of build context each one sent to the engine, with ratios.
#
# usage: benches/release-vs-docker-cli.sh [EXAMPLE_DIR]   (default: examples/hello)
#
# Needs: a Docker engine, the docker CLI (for the hand-written side only), cargo, curl, jq.
# Both sides start from the same warm cargo target directory, so the comparison is about what
# happens around cargo; like a developer's work tree, it also holds a debug build (`cargo build`),
# which the hand-written `docker build .` sends and the tool never does. Everything is made under
# unique names and removed at exit.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
example="${1:-examples/hello}"
[[ "$example" = /* ]] || example="$root/$example"
[[ -f "$example/Cargo.toml" ]] || { echo "no Cargo.toml in $example" >&2; exit 2; }
for tool in docker cargo curl jq git; do
  command -v "$tool" >/dev/null || { echo "missing $tool: install it first" >&2; exit 2; }
done

id="$$-$(date +%s)"
work="$(mktemp -d)"
tool_repo="cdr-bench/tool-$id"
cli_repo="cdr-bench/cli-$id"
container="cdr-bench-$id"
cleanup() {
  docker rm -f "$container" >/dev/null 2>&1 || true
  for repo in "$tool_repo" "$cli_repo"; do
    docker images --format '{{.Repository}}:{{.Tag}}' "$repo" | xargs -r docker rmi >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc -l | xargs printf '%.2f'; }

echo "== preparing $example in $work/app"
cp -r "$example" "$work/app"
rm -rf "$work/app/target"
cd "$work/app"
bin="$(sed -n 's/^name *= *"\(.*\)"/\1/p' Cargo.toml | head -1)"
version="$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)"
# Our own repository name, so nothing outside this run is touched.
sed -i "s#^image *= *\".*\"#image = \"$tool_repo\"#" Cargo.toml
grep -q "^image = \"$tool_repo\"" Cargo.toml || { echo "the example's Cargo.toml sets no image" >&2; exit 2; }
printf '/target\n' > .gitignore
git init -q . && git add -A && git -c user.name=bench -c user.email=bench@localhost commit -qm bench
sha="$(git rev-parse HEAD)"

echo "== building cargo-docker-release and warming the example's cargo target"
(cd "$root" && cargo build --quiet --bin cargo-docker-release)
tool="$root/target/debug/cargo-docker-release"
target="$(uname -m)-unknown-linux-gnu"
RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --release --target "$target" --bin "$bin"
cargo build --quiet

echo "== 1. cargo docker-release"
start="$(now)"
"$tool" docker-release --manifest-path "$work/app/Cargo.toml" >"$work/tool.log" 2>&1 || {
  cat "$work/tool.log"; echo "cargo docker-release failed" >&2; exit 1; }
tool_secs="$(since "$start")"
tool_bytes="$(jq '.services[0].context_bytes' target/docker-release/report.json)"
tool_tags="$(jq -r '[.services[0].tags[] | select(.applied) | .name] | join(" ")' target/docker-release/report.json)"

echo "== 2. cargo build + docker build + docker run + wait + docker tag"
# The same Dockerfile the tool builds (its template output), at the crate root as people keep it.
"$tool" docker-release dockerfile --manifest-path "$work/app/Cargo.toml" > "$work/app/Dockerfile"
created="$(git log -1 --format=%cI | xargs -I{} date -u -d {} +%Y-%m-%dT%H:%M:%SZ)"
start="$(now)"
RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --release --target "$target" --bin "$bin"
mkdir -p bin && cp "target/$target/release/$bin" "bin/$bin"
# One trailing byte (ignored when the binary runs) keeps this build from reusing the layers the
# tool's build just made: both sides build cold.
printf '\0' >> "bin/$bin"
DOCKER_BUILDKIT=0 docker build --iidfile "$work/iid" \
  --build-arg "SHA=$sha" --build-arg "VERSION=$version" \
  --build-arg "CREATED=$created" --build-arg BUILD=release . >"$work/cli.log" 2>&1 || {
  cat "$work/cli.log"; echo "docker build failed" >&2; exit 1; }
image="$(cat "$work/iid")"
docker run -d --name "$container" -p 127.0.0.1::8080 "$image" >/dev/null
port="$(docker port "$container" 8080/tcp | head -1 | sed 's/.*://')"
deadline=$(( $(date +%s) + 30 ))
until curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do
  (( $(date +%s) < deadline )) || { docker logs "$container"; echo "not ready in 30s" >&2; exit 1; }
  sleep 0.1
done
docker rm -f "$container" >/dev/null
minor="${version%.*}"
for tag in "$version" "$minor" "${sha:0:7}" latest; do
  docker tag "$image" "$cli_repo:$tag"
done
cli_secs="$(since "$start")"
cli_context="$(sed -n 's/^Sending build context to Docker daemon *//p' "$work/cli.log" | tail -1 | tr -d '\r ')"
# docker prints e.g. "12.5MB" (decimal units); convert to bytes.
cli_bytes="$(echo "$cli_context" | sed -E 's/^([0-9.]+)(B|kB|MB|GB)$/\1 \2/' | awk '
  $2 == "B"  {printf "%d", $1}
  $2 == "kB" {printf "%d", $1*1000}
  $2 == "MB" {printf "%d", $1*1000*1000}
  $2 == "GB" {printf "%d", $1*1000*1000*1000}')"
echo
printf '%-34s %10s %16s\n' "" "seconds" "context bytes"
printf '%-34s %10s %16s\n' "cargo docker-release" "$tool_secs" "$tool_bytes"
printf '%-34s %10s %16s\n' "cargo+docker build/run/wait/tag" "$cli_secs" "$cli_bytes ($cli_context)"
echo
echo "context ratio (docker CLI / cargo docker-release): $(echo "$cli_bytes / $tool_bytes" | bc -l | xargs printf '%.1f')x"
echo "time ratio    (docker CLI / cargo docker-release): $(echo "$cli_secs / $tool_secs" | bc -l | xargs printf '%.2f')x"
echo "tags applied by cargo docker-release: $tool_tags"
echo "note: the tool's time includes its own readiness/test stage when that stage is built in;"
echo "      both sides started from the same warm cargo target directory."
