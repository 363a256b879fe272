// Orchestrations written with @microsoft/durabletask-js, run by its TaskHubGrpcWorker through
// dt-sidecar (tests/integration/sidecar/test_sidecar_sdk.c starts the sidecar on PORT, with
// "hello", "double", "boom", "slow" and "stuck" as SDK activities and, on its worker, the C
// activity "CUpper" and the C orchestration "CCallsJs" that calls the SDK activity "hello").
//
//   node sidecar_sdk.mjs PORT     exit 0 when every check passes
import grpc from '@grpc/grpc-js';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  TaskHubGrpcClient,
  TaskHubGrpcWorker,
  OrchestrationStatus as S,
  NoOpLogger,
  whenAll,
  whenAny,
} from '@microsoft/durabletask-js';

const port = process.argv[2];
const mode = process.argv[3] ?? 'all';
const hostAddress = `127.0.0.1:${port}`;
const run = `s${Date.now().toString(36)}`;
let failures = 0;

function check(name, ok, detail = '') {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${ok ? '' : ': ' + detail}`);
  if (!ok) failures++;
}

// ---- activities ----
const hello = async (_ctx, name) => `Hello, ${name}!`;
const double = async (_ctx, n) => n * 2;
const boom = async () => {
  throw new Error('kaboom');
};
const slow = async (_ctx, ms) => new Promise((r) => setTimeout(() => r(ms), ms));

// ---- orchestrations ----
async function* sequence(ctx) {
  const out = [];
  out.push(yield ctx.callActivity(hello, 'Tokyo'));
  out.push(yield ctx.callActivity(hello, 'Seattle'));
  out.push(yield ctx.callActivity(hello, 'London'));
  return out;
}

async function* fanOut(ctx, n) {
  const tasks = [];
  for (let i = 0; i < n; i++) tasks.push(ctx.callActivity(double, i));
  const results = yield whenAll(tasks);
  return results.reduce((a, b) => a + b, 0);
}

async function* timer(ctx) {
  const t0 = ctx.currentUtcDateTime.getTime();
  yield ctx.createTimer(1);
  return ctx.currentUtcDateTime.getTime() - t0 >= 1000;
}

async function* approval(ctx, seconds) {
  const ev = ctx.waitForExternalEvent('approve');
  const t = ctx.createTimer(seconds);
  const winner = yield whenAny([ev, t]);
  return winner === ev ? `approved: ${ev.getResult()}` : 'timed out';
}

async function* child(_ctx, x) {
  return x * 2;
}

async function* parent(ctx) {
  const a = yield ctx.callSubOrchestrator(child, 21);
  const b = yield ctx.callSubOrchestrator(child, 1, { instanceId: `${ctx.instanceId}-kid` });
  return a + b;
}

async function* counter(ctx, n) {
  if (n < 3) {
    ctx.continueAsNew(n + 1, false);
    return;
  }
  return n;
}

async function* failing(ctx) {
  yield ctx.callActivity(boom);
}

async function* catches(ctx) {
  try {
    yield ctx.callActivity(boom);
  } catch (e) {
    return `caught ${e.details?.message}`;
  }
}

async function* waiter(ctx) {
  ctx.setCustomStatus('waiting');
  return yield ctx.waitForExternalEvent('go');
}

async function* callsC(ctx, s) {
  return yield ctx.callActivity('CUpper', s);
}

async function* sleeps(ctx) {
  yield ctx.callActivity(slow, 10);
  yield ctx.createTimer(3600);
}

// An SDK worker that crashes while it runs an activity: `crashy` calls `stuck`, which this
// worker never answers (its process exits); once it is gone the endpoint redelivers the item.
const stuck = async (_ctx, x) => `unstuck ${x}`;
async function* crashy(ctx) {
  return yield ctx.callActivity(stuck, 7);
}

if (mode === 'crash-on-activity') {
  const w0 = new TaskHubGrpcWorker({ hostAddress, logger: new NoOpLogger() });
  w0.addOrchestrator(crashy);
  w0.addNamedActivity('stuck', async () => {
    process.stdout.write('dying\n');
    process.exit(3);
  });
  await w0.start();
  process.stdout.write('ready\n');
  await new Promise(() => {});
}

{
  const c0 = new TaskHubGrpcClient({ hostAddress, logger: new NoOpLogger() });
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), port, 'crash-on-activity'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = [];
  child.stdout.on('data', (d) => lines.push(...d.toString().split('\n').filter(Boolean)));
  const exited = new Promise((r) => child.once('exit', (code) => r(code)));
  while (!lines.includes('ready')) await new Promise((r) => setTimeout(r, 50));
  const id = await c0.scheduleNewOrchestration(crashy, null, `${run}-crashy`);
  const code = await exited;
  check('an SDK worker dies while it holds an activity', code === 3 && lines.includes('dying'), `${code} ${lines}`);
  // A new worker (the main one, below) gets the activity again.
  globalThis.crashyId = id;
  await c0.stop();
}

const worker = new TaskHubGrpcWorker({ hostAddress, logger: new NoOpLogger() });
for (const o of [sequence, fanOut, timer, approval, child, parent, counter, failing, catches, waiter, callsC, sleeps, crashy]) {
  worker.addOrchestrator(o);
}
for (const a of [hello, double, boom, slow, stuck]) worker.addActivity(a);
await worker.start();
const c = new TaskHubGrpcClient({ hostAddress, logger: new NoOpLogger() });

async function done(id, s = 60) {
  return c.waitForOrchestrationCompletion(id, true, s);
}

async function untilStatus(id, status, ms = 20000) {
  const end = Date.now() + ms;
  let st;
  while (Date.now() < end) {
    st = await c.getOrchestrationState(id, false);
    if (st?.runtimeStatus === status) return st;
    await new Promise((r) => setTimeout(r, 100));
  }
  return st;
}

let st = await done(globalThis.crashyId);
check('its activity is redelivered to the next worker', st?.serializedOutput === '"unstuck 7"', JSON.stringify(st));

st = await done(await c.scheduleNewOrchestration(sequence, null, `${run}-seq`));
check('activity sequence', st?.serializedOutput === '["Hello, Tokyo!","Hello, Seattle!","Hello, London!"]', JSON.stringify(st));

st = await done(await c.scheduleNewOrchestration(fanOut, 20));
check('fan-out/fan-in', st?.serializedOutput === String(2 * 190), JSON.stringify(st));

st = await done(await c.scheduleNewOrchestration(timer));
check('timer', st?.serializedOutput === 'true', JSON.stringify(st));

const ap = await c.scheduleNewOrchestration(approval, 30);
await c.waitForOrchestrationStart(ap, false, 30);
await c.raiseOrchestrationEvent(ap, 'approve', 'yes');
st = await done(ap);
check('external event', st?.serializedOutput === '"approved: yes"', JSON.stringify(st));
st = await done(await c.scheduleNewOrchestration(approval, 1));
check('external event with timeout', st?.serializedOutput === '"timed out"', JSON.stringify(st));

const pid = await c.scheduleNewOrchestration(parent, null, `${run}-parent`);
st = await done(pid);
check('sub-orchestrations', st?.serializedOutput === '44', JSON.stringify(st));
const kid = await c.getOrchestrationState(`${pid}-kid`);
check('sub-orchestration with its own ID', kid?.runtimeStatus === S.COMPLETED, JSON.stringify(kid));

st = await done(await c.scheduleNewOrchestration(counter, 0));
check('continue-as-new', st?.runtimeStatus === S.COMPLETED && st.serializedOutput === '3', JSON.stringify(st));

st = await done(await c.scheduleNewOrchestration(failing));
check('failure details', st?.runtimeStatus === S.FAILED && /kaboom/.test(st.failureDetails?.message ?? '') , JSON.stringify(st?.failureDetails));
st = await done(await c.scheduleNewOrchestration(catches));
check('a failed activity caught', st?.serializedOutput === '"caught kaboom"', JSON.stringify(st));

const w = await c.scheduleNewOrchestration(waiter, null, `${run}-waiter`);
await c.waitForOrchestrationStart(w, false, 30);
st = await untilStatus(w, S.RUNNING);
await c.suspendOrchestration(w);
st = await untilStatus(w, S.SUSPENDED);
check('suspend', st?.runtimeStatus === S.SUSPENDED, JSON.stringify(st));
await c.raiseOrchestrationEvent(w, 'go', 42);
await c.resumeOrchestration(w);
st = await done(w);
check('resume', st?.serializedOutput === '42', JSON.stringify(st));

const t = await c.scheduleNewOrchestration(sleeps, null, `${run}-sleeps`);
await c.waitForOrchestrationStart(t, false, 30);
await c.terminateOrchestration(t, 'enough');
st = await done(t);
check('terminate', st?.runtimeStatus === S.TERMINATED, JSON.stringify(st));

st = await done(await c.scheduleNewOrchestration(callsC, 'abc'));
check('an SDK orchestration calls a C activity', st?.serializedOutput === '"ABC"', JSON.stringify(st));
st = await done(await c.scheduleNewOrchestration('CCallsJs', 'C'));
check('a C orchestration calls an SDK activity', st?.serializedOutput === '"Hello, C!"', JSON.stringify(st));

const mine = [];
for await (const s of c.getAllInstances({ instanceIdPrefix: run })) mine.push(s.instanceId);
check('query', mine.includes(`${run}-seq`) && mine.includes(`${run}-parent`), mine.join());
const h = await c.getOrchestrationHistory(`${run}-seq`);
check('history of an SDK orchestration', h.filter((e) => e.type === 'TaskCompleted').length === 3, h.map((e) => e.type).join());
const pr = await c.purgeOrchestration(`${run}-seq`);
check('purge', pr?.deletedInstanceCount === 1, JSON.stringify(pr));

// AbandonTaskActivityWorkItem { completionToken: "nope" }: no such item.
const raw = new grpc.Client(hostAddress, grpc.credentials.createInsecure());
const ab = await new Promise((resolve) => {
  raw.makeUnaryRequest('/TaskHubSidecarService/AbandonTaskActivityWorkItem', (b) => b, (b) => b,
    Buffer.from([0x0a, 4, ...Buffer.from('nope')]), new grpc.Metadata(), {}, (err) => resolve(err));
});
check('abandon of an unknown item is NOT_FOUND', ab?.code === grpc.status.NOT_FOUND, String(ab));
raw.close();

await worker.stop();
await c.stop();
console.log(failures === 0 ? 'all passed' : `${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
