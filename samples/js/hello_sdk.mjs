// Function chaining written with the Durable Task SDK for JavaScript (@microsoft/durabletask-js),
// run on a NATS hub through dt-sidecar (docs/sdk.md): the JS twin of samples/chaining.c.
//
// `helloCitiesJs` calls the activity `sayHelloJs` for Tokyo, Seattle and London, one after another,
// and returns ["Hello Tokyo!","Hello Seattle!","Hello London!"]. This one process is both the SDK
// worker (it serves the orchestration and the activity) and the client that starts an instance
// and waits for it.
//
//   dt-sidecar --hub samples-sdk --listen 127.0.0.1:4001 --activity sayHelloJs &
//   node samples/js/hello_sdk.mjs 127.0.0.1:4001      # exit 0 when the output is as expected
//
// The SDK is the one tests/js installs (`npm ci --prefix tests/js`); it is loaded from there with
// createRequire, so the sample needs no package.json of its own (NODE_PATH does not apply to
// ES module imports). Set DT_JS_MODULES to another node_modules folder to use that one instead.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const modules = process.env.DT_JS_MODULES ?? path.join(here, '..', '..', 'tests', 'js', 'node_modules');
const require = createRequire(path.join(modules, 'index.js'));
const { TaskHubGrpcClient, TaskHubGrpcWorker, NoOpLogger, OrchestrationStatus } = require('@microsoft/durabletask-js');

const hostAddress = process.argv[2] ?? '127.0.0.1:4001';

// ---- the activity (its name, the function's name, is given to dt-sidecar with --activity) ----
const sayHelloJs = async (_ctx, city) => `Hello ${city}!`;

// ---- the orchestrator: an async generator; each `yield` awaits a durable result ----
async function* helloCitiesJs(ctx) {
  const out = [];
  out.push(yield ctx.callActivity(sayHelloJs, 'Tokyo'));
  out.push(yield ctx.callActivity(sayHelloJs, 'Seattle'));
  out.push(yield ctx.callActivity(sayHelloJs, 'London'));
  return out;
}

// ---- the worker and the client ----
const worker = new TaskHubGrpcWorker({ hostAddress, logger: new NoOpLogger() });
worker.addOrchestrator(helloCitiesJs);
worker.addActivity(sayHelloJs);
await worker.start();

const client = new TaskHubGrpcClient({ hostAddress, logger: new NoOpLogger() });
const t0 = Date.now();
const id = await client.scheduleNewOrchestration(helloCitiesJs);
const st = await client.waitForOrchestrationCompletion(id, true, 60);
const status = st ? OrchestrationStatus[st.runtimeStatus] : 'NOT FOUND';
const seconds = ((Date.now() - t0) / 1000).toFixed(2);
console.log(`hello_sdk: ${id} ${status} ${seconds} s ${st?.serializedOutput ?? ''}`);

const expected = '["Hello Tokyo!","Hello Seattle!","Hello London!"]';
const ok = st?.serializedOutput === expected;
console.log(ok ? 'hello_sdk: ok' : `hello_sdk: FAIL, expected ${expected}`);
await client.stop();
await worker.stop();
process.exit(ok ? 0 : 1);
