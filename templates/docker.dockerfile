{{ header }}
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

FROM {{ base }}
COPY --from=builder {{ copy_binary }}
{% include "runtime.dockerfile" %}
