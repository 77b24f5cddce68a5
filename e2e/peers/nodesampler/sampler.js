// nodesampler: @opentelemetry/sampler-jaeger-remote against a sampling server.
// Usage: node sampler.js BASE_URL SERVICE REFRESH_MS ROUNDS OPERATION...
// Every round (1.5 x REFRESH_MS apart) prints one JSON line: for each operation, how many
// of 1000 new root spans (random trace ids) the sampler sampled.
'use strict';
const crypto = require('crypto');
const { ROOT_CONTEXT, SpanKind } = require('@opentelemetry/api');
const { AlwaysOffSampler, SamplingDecision } = require('@opentelemetry/sdk-trace');
const { JaegerRemoteSampler } = require('@opentelemetry/sampler-jaeger-remote');

const [base, service, refresh, rounds, ...operations] = process.argv.slice(2);
const sampler = new JaegerRemoteSampler({
  endpoint: base,
  serviceName: service,
  poolingInterval: Number(refresh),
  initialSampler: new AlwaysOffSampler(),
});
let round = 0;
const tick = () => {
  const sampled = {};
  for (const op of operations) {
    for (let i = 0; i < 1000; i++) {
      const traceId = crypto.randomBytes(16).toString('hex');
      const result = sampler.shouldSample(ROOT_CONTEXT, traceId, op, SpanKind.SERVER, {}, []);
      if (result.decision === SamplingDecision.RECORD_AND_SAMPLED) sampled[op] = (sampled[op] || 0) + 1;
    }
  }
  process.stdout.write(JSON.stringify({ round, sampled }) + '\n');
  round += 1;
  if (round >= Number(rounds)) process.exit(0);
};
setInterval(tick, Number(refresh) * 1.5);
