// The bench's one certificate: a self-signed EC P-256 leaf made with the openssl command line
// (as demo/pki.mjs does), carrying every MX name of the bench zone. Nothing verifies it against
// a CA: level `may` does not authenticate, Nodemailer's baseline runs with
// rejectUnauthorized: false, and `dane` matches it with a TLSA 3 1 1 record (its SPKI digest).
import { execFile } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * @param {string} dir an empty temporary directory
 * @param {string[]} names DNS names for the subjectAltName (wildcards allowed)
 * @returns {Promise<{ cert: string, key: string, spkiSha256: string }>}
 */
export async function makeLeaf(dir, names) {
  const cnf = join(dir, 'leaf.cnf');
  await writeFile(
    cnf,
    [
      '[ req ]',
      'distinguished_name = dn',
      'prompt = no',
      '[ dn ]',
      'O = nodemailer-tls-policy bench',
      '[ leaf_ext ]',
      'basicConstraints = critical,CA:FALSE',
      'keyUsage = critical,digitalSignature',
      'extendedKeyUsage = serverAuth',
      `subjectAltName = ${names.map((n) => `DNS:${n}`).join(',')}`,
      '',
    ].join('\n'),
  );
  const certFile = join(dir, 'leaf.pem');
  const keyFile = join(dir, 'leaf.key');
  await run('openssl', [
    'req',
    '-x509',
    '-config',
    cnf,
    '-extensions',
    'leaf_ext',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-days',
    '2',
    '-subj',
    `/CN=${names[0]}`,
  ]);
  const [cert, key] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
  const spki = new X509Certificate(cert).publicKey.export({ type: 'spki', format: 'der' });
  return { cert, key, spkiSha256: createHash('sha256').update(spki).digest('hex') };
}
