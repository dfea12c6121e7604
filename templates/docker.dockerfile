{{ header }}
{% if buildkit %}
# strategy = "docker": cargo builds `{{ bin }}` in the builder stage, with BuildKit cache mounts for
# cargo's registry, its git checkouts and the target directory, so a source change recompiles
# incrementally. Needs BuildKit (`RUN --mount`); `buildkit = false` renders the classic builder's file.
FROM {{ builder }} AS builder
WORKDIR /src
{% for name in build_args %}
ARG {{ name }}
{% endfor %}
{% if static %}
ENV RUSTFLAGS="-C target-feature=+crt-static"
{% endif %}
{% for copy in workspace.manifests %}
COPY {{ copy }}
{% endfor %}
{% for copy in workspace.sources %}
COPY {{ copy }}
{% endfor %}
# The caches live at the official Rust images' CARGO_HOME. Touching the targets makes cargo
# recompile the workspace's own crates whatever the cached target directory holds; the binary is
# copied out of the cache mount, which is not part of the image.
RUN --mount=type=cache,id={{ workspace.cache_id }}-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id={{ workspace.cache_id }}-cargo-git,target=/usr/local/cargo/git \
    --mount=type=cache,id={{ workspace.cache_id }}-target,target=/src/target \
    {{ workspace.touch_script }} \
 && {{ workspace.cargo_build }} \
 && mkdir -p /out \
 && cp {{ workspace.target_binary }} /out/
{% else %}
# strategy = "docker": cargo builds `{{ bin }}` in the builder stage, dependencies in their own layer.
FROM {{ builder }} AS builder
WORKDIR /src
{% for name in build_args %}
ARG {{ name }}
{% endfor %}
{% if static %}
ENV RUSTFLAGS="-C target-feature=+crt-static"
{% endif %}
# Dependencies first: only the manifests and the lock file, with stub targets, so that this layer
# is rebuilt only when they change.
{% for copy in workspace.manifests %}
COPY {{ copy }}
{% endfor %}
RUN {{ workspace.stub_script }} \
 && {{ workspace.cargo_build }}
# Then the sources; the stubs' build outputs are made stale by touching the real targets.
{% for copy in workspace.sources %}
COPY {{ copy }}
{% endfor %}
RUN {{ workspace.touch_script }} \
 && {{ workspace.cargo_build }}
{% endif %}

FROM {{ base }}
COPY --from=builder {{ copy_binary }}
{% include "runtime.dockerfile" %}
