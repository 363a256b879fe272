#!/usr/bin/env node
// Starts an orchestration by publish-to-start: dt.<hub>.in.start.<name>, header Dt-Instance-Id,
// the JSON input as the body (docs/protocol.md). Prints the PubAck as JSON.
//
//   node publish_start.mjs <nats-url> <hub> <orchestration> <instance-id> [<json-input>]
//        [--version V] [--start-at MS] [--reuse error|replace-if-finished|terminate]
//        [--result-subject S] [--msg-id ID]
//
// The Nats-Msg-Id defaults to "js-start/<instance-id>", so publishing the same start again is
// dropped by JetStream's duplicate window (the PubAck then says "duplicate": true).
import { checkHub, checkId, checkName, jsonBody, parseCli, publish, usage } from "./ingress.mjs";

const USAGE =
  "publish_start.mjs <nats-url> <hub> <orchestration> <instance-id> [<json-input>] " +
  "[--version V] [--start-at MS] [--reuse error|replace-if-finished|terminate] " +
  "[--result-subject S] [--msg-id ID]";
const a = parseCli(USAGE, ["url", "hub", "name", "id"], ["input"], {
  version: { type: "string" },
  "start-at": { type: "string" },
  reuse: { type: "string" },
  "result-subject": { type: "string" },
  "msg-id": { type: "string" },
});
checkHub(a.hub);
checkName("orchestration name", a.name);
checkId(a.id);
if (a["start-at"] !== undefined && !/^[0-9]+$/.test(a["start-at"])) {
  usage("--start-at takes milliseconds since the Unix epoch");
}
if (a.reuse !== undefined && !["error", "replace-if-finished", "terminate"].includes(a.reuse)) {
  usage(USAGE);
}

await publish(
  a.url,
  `dt.${a.hub}.in.start.${a.name}`,
  {
    "Dt-Instance-Id": a.id,
    "Dt-Version": a.version,
    "Dt-Start-At": a["start-at"],
    "Dt-Reuse-Policy": a.reuse,
    "Dt-Result-Subject": a["result-subject"],
  },
  a["msg-id"] ?? `js-start/${a.id}`,
  jsonBody(a.input),
);
