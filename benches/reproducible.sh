#!/usr/bin/env bash
# Reproducibility: one commit released from two clones at different paths, with different
# CARGO_HOMEs and cold target directories, the engine's copy of the image removed between the
# two, both pushing to one registry. Prints each run's image ID, manifest digest and what its
# push uploaded, and fails unless both runs give the same image ID and the same registry
# digest and the second push uploads no blob.
#
# usage: benches/reproducible.sh [hello | mini-redis REPO]
#   hello       examples/hello (no dependencies; the default)
#   mini-redis  a clone of tokio-rs/mini-redis (62 crates from crates.io, each clone's cargo
#               home downloads them), with a [package.metadata.docker] section added and its
#               server bound to 0.0.0.0 (it binds 127.0.0.1, which no test can reach)
# Between the two runs the engine's images and A's manifest in the registry are deleted (A's
# blobs stay): B builds, loads, tests and pushes as a fresh runner would.
# Needs: a Docker engine, /usr/bin/docker-registry (Debian's docker-registry), cargo, git,
# python3. Everything it made is removed at exit.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
subject="${1:-hello}"
cargo build -q --release --locked --manifest-path "$root/Cargo.toml"
tool="$root/target/release/cargo-docker-release"
work="$(mktemp -d /tmp/cdr-repro.XXXXXX)"
port=$((20000 + RANDOM % 20000))
registry="127.0.0.1:$port"
cleanup() {
  [ -n "${registry_pid:-}" ] && kill "$registry_pid" 2>/dev/null || true
  docker images --format '{{.Repository}}:{{.Tag}}' | grep "^$registry/" | xargs -r docker rmi -f >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/registry.yml" <<YML
version: 0.1
log:
  level: error
storage:
  delete:
    enabled: true
  filesystem:
    rootdirectory: $work/registry
http:
  addr: $registry
YML
/usr/bin/docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 50); do curl -fs "http://$registry/v2/" >/dev/null && break; sleep 0.1; done

# The source repository: one commit both clones check out.
src="$work/source"
case "$subject" in
  hello)
    cp -r "$root/examples/hello" "$src"
    rm -rf "$src/target"
    sed -i "s#^image = .*#image = \"$registry/repro/hello\"#" "$src/Cargo.toml"
    ;;
  mini-redis)
    git clone -q "${2:?the path of a mini-redis clone}" "$src"
    sed -i 's/127\.0\.0\.1:{port}/0.0.0.0:{port}/' "$src/src/bin/server.rs"
    cat >>"$src/Cargo.toml" <<TOML

[package.metadata.docker]
image = "$registry/repro/mini-redis"
bin = "mini-redis-server"
strategy = "host"
base = "scratch"
expose = [6379]

[package.metadata.docker.test]
ready = { tcp = [6379] }
TOML
    ;;
  *) echo "unknown subject $subject" >&2; exit 2 ;;
esac
git -C "$src" init -q 2>/dev/null || true
git -C "$src" add -A
git -C "$src" -c user.name=bench -c user.email=bench@example.com commit -qm "release" --allow-empty

run() { # name clone-dir cargo-home
  git clone -q "$src" "$2"
  local manifest="$2/Cargo.toml"
  local log="$work/$1.log"
  local started=$(date +%s.%N)
  env -u CARGO_TARGET_DIR CARGO_HOME="$3" "$tool" docker-release --manifest-path "$manifest" --push \
    --message-format json >"$work/$1.json" 2>"$log" || { cat "$log" >&2; exit 1; }
  local took=$(python3 -c "import time; print(f'{time.time() - $started:.1f}')")
  python3 - "$work/$1.json" "$log" "$1" "$took" <<'PY'
import json, re, sys
report = json.load(open(sys.argv[1]))
service = report["services"][0]
log = open(sys.argv[2]).read()
uploads = re.findall(r"(\d+) blob\(s\) uploaded \(([^)]*)\)", log)
first = uploads[0] if uploads else ("?", "?")
print(f"{sys.argv[3]}: image {service['image_id']}  digest {service['digest']}  "
      f"uploaded {first[0]} blob(s) ({first[1]})  in {sys.argv[4]} s")
open(sys.argv[1] + ".facts", "w").write(f"{service['image_id']} {service['digest']} {first[0]}\n")
PY
}

# Clone A: a short path, a cargo home of its own.
run A "$work/a/service" "$work/a/cargo-home"
# The engine's copy goes, and so does A's manifest (its blobs stay, as when a job dies after
# uploading them): B builds, loads and pushes on its own, and is not skipped as released.
docker images --format '{{.Repository}}:{{.Tag}}' | grep "^$registry/" | xargs -r docker rmi -f >/dev/null
read -r _ digest_a _ <"$work/A.json.facts"
repo=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['services'][0]['image'].split('/',1)[1])" "$work/A.json")
curl -fs -X DELETE "http://$registry/v2/$repo/manifests/$digest_a" >/dev/null
# Clone B: a deeper path, another cargo home.
run B "$work/b/checkouts/some/deeper/path/service" "$work/b/other-cargo-home"

read -r id_a digest_a _ <"$work/A.json.facts"
read -r id_b digest_b uploaded_b <"$work/B.json.facts"
if [ "$id_a" = "$id_b" ] && [ "$digest_a" = "$digest_b" ] && [ "$uploaded_b" = 0 ]; then
  echo "reproducible: one image ID, one registry digest; the second push uploaded nothing"
else
  echo "NOT reproducible" >&2
  exit 1
fi
