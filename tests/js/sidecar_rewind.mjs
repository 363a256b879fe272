// Rewind of orchestrations written with @microsoft/durabletask-js, run by its worker through
// dt-sidecar (tests/integration/sidecar/test_sidecar_sdk.c, test_sdk_rewind: "flaky", "steady"
// and "flakyKid" are SDK activities). Each case fails once, is rewound with RewindInstance and must
// complete, running again only what failed:
//  - an orchestrator that throws on its first run;
//  - a failed activity after one that completed (the failed one runs again, the other does not);
//  - a failed sub-orchestration (the child is rewound in turn, its failed activity runs again).
// RewindInstance answers once the rewind is applied: the status read right after it is no longer
// the failure.
//
//   node sidecar_rewind.mjs PORT     exit 0 when every check passes
import { TaskHubGrpcClient, TaskHubGrpcWorker, NoOpLogger, OrchestrationStatus as S } from '@microsoft/durabletask-js';

const port = process.argv[2];
const hostAddress = `127.0.0.1:${port}`;
const run = `r${Date.now().toString(36)}`;
let failures = 0;

function check(name, ok, detail = '') {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${ok ? '' : ': ' + detail}`);
  if (!ok) failures++;
}

// Runs per key; each "fails" only on its first run.
const runs = new Map();
const bump = (k) => {
  const n = (runs.get(k) ?? 0) + 1;
  runs.set(k, n);
  return n;
};

const steady = async (_ctx, x) => {
  bump(`steady:${x}`);
  return `steady ${x}`;
};
const flaky = async (_ctx, x) => {
  if (bump(`flaky:${x}`) === 1) throw new Error(`flaky ${x} failed`);
  return `flaky ${x} ok`;
};
const flakyKid = async (_ctx, x) => {
  if (bump(`kid:${x}`) === 1) throw new Error(`kid ${x} failed`);
  return `kid ${x} ok`;
};

async function* throwsOnce(ctx) {
  if (bump(`orch:${ctx.instanceId}`) === 1) throw new Error('first attempt failed');
  return `attempt ${runs.get(`orch:${ctx.instanceId}`)}`;
}

async function* chain(ctx, x) {
  const a = yield ctx.callActivity(steady, x);
  const b = yield ctx.callActivity(flaky, x);
  return [a, b];
}

async function* kid(ctx, x) {
  const a = yield ctx.callActivity(steady, `kid-${x}`);
  const b = yield ctx.callActivity(flakyKid, x);
  return [a, b];
}

async function* parent(ctx, x) {
  const a = yield ctx.callActivity(steady, `parent-${x}`);
  const b = yield ctx.callSubOrchestrator(kid, x, { instanceId: `${ctx.instanceId}-kid` });
  return [a, b];
}

const worker = new TaskHubGrpcWorker({ hostAddress, logger: new NoOpLogger() });
for (const o of [throwsOnce, chain, kid, parent]) worker.addOrchestrator(o);
for (const a of [steady, flaky, flakyKid]) worker.addActivity(a);
await worker.start();
const c = new TaskHubGrpcClient({ hostAddress, logger: new NoOpLogger() });
const done = (id) => c.waitForOrchestrationCompletion(id, true, 60);

async function failThenRewind(name, orch, input, id) {
  await c.scheduleNewOrchestration(orch, input, id);
  let st = await done(id);
  check(`${name}: fails first`, st?.runtimeStatus === S.FAILED, JSON.stringify(st));
  await c.rewindInstance(id, `rewind ${name}`);
  st = await c.getOrchestrationState(id, false);
  check(`${name}: no longer failed once RewindInstance answered`, st?.runtimeStatus !== S.FAILED, JSON.stringify(st));
  return done(id);
}

let st = await failThenRewind('orchestrator', throwsOnce, null, `${run}-orch`);
check('a rewound orchestrator completes', st?.runtimeStatus === S.COMPLETED && st.serializedOutput === '"attempt 2"', JSON.stringify(st));

st = await failThenRewind('activity', chain, 'x', `${run}-chain`);
check('a rewound failed activity runs again', st?.serializedOutput === '["steady x","flaky x ok"]', JSON.stringify(st));
check('the activity that had completed does not', runs.get('steady:x') === 1 && runs.get('flaky:x') === 2,
  JSON.stringify([...runs]));
const h = await c.getOrchestrationHistory(`${run}-chain`);
const count = (t) => h.filter((e) => e.type === t).length;
check('history: one ExecutionRewound, no TaskFailed, one completion',
  count('ExecutionRewound') === 1 && count('TaskFailed') === 0 && count('ExecutionCompleted') === 1 &&
    count('TaskScheduled') === 2 && count('TaskCompleted') === 2,
  h.map((e) => e.type).join());

st = await failThenRewind('sub-orchestration', parent, 'y', `${run}-parent`);
check('a rewound parent rewinds its failed child', st?.serializedOutput === '["steady parent-y",["steady kid-y","kid y ok"]]',
  JSON.stringify(st));
const k = await c.getOrchestrationState(`${run}-parent-kid`, true);
check('the child completed', k?.runtimeStatus === S.COMPLETED, JSON.stringify(k));
check('the child ran only its failed activity again',
  runs.get('steady:kid-y') === 1 && runs.get('kid:y') === 2 && runs.get('steady:parent-y') === 1, JSON.stringify([...runs]));

// A second rewind of a completed instance is refused.
const err = await c.rewindInstance(`${run}-chain`, 'again').then(() => null, (e) => e);
check('rewind of a completed instance is refused', err !== null && /FAILED_PRECONDITION|failed/i.test(String(err?.message ?? err)), String(err));

await worker.stop();
await c.stop();
console.log(failures === 0 ? 'all passed' : `${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
