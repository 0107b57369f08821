// nodemailer-tls-policy demo: `npm run demo` (builds dist/, then runs this file).
//
// Everything is local and made at start: a test CA and certificates (openssl), a DNS server on
// 127.0.0.1 publishing MX and A records, and SMTP servers on 127.0.0.2.. sharing one port,
// all from the test kit in test/helpers/ (TypeScript that Node runs by stripping its types).
// Several messages then go through `nodemailer.createTransport(tlsPolicy({...}))` at different
// TLS security levels, and each prints its audit lines, or its error's code and message.
import nodemailer from 'nodemailer';
import { tlsPolicy, VERSION } from '../dist/esm/index.js';
import { startDnsServer } from '../test/helpers/dns-server.ts';
import { makePki } from '../test/helpers/pki.ts';
import { startHosts } from '../test/helpers/smtp-peer.ts';

const watchdog = setTimeout(() => {
  console.error('demo: still running after 30 s, giving up');
  process.exit(1);
}, 30_000);
watchdog.unref();

/** The MX hosts: one per recipient domain, each on its own address. */
const HOSTS = [
  { domain: 'verified.example', mx: 'mx.verified.example', tls: 'valid' },
  { domain: 'secure.example', mx: 'mx.secure.example', tls: 'valid' },
  { domain: 'plain.example', mx: 'mx.plain.example', tls: 'none' },
  { domain: 'wrongname.example', mx: 'mx.wrongname.example', tls: 'wrong-name' },
  { domain: 'shadow.example', mx: 'mx.shadow.example', tls: 'self-signed' },
];

/** A policy table as Postfix's smtp_tls_policy_maps would read it (comments, continuation lines). */
const POLICY_TABLE = `
# destination        level    attributes
secure.example       secure   match=nexthop:dot-nexthop
plain.example        encrypt
shadow.example       may
    shadow=verify
verified.example     verify
`;

// Piped into `head`: stop printing quietly, still closing the servers and removing the files.
process.stdout.on('error', (error) => {
  if (error.code !== 'EPIPE' && error.code !== 'ERR_STREAM_DESTROYED') throw error;
});

function print(line = '') {
  process.stdout.write(`${line}\n`);
}

function printDelivery(delivery, indent = '  ') {
  const recipients = [
    delivery.accepted.length ? `accepted ${delivery.accepted.join(', ')}` : '',
    delivery.rejected.length ? `rejected ${delivery.rejected.join(', ')}` : '',
    delivery.pending.length ? `pending ${delivery.pending.join(', ')}` : '',
  ].filter(Boolean);
  print(
    `${indent}${delivery.destination}: ${delivery.status}, policy level ${delivery.level} from ${delivery.policySource}${recipients.length ? `; ${recipients.join('; ')}` : ''}`,
  );
  for (const attempt of delivery.attempts) {
    print(`${indent}  ${attempt.auditLine}`);
    if (attempt.audit.shadow) print(`${indent}  shadow=${attempt.audit.shadow}: ${attempt.audit.shadow_result}`);
  }
  if (delivery.reason && delivery.status !== 'delivered')
    print(`${indent}  reason (${delivery.code}, ${delivery.temporary ? 'temporary' : 'permanent'}): ${delivery.reason}`);
}

async function main() {
  const started = Date.now();
  const closers = [];
  try {
    // 1. Certificates: a test CA, and a leaf it issues for each MX (or for another name, or
    // self-signed).
    const pki = await makePki('nodemailer-tls-policy demo CA');
    closers.push(pki.close);
    const certs = await Promise.all(
      HOSTS.map((h) => {
        if (h.tls === 'wrong-name') return pki.leaf(['mx.somewhere-else.example']);
        return pki.leaf([h.mx], { self: h.tls === 'self-signed' });
      }),
    );

    // 2. SMTP servers, 127.0.0.2 .. 127.0.0.6, one shared port.
    const ip = (n) => `127.0.0.${n}`;
    const smtp = await startHosts(
      HOSTS.map((h, i) => ({
        name: h.mx,
        behaviour: h.tls === 'none' ? 'no-starttls' : 'starttls',
        cert: certs[i],
        rcptReplies: { [`nobody@${h.domain}`]: '550 5.1.1 no such user here' },
        closeTimeout: 500,
      })),
      { ip },
    );
    closers.push(smtp.close);

    // 3. DNS on 127.0.0.1: MX and A records for every domain.
    const dns = await startDnsServer({
      host: ip(1),
      zone: [...HOSTS.map((h) => ({ name: h.domain, type: 'MX', exchange: h.mx, preference: 10 })), ...smtp.records],
    });
    closers.push(dns.close);

    print(`nodemailer-tls-policy ${VERSION} demo`);
    print(`DNS ${dns.server}; SMTP servers ${ip(2)}..${ip(HOSTS.length + 1)} port ${smtp.port}; test CA ${pki.caFile}`);
    print('policy table (Postfix smtp_tls_policy_maps syntax) used where a scenario says "policy table":');
    for (const line of POLICY_TABLE.trim().split('\n')) print(`  | ${line}`);

    // What every transport shares: where the DNS and the MX port are, and the CA to trust.
    const common = {
      port: smtp.port,
      caFile: pki.caFile,
      name: 'demo.localhost',
      resolver: { servers: [dns.server], timeout: 1000, attempts: 1 },
    };
    const scenarios = [
      {
        title: "level 'verify', the MX has a certificate for its name from the CA",
        options: { level: 'verify' },
        to: ['alice@verified.example'],
      },
      {
        title: 'policy table: secure.example secure match=nexthop:dot-nexthop',
        options: { policy: POLICY_TABLE },
        to: ['alice@secure.example'],
      },
      {
        title: "level 'may', the MX offers no STARTTLS: delivered in cleartext",
        options: { level: 'may' },
        to: ['alice@plain.example'],
      },
      {
        title: 'policy table: plain.example encrypt, the MX offers no STARTTLS: deferred',
        options: { policy: POLICY_TABLE },
        to: ['alice@plain.example'],
      },
      {
        title: "level 'verify', certificate for another name, no fallback: deferred",
        options: { level: 'verify' },
        to: ['alice@wrongname.example'],
      },
      {
        title: "level 'verify' with fallbackLevels 'verify=encrypt', certificate for another name",
        options: { level: 'verify', fallbackLevels: 'verify=encrypt' },
        to: ['alice@wrongname.example'],
      },
      {
        title: 'policy table: shadow.example may shadow=verify, self-signed certificate',
        options: { policy: POLICY_TABLE },
        to: ['alice@shadow.example'],
      },
      {
        title: 'policy table, one message to three domains (one recipient unknown)',
        options: { policy: POLICY_TABLE },
        to: ['alice@verified.example', 'nobody@verified.example', 'bob@plain.example', 'carol@secure.example'],
      },
    ];

    for (const [n, scenario] of scenarios.entries()) {
      print();
      print(`[${n + 1}] ${scenario.title}`);
      print(`    to: ${scenario.to.join(', ')}`);
      const transport = nodemailer.createTransport(tlsPolicy({ ...common, ...scenario.options }));
      try {
        const info = await transport.sendMail({
          from: 'demo@origin.example',
          to: scenario.to,
          subject: `demo ${n + 1}`,
          text: 'Hello from the nodemailer-tls-policy demo.\n',
        });
        for (const delivery of info.deliveries) printDelivery(delivery, '    ');
        if (scenario.to.length > 1) {
          print(
            `    => accepted: ${info.accepted.join(', ') || '-'}; rejected: ${info.rejected.join(', ') || '-'}; pending: ${info.pending.join(', ') || '-'}`,
          );
        }
      } catch (error) {
        print(`    error ${error.code} (${error.temporary ? 'temporary' : 'permanent'}): ${error.message}`);
        if (!error.deliveries) throw error; // not a delivery outcome: a bug, let it surface
      } finally {
        transport.close();
      }
    }

    const received = [...smtp.peers.values()].map((p) => `${p.name} ${p.messages.length}`).join(', ');
    print();
    print(`messages received: ${received}`);
    print(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await Promise.all(closers.map((close) => close()));
  }
}

main().then(
  () => clearTimeout(watchdog),
  (error) => {
    console.error('demo failed:', error);
    process.exitCode = 1;
  },
);
