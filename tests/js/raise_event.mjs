#!/usr/bin/env node
// Raises an external event on an instance through the ingress stream: dt.<hub>.in.raise.<event>,
// header Dt-Instance-Id, the JSON event data as the body (docs/protocol.md). Prints the PubAck.
//
//   node raise_event.mjs <nats-url> <hub> <event> <instance-id> [<json-data>] [--msg-id ID]
//
// Without --msg-id every call is a new event (a random Nats-Msg-Id); with one, repeats of the same
// ID within the duplicate window count once.
import { randomUUID } from "node:crypto";
import { checkHub, checkId, checkName, jsonBody, parseCli, publish } from "./ingress.mjs";

const USAGE = "raise_event.mjs <nats-url> <hub> <event> <instance-id> [<json-data>] [--msg-id ID]";
const a = parseCli(USAGE, ["url", "hub", "event", "id"], ["data"], {
  "msg-id": { type: "string" },
});
checkHub(a.hub);
checkName("event name", a.event);
checkId(a.id);

await publish(
  a.url,
  `dt.${a.hub}.in.raise.${a.event}`,
  { "Dt-Instance-Id": a.id },
  a["msg-id"] ?? `js-raise/${a.id}/${randomUUID()}`,
  jsonBody(a.data),
);
