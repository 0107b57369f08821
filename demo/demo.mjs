// nodemailer-tls-policy demo: `npm run demo` (builds dist/, then runs this file).
//
// Everything is local and made at start: a test CA and certificates (openssl), a DNS server on
// 127.0.0.1 publishing MX, A, TLSA and TXT records, SMTP servers on 127.0.0.2.. sharing one
// port, and an HTTPS server for MTA-STS policies, all from the test kit in test/helpers/
// (TypeScript that Node runs by stripping its types). For the DANE domains the DNS server plays
// a validating resolver on loopback: it sets the AD bit on their answers, which the transport
// believes from a resolver on loopback (see the README's "DANE and the resolver you trust").
// Several messages then go through `nodemailer.createTransport(tlsPolicy({...}))` at different
// TLS security levels, and each prints its audit lines, or its error's code and message.
import nodemailer from 'nodemailer';
import { tlsPolicy, VERSION } from '../dist/esm/index.js';
import { startDnsServer } from '../test/helpers/dns-server.ts';
import { makePki } from '../test/helpers/pki.ts';
import { startHosts } from '../test/helpers/smtp-peer.ts';
import { policyText, startStsHosts } from '../test/helpers/sts-host.ts';
import { tlsaData } from '../test/helpers/pki.ts';

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
  { domain: 'dane.example', mx: 'mx.dane.example', tls: 'valid', tlsa: 'match' },
  { domain: 'badtlsa.example', mx: 'mx.badtlsa.example', tls: 'valid', tlsa: 'mismatch' },
  { domain: 'sts.example', mx: 'mx.sts.example', tls: 'valid', sts: ['mx.sts.example'] },
  { domain: 'stsrogue.example', mx: 'mx.stsrogue.example', tls: 'valid', sts: ['mx.elsewhere.example'] },
];
/** Names whose answers the demo's DNS server marks DNSSEC-secure (the AD bit). */
const signed = (name) => /(^|\.)(dane|badtlsa)\.example$/.test(name);

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
    if (attempt.audit.policy_type !== 'no-policy-found')
      print(`${indent}  policy_type=${attempt.audit.policy_type}${attempt.audit.matched ? `, matched=${attempt.audit.matched}` : ''}`);
    if (attempt.reason && attempt.decision !== 'send') print(`${indent}  ${attempt.reason}`);
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

    // 3. MTA-STS policy host (HTTPS) on 127.0.1.1 for the domains that publish a policy.
    const stsHost = await startStsHosts('127.0.1.1', await pki.leaf(['mta-sts.invalid']));
    closers.push(stsHost.close);
    for (const h of HOSTS.filter((h) => h.sts)) {
      stsHost.set(h.domain, { cert: await pki.leaf([`mta-sts.${h.domain}`]), behaviour: { kind: 'policy', body: policyText('enforce', h.sts) } });
    }

    // 4. DNS on 127.0.0.1: MX and A records for every domain, TLSA records (the second one
    // matches no certificate), and the MTA-STS TXT records with the policy host's address.
    const dns = await startDnsServer({
      host: ip(1),
      zone: [
        ...HOSTS.map((h) => ({ name: h.domain, type: 'MX', exchange: h.mx, preference: 10 })),
        ...smtp.records,
        ...HOSTS.flatMap((h, i) =>
          h.tlsa
            ? [
                {
                  name: `_${smtp.port}._tcp.${h.mx}`,
                  type: 'TLSA',
                  usage: 3,
                  selector: 1,
                  matchingType: 1,
                  data: h.tlsa === 'match' ? tlsaData(certs[i].der, 1, 1) : 'ab'.repeat(32),
                },
              ]
            : [],
        ),
        ...HOSTS.flatMap((h) =>
          h.sts
            ? [
                { name: `_mta-sts.${h.domain}`, type: 'TXT', text: 'v=STSv1; id=demo1' },
                { name: `mta-sts.${h.domain}`, type: 'A', address: stsHost.address },
              ]
            : [],
        ),
      ],
      ad: (name) => signed(name),
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
      mtaSts: { port: stsHost.port },
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
        title: "level 'dane', the MX publishes a TLSA record that matches its key: Verified by DANE",
        options: { level: 'dane' },
        to: ['alice@dane.example'],
      },
      {
        title: "level 'dane', the MX's TLSA record matches nothing: deferred, never sent without it",
        options: { level: 'dane' },
        to: ['alice@badtlsa.example'],
      },
      {
        title: 'MTA-STS: sts.example publishes an enforce policy that names its MX: delivered at secure',
        options: {},
        to: ['alice@sts.example'],
      },
      {
        title: 'MTA-STS: the MX of stsrogue.example is not in its enforce policy: deferred, never connected',
        options: {},
        to: ['alice@stsrogue.example'],
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
