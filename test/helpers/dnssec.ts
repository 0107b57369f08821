/**
 * A real DNSSEC tree for tests: zones signed with ldns (ldns-keygen, ldns-signzone,
 * ldns-key2ds), served by a real authoritative server (NSD) and resolved by a real validating
 * resolver (Unbound), all on random loopback addresses and high ports, in a fresh temporary
 * directory. Nothing of the machine's own DNS setup is used or touched.
 *
 *   const tree = await startDnssec([
 *     { origin: 'example.test', records: ['@ MX 10 mx1', 'mx1 A 127.0.0.2', '_25._tcp.mx1 TLSA 3 1 1 <hex>'] },
 *     { origin: 'insecure.test', signed: false, records: ['mx A 127.0.0.3'] },
 *   ]);
 *   const resolver = createResolver({ servers: [tree.resolver], timeout: 400, attempts: 2 });
 *   ...
 *   await tree.close();
 *
 * The tree:
 * - `test.` is generated: signed, and its DNSKEY is Unbound's trust anchor. A spec zone with
 *   origin 'test' adds its records (and tampering) to it.
 * - Each spec zone is delegated from its parent (the longest other spec zone that is a
 *   suffix of it, else `test.`): `<origin>. NS ns.<origin>.` plus glue `ns.<origin>. A` (the
 *   NSD address, or the black hole's), plus a DS (SHA-256, from ldns-key2ds) when the child is
 *   signed or 'expired'. An unsigned child gets no DS: an insecure delegation, proven by the
 *   parent's NSEC. Every served zone has `@ NS ns` and `ns A <NSD address>`: `ns` is taken.
 * - Zone files: `$ORIGIN <origin>.`, `$TTL 300`, SOA (MINIMUM 60: negative answers live 60 s),
 *   then the spec's lines verbatim (zone-file syntax: relative owners, '@', or absolute with
 *   a trailing dot; an explicit TTL as in 'mx1 60 A 127.0.0.2').
 * - Keys: one ECDSAP256SHA256 (algorithm 13) key per zone with the SEP flag (a CSK: it signs
 *   every RRset); NSEC. Signatures: inception one hour ago, expiration in 7 days; 'expired':
 *   inception 30 days ago, expiration 7 days ago (beyond Unbound's maximum skew of one day).
 * - `tamper`: after signing, one byte-level change to the RDATA of every RR of that owner and
 *   type (A, AAAA: the last octet; TLSA, DS, SSHFP: the last hex digit; MX: the preference;
 *   TXT: the last character; CNAME, NS, PTR: the target), so its RRSIG fails: bogus.
 * - `blackhole`: nothing serves the zone; it is delegated to an address whose UDP and TCP
 *   sockets (held by this process) take queries and never answer.
 *
 * Logs: `logs()` gives NSD's and Unbound's log files and output (Unbound logs every validation
 * failure, `val-log-level: 2`, and every SERVFAIL); they survive close(). DNSSEC_KEEP=1 keeps
 * the temporary directory (configs, keys, zone files) for a look afterwards.
 *
 * How Unbound reaches NSD: glue can only carry an address, and NSD listens on a high port, so
 * Unbound is told the port with stub zones: `test.` and every served spec zone point at NSD
 * (`stub-addr: <nsd>@<port>`), a black-holed zone at its silent address. NSD answers for
 * every zone it serves itself, and Unbound validates from the `test.` anchor down through the
 * DS records exactly as it would through real referrals (stub zones change where queries go,
 * not what is validated).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { accessSync, constants as fsConstants, readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

export interface DnssecZoneSpec {
  /** The zone's name, e.g. 'example.test' (a trailing dot is allowed). Must be under test. */
  origin: string;
  /** Zone-file lines after `$ORIGIN <origin>.` and `$TTL 300`, e.g. 'mx1 A 127.0.0.2'. */
  records?: string[];
  /** Default true. 'expired': signed with dates in the past (bogus). false: no DS in the parent. */
  signed?: boolean | 'expired';
  /** RRs whose RDATA is changed after signing (bogus). Owner relative to the origin, or absolute. */
  tamper?: Array<{ owner: string; type: string }>;
  /** Delegate the zone to a server that never answers. */
  blackhole?: true;
}

export interface DnssecZoneInfo {
  origin: string;
  parent: string;
  signed: boolean | 'expired';
  blackhole: boolean;
  /** The DS record put in the parent, as text; undefined for an unsigned zone. */
  ds?: string | undefined;
  /** The zone file NSD serves (signed, or not); undefined for a black-holed zone. */
  file?: string | undefined;
}

export interface DnssecTree {
  /** The validating resolver (Unbound), `127.a.b.c:port`, for the resolver's `servers`. */
  resolver: string;
  /** The authoritative server (NSD), `127.a.b.c:port`. */
  nsd: string;
  /** The black holes' `address:port` (empty without black-holed zones). */
  blackholes: string[];
  /** The temporary directory (deleted by close() unless DNSSEC_KEEP=1). */
  dir: string;
  /** Every zone of the tree, test. first. */
  zones: DnssecZoneInfo[];
  /** Milliseconds spent: keys, signing, nsd start, unbound start, total. */
  timings: { keys: number; sign: number; nsd: number; unbound: number; total: number };
  /** Stop the servers and remove the directory. Idempotent. */
  close(): Promise<void>;
  /** NSD's and Unbound's logs and output so far, for failure messages. */
  logs(): string;
}

const TLD = 'test';
const DEFAULT_TTL = 300;
const NEGATIVE_TTL = 60;
const PORT_MIN = 10_000;
/** Below Linux's ephemeral range and Unbound's outgoing ports (kept at 32768-60999 below). */
const PORT_MAX = 32_000;
const START_ATTEMPTS = 6;
const READY_TIMEOUT = 10_000;

const BINARIES = [
  { name: 'unbound', pkg: 'unbound', sbin: true },
  { name: 'nsd', pkg: 'nsd', sbin: true },
  { name: 'ldns-keygen', pkg: 'ldnsutils', sbin: false },
  { name: 'ldns-signzone', pkg: 'ldnsutils', sbin: false },
  { name: 'ldns-key2ds', pkg: 'ldnsutils', sbin: false },
  { name: 'ldns-read-zone', pkg: 'ldnsutils', sbin: false },
] as const;

/* ------------------------------------------------------------------------------------------
 * Processes, and killing them whatever happens.
 */

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) killGroup(child, 'SIGKILL');
  });
}

/** The children run in their own process group (NSD forks workers): signal the whole group. */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (!live.has(child)) return;
  const gone = new Promise<void>((resolve) => {
    if (exited(child)) resolve();
    else child.once('exit', () => resolve());
  });
  killGroup(child, 'SIGTERM');
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 1500);
  await gone;
  clearTimeout(timer);
  // Workers of the group that outlived their parent.
  killGroup(child, 'SIGKILL');
  live.delete(child);
}

interface Daemon {
  child: ChildProcess;
  output: () => string;
}

function startDaemon(command: string, args: string[], cwd: string): Daemon {
  installExitHook();
  const child = spawn(command, args, { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let text = '';
  const keep = (chunk: Buffer) => {
    text += chunk.toString('utf8');
    if (text.length > 200_000) text = text.slice(-100_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  child.on('error', (error) => keep(Buffer.from(`spawn error: ${error.message}\n`)));
  child.on('exit', (code, signal) => keep(Buffer.from(`[${command} exited: ${signal ?? `code ${code}`}]\n`)));
  return { child, output: () => text };
}

function run(command: string, args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${command} ${args.join(' ')} failed (exit ${code}): ${err.trim() || out.trim()}`));
    });
  });
}

/* ------------------------------------------------------------------------------------------
 * Binaries.
 */

function findBinary(name: string, sbin: boolean): string | undefined {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  const extra = sbin ? ['/usr/sbin', '/usr/local/sbin', '/sbin'] : ['/usr/bin', '/usr/local/bin'];
  for (const dir of [...dirs, ...extra]) {
    const path = join(dir, name);
    try {
      accessSync(path, fsConstants.X_OK);
      return path;
    } catch {
      // next
    }
  }
  return undefined;
}

/** The tools the DNSSEC tree needs that this machine lacks, with their Debian packages. */
export function missingDnssecTools(): { name: string; pkg: string }[] {
  return BINARIES.filter((binary) => !findBinary(binary.name, binary.sbin));
}

function binaries(): Record<(typeof BINARIES)[number]['name'], string> {
  const found: Record<string, string> = {};
  const missing: { name: string; pkg: string }[] = [];
  for (const binary of BINARIES) {
    const path = findBinary(binary.name, binary.sbin);
    if (path) found[binary.name] = path;
    else missing.push(binary);
  }
  if (missing.length > 0) {
    const packages = [...new Set(missing.map((m) => m.pkg))];
    const what = missing.map((m) => `${m.name} (Debian package ${m.pkg})`).join(', ');
    const where =
      process.env.CI === 'true'
        ? 'CI must install them: .ci/run runs `apt-get install -y unbound nsd ldnsutils`'
        : 'install them with `apt-get install unbound nsd ldnsutils`';
    throw new Error(
      `DNSSEC tests need ${what}, not found; missing package${packages.length > 1 ? 's' : ''}: ${packages.join(' ')}. ` +
        `The tests are never skipped: ${where}.`,
    );
  }
  return found as Record<(typeof BINARIES)[number]['name'], string>;
}

/**
 * Run one of the ldns tools this file knows (ldns-keygen, ldns-signzone, ldns-key2ds,
 * ldns-read-zone) in `cwd`; its standard output, or an Error with its exit code and output.
 */
export function runLdns(tool: Extract<(typeof BINARIES)[number]['name'], `ldns-${string}`>, args: string[], cwd: string): Promise<string> {
  return run(binaries()[tool], args, cwd);
}

/* ------------------------------------------------------------------------------------------
 * Addresses and ports.
 */

function randomLoopback(): string {
  return `127.${randomInt(1, 255)}.${randomInt(0, 256)}.${randomInt(2, 255)}`;
}

function randomPort(): number {
  return randomInt(PORT_MIN, PORT_MAX);
}

/** Whether UDP and TCP can both be bound on address:port right now. */
async function portFree(address: string, port: number): Promise<boolean> {
  const udp = createSocket('udp4');
  const udpOk = await new Promise<boolean>((resolve) => {
    udp.once('error', () => resolve(false));
    udp.bind({ address, port, exclusive: true }, () => resolve(true));
  });
  if (!udpOk) {
    udp.close();
    return false;
  }
  const tcp = createTcpServer();
  const tcpOk = await new Promise<boolean>((resolve) => {
    tcp.once('error', () => resolve(false));
    tcp.listen({ host: address, port, exclusive: true }, () => resolve(true));
  });
  await new Promise<void>((resolve) => udp.close(() => resolve()));
  if (tcpOk) await new Promise<void>((resolve) => tcp.close(() => resolve()));
  return tcpOk;
}

async function freeEndpoint(avoid: string[]): Promise<{ address: string; port: number }> {
  for (let i = 0; i < 50; i++) {
    const address = randomLoopback();
    const port = randomPort();
    if (avoid.includes(address)) continue;
    if (await portFree(address, port)) return { address, port };
  }
  throw new Error('startDnssec: no free loopback address and port found');
}

/** A server that takes UDP queries and TCP connections and never answers. */
async function startBlackhole(avoid: string[]): Promise<{ address: string; port: number; close: () => Promise<void> }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const address = randomLoopback();
    if (avoid.includes(address)) continue;
    const udp: UdpSocket = createSocket('udp4');
    const port = await new Promise<number | undefined>((resolve) => {
      udp.once('error', () => resolve(undefined));
      udp.bind({ address, port: randomPort(), exclusive: true }, () => resolve(udp.address().port));
    });
    if (port === undefined) {
      udp.close();
      continue;
    }
    udp.on('message', () => {});
    const connections = new Set<Socket>();
    const tcp: TcpServer = createTcpServer((connection) => {
      connections.add(connection);
      connection.on('error', () => {});
      connection.on('close', () => connections.delete(connection));
    });
    const listening = await new Promise<boolean>((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.listen({ host: address, port, exclusive: true }, () => resolve(true));
    });
    if (!listening) {
      await new Promise<void>((resolve) => udp.close(() => resolve()));
      continue;
    }
    return {
      address,
      port,
      close: async () => {
        for (const connection of connections) connection.destroy();
        await Promise.all([new Promise<void>((resolve) => udp.close(() => resolve())), new Promise<void>((resolve) => tcp.close(() => resolve()))]);
      },
    };
  }
  throw new Error('startDnssec: could not bind a black hole');
}

/* ------------------------------------------------------------------------------------------
 * Raw DNS probes (readiness checks).
 */

function encodeName(name: string): Buffer {
  const labels = name.replace(/\.$/, '').split('.').filter(Boolean);
  return Buffer.concat([...labels.map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label, 'ascii')])), Buffer.from([0])]);
}

interface ProbeReply {
  rcode: number;
  aa: boolean;
  ad: boolean;
}

/** One UDP query (type SOA, EDNS DO=1), resolving to the reply's flags or undefined on timeout. */
function probe(address: string, port: number, name: string, recursive: boolean, timeout: number): Promise<ProbeReply | undefined> {
  const id = randomInt(0x10000);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(recursive ? 0x0100 : 0x0000, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(1, 10);
  const question = Buffer.concat([encodeName(name), Buffer.from([0, 6, 0, 1])]);
  // OPT: root owner, type 41, payload 1232, extended rcode/version 0, DO set, no options.
  const opt = Buffer.from([0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0]);
  const query = Buffer.concat([header, question, opt]);
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    let done = false;
    const finish = (reply: ProbeReply | undefined) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.close();
      resolve(reply);
    };
    const timer = setTimeout(() => finish(undefined), timeout);
    socket.on('error', () => finish(undefined));
    socket.on('message', (message) => {
      if (message.length < 12 || message.readUInt16BE(0) !== id) return;
      finish({ rcode: message[3]! & 0x0f, aa: (message[2]! & 0x04) !== 0, ad: (message[3]! & 0x20) !== 0 });
    });
    socket.send(query, port, address);
  });
}

/** Probe until a reply comes, the process exits, or READY_TIMEOUT passes. */
async function waitForReply(daemon: Daemon, address: string, port: number, name: string, recursive: boolean): Promise<ProbeReply | 'exited' | 'timeout'> {
  const deadline = Date.now() + READY_TIMEOUT;
  while (Date.now() < deadline) {
    if (exited(daemon.child)) return 'exited';
    const reply = await probe(address, port, name, recursive, 50);
    if (reply) return reply;
    if (exited(daemon.child)) return 'exited';
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return 'timeout';
}

/* ------------------------------------------------------------------------------------------
 * Zones.
 */

interface Zone {
  origin: string;
  parent: string;
  records: string[];
  signed: boolean | 'expired';
  tamper: Array<{ owner: string; type: string }>;
  blackhole: boolean;
  key?: string;
  dnskey?: string;
  ds?: string;
  file?: string;
}

function normalizeOrigin(origin: string): string {
  if (typeof origin !== 'string' || origin.trim() === '') throw new TypeError('startDnssec: a zone needs an origin');
  const name = origin.trim().toLowerCase().replace(/\.$/, '');
  if (!/^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/.test(name)) throw new TypeError(`startDnssec: bad origin ${JSON.stringify(origin)}`);
  if (name !== TLD && !name.endsWith(`.${TLD}`)) throw new TypeError(`startDnssec: origin ${name} is not under ${TLD}.`);
  return name;
}

function buildZones(spec: DnssecZoneSpec[]): Zone[] {
  if (!Array.isArray(spec)) throw new TypeError('startDnssec: the spec is a list of zones');
  const zones: Zone[] = [{ origin: TLD, parent: '', records: [], signed: true, tamper: [], blackhole: false }];
  for (const entry of spec) {
    const origin = normalizeOrigin(entry.origin);
    const signed = entry.signed ?? true;
    if (signed !== true && signed !== false && signed !== 'expired') {
      throw new TypeError(`startDnssec: ${origin}: signed must be true, false or 'expired'`);
    }
    if (origin === TLD) {
      if (signed !== true || entry.blackhole) throw new TypeError('startDnssec: test. is the trust anchor: always signed, never black-holed');
      zones[0]!.records.push(...(entry.records ?? []));
      zones[0]!.tamper.push(...(entry.tamper ?? []));
      continue;
    }
    if (zones.some((zone) => zone.origin === origin)) throw new TypeError(`startDnssec: zone ${origin} given twice`);
    zones.push({
      origin,
      parent: '',
      records: [...(entry.records ?? [])],
      signed,
      tamper: [...(entry.tamper ?? [])],
      blackhole: entry.blackhole === true,
    });
  }
  for (const zone of zones) {
    if (zone.tamper.length > 0 && (zone.signed === false || zone.blackhole)) {
      throw new TypeError(`startDnssec: ${zone.origin} is ${zone.blackhole ? 'black-holed' : 'unsigned'}: nothing to tamper with`);
    }
  }
  for (const zone of zones.slice(1)) {
    const parents = zones.filter((other) => other !== zone && zone.origin.endsWith(`.${other.origin}`));
    parents.sort((a, b) => b.origin.length - a.origin.length);
    zone.parent = parents[0]!.origin;
  }
  return zones;
}

function stamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

/** The absolute owner name (lowercase, no trailing dot) of a tamper entry. */
function absoluteOwner(owner: string, origin: string): string {
  const name = owner.trim().toLowerCase();
  if (name === '@' || name === '') return origin;
  if (name.endsWith('.')) return name.slice(0, -1);
  if (name === origin || name.endsWith(`.${origin}`)) return name;
  return `${name}.${origin}`;
}

function tamperRdata(type: string, rdata: string, where: string): string {
  const flipHex = (text: string) => text.replace(/([0-9a-fA-F])(\s*)$/, (_, digit: string, space: string) => (parseInt(digit, 16) ^ 1).toString(16) + space);
  switch (type) {
    case 'A':
      return rdata.replace(/(\d+)\s*$/, (octet) => String(Number(octet) ^ 1));
    case 'AAAA':
      return rdata.endsWith(':') ? `${rdata}1` : flipHex(rdata);
    case 'TLSA':
    case 'SMIMEA':
    case 'DS':
    case 'SSHFP':
      return flipHex(rdata);
    case 'MX':
      return rdata.replace(/^(\d+)/, (preference) => String((Number(preference) + 1) & 0xffff));
    case 'TXT':
      if (/""$/.test(rdata)) return rdata.replace(/""$/, '"a"');
      return rdata.replace(/(.)"$/, (_, last: string) => `${last === 'a' ? 'b' : 'a'}"`);
    case 'CNAME':
    case 'NS':
    case 'PTR':
      return `x${rdata}`;
    default:
      throw new TypeError(`startDnssec: cannot tamper with ${type} records (${where})`);
  }
}

function tamperZone(text: string, zone: Zone): string {
  const lines = text.split('\n');
  for (const target of zone.tamper) {
    const owner = absoluteOwner(target.owner, zone.origin);
    const type = target.type.toUpperCase();
    const where = `${owner} ${type} in ${zone.origin}`;
    let changed = 0;
    for (let i = 0; i < lines.length; i++) {
      const match = /^(\S+)(\s+\d+\s+IN\s+)(\S+)(\s+)(.*)$/.exec(lines[i]!);
      if (!match) continue;
      if (match[1]!.toLowerCase().replace(/\.$/, '') !== owner || match[3]!.toUpperCase() !== type) continue;
      lines[i] = `${match[1]}${match[2]}${match[3]}${match[4]}${tamperRdata(type, match[5]!.trimEnd(), where)}`;
      changed++;
    }
    if (changed === 0) throw new Error(`startDnssec: nothing to tamper with: no ${where}`);
  }
  return lines.join('\n');
}

/* ------------------------------------------------------------------------------------------
 * Unbound.
 */

interface UnboundRun {
  dir: string;
  /** A trust anchor file (DS or DNSKEY lines). */
  anchorFile: string;
  /** Zones whose queries go to a given server (`stub-addr`), the root included if wanted. */
  stubs: Array<{ name: string; address: string; port: number }>;
  /** Addresses already taken. */
  avoid: string[];
  /** Unbound's built-in local zones to turn off (e.g. test., RFC 6761). */
  nodefault: string[];
  /** A name whose SOA Unbound must answer with AD once started. */
  probe: string;
  logFile: string;
  /** Everything to show when it fails. */
  logs: () => string;
}

/** Start Unbound as a validating resolver on a free loopback address and port (see the top of this file). */
async function runUnbound(options: UnboundRun): Promise<{ address: string; port: number; daemon: Daemon }> {
  const bin = binaries();
  let unboundAt = await freeEndpoint(options.avoid);
  for (let attempt = 1; ; attempt++) {
    const conf = join(options.dir, 'unbound.conf');
    const stub = (name: string, at: { address: string; port: number }) => [
      'stub-zone:',
      `  name: "${name === '' || name === '.' ? '.' : `${name.replace(/\.$/, '')}.`}"`,
      `  stub-addr: ${at.address}@${at.port}`,
    ];
    await writeFile(
      conf,
      [
        'server:',
        '  verbosity: 1',
        `  interface: ${unboundAt.address}@${unboundAt.port}`,
        `  port: ${unboundAt.port}`,
        '  interface-automatic: no',
        '  do-ip4: yes',
        '  do-ip6: no',
        '  do-udp: yes',
        '  do-tcp: yes',
        '  access-control: 127.0.0.0/8 allow',
        '  do-not-query-localhost: no',
        '  username: ""',
        '  chroot: ""',
        `  directory: "${options.dir}"`,
        `  pidfile: "${join(options.dir, 'unbound.pid')}"`,
        `  logfile: "${options.logFile}"`,
        '  use-syslog: no',
        '  log-time-ascii: yes',
        '  log-servfail: yes',
        '  val-log-level: 2',
        '  ede: yes',
        '  do-daemonize: no',
        '  num-threads: 1',
        '  so-reuseport: no',
        '  outgoing-range: 64',
        '  outgoing-port-avoid: 0-32767',
        '  outgoing-port-permit: 32768-60999',
        '  msg-cache-size: 1m',
        '  rrset-cache-size: 1m',
        '  key-cache-size: 1m',
        '  neg-cache-size: 1m',
        '  infra-cache-numhosts: 100',
        '  module-config: "validator iterator"',
        `  trust-anchor-file: "${options.anchorFile}"`,
        '  harden-dnssec-stripped: yes',
        '  qname-minimisation: no',
        '  aggressive-nsec: no',
        '  prefetch: no',
        '  serve-expired: no',
        '  target-fetch-policy: "0 0 0 0 0"',
        ...options.nodefault.map((name) => `  local-zone: "${name}." nodefault`),
        'remote-control:',
        '  control-enable: no',
        ...options.stubs.flatMap((entry) => stub(entry.name, entry)),
        '',
      ].join('\n'),
    );
    const unbound = startDaemon(bin.unbound, ['-d', '-c', conf], options.dir);
    const reply = await waitForReply(unbound, unboundAt.address, unboundAt.port, options.probe, true);
    if (reply !== 'exited' && reply !== 'timeout') {
      if (reply.rcode !== 0 || !reply.ad) {
        await stopChild(unbound.child);
        throw new Error(
          `startDnssec: unbound does not validate ${options.probe} SOA (rcode ${reply.rcode}, AD ${reply.ad})\n${options.logs()}\n${unbound.output()}`,
        );
      }
      return { ...unboundAt, daemon: unbound };
    }
    const why = `${readLogFile(options.logFile)}${unbound.output()}`;
    await stopChild(unbound.child);
    if (reply === 'exited' && /in use/i.test(why) && attempt < START_ATTEMPTS) {
      unboundAt = await freeEndpoint(options.avoid);
      continue;
    }
    throw new Error(`startDnssec: unbound did not start (${reply})\n${why}\n${options.logs()}`);
  }
}

function readLogFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** A validating Unbound over zones served elsewhere (the tests' own authoritative server). */
export interface StartedUnbound {
  /** `address:port`, for the resolver's `servers`. */
  server: string;
  logs(): string;
  close(): Promise<void>;
}

/**
 * Unbound validating from `anchor` (trust anchor file text), every zone of `stubs` asked at
 * its server: for zones signed by the tests themselves (test/helpers/signed-dns.ts in
 * authoritative mode), so the library and Unbound judge the same records.
 */
export async function startUnbound(anchor: string, stubs: Array<{ name: string; server: string }>, probe: string): Promise<StartedUnbound> {
  const dir = await mkdtemp(join(tmpdir(), 'unbound-'));
  const anchorFile = join(dir, 'anchor');
  await writeFile(anchorFile, `${anchor}\n`);
  const logFile = join(dir, 'unbound.log');
  const parsed = stubs.map(({ name, server }) => {
    const match = /^(.*):(\d+)$/.exec(server);
    if (!match) throw new TypeError(`startUnbound: ${server} is not address:port`);
    return { name, address: match[1]!, port: Number(match[2]) };
  });
  let daemon: Daemon | undefined;
  const logs = () => `--- unbound.log\n${readLogFile(logFile)}\n--- unbound output\n${daemon?.output() ?? ''}`;
  try {
    const started = await runUnbound({ dir, anchorFile, stubs: parsed, avoid: parsed.map((p) => p.address), nodefault: [], probe, logFile, logs });
    daemon = started.daemon;
    let closed = false;
    let finalLogs: string | undefined;
    return {
      server: `${started.address}:${started.port}`,
      logs: () => finalLogs ?? logs(),
      close: async () => {
        if (closed) return;
        closed = true;
        await stopChild(started.daemon.child);
        finalLogs = logs();
        if (process.env.DNSSEC_KEEP !== '1') rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

/* ------------------------------------------------------------------------------------------
 * The tree.
 */

export async function startDnssec(spec: DnssecZoneSpec[]): Promise<DnssecTree> {
  const began = Date.now();
  const bin = binaries();
  const zones = buildZones(spec);
  const dir = await mkdtemp(join(tmpdir(), 'dnssec-'));
  const keysDir = join(dir, 'keys');
  const zonesDir = join(dir, 'zones');
  await Promise.all([mkdir(keysDir), mkdir(zonesDir)]);

  const cleanups: (() => Promise<void>)[] = [];
  const daemons: Daemon[] = [];
  const logFiles = { nsd: join(dir, 'nsd.log'), unbound: join(dir, 'unbound.log') };
  const readLog = (path: string) => {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return '';
    }
  };
  let finalLogs: string | undefined;
  const liveLogs = () =>
    [
      `--- nsd.log\n${readLog(logFiles.nsd)}`,
      `--- nsd output\n${daemons[0]?.output() ?? ''}`,
      `--- unbound.log\n${readLog(logFiles.unbound)}`,
      `--- unbound output\n${daemons[1]?.output() ?? ''}`,
    ].join('\n');
  const logs = () => finalLogs ?? liveLogs();
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await Promise.all(daemons.map((daemon) => stopChild(daemon.child)));
    await Promise.all(cleanups.map((cleanup) => cleanup()));
    finalLogs = liveLogs();
    if (process.env.DNSSEC_KEEP !== '1') rmSync(dir, { recursive: true, force: true });
  };

  try {
    // Addresses: NSD and Unbound get their own random loopback address; black holes too.
    const used: string[] = [];
    const blackholes = new Map<string, { address: string; port: number }>();
    for (const zone of zones.filter((z) => z.blackhole)) {
      const hole = await startBlackhole(used);
      used.push(hole.address);
      cleanups.push(hole.close);
      blackholes.set(zone.origin, hole);
    }
    let nsdAt = await freeEndpoint(used);

    // Keys, one per signed zone, and their DS records, all in parallel.
    const keysStart = Date.now();
    await Promise.all(
      zones
        .filter((zone) => zone.signed !== false)
        .map(async (zone) => {
          const base = (await run(bin['ldns-keygen'], ['-a', 'ECDSAP256SHA256', '-k', `${zone.origin}.`], keysDir)).trim();
          zone.key = join(keysDir, base);
          zone.dnskey = (await readFile(`${zone.key}.key`, 'utf8')).replace(/\s*;.*$/s, '').trim();
          zone.ds = (await run(bin['ldns-key2ds'], ['-n', '-2', `${zone.key}.key`], keysDir)).trim();
        }),
    );
    const keysMs = Date.now() - keysStart;

    // Zone files, then signing (in parallel: every DS is known by now).
    const signStart = Date.now();
    const now = Date.now();
    const hour = 3_600_000;
    const day = 24 * hour;
    const served = zones.filter((zone) => !zone.blackhole);
    const zoneText = (zone: Zone, nsdAddress: string) => {
      const lines = [
        `$ORIGIN ${zone.origin}.`,
        `$TTL ${DEFAULT_TTL}`,
        `@ IN SOA ns.${zone.origin}. hostmaster.${zone.origin}. 1 3600 600 86400 ${NEGATIVE_TTL}`,
        `@ IN NS ns.${zone.origin}.`,
        `ns.${zone.origin}. IN A ${nsdAddress}`,
        ...zone.records,
        '',
      ];
      for (const child of zones.filter((z) => z.parent === zone.origin)) {
        const glue = blackholes.get(child.origin)?.address ?? nsdAddress;
        lines.push(`$ORIGIN ${zone.origin}.`, `${child.origin}. IN NS ns.${child.origin}.`, `ns.${child.origin}. IN A ${glue}`);
        if (child.ds) lines.push(child.ds);
      }
      return `${lines.join('\n')}\n`;
    };
    /** Write (and sign, and tamper with) every served zone; the glue names NSD's address. */
    const writeZones = (nsdAddress: string) =>
      Promise.all(
        served.map(async (zone) => {
          const plain = join(zonesDir, `${zone.origin}.zone`);
          await writeFile(plain, zoneText(zone, nsdAddress));
          if (zone.signed === false) {
            zone.file = plain;
            return;
          }
          const [inception, expiration] = zone.signed === 'expired' ? [now - 30 * day, now - 7 * day] : [now - hour, now + 7 * day];
          const signed = `${plain}.signed`;
          try {
            await run(
              bin['ldns-signzone'],
              ['-i', stamp(inception), '-e', stamp(expiration), '-o', `${zone.origin}.`, '-f', signed, plain, zone.key!],
              zonesDir,
            );
          } catch (error) {
            const text = zoneText(zone, nsdAddress)
              .split('\n')
              .map((line, i) => `${String(i + 1).padStart(3)} ${line}`)
              .join('\n');
            throw new Error(`startDnssec: zone ${zone.origin} cannot be signed: ${(error as Error).message}\n${text}`, { cause: error });
          }
          if (zone.tamper.length > 0) await writeFile(signed, tamperZone(await readFile(signed, 'utf8'), zone));
          zone.file = signed;
        }),
      );
    await writeZones(nsdAt.address);
    const signMs = Date.now() - signStart;

    // NSD.
    const nsdStart = Date.now();
    let nsd: Daemon | undefined;
    for (let attempt = 1; ; attempt++) {
      const conf = join(dir, 'nsd.conf');
      await writeFile(
        conf,
        [
          'server:',
          `  ip-address: ${nsdAt.address}@${nsdAt.port}`,
          `  port: ${nsdAt.port}`,
          '  do-ip6: no',
          '  reuseport: no',
          '  server-count: 1',
          '  tcp-count: 20',
          '  username: ""',
          '  chroot: ""',
          `  zonesdir: "${zonesDir}"`,
          '  database: ""',
          `  zonelistfile: "${join(dir, 'nsd.zone.list')}"`,
          `  xfrdfile: "${join(dir, 'nsd.xfrd.state')}"`,
          `  xfrdir: "${dir}"`,
          `  pidfile: "${join(dir, 'nsd.pid')}"`,
          `  logfile: "${logFiles.nsd}"`,
          `  cookie-secret-file: "${join(dir, 'nsd.cookiesecrets.txt')}"`,
          '  verbosity: 2',
          '  hide-version: yes',
          'remote-control:',
          '  control-enable: no',
          ...served.flatMap((zone) => ['zone:', `  name: "${zone.origin}."`, `  zonefile: "${zone.file}"`]),
          '',
        ].join('\n'),
      );
      nsd = startDaemon(bin.nsd, ['-d', '-c', conf], dir);
      const reply = await waitForReply(nsd, nsdAt.address, nsdAt.port, `${TLD}.`, false);
      if (reply !== 'exited' && reply !== 'timeout') break;
      const why = `${readLog(logFiles.nsd)}${nsd.output()}`;
      await stopChild(nsd.child);
      if (reply === 'exited' && /in use/i.test(why) && attempt < START_ATTEMPTS) {
        // Rare (the endpoint was just checked free); the glue names the address: re-sign.
        nsdAt = await freeEndpoint(used);
        await writeZones(nsdAt.address);
        continue;
      }
      throw new Error(`startDnssec: nsd did not start (${reply})\n${why}`);
    }
    daemons.push(nsd);
    used.push(nsdAt.address);
    // Every served zone must load (a syntax error in a spec line shows up here).
    const loaded = await Promise.all(served.map((zone) => probe(nsdAt.address, nsdAt.port, `${zone.origin}.`, false, 1000)));
    const broken = served.filter((_, i) => !(loaded[i] && loaded[i]!.rcode === 0 && loaded[i]!.aa)).map((zone) => zone.origin);
    if (broken.length > 0) throw new Error(`startDnssec: nsd does not serve ${broken.join(', ')} (zone file errors?)\n${logs()}`);
    const nsdMs = Date.now() - nsdStart;

    // Unbound.
    const unboundStart = Date.now();
    const anchor = join(dir, 'test.anchor');
    await writeFile(anchor, `${zones[0]!.dnskey}\n`);
    const unbound = await runUnbound({
      dir,
      anchorFile: anchor,
      stubs: [{ name: TLD, ...nsdAt }, ...zones.slice(1).map((zone) => ({ name: zone.origin, ...(blackholes.get(zone.origin) ?? nsdAt) }))],
      avoid: used,
      nodefault: [TLD],
      probe: `${TLD}.`,
      logFile: logFiles.unbound,
      logs,
    });
    daemons.push(unbound.daemon);
    const unboundAt = unbound;
    const unboundMs = Date.now() - unboundStart;

    return {
      resolver: `${unboundAt.address}:${unboundAt.port}`,
      nsd: `${nsdAt.address}:${nsdAt.port}`,
      blackholes: [...blackholes.values()].map((hole) => `${hole.address}:${hole.port}`),
      dir,
      zones: zones.map((zone) => ({
        origin: zone.origin,
        parent: zone.parent,
        signed: zone.signed,
        blackhole: zone.blackhole,
        ds: zone.ds,
        file: zone.file,
      })),
      timings: { keys: keysMs, sign: signMs, nsd: nsdMs, unbound: unboundMs, total: Date.now() - began },
      close,
      logs,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
