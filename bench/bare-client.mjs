// A bare SMTP client as a Nodemailer transport, for compare.mjs's floor row (by hand, never a
// test, never for mail): a new connection per message, greeting, EHLO, STARTTLS, the handshake
// (resuming the last TLS session when `resume`), EHLO, MAIL/RCPT/DATA pipelined, the body, QUIT.
// No policy, no certificate check, no audit, no error handling beyond failing the send: what any
// SMTP client on Node's net and tls pays for one delivery on a fresh connection, below which no
// client that does more can go.
import net from 'node:net';
import tls from 'node:tls';

/** Replies out of a socket's bytes, in order; `next()` resolves with the next complete one. */
function replies(socket) {
  let buffer = '';
  let lines = [];
  const ready = [];
  const waiting = [];
  const onData = (chunk) => {
    buffer += chunk.toString('latin1');
    let at;
    while ((at = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, at).replace(/\r$/, '');
      buffer = buffer.slice(at + 1);
      lines.push(line);
      if (line[3] === '-') continue;
      const reply = lines.join('\n');
      lines = [];
      const w = waiting.shift();
      if (w) w(reply);
      else ready.push(reply);
    }
  };
  socket.on('data', onData);
  return {
    next: () => (ready.length ? Promise.resolve(ready.shift()) : new Promise((resolve) => waiting.push(resolve))),
    stop: () => socket.removeListener('data', onData),
  };
}

const expect = (reply, code) => {
  if (!reply.startsWith(code)) throw new Error(`bare client: expected ${code}, got ${reply}`);
};

/** The body after DATA: dot-stuffed, ended with CRLF.CRLF (the message is CRLF already, from Nodemailer's composer). */
function dotStuffed(message) {
  let text = message.toString('latin1');
  if (text.startsWith('.')) text = `.${text}`;
  text = text.replaceAll('\n.', '\n..');
  return Buffer.from(`${text}${text.endsWith('\r\n') ? '' : '\r\n'}.\r\n`, 'latin1');
}

export function bareTransport({ host, port, servername, resume }) {
  const context = tls.createSecureContext({});
  let session;
  async function deliver(from, to, body) {
    const plain = net.connect(port, host);
    plain.setNoDelay(true);
    await new Promise((resolve, reject) => plain.once('connect', resolve).once('error', reject));
    let r = replies(plain);
    expect(await r.next(), '220');
    plain.write('EHLO bare.client.test\r\n');
    expect(await r.next(), '250');
    plain.write('STARTTLS\r\n');
    expect(await r.next(), '220');
    r.stop();
    const socket = tls.connect({ socket: plain, servername, rejectUnauthorized: false, secureContext: context, ...(resume && session ? { session } : {}) });
    socket.on('session', (s) => {
      session = s;
    });
    await new Promise((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    r = replies(socket);
    socket.write('EHLO bare.client.test\r\n');
    expect(await r.next(), '250');
    socket.write(`MAIL FROM:<${from}>\r\n${to.map((t) => `RCPT TO:<${t}>\r\n`).join('')}DATA\r\n`);
    expect(await r.next(), '250');
    for (let i = 0; i < to.length; i++) expect(await r.next(), '250');
    expect(await r.next(), '354');
    socket.write(body);
    expect(await r.next(), '250');
    socket.write('QUIT\r\n');
    await r.next();
    socket.end();
  }
  return {
    name: 'bare-client',
    version: '0',
    send(mail, callback) {
      const chunks = [];
      const stream = mail.message.createReadStream();
      stream.on('data', (c) => chunks.push(c));
      stream.on('error', callback);
      stream.on('end', () => {
        const { from, to } = mail.data.envelope ?? mail.message.getEnvelope();
        deliver(from, to, dotStuffed(Buffer.concat(chunks))).then(() => callback(null, { accepted: to, rejected: [], envelope: { from, to } }), callback);
      });
    },
  };
}
