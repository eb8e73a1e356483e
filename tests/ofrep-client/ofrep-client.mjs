// The OpenFeature Node SDK with its OFREP provider against a running Flagpole.
//
// Needs FLAGPOLE_URL and FLAGPOLE_SDK_KEY (an SDK key of the `production` environment
// seeded by xtask/src/ofrep_server.rs). Prints one line per check and a closing
// "ofrep-client: N passed, M failed"; exits non-zero on any failure.

import { OpenFeature, ErrorCode } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';
import { OFREPApi } from '@openfeature/ofrep-core';

const baseUrl = process.env.FLAGPOLE_URL;
const sdkKey = process.env.FLAGPOLE_SDK_KEY;
if (!baseUrl || !sdkKey) {
  console.error('FLAGPOLE_URL and FLAGPOLE_SDK_KEY must be set');
  process.exit(2);
}

let passed = 0;
let failed = 0;

function check(name, actual, expected) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a === e) {
    passed += 1;
    console.log(`ok   ${name}`);
  } else {
    failed += 1;
    console.log(`FAIL ${name}\n     expected ${e}\n     got      ${a}`);
  }
}

function pick(details, ...fields) {
  return Object.fromEntries(fields.map((f) => [f, details[f]]));
}

// Two clients: one authenticating with X-API-Key, one with a bearer token.
OpenFeature.setProvider(
  'api-key',
  new OFREPProvider({ baseUrl, headers: [['X-API-Key', sdkKey]] }),
);
OpenFeature.setProvider(
  'bearer',
  new OFREPProvider({ baseUrl, headers: { Authorization: `Bearer ${sdkKey}` } }),
);
OpenFeature.setProvider(
  'wrong-key',
  new OFREPProvider({ baseUrl, headers: { Authorization: 'Bearer fp_sdk_not_a_real_key' } }),
);
const client = OpenFeature.getClient('api-key');
const bearer = OpenFeature.getClient('bearer');
const wrong = OpenFeature.getClient('wrong-key');

// Boolean flag that is on and matches nothing: STATIC.
let d = await client.getBooleanDetails('static-on', false, { targetingKey: 'user-1' });
check('static-on is true and STATIC', pick(d, 'value', 'variant', 'reason'), {
  value: true, variant: 'on', reason: 'STATIC',
});
check('static-on metadata has Flagpole reason', d.flagMetadata.flagpoleReason, 'FALLTHROUGH');

d = await bearer.getBooleanDetails('static-on', false, { targetingKey: 'user-1' });
check('bearer token authenticates too', pick(d, 'value', 'reason'), { value: true, reason: 'STATIC' });

// Disabled flag: a success with reason DISABLED and the off variant, not an error.
d = await client.getBooleanDetails('kill-switch', true, { targetingKey: 'user-1' });
check('kill-switch is DISABLED with the off variant', pick(d, 'value', 'variant', 'reason', 'errorCode'), {
  value: false, variant: 'off', reason: 'DISABLED', errorCode: undefined,
});

// Targeting: an individual target, a rule, and nothing matched.
d = await client.getBooleanDetails('new-checkout', false, { targetingKey: 'vip' });
check('new-checkout: targeted key', pick(d, 'value', 'reason'), { value: true, reason: 'TARGETING_MATCH' });
d = await client.getBooleanDetails('new-checkout', false, { targetingKey: 'user-7', country: 'no' });
check('new-checkout: rule match', pick(d, 'value', 'reason'), { value: true, reason: 'TARGETING_MATCH' });
check('new-checkout: rule id in metadata', d.flagMetadata.ruleId, 'nordics');
d = await client.getBooleanDetails('new-checkout', true, { targetingKey: 'user-7', country: 'fr' });
check('new-checkout: no match serves the default', pick(d, 'value', 'variant', 'reason'), {
  value: false, variant: 'off', reason: 'DEFAULT',
});

// 50/50 rollout: both values, SPLIT, stable per key, roughly half each.
let on = 0;
const reasons = new Set();
for (let i = 0; i < 200; i += 1) {
  const r = await client.getBooleanDetails('rollout', false, { targetingKey: `user-${i}` });
  reasons.add(r.reason);
  if (r.value) on += 1;
}
check('rollout: every evaluation is a SPLIT', [...reasons], ['SPLIT']);
check('rollout: between 30% and 70% on', on >= 60 && on <= 140, true);
const first = await client.getBooleanValue('rollout', false, { targetingKey: 'sticky' });
const again = await client.getBooleanValue('rollout', !first, { targetingKey: 'sticky', extra: 1 });
check('rollout: same key, same value', again, first);

// Rollout without a targeting key.
d = await client.getBooleanDetails('rollout', true, {});
check('rollout without targetingKey: TARGETING_KEY_MISSING', pick(d, 'value', 'errorCode'), {
  value: true, errorCode: ErrorCode.TARGETING_KEY_MISSING,
});

// String flag.
d = await client.getStringDetails('banner-text', 'default', { targetingKey: 'user-1' });
check('banner-text is Welcome', pick(d, 'value', 'variant', 'reason'), {
  value: 'Welcome', variant: 'welcome', reason: 'STATIC',
});

// Unknown flag: the caller's default, FLAG_NOT_FOUND with details.
d = await client.getBooleanDetails('no-such-flag', true, { targetingKey: 'user-1' });
check('unknown flag: default and FLAG_NOT_FOUND', pick(d, 'value', 'reason', 'errorCode'), {
  value: true, reason: 'ERROR', errorCode: ErrorCode.FLAG_NOT_FOUND,
});
check('unknown flag: details name the flag', String(d.errorMessage).includes('no-such-flag'), true);

// Asking for the wrong type is caught by the provider.
d = await client.getStringDetails('static-on', 'fallback', { targetingKey: 'user-1' });
check('wrong type: default and TYPE_MISMATCH', pick(d, 'value', 'errorCode'), {
  value: 'fallback', errorCode: ErrorCode.TYPE_MISMATCH,
});

// A wrong key: the default, with an error.
d = await wrong.getBooleanDetails('static-on', false, { targetingKey: 'user-1' });
check('wrong SDK key: default and an error', [d.value, d.reason, typeof d.errorCode], [false, 'ERROR', 'string']);

// Bulk evaluation with the protocol library: ETag, then 304 while nothing changed.
const api = new OFREPApi(baseUrl);
const headers = [['X-API-Key', sdkKey]];
const bulk = await api.postBulkEvaluateFlags({ context: { targetingKey: 'vip' } }, { headers });
check('bulk: 200', bulk.httpStatus, 200);
const keys = bulk.value.flags.map((f) => f.key).sort();
check('bulk: every flag', keys, ['banner-text', 'kill-switch', 'load-flag', 'new-checkout', 'rollout', 'static-on']);
const checkout = bulk.value.flags.find((f) => f.key === 'new-checkout');
check('bulk: new-checkout for vip', [checkout.value, checkout.reason], [true, 'TARGETING_MATCH']);
const etag = bulk.httpResponse.headers.get('etag');
check('bulk: has an ETag', typeof etag === 'string' && etag.length > 2, true);
const notModified = await api.postBulkEvaluateFlags(
  { context: { targetingKey: 'vip' } },
  { headers: [...headers, ['If-None-Match', etag]] },
);
check('bulk: If-None-Match gives 304', notModified.httpStatus, 304);
const otherContext = await api.postBulkEvaluateFlags(
  { context: { targetingKey: 'someone-else' } },
  { headers: [...headers, ['If-None-Match', etag]] },
);
check('bulk: another context is re-evaluated', otherContext.httpStatus, 200);

await OpenFeature.close();
console.log(`ofrep-client: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
