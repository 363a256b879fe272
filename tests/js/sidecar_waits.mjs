// Many waits open at once while an SDK worker runs the instances they wait on
// (tests/integration/sidecar/test_sidecar_sdk.c, test_waits_while_the_sdk_works): 100 chains of
// three SDK activities are started, a WaitForInstanceCompletion is opened on each at once, and
// every wait must end with its chain completed and the right output. A reported bug had the
// worker's responses not committed while the waits were open.
//
// With MODE "over", N is more than the endpoint's share of waiting handlers (224): N chains are
// started and N waits opened at once on the connection the worker shares; the waits beyond the
// share must be refused at once (RESOURCE_EXHAUSTED) rather than hold the streams the worker's
// completions need (that hung every wait until its timeout); every chain must complete, and
// the refused waits, waited for again a few at a time, must see them completed.
//
//   node sidecar_waits.mjs PORT [N [MODE]]     exit 0 when every check passes
import { TaskHubGrpcClient, TaskHubGrpcWorker, NoOpLogger, OrchestrationStatus as S } from '@microsoft/durabletask-js';

const port = process.argv[2];
const n = Number(process.argv[3] ?? 100);
const mode = process.argv[4] ?? 'all';
const hostAddress = `127.0.0.1:${port}`;
const run = `w${Date.now().toString(36)}`;

const hello = async (_ctx, name) => `Hello, ${name}!`;
async function* chain(ctx, i) {
  const a = yield ctx.callActivity(hello, `a${i}`);
  const b = yield ctx.callActivity(hello, `b${i}`);
  const c = yield ctx.callActivity(hello, `c${i}`);
  return [a, b, c];
}

const worker = new TaskHubGrpcWorker({ hostAddress, logger: new NoOpLogger() });
worker.addOrchestrator(chain);
worker.addActivity(hello);
await worker.start();
const c = new TaskHubGrpcClient({ hostAddress, logger: new NoOpLogger() });

if (mode === 'over') {
  const t0 = Date.now();
  const ids = Array.from({ length: n }, (_, i) => `${run}-o${i}`);
  await Promise.all(ids.map((id, i) => c.scheduleNewOrchestration(chain, i, id)));
  const wait = (id) => c.waitForOrchestrationCompletion(id, true, 120).catch((e) => e);
  const first = await Promise.all(ids.map(wait));
  const refused = first.filter((st) => st instanceof Error && /RESOURCE_EXHAUSTED/.test(st.message)).length;
  let bad = 0;
  for (let i = 0; i < n; i++) {
    let st = first[i];
    if (st instanceof Error && /RESOURCE_EXHAUSTED/.test(st.message)) st = await wait(ids[i]);
    const want = JSON.stringify([`Hello, a${i}!`, `Hello, b${i}!`, `Hello, c${i}!`]);
    if (st?.runtimeStatus !== S.COMPLETED || st.serializedOutput !== want) {
      if (bad++ < 5) console.log(`FAIL ${ids[i]}: ${st instanceof Error ? st.message : JSON.stringify(st)}`);
    }
  }
  const secs = (Date.now() - t0) / 1000;
  console.log(`${refused > 0 ? 'ok  ' : 'FAIL'} waits beyond the share refused at once (${refused} of ${n})`);
  console.log(`${bad === 0 ? 'ok  ' : 'FAIL'} ${n} chains completed (${bad} wrong)`);
  // The hang ended only with the waits' 120 s timeouts.
  console.log(`${secs < 100 ? 'ok  ' : 'FAIL'} no wait hung (${secs.toFixed(1)} s)`);
  await worker.stop();
  await c.stop();
  process.exit(refused > 0 && bad === 0 && secs < 100 ? 0 : 1);
}

// Started one after the other, then all waited on at once; then started and waited on all at
// once, each wait opened as soon as its start returns.
const ids = [];
for (let i = 0; i < n; i++) ids.push(await c.scheduleNewOrchestration(chain, i, `${run}-${i}`));
const wait = (id) => c.waitForOrchestrationCompletion(id, true, 120).catch((e) => e);
const states = await Promise.all(ids.map(wait));
const ids2 = [];
for (let i = 0; i < n; i++) ids2.push(`${run}-x${i}`);
const states2 = await Promise.all(
  ids2.map((id, i) => c.scheduleNewOrchestration(chain, i, id).then(wait, (e) => e)),
);
ids.push(...ids2);
states.push(...states2);
let bad = 0;
states.forEach((st, i) => {
  const k = i % n;
  const want = JSON.stringify([`Hello, a${k}!`, `Hello, b${k}!`, `Hello, c${k}!`]);
  if (st?.runtimeStatus !== S.COMPLETED || st.serializedOutput !== want) {
    if (bad++ < 5) console.log(`FAIL ${ids[i]}: ${st instanceof Error ? st.message : JSON.stringify(st)}`);
  }
});
console.log(`${bad === 0 ? 'ok  ' : 'FAIL'} 2 x ${n} chains completed under ${n} open waits (${bad} wrong)`);
await worker.stop();
await c.stop();
process.exit(bad === 0 ? 0 : 1);
