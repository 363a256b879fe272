// Orchestrations and activities written with @microsoft/durabletask-js, run by dt-sidecar's
// worker side (runtime/remote) through GetWorkItems (tests/integration/remote/test_remote_sdk.c):
// activity chain, fan-out/fan-in, timer, external event with and without its timeout,
// sub-orchestration, continue-as-new, custom status, failure details, a retry policy, suspend and
// resume, terminate, and a call of the C activity "CHello" (served by a C worker of the test's
// process).
//
//   node sdk_worker.mjs PORT     exit 0 when every check passes
import {
  TaskHubGrpcClient,
  TaskHubGrpcWorker,
  OrchestrationStatus as S,
  NoOpLogger,
  RetryPolicy,
  whenAll,
  whenAny,
} from '@microsoft/durabletask-js';

const target = `127.0.0.1:${process.argv[2]}`;
const logger = new NoOpLogger();
const client = new TaskHubGrpcClient({ hostAddress: target, logger });
const worker = new TaskHubGrpcWorker({ hostAddress: target, logger });
const run = `s${Date.now().toString(36)}`;
let failures = 0;

function check(name, ok, detail = '') {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${ok ? '' : ': ' + detail}`);
  if (!ok) failures++;
}

const sayHello = async (_ctx, name) => `Hello ${name}`;
const boom = async () => {
  throw new Error('it broke');
};

const chain = async function* (ctx, name) {
  const a = yield ctx.callActivity('sayHello', name);
  const b = yield ctx.callActivity('sayHello', a);
  return yield ctx.callActivity('sayHello', b);
};
const fanOut = async function* (ctx, n) {
  const tasks = [];
  for (let i = 0; i < n; i++) tasks.push(ctx.callActivity('sayHello', `${i}`));
  const all = yield whenAll(tasks);
  return all.join(',');
};
const timer = async function* (ctx) {
  const t0 = ctx.currentUtcDateTime.getTime();
  yield ctx.createTimer(new Date(t0 + 1000));
  return ctx.currentUtcDateTime.getTime() - t0 >= 1000 ? 'slept' : 'too early';
};
const eventOrTimeout = async function* (ctx, ms) {
  ctx.setCustomStatus('waiting');
  const ev = ctx.waitForExternalEvent('go');
  const to = ctx.createTimer(new Date(ctx.currentUtcDateTime.getTime() + ms));
  const winner = yield whenAny([ev, to]);
  return winner === ev ? `event ${ev.getResult()}` : 'timeout';
};
const child = async function* (_ctx, input) {
  return `child of ${input}`;
};
const parent = async function* (ctx, input) {
  const r = yield ctx.callSubOrchestrator('child', input);
  return `parent(${r})`;
};
const counter = async function* (ctx, n) {
  if (n < 3) {
    ctx.continueAsNew(n + 1, false);
    return;
  }
  return n;
};
const failing = async function* (ctx) {
  yield ctx.callActivity('boom');
};
const callsC = async function* (ctx, name) {
  return yield ctx.callActivity('CHello', name);
};
// Fails twice, then succeeds: attempts counted per instance in this process (activities run
// at least once: a redelivery would count too, and the check allows only the three runs).
const attempts = new Map();
const flaky = async (ctx) => {
  const n = (attempts.get(ctx.orchestrationId) ?? 0) + 1;
  attempts.set(ctx.orchestrationId, n);
  if (n < 3) throw new Error(`attempt ${n}`);
  return n;
};
const retried = async function* (ctx) {
  const retry = new RetryPolicy({ maxNumberOfAttempts: 5, firstRetryIntervalInMilliseconds: 200 });
  return yield ctx.callActivity('flaky', undefined, { retry });
};
const forever = async function* (ctx) {
  yield ctx.waitForExternalEvent('never');
};

for (const [n, f] of Object.entries({ chain, fanOut, timer, eventOrTimeout, child, parent,
  counter, failing, callsC, retried, forever })) {
  worker.addNamedOrchestrator(n, f);
}
worker.addNamedActivity('sayHello', sayHello);
worker.addNamedActivity('boom', boom);
worker.addNamedActivity('flaky', flaky);

async function startAndWait(name, input, id = `${run}-${name}`) {
  await client.scheduleNewOrchestration(name, input, id);
  return client.waitForOrchestrationCompletion(id, true, 60);
}

async function main() {
  await worker.start();
  let st = await startAndWait('chain', 'js');
  check('chain', st?.runtimeStatus === S.COMPLETED && st.serializedOutput === '"Hello Hello Hello js"',
    JSON.stringify(st?.serializedOutput ?? st?.failureDetails));
  st = await startAndWait('fanOut', 5);
  check('fan-out/fan-in', st?.serializedOutput === '"Hello 0,Hello 1,Hello 2,Hello 3,Hello 4"',
    st?.serializedOutput);
  st = await startAndWait('timer');
  check('timer', st?.serializedOutput === '"slept"', st?.serializedOutput);

  const evId = `${run}-event`;
  await client.scheduleNewOrchestration('eventOrTimeout', 60000, evId);
  const running = await client.waitForOrchestrationStart(evId, true, 30);
  check('custom status', running?.serializedCustomStatus === '"waiting"',
    running?.serializedCustomStatus);
  await client.raiseOrchestrationEvent(evId, 'go', 42);
  st = await client.waitForOrchestrationCompletion(evId, true, 60);
  check('external event', st?.serializedOutput === '"event 42"', st?.serializedOutput);
  st = await startAndWait('eventOrTimeout', 500, `${run}-event-timeout`);
  check('external event timeout', st?.serializedOutput === '"timeout"', st?.serializedOutput);

  st = await startAndWait('parent', 'p');
  check('sub-orchestration', st?.serializedOutput === '"parent(child of p)"', st?.serializedOutput);
  st = await startAndWait('counter', 0);
  check('continue-as-new', st?.runtimeStatus === S.COMPLETED && st.serializedOutput === '3',
    st?.serializedOutput);
  st = await startAndWait('failing');
  check('failure details', st?.runtimeStatus === S.FAILED &&
    JSON.stringify(st.failureDetails ?? {}).includes('it broke'),
    JSON.stringify(st?.failureDetails));
  st = await startAndWait('callsC', 'c');
  check('SDK orchestration calls a C activity',
    st?.serializedOutput === '{"from":"C","input":"c"}', st?.serializedOutput);

  st = await startAndWait('retried');
  check('retry policy', st?.runtimeStatus === S.COMPLETED && st.serializedOutput === '3',
    `${st?.runtimeStatus} ${st?.serializedOutput} ${JSON.stringify(st?.failureDetails)}`);

  // Suspend: an event raised meanwhile waits; resume lets it through.
  const susId = `${run}-suspend`;
  await client.scheduleNewOrchestration('eventOrTimeout', 60000, susId);
  await client.waitForOrchestrationStart(susId, false, 30);
  await client.suspendOrchestration(susId);
  let sus;
  for (let i = 0; i < 100 && sus?.runtimeStatus !== S.SUSPENDED; i++) {
    sus = await client.getOrchestrationState(susId, false);
    if (sus?.runtimeStatus !== S.SUSPENDED) await new Promise((r) => setTimeout(r, 100));
  }
  check('suspend', sus?.runtimeStatus === S.SUSPENDED, `${sus?.runtimeStatus}`);
  await client.raiseOrchestrationEvent(susId, 'go', 7);
  await new Promise((r) => setTimeout(r, 500));
  sus = await client.getOrchestrationState(susId, false);
  check('suspended: the event waits', sus?.runtimeStatus === S.SUSPENDED, `${sus?.runtimeStatus}`);
  await client.resumeOrchestration(susId);
  st = await client.waitForOrchestrationCompletion(susId, true, 60);
  check('resume', st?.serializedOutput === '"event 7"', st?.serializedOutput);

  const foreverId = `${run}-forever`;
  await client.scheduleNewOrchestration('forever', undefined, foreverId);
  await client.waitForOrchestrationStart(foreverId, false, 30);
  await client.terminateOrchestration(foreverId, 'enough');
  st = await client.waitForOrchestrationCompletion(foreverId, true, 60);
  check('terminate', st?.runtimeStatus === S.TERMINATED, `${st?.runtimeStatus}`);
}

try {
  await main();
} catch (e) {
  console.log(`FAIL exception: ${e?.stack ?? e}`);
  failures++;
}
await worker.stop();
client.stop();
process.exit(failures === 0 ? 0 : 1);
