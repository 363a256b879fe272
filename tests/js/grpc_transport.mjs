// The sidecar's gRPC transport from the outside (driven by tests/integration/sidecar/
// test_sidecar_grpc.c, which serves the /test.T/* methods on PORT).
//
//   node grpc_transport.mjs PORT                 every case below; exit 0 when all pass
//   node grpc_transport.mjs PORT hang-forever    opens a Hang call, prints "started", holds it
//
// Calls go through @grpc/grpc-js (a real gRPC client) with raw Buffer messages; malformed input
// goes through node:http2 (frames grpc-js never sends) and node:net (bytes that are not HTTP/2).
import grpc from '@grpc/grpc-js';
import http2 from 'node:http2';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const port = process.argv[2];
const mode = process.argv[3] ?? 'all';
const target = `127.0.0.1:${port}`;
const id = (b) => b;
const client = new grpc.Client(target, grpc.credentials.createInsecure());

function unary(path, buf, options = {}) {
  return new Promise((resolve) => {
    client.makeUnaryRequest(path, id, id, buf, new grpc.Metadata(), options, (err, res) =>
      resolve({ err, res }),
    );
  });
}

function serverStream(path, buf, options = {}) {
  const call = client.makeServerStreamRequest(path, id, id, buf, new grpc.Metadata(), options);
  const msgs = [];
  const done = new Promise((resolve) => {
    call.on('data', (m) => msgs.push(m.toString()));
    call.on('error', (err) => resolve({ err, msgs }));
    call.on('status', (st) => {
      if (st.code === 0) resolve({ err: null, msgs });
    });
  });
  return { call, msgs, done };
}

// A raw HTTP/2 gRPC request: returns {status (HTTP), grpcStatus, grpcMessage, data}.
function rawCall({ path = '/test.T/Echo', method = 'POST', contentType = 'application/grpc', body }) {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://${target}`);
    session.on('error', reject);
    const req = session.request({
      ':method': method,
      ':path': path,
      'content-type': contentType,
      te: 'trailers',
    });
    const out = { status: 0, grpcStatus: null, grpcMessage: null, data: Buffer.alloc(0) };
    req.on('response', (h) => {
      out.status = h[':status'];
      if (h['grpc-status'] !== undefined) {
        out.grpcStatus = Number(h['grpc-status']);
        out.grpcMessage = h['grpc-message'];
      }
    });
    req.on('trailers', (t) => {
      out.grpcStatus = Number(t['grpc-status']);
      out.grpcMessage = t['grpc-message'];
    });
    req.on('data', (d) => (out.data = Buffer.concat([out.data, d])));
    req.on('close', () => {
      session.close();
      resolve(out);
    });
    req.on('error', () => {});
    req.end(body);
  });
}

function frame(msg, flag = 0) {
  const h = Buffer.alloc(5);
  h[0] = flag;
  h.writeUInt32BE(msg.length, 1);
  return Buffer.concat([h, msg]);
}

// Writes bytes on a plain socket; resolves with the ms until the server closed it.
function rawSocket(bytes, limitMs = 15000) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const sock = net.connect(Number(port), '127.0.0.1', () => sock.write(bytes));
    const timer = setTimeout(() => {
      sock.destroy();
      resolve(-1);
    }, limitMs);
    sock.on('data', () => {});
    sock.on('error', () => {});
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - t0);
    });
  });
}

let failures = 0;
function check(name, ok, detail = '') {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${ok ? '' : ': ' + detail}`);
  if (!ok) failures++;
}

async function stillServes(after) {
  const { err, res } = await unary('/test.T/Echo', Buffer.from('alive'));
  check(`still serving after ${after}`, !err && res.toString() === 'alive', String(err));
}

async function all() {
  let r = await unary('/test.T/Echo', Buffer.from('x'.repeat(1000)));
  check('unary echo', !r.err && r.res.length === 1000, String(r.err));
  r = await unary('/test.T/Echo', Buffer.alloc(0));
  check('empty message echo', !r.err && r.res.length === 0, String(r.err));
  r = await unary('/test.T/Echo', Buffer.alloc(65536, 7));
  check('message of exactly max_message', !r.err && r.res.length === 65536, String(r.err));

  const many = await Promise.all(
    Array.from({ length: 40 }, (_, i) => unary('/test.T/Echo', Buffer.from(`call ${i}`))),
  );
  check(
    '40 concurrent calls',
    many.every((x, i) => !x.err && x.res.toString() === `call ${i}`),
    String(many.find((x) => x.err)?.err),
  );

  let s = serverStream('/test.T/Stream', Buffer.from('500'));
  let sr = await s.done;
  check(
    'server stream of 500 messages in order',
    !sr.err && sr.msgs.length === 500 && sr.msgs.every((m, i) => m === `message ${i}`),
    `${sr.err} ${sr.msgs.length}`,
  );
  s = serverStream('/test.T/Woken', Buffer.alloc(0));
  sr = await s.done;
  check('wake-ups from another thread', !sr.err && sr.msgs.length === 3, String(sr.err));

  r = await unary('/test.T/Fail', Buffer.alloc(0));
  check(
    'status and percent-encoded message',
    r.err?.code === grpc.status.INVALID_ARGUMENT && r.err.details === 'bad input: 100% wrong, ü',
    `${r.err?.code} ${r.err?.details}`,
  );
  r = await unary('/test.T/Forgetful', Buffer.alloc(0));
  check('handler without a status ends INTERNAL', r.err?.code === grpc.status.INTERNAL, String(r.err));
  r = await unary('/test.T/TooBig', Buffer.alloc(0));
  check(
    'response over max_message refused',
    r.err?.code === grpc.status.RESOURCE_EXHAUSTED,
    String(r.err),
  );

  r = await unary('/test.T/Nope', Buffer.alloc(0));
  check(
    'unknown method is UNIMPLEMENTED with a message',
    r.err?.code === grpc.status.UNIMPLEMENTED && r.err.details.includes('/test.T/Nope'),
    `${r.err?.code} ${r.err?.details}`,
  );
  r = await unary('/test.T/Echo', Buffer.alloc(65537));
  check(
    'oversized request is RESOURCE_EXHAUSTED',
    r.err?.code === grpc.status.RESOURCE_EXHAUSTED && r.err.details.includes('65537'),
    `${r.err?.code} ${r.err?.details}`,
  );
  r = await unary('/test.T/Echo', Buffer.alloc(4 << 20));
  check('4 MiB request is RESOURCE_EXHAUSTED', r.err?.code === grpc.status.RESOURCE_EXHAUSTED, String(r.err));
  await stillServes('oversized requests');

  // Cancellation: the client cancels a call whose handler waits.
  s = serverStream('/test.T/Hang', Buffer.alloc(0));
  await new Promise((res) => s.call.once('data', res));
  s.call.cancel();
  sr = await s.done;
  check('cancelled call', sr.err?.code === grpc.status.CANCELLED, String(sr.err));
  s = serverStream('/test.T/Hang', Buffer.alloc(0), { deadline: Date.now() + 300 });
  sr = await s.done;
  check('deadline passes', sr.err?.code === grpc.status.DEADLINE_EXCEEDED, String(sr.err));

  // A client process that dies with a call open.
  const self = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, [self, port, 'hang-forever'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((res) => child.stdout.once('data', res));
  child.kill('SIGKILL');
  await new Promise((res) => child.once('exit', res));
  await stillServes('a client died mid-stream');

  // Malformed requests at the HTTP/2 level.
  let h = await rawCall({ body: frame(Buffer.from('zz'), 1) });
  check('compressed flag is UNIMPLEMENTED', h.grpcStatus === 12, JSON.stringify(h));
  h = await rawCall({ body: Buffer.concat([frame(Buffer.from('a')), frame(Buffer.from('b'))]) });
  check('two request messages refused', h.grpcStatus === 13, JSON.stringify(h));
  h = await rawCall({ body: Buffer.from([0, 0, 0, 0, 9, 1, 2]) });
  check('truncated message refused', h.grpcStatus === 13, JSON.stringify(h));
  h = await rawCall({ body: Buffer.alloc(0) });
  check('no message refused', h.grpcStatus === 13, JSON.stringify(h));
  h = await rawCall({ contentType: 'text/plain', body: frame(Buffer.from('a')) });
  check('wrong content-type is HTTP 415', h.status === 415, JSON.stringify(h));
  h = await rawCall({ method: 'PUT', body: frame(Buffer.from('a')) });
  check('PUT is HTTP 405', h.status === 405, JSON.stringify(h));
  h = await rawCall({ body: frame(Buffer.from('raw')) });
  check('raw http2 call works', h.grpcStatus === 0 && h.data.subarray(5).toString() === 'raw', JSON.stringify(h));

  // Not HTTP/2 at all, or HTTP/2 that breaks the framing: the connection is closed.
  let ms = await rawSocket(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  check('garbage preface closes the connection', ms >= 0, 'still open after 15 s');
  const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
  const settings = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
  const badFrame = Buffer.from([0, 0, 3, 0xff, 0, 0, 0, 0, 0, 1, 2]); // unknown type: ignored
  const dataOnStream0 = Buffer.from([0, 0, 1, 0, 0, 0, 0, 0, 0, 7]); // DATA on stream 0: error
  ms = await rawSocket(Buffer.concat([preface, settings, badFrame, dataOnStream0]));
  check('protocol error closes the connection', ms >= 0, 'still open after 15 s');
  // A peer that never answers PINGs is dropped (server keepalive 500 ms + 1000 ms here).
  ms = await rawSocket(Buffer.concat([preface, settings]));
  check('unanswered keepalive closes the connection', ms >= 1000 && ms < 10000, `after ${ms} ms`);
  await stillServes('malformed connections');

  // A live client gets PINGs while idle and keeps its connection.
  const sess = http2.connect(`http://${target}`);
  const pinged = await new Promise((res) => {
    const t = setTimeout(() => res(false), 5000);
    sess.once('ping', () => {
      clearTimeout(t);
      res(true);
    });
  });
  check('idle connection gets a keepalive PING', pinged);
  sess.close();
}

async function hangForever() {
  const s = serverStream('/test.T/Hang', Buffer.alloc(0));
  await new Promise((res) => s.call.once('data', res));
  process.stdout.write('started\n');
  await new Promise(() => {});
}

if (mode === 'hang-forever') {
  await hangForever();
} else {
  await all();
  client.close();
  console.log(`${failures === 0 ? 'all passed' : failures + ' failed'}`);
  process.exit(failures === 0 ? 0 : 1);
}
