// The driver of dt_bench's sdk_chain workload (tests/bench/bench_sdk.c): a durabletask-js app,
// worker and client in this process, against dt-sidecar on PORT. It warms up with 20 chains,
// prints "start", starts N three-activity chains at once through the endpoint (instance IDs
// "<PREFIX>-<i>", the ones dt_bench's status observer times), then waits for each with at most
// WAITS waits open at once (an app's bounded concurrency: the endpoint refuses waits beyond its
// share of handlers), checks every output and prints "result {json}".
//
//   node bench_sdk_chain.mjs PORT N PREFIX [WAITS]
import { TaskHubGrpcClient, TaskHubGrpcWorker, NoOpLogger, OrchestrationStatus as S } from '@microsoft/durabletask-js';

const [port, nArg, prefix, waitsArg] = process.argv.slice(2);
const n = Number(nArg);
const waits = Number(waitsArg ?? 64);
const hostAddress = `127.0.0.1:${port}`;

const hello = async (_ctx, name) => `Hello ${name}`;
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

async function waitAll(ids, inputs) {
  let next = 0;
  let bad = 0;
  const one = async () => {
    while (next < ids.length) {
      const k = next++;
      const st = await c.waitForOrchestrationCompletion(ids[k], true, 600).catch((e) => e);
      const want = JSON.stringify([`Hello a${inputs[k]}`, `Hello b${inputs[k]}`, `Hello c${inputs[k]}`]);
      if (st?.runtimeStatus !== S.COMPLETED || st.serializedOutput !== want) {
        if (bad++ < 3) console.error(`bad ${ids[k]}: ${st instanceof Error ? st.message : JSON.stringify(st)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(waits, ids.length) }, one));
  return bad;
}

const warm = Array.from({ length: 20 }, (_, i) => `${prefix}w-${i}`);
await Promise.all(warm.map((id, i) => c.scheduleNewOrchestration(chain, i, id)));
const warmBad = await waitAll(warm, warm.map((_, i) => i));

console.log('start');
const t0 = performance.now();
const ids = Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
const started = await Promise.allSettled(ids.map((id, i) => c.scheduleNewOrchestration(chain, i, id)));
const startMs = performance.now() - t0;
const refused = started.filter((r) => r.status !== 'fulfilled');
if (refused.length > 0) console.error(`refused starts: ${refused.length}: ${refused[0].reason}`);
const bad = await waitAll(ids, ids.map((_, i) => i));
const totalMs = performance.now() - t0;
console.log(`result ${JSON.stringify({ n, refused: refused.length, bad: bad + warmBad, start_ms: Math.round(startMs), waited_ms: Math.round(totalMs) })}`);
await worker.stop();
await c.stop();
process.exit(bad + warmBad + refused.length === 0 ? 0 : 1);
