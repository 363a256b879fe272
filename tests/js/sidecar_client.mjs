// The client RPCs of dt-sidecar through @microsoft/durabletask-js's TaskHubGrpcClient, against
// C orchestrations run by a C worker (tests/integration/sidecar/test_sidecar_client.c):
//   Echo     output = input
//   WaitGo   waits for event "go", output = its data
//   Fails    fails with type "MyError", message "it broke"
//   Sleeper  sleeps an hour
//   Parent   starts WaitGo as "<id>-child" and waits for it
//
//   node sidecar_client.mjs PORT     exit 0 when every check passes
import grpc from '@grpc/grpc-js';
import pb from '@microsoft/durabletask-js/dist/proto/orchestrator_service_pb.js';
import wrappers from 'google-protobuf/google/protobuf/wrappers_pb.js';
import {
  TaskHubGrpcClient,
  OrchestrationStatus as S,
  PurgeInstanceCriteria,
  NoOpLogger,
  terminateOptions,
} from '@microsoft/durabletask-js';

const port = process.argv[2];
const target = `127.0.0.1:${port}`;
const c = new TaskHubGrpcClient({ hostAddress: target, logger: new NoOpLogger() });
const run = `r${Date.now().toString(36)}`;
let failures = 0;

function check(name, ok, detail = '') {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${ok ? '' : ': ' + detail}`);
  if (!ok) failures++;
}

async function rejects(p) {
  try {
    await p;
    return null;
  } catch (e) {
    return e;
  }
}

// The status changes of suspend and resume have no wait RPC: read until it shows (bounded).
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

const raw = new grpc.Client(target, grpc.credentials.createInsecure());
function rawUnary(method, buf) {
  return new Promise((resolve) => {
    raw.makeUnaryRequest(`/TaskHubSidecarService/${method}`, (b) => b, (b) => b, buf,
      new grpc.Metadata(), {}, (err, res) => resolve({ err, res }));
  });
}

async function startAndStatus() {
  const r = await rawUnary('Hello', Buffer.alloc(0));
  check('Hello', !r.err, String(r.err));

  const id = await c.scheduleNewOrchestration('Echo', { a: 1 }, `${run}-echo`);
  check('StartInstance returns the ID', id === `${run}-echo`, id);
  let st = await c.waitForOrchestrationCompletion(id, true, 30);
  check('wait for completion', st?.runtimeStatus === S.COMPLETED, JSON.stringify(st));
  check('output', st?.serializedOutput === '{"a":1}', st?.serializedOutput);
  check('input', st?.serializedInput === '{"a":1}', st?.serializedInput);
  check('name and times', st?.name === 'Echo' && st.createdAt.getTime() > 0 && st.lastUpdatedAt >= st.createdAt);
  st = await c.getOrchestrationState(id, false);
  check('GetInstance without payloads', st?.runtimeStatus === S.COMPLETED && st.serializedInput === undefined && st.serializedOutput === undefined, JSON.stringify(st));
  st = await c.getOrchestrationState(`${run}-nobody`);
  check('GetInstance of an unknown instance: not found', st === undefined, JSON.stringify(st));

  // The endpoint answers exists = false once the instance had time to appear (10 s); the SDK's
  // own timeout (60 s) would throw instead.
  st = await c.waitForOrchestrationStart(`${run}-nobody`, false, 60);
  check('a wait for an unknown instance ends: not found', st === undefined, JSON.stringify(st));

  const gen = await c.scheduleNewOrchestration('Echo', 'x');
  check('generated instance ID', /^[0-9a-f-]{36}$/.test(gen), gen);

  const tagged = await c.scheduleNewOrchestration('Echo', 1, { instanceId: `${run}-tags`, tags: { team: 'a', env: 'test' }, version: '1.2' });
  st = await c.waitForOrchestrationCompletion(tagged, true, 30);
  check('tags', st?.tags?.team === 'a' && st?.tags?.env === 'test', JSON.stringify(st?.tags));

  const t1 = Date.now();
  const later = await c.scheduleNewOrchestration('Echo', 2, `${run}-later`, new Date(t1 + 2000));
  st = await c.getOrchestrationState(later);
  check('scheduled start is PENDING first', st?.runtimeStatus === S.PENDING, JSON.stringify(st));
  st = await c.waitForOrchestrationCompletion(later, true, 30);
  check('scheduled start runs at its time', st?.runtimeStatus === S.COMPLETED && Date.now() - t1 >= 1900, `${Date.now() - t1} ms`);

  let e = await rejects(c.scheduleNewOrchestration('bad name', 1));
  check('bad name is INVALID_ARGUMENT', e?.code === grpc.status.INVALID_ARGUMENT, String(e));
  const bad = await rawUnary('StartInstance', Buffer.from([0xff, 0xff, 0xff]));
  check('malformed request is INVALID_ARGUMENT', bad.err?.code === grpc.status.INVALID_ARGUMENT && bad.err.details.includes('CreateInstanceRequest'), String(bad.err));
}

async function eventsAndControl() {
  const id = await c.scheduleNewOrchestration('WaitGo', null, `${run}-go`);
  let st = await c.waitForOrchestrationStart(id, false, 30);
  check('wait for start', st?.runtimeStatus === S.RUNNING, JSON.stringify(st));
  let e = await rejects(c.scheduleNewOrchestration('WaitGo', null, id));
  check('start of a running ID is ALREADY_EXISTS', e?.code === grpc.status.ALREADY_EXISTS, String(e));
  await c.raiseOrchestrationEvent(id, 'go', { x: 2 });
  st = await c.waitForOrchestrationCompletion(id, true, 30);
  check('raised event completes it', st?.serializedOutput === '{"x":2}', JSON.stringify(st));
  e = await rejects(c.raiseOrchestrationEvent(`${run}-nobody`, 'go', 1));
  check('event to an unknown instance is NOT_FOUND', e?.code === grpc.status.NOT_FOUND, String(e));
  e = await rejects(c.raiseOrchestrationEvent(id, 'go', 1));
  check('event to a finished instance is FAILED_PRECONDITION', e?.code === grpc.status.FAILED_PRECONDITION, String(e));

  const again = await c.scheduleNewOrchestration('Echo', 'second', id);
  st = await c.waitForOrchestrationCompletion(again, true, 30);
  check('a finished ID is replaced by a new start', st?.serializedOutput === '"second"', JSON.stringify(st));

  const f = await c.scheduleNewOrchestration('Fails', null, `${run}-fails`);
  st = await c.waitForOrchestrationCompletion(f, true, 30);
  check('failure details', st?.runtimeStatus === S.FAILED && st.failureDetails?.errorType === 'MyError' && st.failureDetails?.message === 'it broke', JSON.stringify(st?.failureDetails));

  const s = await c.scheduleNewOrchestration('WaitGo', null, `${run}-susp`);
  await c.waitForOrchestrationStart(s, false, 30);
  await c.suspendOrchestration(s);
  st = await untilStatus(s, S.SUSPENDED);
  check('suspend', st?.runtimeStatus === S.SUSPENDED, JSON.stringify(st));
  await c.raiseOrchestrationEvent(s, 'go', 'held');
  await new Promise((r) => setTimeout(r, 500));
  st = await c.getOrchestrationState(s);
  check('an event waits while suspended', st?.runtimeStatus === S.SUSPENDED, JSON.stringify(st));
  await c.resumeOrchestration(s);
  st = await c.waitForOrchestrationCompletion(s, true, 30);
  check('resume delivers it', st?.serializedOutput === '"held"', JSON.stringify(st));

  const t = await c.scheduleNewOrchestration('Sleeper', null, `${run}-sleep`);
  await c.waitForOrchestrationStart(t, false, 30);
  await c.terminateOrchestration(t, 'stop');
  st = await c.waitForOrchestrationCompletion(t, true, 30);
  check('terminate with output', st?.runtimeStatus === S.TERMINATED && st.serializedOutput === '"stop"', JSON.stringify(st));

  const p = await c.scheduleNewOrchestration('Parent', null, `${run}-parent`);
  st = await c.waitForOrchestrationStart(`${p}-child`, false, 30);
  check('child started', st?.runtimeStatus === S.RUNNING, JSON.stringify(st));
  await c.terminateOrchestration(p, terminateOptions({ output: 'all', recursive: true }));
  st = await c.waitForOrchestrationCompletion(p, false, 30);
  const child = await c.waitForOrchestrationCompletion(`${p}-child`, false, 30);
  check('recursive terminate', st?.runtimeStatus === S.TERMINATED && child?.runtimeStatus === S.TERMINATED, `${st?.runtimeStatus} ${child?.runtimeStatus}`);

  // A wait the client gives up on (deadline) ends on the endpoint too.
  const w = await c.scheduleNewOrchestration('WaitGo', null, `${run}-waitdl`);
  const dl = await new Promise((resolve) => {
    raw.makeUnaryRequest('/TaskHubSidecarService/WaitForInstanceCompletion', (b) => b, (b) => b,
      Buffer.concat([Buffer.from([0x0a, w.length]), Buffer.from(w)]), new grpc.Metadata(),
      { deadline: Date.now() + 1000 }, (err) => resolve(err));
  });
  check('wait with a deadline', dl?.code === grpc.status.DEADLINE_EXCEEDED, String(dl));
  await c.terminateOrchestration(w, null);
}

// StartInstance with an OrchestrationIdReusePolicy (durabletask-js 0.4 does not send one yet).
function startWithPolicy(id, name, input, replaceable) {
  const req = new pb.CreateInstanceRequest();
  req.setInstanceid(id);
  req.setName(name);
  const v = new wrappers.StringValue();
  v.setValue(JSON.stringify(input));
  req.setInput(v);
  const pol = new pb.OrchestrationIdReusePolicy();
  pol.setReplaceablestatusList(replaceable);
  req.setOrchestrationidreusepolicy(pol);
  return rawUnary('StartInstance', Buffer.from(req.serializeBinary()));
}

async function reusePolicy() {
  const P = pb.OrchestrationStatus;
  const all = [P.ORCHESTRATION_STATUS_COMPLETED, P.ORCHESTRATION_STATUS_FAILED, P.ORCHESTRATION_STATUS_TERMINATED,
    P.ORCHESTRATION_STATUS_CANCELED, P.ORCHESTRATION_STATUS_PENDING, P.ORCHESTRATION_STATUS_RUNNING,
    P.ORCHESTRATION_STATUS_SUSPENDED];
  const but = (x) => all.filter((s) => s !== x);
  const id = await c.scheduleNewOrchestration('WaitGo', null, `${run}-reuse`);
  await c.waitForOrchestrationStart(id, false, 30);
  let r = await startWithPolicy(id, 'Echo', 'x', but(P.ORCHESTRATION_STATUS_RUNNING));
  check('reuse policy without RUNNING refuses a running instance', r.err?.code === grpc.status.ALREADY_EXISTS, String(r.err));
  r = await startWithPolicy(id, 'Echo', 'x', but(P.ORCHESTRATION_STATUS_TERMINATED));
  check('reuse policy that allows running but not terminated is refused', r.err?.code === grpc.status.INVALID_ARGUMENT &&
    r.err.details.includes("cannot exclude 'Terminated' while also allowing reuse of running instances"), String(r.err));
  r = await startWithPolicy(id, 'Echo', 'replaced', all);
  let st = await c.waitForOrchestrationCompletion(id, true, 30);
  check('reuse policy with RUNNING replaces a running instance', !r.err && st?.serializedOutput === '"replaced"', `${r.err} ${JSON.stringify(st)}`);
  r = await startWithPolicy(id, 'Echo', 'again', [P.ORCHESTRATION_STATUS_FAILED]);
  check('reuse policy without COMPLETED refuses a completed instance', r.err?.code === grpc.status.ALREADY_EXISTS, String(r.err));
  r = await startWithPolicy(id, 'Echo', 'again', [P.ORCHESTRATION_STATUS_COMPLETED]);
  st = await c.waitForOrchestrationCompletion(id, true, 30);
  check('reuse policy with COMPLETED replaces a completed instance', !r.err && st?.serializedOutput === '"again"', `${r.err} ${JSON.stringify(st)}`);
}

async function queriesAndHistory() {
  const ids = [];
  for (let i = 0; i < 5; i++) ids.push(await c.scheduleNewOrchestration('Echo', i, `${run}-q${i}`));
  for (const id of ids) await c.waitForOrchestrationCompletion(id, false, 30);
  const seen = [];
  for await (const page of c.getAllInstances({ instanceIdPrefix: `${run}-q`, pageSize: 2 }).asPages()) {
    for (const s of page.values) seen.push(s.instanceId);
  }
  check('query by prefix, in pages of 2', seen.sort().join() === ids.sort().join(), seen.join());
  const page = await c.getAllInstances({ instanceIdPrefix: `${run}-q`, statuses: [S.RUNNING] }).asPages()[Symbol.asyncIterator]().next();
  check('query by status', page.value.values.length === 0, JSON.stringify(page.value?.values));
  let withPayload = null;
  for await (const s of c.getAllInstances({ instanceIdPrefix: `${run}-q0`, fetchInputsAndOutputs: true })) withPayload = s;
  check('query with payloads', withPayload?.serializedOutput === '0', JSON.stringify(withPayload));

  const listed = [];
  let key;
  do {
    const pg = await c.listInstanceIds({ runtimeStatus: [S.COMPLETED], pageSize: 50, lastInstanceKey: key });
    listed.push(...pg.values);
    key = pg.continuationToken;
  } while (key);
  check('ListInstanceIds', ids.every((id) => listed.includes(id)), listed.join());

  // A completed-time range is applied before the page is cut: with more finished instances in
  // the hub than the page holds, the one instance finished inside the range is on the first page.
  await new Promise((res) => setTimeout(res, 50));
  const since = new Date();
  const late = await c.scheduleNewOrchestration('Echo', 'late', `${run}-late`);
  await c.waitForOrchestrationCompletion(late, false, 30);
  const ranged = await c.listInstanceIds({ runtimeStatus: [S.COMPLETED], pageSize: 2,
    completedTimeFrom: since, completedTimeTo: new Date(Date.now() + 60000) });
  check('ListInstanceIds with a completed-time range fills its page from later pages',
    ranged.values.length === 1 && ranged.values[0] === late, JSON.stringify(ranged));

  const h = await c.getOrchestrationHistory(ids[0]);
  const types = h.map((e) => e.type);
  check('history', types[0] === 'OrchestratorStarted' || types.includes('ExecutionStarted'), types.join());
  check('history ends completed', types.includes('ExecutionCompleted'), types.join());
  const started = h.find((e) => e.type === 'ExecutionStarted');
  check('history event fields', started?.name === 'Echo' && started?.input === '0', JSON.stringify(started));
  const none = await c.getOrchestrationHistory(`${run}-nobody`);
  check('history of an unknown instance is empty', none.length === 0, JSON.stringify(none));

  const rs = await c.restartOrchestration(ids[1]);
  let st = await c.waitForOrchestrationCompletion(rs, true, 30);
  check('restart under the same ID', rs === ids[1] && st?.serializedOutput === '1', `${rs} ${JSON.stringify(st)}`);
  const rn = await c.restartOrchestration(ids[2], true);
  st = await c.waitForOrchestrationCompletion(rn, true, 30);
  check('restart under a new ID', rn !== ids[2] && st?.serializedOutput === '2', rn);
  const run2 = await c.scheduleNewOrchestration('WaitGo', null, `${run}-running`);
  await c.waitForOrchestrationStart(run2, false, 30);
  let e = await rejects(c.restartOrchestration(run2));
  check('restart of a running instance fails', /cannot be restarted/.test(e?.message), String(e));

  let res = await c.purgeOrchestration(ids[3]);
  check('purge one', res?.deletedInstanceCount === 1, JSON.stringify(res));
  check('purged is gone', (await c.getOrchestrationState(ids[3])) === undefined);
  res = await c.purgeOrchestration(`${run}-nobody`);
  check('purge of an unknown instance deletes nothing', res?.deletedInstanceCount === 0, JSON.stringify(res));
  e = await rejects(c.purgeOrchestration(run2));
  check('purge of a running instance is FAILED_PRECONDITION', e?.code === grpc.status.FAILED_PRECONDITION, String(e));
  await c.terminateOrchestration(run2, null);
  await c.waitForOrchestrationCompletion(run2, false, 30);

  res = await c.purgeOrchestration(`${run}-parent`, { recursive: true });
  check('recursive purge', res?.deletedInstanceCount === 2, JSON.stringify(res));
  const crit = new PurgeInstanceCriteria();
  crit.setCreatedTimeFrom(new Date(Date.now() - 3600 * 1000));
  crit.setRuntimeStatusList([S.COMPLETED, S.FAILED, S.TERMINATED]);
  res = await c.purgeOrchestration(crit);
  check('purge by filter', res?.deletedInstanceCount >= 10, JSON.stringify(res));
  const left = await c.getAllInstances({ instanceIdPrefix: run }).asPages()[Symbol.asyncIterator]().next();
  check('nothing finished left', left.value.values.every((s) => s.runtimeStatus === S.RUNNING || s.runtimeStatus === S.PENDING), JSON.stringify(left.value.values.map((s) => [s.instanceId, s.runtimeStatus])));

  const failed = await c.scheduleNewOrchestration('FlakyOnce', null, `${run}-rewind`);
  let fst = await c.waitForOrchestrationCompletion(failed, true, 30);
  check('an orchestration whose activity fails once fails', fst?.runtimeStatus === S.FAILED, JSON.stringify(fst));
  await c.rewindInstance(failed, 'try again');
  // The rewind is applied by the worker after the call returns: until then the instance is
  // still FAILED (a wait would return at once), so its status is read until it changes.
  for (const end = Date.now() + 30000; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) {
    fst = await c.getOrchestrationState(failed, true);
    if (fst?.runtimeStatus !== S.FAILED) break;
  }
  fst = await c.waitForOrchestrationCompletion(failed, true, 30);
  check('rewind runs the failed activity again and completes', fst?.runtimeStatus === S.COMPLETED && fst.serializedOutput === '"second run"', JSON.stringify(fst));
  const rh = await c.getOrchestrationHistory(failed);
  const rw = rh.find((ev) => ev.type === 'ExecutionRewound');
  check('the rewind reason is recorded', rw !== undefined && JSON.stringify(rw).includes('try again'), JSON.stringify(rh.map((ev) => ev.type)));
  const fine = await c.scheduleNewOrchestration('Echo', 1, `${run}-fine`);
  await c.waitForOrchestrationCompletion(fine, false, 30);
  e = await rejects(c.rewindInstance(fine, 'why'));
  check('rewind of a completed instance is FAILED_PRECONDITION', /only a failed instance/.test(e?.message), String(e));
  e = await rejects(c.rewindInstance(`${run}-nobody`, 'why'));
  check('rewind of an unknown instance is NOT_FOUND', /was not found/.test(e?.message), String(e));
  const ent = await rawUnary('SignalEntity', Buffer.alloc(0));
  check('a SignalEntity naming no entity is INVALID_ARGUMENT', ent.err?.code === grpc.status.INVALID_ARGUMENT && /not an entity ID/.test(ent.err.details), String(ent.err));
  const hub = await rawUnary('CreateTaskHub', Buffer.alloc(0));
  check('task hub management is UNIMPLEMENTED', hub.err?.code === grpc.status.UNIMPLEMENTED && /dtctl/.test(hub.err.details), String(hub.err));
}

await startAndStatus();
await eventsAndControl();
await reusePolicy();
await queriesAndHistory();
raw.close();
await c.stop();
console.log(failures === 0 ? 'all passed' : `${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
