// A second, independent client of the task hub's wire protocol (docs/protocol.md,
// "publish-to-start" and "Events and control"): plain JetStream publishes with headers to the
// ingress subjects dt.<hub>.in.*, using only the npm `nats` package (v2 API). No protobuf, no
// partition hash: a worker routes each request to its instance's partition.
//
// The scripts print the stream's PubAck as one JSON line on stdout ({"stream","seq","duplicate"})
// and exit 0 once JetStream stored the request; usage errors exit 2, every other failure exits 1
// with the reason on stderr.
import { connect, headers } from "nats";
import { parseArgs } from "node:util";

const NAME_RE = /^[\x21-\x7e]{1,128}$/; // printable ASCII without space...
const NAME_BAD = /[.*>]/; // ...and without '.', '*' or '>' (names are subject tokens)
const HUB_RE = /^[A-Za-z0-9_-]{1,48}$/;
const ID_RE = /^[\x21-\x7e]{1,256}$/;

export function usage(text) {
  process.stderr.write(`usage: ${text}\n`);
  process.exit(2);
}

// Parses argv: `positional` names the required positional arguments in order, `optional` the
// optional trailing ones; `options` are parseArgs string options. Exits 2 on a usage error.
export function parseCli(text, positional, optional, options) {
  let parsed;
  try {
    parsed = parseArgs({ args: process.argv.slice(2), options, allowPositionals: true });
  } catch (e) {
    usage(`${text}\n${e.message}`);
  }
  const pos = parsed.positionals;
  if (pos.length < positional.length || pos.length > positional.length + optional.length) {
    usage(text);
  }
  const out = { ...parsed.values };
  [...positional, ...optional].forEach((name, i) => {
    out[name] = pos[i];
  });
  return out;
}

export function checkHub(hub) {
  if (!HUB_RE.test(hub)) usage(`invalid hub name '${hub}'`);
}

export function checkName(what, name) {
  if (!NAME_RE.test(name) || NAME_BAD.test(name)) usage(`invalid ${what} '${name}'`);
}

export function checkId(id) {
  if (!ID_RE.test(id)) usage(`invalid instance ID '${id}'`);
}

// The body: JSON text, sent verbatim (so the orchestration sees exactly these bytes).
export function jsonBody(text) {
  if (text === undefined) return new Uint8Array(0);
  try {
    JSON.parse(text);
  } catch (e) {
    usage(`the body must be JSON: ${e.message}`);
  }
  return new TextEncoder().encode(text);
}

// Publishes `body` to `subject` with the headers in `hdrs` (an object; undefined values are
// left out) and Nats-Msg-Id `msgId`, waits for the PubAck and prints it.
export async function publish(url, subject, hdrs, msgId, body) {
  let nc;
  try {
    nc = await connect({ servers: url, timeout: 5000, name: "dt-js-test" });
    const h = headers();
    for (const [k, v] of Object.entries(hdrs)) {
      if (v !== undefined) h.set(k, String(v));
    }
    const opts = { headers: h, msgID: msgId, timeout: 10000 };
    const ack = await nc.jetstream().publish(subject, body, opts);
    process.stdout.write(
      JSON.stringify({ stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate }) + "\n",
    );
  } catch (e) {
    // 503: no responders, i.e. no stream takes the subject (the hub does not exist).
    const why = e.code === "503" ? "no stream takes the subject (no such task hub?)" : e.message;
    process.stderr.write(`publish to ${subject} failed: ${why}\n`);
    process.exitCode = 1;
  } finally {
    if (nc) await nc.close();
  }
}
