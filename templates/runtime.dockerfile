{#- The runtime part shared by both strategies: the binary is already at `binary`. -#}
USER {{ user }}
{% if smoke_test %}
# Smoke test: a broken binary fails the build, not the deployment.
RUN {{ smoke_test }}
{% endif %}
{% for port in expose %}
EXPOSE {{ port }}
{% endfor %}
{% if stop_signal %}
STOPSIGNAL {{ stop_signal }}
{% endif %}
{% if healthcheck %}
HEALTHCHECK {{ healthcheck.options }} CMD {{ healthcheck.cmd }}
{% endif %}
{% for arg in args %}
{% if arg.comment %}
# {{ arg.comment }}
{% endif %}
ARG {{ arg.name }}
{% endfor %}
LABEL {% for label in labels %}{% if not loop.first %} \{{ "\n      " }}{% endif %}{{ label.key }}={{ label.value }}{% endfor %}

{% if env %}
ENV {% for var in env %}{% if not loop.first %} \{{ "\n    " }}{% endif %}{{ var.key }}={{ var.value }}{% endfor %}

{% endif %}
ENV SHA=${SHA}
ENTRYPOINT {{ entrypoint }}
{% if cmd %}
CMD {{ cmd }}
{% endif %}
