#!/usr/bin/env node
// Signals a durable entity through the ingress stream: dt.<hub>.in.signal.<entity name>, headers
// Dt-Entity-Key and Dt-Operation, the input as the body (any bytes; docs/protocol.md, "Signalling
// an entity"). Prints the PubAck.
//
//   node signal_entity.mjs <nats-url> <hub> <entity-name> <key> <operation> [<input>] [--msg-id ID]
//
// Without --msg-id every call is a new signal (a random Nats-Msg-Id); with one, repeats of the
// same ID are applied once.
import { randomUUID } from "node:crypto";
import { checkHub, parseCli, publish, usage } from "./ingress.mjs";

const USAGE =
  "signal_entity.mjs <nats-url> <hub> <entity-name> <key> <operation> [<input>] [--msg-id ID]";
const a = parseCli(USAGE, ["url", "hub", "name", "key", "op"], ["input"], {
  "msg-id": { type: "string" },
});
checkHub(a.hub);
if (!/^[A-Za-z0-9_-]{1,64}$/.test(a.name)) usage("entity names are 1..64 letters, digits, '-', '_'");
if (!/^[\x21-\x7e]{1,180}$/.test(a.key)) usage("entity keys are 1..180 printable characters");

await publish(
  a.url,
  `dt.${a.hub}.in.signal.${a.name}`,
  { "Dt-Entity-Key": a.key, "Dt-Operation": a.op },
  a["msg-id"] ?? `js-signal/${a.name}/${a.key}/${randomUUID()}`,
  new TextEncoder().encode(a.input ?? ""),
);
