// Generates fresh NATS identities for the connection-security tests (tests/integration/security):
// nothing is committed, every run makes its own keys.
//
//   node make_auth.mjs nkey DIR    writes DIR/user.nk (a user seed) and prints its public key
//   node make_auth.mjs creds DIR   writes an operator, a system and an application account, a user
//                                  of that account (DIR/user.creds), a user of an account the server
//                                  does not know (DIR/stranger.creds), and DIR/operator.conf: the
//                                  server configuration lines of operator mode (memory resolver)
//
// nats.c has no key generator; nkeys.js and nats-jwt are the NATS authors' JavaScript libraries.
import { createAccount, createOperator, createUser } from "nkeys.js";
import { encodeAccount, encodeOperator, encodeUser, fmtCreds } from "nats-jwt";
import { writeFileSync } from "node:fs";

const [kind, dir] = process.argv.slice(2);
const text = (b) => new TextDecoder().decode(b);

if (kind === "nkey") {
  const user = createUser();
  writeFileSync(`${dir}/user.nk`, `${text(user.getSeed())}\n`, { mode: 0o600 });
  console.log(user.getPublicKey());
} else if (kind === "creds") {
  const op = createOperator(), sys = createAccount(), acc = createAccount();
  const opJwt = await encodeOperator("dt-test-operator", op, { system_account: sys.getPublicKey() });
  // Limits left out of an account JWT count as 0 (no connections, no JetStream): all unlimited.
  const limits = {
    subs: -1, conn: -1, leaf: -1, imports: -1, exports: -1, data: -1, payload: -1,
    wildcards: true, mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1,
  };
  const accJwt = await encodeAccount("dt-test", acc, { limits }, { signer: op });
  const sysJwt = await encodeAccount("SYS", sys, {}, { signer: op });
  const user = createUser();
  writeFileSync(`${dir}/user.creds`, fmtCreds(await encodeUser("dt-user", user, acc), user),
    { mode: 0o600 });
  const stranger = createUser(), unknown = createAccount();
  writeFileSync(`${dir}/stranger.creds`,
    fmtCreds(await encodeUser("stranger", stranger, unknown), stranger), { mode: 0o600 });
  writeFileSync(`${dir}/operator.jwt`, opJwt);
  writeFileSync(`${dir}/operator.conf`, [
    `operator: "${dir}/operator.jwt"`,
    `system_account: ${sys.getPublicKey()}`,
    "resolver: MEMORY",
    "resolver_preload: {",
    `  ${acc.getPublicKey()}: "${accJwt}"`,
    `  ${sys.getPublicKey()}: "${sysJwt}"`,
    "}",
    "",
  ].join("\n"));
} else {
  console.error("usage: node make_auth.mjs nkey|creds DIR");
  process.exit(2);
}
