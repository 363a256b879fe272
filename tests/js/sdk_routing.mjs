// Routing by name between a C worker and dt-sidecar's SDK workers on one task queue
// (tests/integration/remote/test_remote_sdk.c, test_routing_by_name): the SDK activity "hello"
// (this worker), the C activity "CUpper" (a C worker of the hub, activity_max_deliveries 1, so a
// work item that reached it after a counted give-back would fail as crashed), the SDK
// orchestration "jsMix" and the C orchestration "CMix" (on the sidecar's worker) each call both in
// a fan-out, so work items keep landing on the worker of the other kind. Every instance must
// complete with the right outputs; a name nobody serves must still fail, with dt.UnknownActivity.
//
//   node sdk_routing.mjs PORT     exit 0 when every check passes
import { TaskHubGrpcClient, TaskHubGrpcWorker, NoOpLogger, OrchestrationStatus as S, whenAll } from '@microsoft/durabletask-js';

const port = process.argv[2];
const hostAddress = `127.0.0.1:${port}`;
const run = `m${Date.now().toString(36)}`;
const N = 20; // calls of each kind per instance
const M = 6; // instances of each kind
let failures = 0;

function check(name, ok, detail = '') {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${ok ? '' : ': ' + detail}`);
  if (!ok) failures++;
}

const hello = async (_ctx, x) => `hello ${x}`;
async function* jsMix(ctx, tag) {
  const t = [];
  for (let i = 0; i < N; i++) {
    t.push(ctx.callActivity(hello, `${tag}${i}`));
    t.push(ctx.callActivity('CUpper', `${tag}${i}`));
  }
  return yield whenAll(t);
}
async function* callsNobody(ctx) {
  return yield ctx.callActivity('NoSuchActivity', 1);
}

const worker = new TaskHubGrpcWorker({ hostAddress, logger: new NoOpLogger() });
worker.addOrchestrator(jsMix);
worker.addOrchestrator(callsNobody);
worker.addActivity(hello);
await worker.start();
const c = new TaskHubGrpcClient({ hostAddress, logger: new NoOpLogger() });

// The same expected output for both kinds: [hello t0, T0, hello t1, T1, ...].
const want = (tag) => {
  const out = [];
  for (let i = 0; i < N; i++) out.push(`hello ${tag}${i}`, `${tag}${i}`.toUpperCase());
  return JSON.stringify(out);
};
const ids = [];
for (let k = 0; k < M; k++) {
  ids.push([await c.scheduleNewOrchestration(jsMix, `j${k}-`, `${run}-js-${k}`), `j${k}-`]);
  ids.push([await c.scheduleNewOrchestration('CMix', `c${k}-`, `${run}-c-${k}`), `c${k}-`]);
}
const nobody = await c.scheduleNewOrchestration(callsNobody, null, `${run}-nobody`);
let bad = 0;
for (const [id, tag] of ids) {
  const st = await c.waitForOrchestrationCompletion(id, true, 120).catch((e) => e);
  if (st?.runtimeStatus !== S.COMPLETED || st.serializedOutput !== want(tag)) {
    if (bad++ < 3) console.log(`  ${id}: ${st instanceof Error ? st.message : JSON.stringify(st)}`);
  }
}
check(`${ids.length} instances of both kinds, ${2 * N} calls of both kinds each, all right`, bad === 0, `${bad} wrong`);
const st = await c.waitForOrchestrationCompletion(nobody, true, 60).catch((e) => e);
check('a name no worker serves fails as dt.UnknownActivity', st?.runtimeStatus === S.FAILED &&
  /UnknownActivity|no worker serves/.test(JSON.stringify(st.failureDetails)), JSON.stringify(st?.failureDetails ?? st));

await worker.stop();
await c.stop();
console.log(failures === 0 ? 'all passed' : `${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
