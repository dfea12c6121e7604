{{ header }}
# strategy = "host": cargo builds `{{ bin }}` on the host{% if static %} (statically linked){% endif %}; this image only packages it.
FROM {{ base }}
COPY {{ copy_binary }}
{% include "runtime.dockerfile" %}
