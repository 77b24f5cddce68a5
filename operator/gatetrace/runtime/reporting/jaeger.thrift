# gatetrace's description of the Jaeger span wire model (thrift).
#
# Written for gatetrace from the field ids and types of the Jaeger protocol
# (jaegertracing/jaeger-idl: jaeger.thrift and agent.thrift), which decide
# wire compatibility; names follow the protocol so that any Jaeger decoder
# reads what we send. Loaded at import time by thriftpy2
# (gatetrace.runtime.reporting.jaeger_thrift); the hand-written compact
# encoder takes its field ids and types from the structs defined here.

# What a Tag's value is; exactly one of the v* fields is set accordingly.
enum TagType {
  STRING = 0,
  DOUBLE = 1,
  BOOL = 2,
  LONG = 3,
  BINARY = 4,
}

struct Tag {
  1: required string key,
  2: required TagType vType,
  3: optional string vStr,
  4: optional double vDouble,
  5: optional bool vBool,
  6: optional i64 vLong,
  7: optional binary vBinary,
}

# A timestamped event; timestamp in microseconds since the epoch.
struct Log {
  1: required i64 timestamp,
  2: required list<Tag> fields,
}

enum SpanRefType {
  CHILD_OF = 0,
  FOLLOWS_FROM = 1,
}

struct SpanRef {
  1: required SpanRefType refType,
  2: required i64 traceIdLow,
  3: required i64 traceIdHigh,
  4: required i64 spanId,
}

# Ids are unsigned on our side and travel as signed i64 (two's complement):
# the 128-bit trace id is split into its high and low 64 bits.
# flags: 1 = sampled, 2 = debug. startTime and duration in microseconds.
struct Span {
  1: required i64 traceIdLow,
  2: required i64 traceIdHigh,
  3: required i64 spanId,
  4: required i64 parentSpanId,
  5: required string operationName,
  6: optional list<SpanRef> references,
  7: required i32 flags,
  8: required i64 startTime,
  9: required i64 duration,
  10: optional list<Tag> tags,
  11: optional list<Log> logs,
  12: optional bool incomplete,
}

struct Process {
  1: required string serviceName,
  2: optional list<Tag> tags,
}

# Cumulative counts of spans the client lost; backends report deltas.
struct ClientStats {
  1: required i64 fullQueueDroppedSpans,
  2: required i64 tooLargeDroppedSpans,
  3: required i64 failedToEmitSpans,
}

# seqNo increases by one per batch sent, so receivers can detect lost datagrams.
struct Batch {
  1: required Process process,
  2: required list<Span> spans,
  3: optional i64 seqNo,
  4: optional ClientStats stats,
}

struct BatchSubmitResponse {
  1: required bool ok,
}

# The agent's UDP endpoint: one oneway emitBatch message per datagram.
service Agent {
  oneway void emitBatch(1: Batch batch)
}

# The collector's thrift service (its HTTP endpoint takes a bare Batch).
service Collector {
  list<BatchSubmitResponse> submitBatches(1: list<Batch> batches)
}
