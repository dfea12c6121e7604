#!/usr/bin/env bash
# Releases an example service again and again, alternating in one run:
#   1. `cargo docker-release --force` (the host strategy's image assembled by the tool, the
#      default);
#   2. the equivalent hand-written sequence: `cargo build` + `DOCKER_BUILDKIT=1 docker build .`
#      (the same generated Dockerfile, Docker 20.10's own CLI at /usr/bin/docker with its built-in
#      BuildKit; HAND_BUILDKIT=0 for the classic builder) + `docker run` + wait until ready +
#      `docker tag` of the same four tags;
#   3. `cargo docker-release --force` right after 1, on a commit that leaves the binary as it is
#      (only the revision, and so the image's metadata, changes), for the image step;
#   4. `DOCKER_BUILDKIT=1 cargo docker-release --force` (the tool on BuildKit), for the image step.
# Every run of 1, 2 and 4 starts from a fresh commit whose binary really changes (a `#[used]` static
# holds the run's number; the script checks the binary's checksum moved). One warm-up round is
# not counted. It prints each round, then the medians and the median ratio of 1 to 2, and the
# image-step medians (from the release report's `timings.image_ms`) of BuildKit cold, BuildKit
# metadata-only and the classic builder.
#
# usage: benches/release-pairs.sh [PAIRS] [EXAMPLE_DIR]   (default: 5 examples/hello)
#        PROFILE=debug benches/release-pairs.sh           (default: release)
#        HAND_BUILDKIT=0 benches/release-pairs.sh         (the hand sequence on the classic builder)
#        HAND_DOCKER=docker benches/release-pairs.sh      (another docker CLI; BuildKit needs buildx
#                                                          in CLIs newer than 20.10)
#
# Needs: a Docker engine, the docker CLI (for the hand-written side only), cargo, curl, jq,
# python3, git. Everything is made under unique names; the images it made are removed at exit.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
pairs="${1:-5}"
example="${2:-examples/hello}"
profile="${PROFILE:-release}"
hand_buildkit="${HAND_BUILDKIT:-1}"
hand_docker="${HAND_DOCKER:-$( [ -x /usr/bin/docker ] && echo /usr/bin/docker || echo docker)}"
[[ "$example" = /* ]] || example="$root/$example"
[[ -f "$example/Cargo.toml" ]] || { echo "no Cargo.toml in $example" >&2; exit 2; }
for tool in docker cargo curl jq git python3 sha256sum; do
  command -v "$tool" >/dev/null || { echo "missing $tool: install it first" >&2; exit 2; }
done

id="$$-$(date +%s)"
work="$(mktemp -d)"
tool_repo="cdr-bench/pairs-tool-$id"
cli_repo="cdr-bench/pairs-cli-$id"
container="cdr-bench-pairs-$id"
made="$work/images-made"
: > "$made"
cleanup() {
  docker rm -f "$container" >/dev/null 2>&1 || true
  for repo in "$tool_repo" "$cli_repo"; do
    docker images --format '{{.Repository}}:{{.Tag}}' "$repo" | xargs -r docker rmi >/dev/null 2>&1 || true
  done
  sort -u "$made" | xargs -r docker rmi >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
secs_of() { awk -v ms="$1" 'BEGIN { printf "%.2f", ms / 1000 }'; }
since() { python3 -c "import sys, time; print(f'{time.time() - float(sys.argv[1]):.2f}')" "$1"; }

echo "== preparing $example in $work/app"
cp -r "$example" "$work/app"
rm -rf "$work/app/target"
cd "$work/app"
bin="$(sed -n 's/^name *= *"\(.*\)"/\1/p' Cargo.toml | head -1)"
version="$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)"
sed -i "s#^image *= *\".*\"#image = \"$tool_repo\"#" Cargo.toml
grep -q "^image = \"$tool_repo\"" Cargo.toml || { echo "the example's Cargo.toml sets no image" >&2; exit 2; }
main="src/main.rs"
[[ -f "$main" ]] || { echo "no $main in the example" >&2; exit 2; }
cp "$main" "$work/main.rs.orig"
printf '/target\n/bin\n/Dockerfile\n' > .gitignore
# The hand-written side sends the crate directory as people keep it, with a .dockerignore.
printf 'target\n.git\n' > .dockerignore
git init -q . && git add -A && git -c user.name=bench -c user.email=bench@localhost commit -qm bench

echo "== building cargo-docker-release ($profile) and warming the example's cargo target"
if [[ "$profile" == release ]]; then
  (cd "$root" && cargo build --quiet --locked --release --bin cargo-docker-release)
else
  (cd "$root" && cargo build --quiet --locked --bin cargo-docker-release)
fi
tool="$root/target/$profile/cargo-docker-release"
target="$(uname -m)-unknown-linux-gnu"
built="target/$target/release/$bin"
RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --release --target "$target" --bin "$bin"

stamp=0
last_sum=""
# A fresh commit whose binary differs from every earlier one.
new_binary_commit() {
  stamp=$((stamp + 1))
  cp "$work/main.rs.orig" "$main"
  printf '\n#[used]\nstatic BENCH_STAMP: [u8; 8] = *b"%08d";\n' "$stamp" >> "$main"
  git add -A && git -c user.name=bench -c user.email=bench@localhost commit -qm "bench $stamp"
}
# A fresh commit that leaves the binary as it is (the crate's README changes).
metadata_commit() {
  stamp=$((stamp + 1))
  echo "bench $stamp" > BENCH.md
  git add -A && git -c user.name=bench -c user.email=bench@localhost commit -qm "bench $stamp (metadata)"
}
check_binary_changed() {
  local sum
  sum="$(sha256sum "$built" | cut -d' ' -f1)"
  [[ "$sum" != "$last_sum" ]] || { echo "the binary did not change in commit $stamp" >&2; exit 1; }
  last_sum="$sum"
}

# 1 / 3 / 4: a release by the tool; prints "seconds image_ms".
release() {
  local log="$work/tool-$stamp.log" start secs
  start="$(now)"
  env "$@" "$tool" docker-release --force --manifest-path "$work/app/Cargo.toml" >"$log" 2>&1 || {
    cat "$log" >&2; echo "cargo docker-release failed" >&2; exit 1; }
  secs="$(since "$start")"
  jq -r '.services[0].image_id' target/docker-release/report.json >> "$made"
  echo "$secs $(jq '.services[0].timings.image_ms' target/docker-release/report.json)"
}

# 2: the hand-written sequence; prints "seconds image_seconds".
hand() {
  local sha created start secs image port deadline build_start build_secs
  sha="$(git rev-parse HEAD)"
  created="$(git log -1 --format=%cI | xargs -I{} date -u -d {} +%Y-%m-%dT%H:%M:%SZ)"
  "$tool" docker-release dockerfile --manifest-path "$work/app/Cargo.toml" > Dockerfile
  start="$(now)"
  RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --release --target "$target" --bin "$bin"
  mkdir -p bin && cp "$built" "bin/$bin"
  build_start="$(now)"
  DOCKER_BUILDKIT="$hand_buildkit" "$hand_docker" build --iidfile "$work/iid" \
    --build-arg "SHA=$sha" --build-arg "VERSION=$version" \
    --build-arg "CREATED=$created" --build-arg BUILD=release . >"$work/cli.log" 2>&1 || {
    cat "$work/cli.log" >&2; echo "docker build failed" >&2; exit 1; }
  build_secs="$(since "$build_start")"
  image="$(cat "$work/iid")"
  echo "$image" >> "$made"
  docker run -d --name "$container" -p 127.0.0.1::8080 "$image" >/dev/null
  port="$(docker port "$container" 8080/tcp | head -1 | sed 's/.*://')"
  deadline=$(( $(date +%s) + 30 ))
  until curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do
    (( $(date +%s) < deadline )) || { docker logs "$container" >&2; echo "not ready in 30s" >&2; exit 1; }
    sleep 0.1
  done
  docker rm -f "$container" >/dev/null
  for tag in "$version" "${version%.*}" "${sha:0:7}" latest; do
    docker tag "$image" "$cli_repo:$tag"
  done
  secs="$(since "$start")"
  echo "$secs $build_secs"
}

results="$work/results"
: > "$results"
printf '%-6s %10s %10s %12s %14s %12s %14s\n' round tool_s hand_s tool_image_s hand_image_s bk_img_s metadata_img_s
for round in $(seq 0 "$pairs"); do
  new_binary_commit
  out="$(release)"; read -r tool_s tool_ms <<<"$out"
  check_binary_changed
  # The same binary, a new revision: BuildKit finds every layer in its cache.
  metadata_commit
  out="$(release)"; read -r _ metadata_ms <<<"$out"
  [[ "$(sha256sum "$built" | cut -d' ' -f1)" == "$last_sum" ]] ||
    echo "note: the binary changed in the metadata-only commit $stamp" >&2
  new_binary_commit
  out="$(hand)"; read -r hand_s hand_image_s <<<"$out"
  check_binary_changed
  new_binary_commit
  out="$(release DOCKER_BUILDKIT=1)"; read -r _ classic_ms <<<"$out"
  check_binary_changed
  label="$round"
  [[ "$round" == 0 ]] && label="warm-up"
  printf '%-6s %10s %10s %12s %14s %12s %14s\n' "$label" "$tool_s" "$hand_s" \
    "$(secs_of "$tool_ms")" "$hand_image_s" "$(secs_of "$classic_ms")" "$(secs_of "$metadata_ms")"
  [[ "$round" == 0 ]] || echo "$tool_s $hand_s $tool_ms $hand_image_s $classic_ms $metadata_ms" >> "$results"
done

python3 - "$results" "$hand_buildkit" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
col = lambda i: [r[i] for r in rows]
tool, hand = statistics.median(col(0)), statistics.median(col(1))
ratios = statistics.median([r[0] / r[1] for r in rows])
print()
print(f"{len(rows)} counted pairs (after one warm-up round)")
print(f"median release   cargo docker-release (assembled) {tool:6.2f} s")
hand_builder = "BuildKit" if sys.argv[2] == "1" else "the CLI's default builder"
print(f"median release   hand-written docker CLI sequence ({hand_builder}) {hand:6.2f} s")
print(f"median ratio     tool / hand {ratios:.2f}x   (ratio of medians {tool / hand:.2f}x)")
print(f"median image step, assembled, new binary        {statistics.median(col(2)) / 1000:6.2f} s")
print(f"median image step, assembled, metadata only     {statistics.median(col(5)) / 1000:6.2f} s")
print(f"median image step, the tool on BuildKit, new binary {statistics.median(col(4)) / 1000:6.2f} s")
print(f"median image step, hand-written docker build   {statistics.median(col(3)):6.2f} s")
PY
echo "note: the tool's release includes its whole test stage (structure, exec, cargo and HTTP"
echo "      tests, shutdown); the hand sequence only runs the container and waits until ready."
