// Durable entities through dt-sidecar with @microsoft/durabletask-js
// (tests/integration/sidecar/test_sidecar_entity.c starts the sidecar on PORT; its worker has the
// C entity "CCounter" (ops add, get, delete, fail) and the C orchestration "CCallsJsEntity",
// which calls operation "add" of the JS entity "@jscounter@<input>" and then signals it "add 1").
//
//   node sidecar_entity.mjs PORT     exit 0 when every check passes
//
// Checks: the client RPCs (signal, get, query, clean) against a C entity; an entity written in JS
// signalled by the client, called and signalled from a JS orchestration and from a C one; a
// critical section from JS over a JS and a C entity; an SDK worker that dies holding an entity
// operation (redelivered, applied once); malformed entity input gets a gRPC status.
import grpc from '@grpc/grpc-js';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  TaskHubGrpcClient,
  TaskHubGrpcWorker,
  EntityInstanceId,
  TaskEntity,
  NoOpLogger,
  OrchestrationStatus as S,
} from '@microsoft/durabletask-js';

const port = process.argv[2];
const mode = process.argv[3] ?? 'all';
const hostAddress = `127.0.0.1:${port}`;
const run = `e${Date.now().toString(36)}`;
let failures = 0;

function check(name, ok, detail = '') {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${ok ? '' : ': ' + detail}`);
  if (!ok) failures++;
}

// EntityMetadata's state getter throws when the state was not asked for.
const show = (m) => (m ? JSON.stringify({ id: m.id.toString(), lockedBy: m.lockedBy, backlog: m.backlogQueueSize,
  includesState: m.includesState, state: m.includesState ? m.state : undefined }) : String(m));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class JsCounter extends TaskEntity {
  add(n) {
    this.state.count += n;
    return this.state.count;
  }
  get() {
    return this.state.count;
  }
  fail() {
    this.state.count = -1000; // rolled back
    throw new Error('js entity says no');
  }
  bump(target) {
    // an entity signalling another entity
    this.context.signalEntity(new EntityInstanceId('JsCounter', target), 'add', 10);
  }
  initializeState() {
    return { count: 0 };
  }
}

// ---- orchestrations ----
async function* callsJs(ctx, key) {
  const id = new EntityInstanceId('JsCounter', key);
  const a = yield ctx.entities.callEntity(id, 'add', 5);
  ctx.entities.signalEntity(id, 'add', 100);
  const b = yield ctx.entities.callEntity(id, 'get');
  let failed = '';
  try {
    yield ctx.entities.callEntity(id, 'fail');
  } catch (e) {
    failed = String(e.message ?? e);
  }
  const c = yield ctx.entities.callEntity(id, 'get');
  return { a, b, c, failed };
}

async function* section(ctx, key) {
  const js = new EntityInstanceId('JsCounter', key);
  const cc = new EntityInstanceId('CCounter', key);
  const lock = yield ctx.entities.lockEntities(js, cc);
  const inside = ctx.entities.isInCriticalSection().inSection;
  const x = yield ctx.entities.callEntity(js, 'add', 1);
  const y = yield ctx.entities.callEntity(cc, 'add', 2);
  lock.release();
  return { inside, x, y };
}

// Ends inside a critical section without releasing it: the endpoint releases the locks.
async function* forgets(ctx, key) {
  const js = new EntityInstanceId('JsCounter', key);
  yield ctx.entities.lockEntities(js);
  return yield ctx.entities.callEntity(js, 'add', 1);
}

// A worker that dies while it holds an entity operation: its process exits; the endpoint
// redelivers the operation to the main worker, which applies it once.
if (mode === 'crash-on-entity') {
  const w0 = new TaskHubGrpcWorker({ hostAddress, logger: new NoOpLogger() });
  w0.addNamedEntity('JsCounter', () => ({
    run() {
      process.stdout.write('dying\n');
      process.exit(3);
    },
  }));
  await w0.start();
  process.stdout.write('ready\n');
  await new Promise(() => {});
}

const c = new TaskHubGrpcClient({ hostAddress, logger: new NoOpLogger() });

async function until(fn, ms = 20000) {
  const end = Date.now() + ms;
  let v;
  while (Date.now() < end) {
    v = await fn();
    if (v.ok) return v;
    await sleep(100);
  }
  return v;
}

async function stateOf(id) {
  const m = await c.getEntity(id);
  return m?.includesState ? m.state : undefined;
}

// ---- a worker dies holding an entity operation ----
{
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), port, 'crash-on-entity'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = [];
  child.stdout.on('data', (d) => lines.push(...d.toString().split('\n').filter(Boolean)));
  const exited = new Promise((r) => child.once('exit', (code) => r(code)));
  while (!lines.includes('ready')) await sleep(50);
  await c.signalEntity(new EntityInstanceId('JsCounter', `${run}-crash`), 'add', 7);
  const code = await exited;
  check('an SDK worker dies while it holds an entity operation', code === 3 && lines.includes('dying'), `${code} ${lines}`);
}

const worker = new TaskHubGrpcWorker({ hostAddress, logger: new NoOpLogger() });
worker.addNamedEntity('JsCounter', () => new JsCounter());
for (const o of [callsJs, section, forgets]) worker.addOrchestrator(o);
await worker.start();

{
  const id = new EntityInstanceId('JsCounter', `${run}-crash`);
  const r = await until(async () => {
    const s = await stateOf(id);
    return { ok: s?.count === 7, s };
  });
  check('its operation is redelivered to the next worker and applied once', r.ok, JSON.stringify(r.s));
}

// ---- client RPCs against a C entity ----
{
  const id = new EntityInstanceId('CCounter', `${run}-c1`);
  await c.signalEntity(id, 'add', 3);
  await c.signalEntity(id, 'add', 4);
  const r = await until(async () => {
    const m = await c.getEntity(id);
    return { ok: m?.state === 7, m };
  });
  check('signal + get of a C entity', r.ok, show(r.m));
  check('its metadata', r.m?.id?.name === 'ccounter' && r.m?.id?.key === `${run}-c1` &&
    r.m?.lastModifiedTime > new Date(Date.now() - 60000) && r.m?.lockedBy === undefined, show(r.m));
  const noState = await c.getEntity(id, false);
  check('get without state', noState !== undefined && noState.includesState === false, show(noState));
  check('an unknown entity is undefined', (await c.getEntity(new EntityInstanceId('CCounter', `${run}-none`))) === undefined);

  await c.signalEntity(new EntityInstanceId('CCounter', `${run}-c2`), 'add', 1);
  await until(async () => ({ ok: (await stateOf(new EntityInstanceId('CCounter', `${run}-c2`))) === 1 }));
  const found = [];
  for await (const m of c.getEntities({ instanceIdStartsWith: `@CCounter@${run}-c`, includeState: true })) {
    found.push(`${m.id.key}=${m.state}`);
  }
  check('query by name and key prefix', found.sort().join() === `${run}-c1=7,${run}-c2=1`, found.join());
  const byName = [];
  for await (const m of c.getEntities({ instanceIdStartsWith: 'ccount' })) byName.push(m.id.toString());
  check('query by name prefix', byName.includes(`@ccounter@${run}-c1`) && byName.every((s) => s.startsWith('@ccount')), byName.join());
  const pages = [];
  for await (const p of c.getEntities({ instanceIdStartsWith: `@ccounter@${run}-c`, pageSize: 1 }).asPages()) {
    pages.push(p.values.length);
  }
  check('query page by page', pages.reduce((a, b) => a + b, 0) === 2 && pages[0] === 1, JSON.stringify(pages));

  await c.signalEntity(id, 'delete');
  await until(async () => ({ ok: (await c.getEntity(id)) === undefined }));
  const transient = [];
  for await (const m of c.getEntities({ instanceIdStartsWith: `@ccounter@${run}-c1`, includeTransient: true })) {
    transient.push(m.id.key);
  }
  check('a deleted entity is listed only as transient', transient.join() === `${run}-c1`, transient.join());
  const cl = await c.cleanEntityStorage();
  check('clean removes the empty entity', cl.emptyEntitiesRemoved >= 1 && cl.orphanedLocksReleased === 0, JSON.stringify(cl));
  const after = [];
  for await (const m of c.getEntities({ instanceIdStartsWith: `@ccounter@${run}-c1`, includeTransient: true })) {
    after.push(m.id.key);
  }
  check('and it is gone', after.length === 0, after.join());
}

// ---- an entity written in JS ----
{
  const id = new EntityInstanceId('JsCounter', `${run}-j1`);
  await c.signalEntity(id, 'add', 2);
  await c.signalEntity(id, 'add', 3);
  await c.signalEntity(id, 'fail');
  const r = await until(async () => {
    const s = await stateOf(id);
    return { ok: s?.count === 5, s };
  });
  check('JS entity signalled by the client (a failing operation changes nothing)', r.ok, JSON.stringify(r.s));

  const oid = await c.scheduleNewOrchestration(callsJs, `${run}-j2`, `${run}-callsjs`);
  const st = await c.waitForOrchestrationCompletion(oid, true, 60);
  const out = st?.serializedOutput ? JSON.parse(st.serializedOutput) : null;
  check('JS orchestration calls and signals a JS entity', st?.runtimeStatus === S.COMPLETED &&
    out?.a === 5 && out?.b === 105 && out?.c === 105 && out?.failed.includes('js entity says no'), JSON.stringify(st));

  const cid = await c.scheduleNewOrchestration('CCallsJsEntity', `${run}-j3`, `${run}-ccallsjs`);
  const cst = await c.waitForOrchestrationCompletion(cid, true, 60);
  check('C orchestration calls a JS entity', cst?.runtimeStatus === S.COMPLETED && cst?.serializedOutput === '42', JSON.stringify(cst));
  const r3 = await until(async () => {
    const s = await stateOf(new EntityInstanceId('JsCounter', `${run}-j3`));
    return { ok: s?.count === 43, s };
  });
  check('and signals it', r3.ok, JSON.stringify(r3.s));

  await c.signalEntity(new EntityInstanceId('JsCounter', `${run}-j4`), 'bump', `${run}-j5`);
  const r5 = await until(async () => {
    const s = await stateOf(new EntityInstanceId('JsCounter', `${run}-j5`));
    return { ok: s?.count === 10, s };
  });
  check('a JS entity signals another entity', r5.ok, JSON.stringify(r5.s));
}

// ---- critical sections from JS ----
{
  const key = `${run}-cs`;
  const oid = await c.scheduleNewOrchestration(section, key, `${run}-section`);
  const st = await c.waitForOrchestrationCompletion(oid, true, 60);
  const out = st?.serializedOutput ? JSON.parse(st.serializedOutput) : null;
  check('critical section over a JS and a C entity', st?.runtimeStatus === S.COMPLETED &&
    out?.inside === true && out?.x === 1 && out?.y === 2, JSON.stringify(st));
  // The unlocks travel after the completion: wait for them.
  const u = await until(async () => {
    const m1 = await c.getEntity(new EntityInstanceId('JsCounter', key));
    const m2 = await c.getEntity(new EntityInstanceId('CCounter', key));
    return { ok: m1 && m2 && m1.lockedBy === undefined && m2.lockedBy === undefined, m1, m2 };
  });
  check('both unlocked after release', u.ok, `${show(u.m1)} ${show(u.m2)}`);

  const fid = await c.scheduleNewOrchestration(forgets, `${run}-fg`, `${run}-forgets`);
  const fst = await c.waitForOrchestrationCompletion(fid, true, 60);
  check('an orchestration that ends inside a section', fst?.runtimeStatus === S.COMPLETED && fst?.serializedOutput === '1', JSON.stringify(fst));
  const r = await until(async () => {
    const m = await c.getEntity(new EntityInstanceId('JsCounter', `${run}-fg`));
    return { ok: m !== undefined && m.lockedBy === undefined, m };
  });
  check('has its locks released by the endpoint', r.ok, show(r.m));
  await c.signalEntity(new EntityInstanceId('JsCounter', `${run}-fg`), 'add', 1);
  const r2 = await until(async () => ({ ok: (await stateOf(new EntityInstanceId('JsCounter', `${run}-fg`)))?.count === 2 }));
  check('and the entity serves others after it', r2.ok);
}

// ---- malformed input ----
{
  const raw = new grpc.Client(hostAddress, grpc.credentials.createInsecure());
  const unary = (method, buf) => new Promise((resolve) => {
    raw.makeUnaryRequest(`/TaskHubSidecarService/${method}`, (b) => b, (b) => b, buf,
      new grpc.Metadata(), {}, (err, res) => resolve({ err, res }));
  });
  const str = (field, s) => Buffer.concat([Buffer.from([(field << 3) | 2, Buffer.byteLength(s)]), Buffer.from(s)]);
  let r = await unary('SignalEntity', Buffer.concat([str(1, 'not-an-entity'), str(2, 'add')]));
  check('SignalEntity to a non-entity ID is INVALID_ARGUMENT', r.err?.code === grpc.status.INVALID_ARGUMENT, String(r.err));
  r = await unary('SignalEntity', Buffer.concat([str(1, `@ccounter@${run}-bad`)]));
  check('SignalEntity without an operation is INVALID_ARGUMENT', r.err?.code === grpc.status.INVALID_ARGUMENT, String(r.err));
  r = await unary('GetEntity', Buffer.from([0xff, 0xff, 0xff]));
  check('a malformed GetEntity is INVALID_ARGUMENT', r.err?.code === grpc.status.INVALID_ARGUMENT, String(r.err));
  r = await unary('GetEntity', str(1, '@@key'));
  check('GetEntity of an ID without a name is INVALID_ARGUMENT', r.err?.code === grpc.status.INVALID_ARGUMENT, String(r.err));
  r = await unary('CompleteEntityTask', str(5, 'nope'));
  check('CompleteEntityTask of an unknown item is NOT_FOUND', r.err?.code === grpc.status.NOT_FOUND, String(r.err));
  r = await unary('CompleteEntityTask', Buffer.from([0x0a, 0x05, 0x01]));
  check('a malformed CompleteEntityTask is INVALID_ARGUMENT', r.err?.code === grpc.status.INVALID_ARGUMENT, String(r.err));
  r = await unary('AbandonTaskEntityWorkItem', str(1, 'nope'));
  check('AbandonTaskEntityWorkItem of an unknown item is NOT_FOUND', r.err?.code === grpc.status.NOT_FOUND, String(r.err));
  raw.close();
  // Nothing was lost on the way: the C entity still counts.
  const id = new EntityInstanceId('CCounter', `${run}-after`);
  await c.signalEntity(id, 'add', 9);
  const r2 = await until(async () => ({ ok: (await stateOf(id)) === 9 }));
  check('the endpoint serves on after malformed input', r2.ok);
}

await worker.stop();
await c.stop();
console.log(failures === 0 ? 'all passed' : `${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
