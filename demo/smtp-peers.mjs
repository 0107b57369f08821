// SMTP servers for the demo: smtp-server instances on their own loopback addresses, all on one
// port (the transport's `port` option applies to every MX). Each accepts any sender and
// recipient, except the recipients given in `reject`, and counts the messages it received.
import { SMTPServer } from 'smtp-server';

function startPeer({ host, port, name, cert, key, starttls, reject = {} }) {
  const peer = { host, port, name, messages: [] };
  const server = new SMTPServer({
    name,
    ...(cert ? { cert, key } : {}),
    hideSTARTTLS: !starttls,
    authOptional: true,
    disabledCommands: ['AUTH'],
    disableReverseLookup: true, // no DNS lookup of the client: the demo needs no network
    logger: false,
    socketTimeout: 10_000,
    closeTimeout: 500,
    onRcptTo(address, _session, callback) {
      const reply = reject[address.address];
      if (!reply) return callback();
      return callback(Object.assign(new Error(reply.slice(4)), { responseCode: Number(reply.slice(0, 3)) }));
    },
    onData(stream, session, callback) {
      stream.resume();
      stream.on('end', () => {
        peer.messages.push({ secure: session.secure, to: session.envelope.rcptTo.map((r) => r.address) });
        callback(null, 'Ok: queued');
      });
    },
  });
  server.on('error', () => {});
  peer.close = () => new Promise((resolve) => server.close(() => resolve()));
  return new Promise((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(port, host, () => {
      server.server.removeListener('error', reject);
      resolve(peer);
    });
  });
}

/**
 * Starts one peer per spec on a shared random port, retrying with another port if one is taken.
 * @param {Array<{ host: string, name: string, cert?: string, key?: string, starttls: boolean, reject?: Record<string, string> }>} specs
 */
export async function startPeers(specs) {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 40000);
    const started = [];
    try {
      for (const spec of specs) started.push(await startPeer({ ...spec, port }));
      return { port, peers: started, close: () => Promise.all(started.map((p) => p.close())) };
    } catch (error) {
      await Promise.all(started.map((p) => p.close()));
      if (error.code !== 'EADDRINUSE') throw error;
    }
  }
  throw new Error('demo SMTP peers: no free port');
}
