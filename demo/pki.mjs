// Certificates for the demo, made now with the openssl command line: a test CA, leaves it
// issues, and self-signed leaves. EC P-256 keys, valid for two days from now.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

const KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

/** A config of our own, so the system's openssl.cnf adds nothing. */
function config(names) {
  return [
    '[ req ]',
    'distinguished_name = dn',
    'prompt = no',
    '[ dn ]',
    'O = nodemailer-tls-policy demo',
    '[ ca_ext ]',
    'basicConstraints = critical,CA:TRUE',
    'keyUsage = critical,keyCertSign,cRLSign',
    'subjectKeyIdentifier = hash',
    '[ leaf_ext ]',
    'basicConstraints = critical,CA:FALSE',
    'keyUsage = critical,digitalSignature',
    'extendedKeyUsage = serverAuth',
    'subjectKeyIdentifier = hash',
    ...(names.length > 0 ? [`subjectAltName = ${names.map((n) => `DNS:${n}`).join(',')}`] : []),
    '',
  ].join('\n');
}

const safe = (s) => s.replace(/[^A-Za-z0-9.-]/g, '_');

/**
 * The demo CA, in `dir`. Returns its files and a function issuing leaves.
 * @param {string} dir an empty temporary directory
 */
export async function makeCa(dir) {
  const caFile = join(dir, 'ca.pem');
  const caKey = join(dir, 'ca.key');
  const cnf = join(dir, 'ca.cnf');
  await writeFile(cnf, config([]));
  await run('openssl', [
    'req',
    '-x509',
    '-config',
    cnf,
    '-extensions',
    'ca_ext',
    ...KEY,
    '-keyout',
    caKey,
    '-out',
    caFile,
    '-days',
    '2',
    '-subj',
    '/CN=nodemailer-tls-policy demo CA',
  ]);

  /**
   * A server certificate for `names` (the first is its CN), issued by the CA or self-signed.
   * @returns {Promise<{ cert: string, key: string }>} PEM strings
   */
  async function leaf(names, { selfSigned = false } = {}) {
    const base = join(dir, safe(names[0]) + (selfSigned ? '.self' : ''));
    await writeFile(`${base}.cnf`, config(names));
    const subject = ['-subj', `/CN=${names[0]}`];
    if (selfSigned) {
      await run('openssl', [
        'req',
        '-x509',
        '-config',
        `${base}.cnf`,
        '-extensions',
        'leaf_ext',
        ...KEY,
        '-keyout',
        `${base}.key`,
        '-out',
        `${base}.pem`,
        '-days',
        '2',
        ...subject,
      ]);
    } else {
      await run('openssl', ['req', '-new', '-config', `${base}.cnf`, ...KEY, '-keyout', `${base}.key`, '-out', `${base}.csr`, ...subject]);
      await run('openssl', [
        'x509',
        '-req',
        '-in',
        `${base}.csr`,
        '-CA',
        caFile,
        '-CAkey',
        caKey,
        '-set_serial',
        `0x${randomBytes(12).toString('hex')}`,
        '-days',
        '2',
        '-extfile',
        `${base}.cnf`,
        '-extensions',
        'leaf_ext',
        '-out',
        `${base}.pem`,
      ]);
    }
    const [cert, key] = await Promise.all([readFile(`${base}.pem`, 'utf8'), readFile(`${base}.key`, 'utf8')]);
    return { cert, key };
  }

  return { caFile, leaf };
}
