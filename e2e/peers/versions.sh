# Versions of the peer servers the e2e suite builds (sourced by the build scripts).
# A version change gives a new cache folder, so old builds are never reused by mistake.
KUBE_VERSION=v1.33.13
ETCD_DEB_VERSION=3.4.23
JAEGER_VERSION=v1.76.0
ZIPKIN_VERSION=3.5.1
OTELCOL_VERSION=0.165.0
# The Collector's cache folder: its version plus a build number, bumped when its component
# list in build-otelcol changes (b2: the otlphttp exporter, scenario 11 sends to a gateway).
OTELCOL_BUILD=0.165.0-b2
HELM_VERSION=v3.19.0
# The Go OpenTelemetry contrib Jaeger remote sampler (scenario 10's client no one here
# wrote); its module graph is pinned by peers/gosampler/go.mod and go.sum.
GOSAMPLER_VERSION=jaegerremote-v0.38.0
# @opentelemetry/sampler-jaeger-remote from npm (scenario 10's Node client), pinned with
# its dependencies by peers/nodesampler/package-lock.json.
NODESAMPLER_VERSION=0.222.0
KWOK_VERSION=v0.8.0
