import { it } from 'vitest';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { startRawPeer } from './helpers/raw-peer.js';
import { loopbackBlock } from './helpers/smtp-peer.js';
const ip = loopbackBlock();
it('trace', async () => {
  const peer = await startRawPeer({ host: ip(2), script: (c) => (c === 'DATA' ? { reply: '421 4.3.2 shutting down', thenClose: true } : undefined) });
  const c = new SMTPConnection({ host: peer.host, port: peer.port, ignoreTLS: true, logger: { info: (...a: unknown[]) => console.log('I', ...a.slice(1)), debug: (...a: unknown[]) => console.log('D', ...a.slice(1)), warn: (...a: unknown[]) => console.log('W', ...a.slice(1)), error: (...a: unknown[]) => console.log('E', ...a.slice(1)), trace(){}, fatal(){} } as never, debug: true });
  c.on('error', (e) => console.log('error event', e.message));
  await new Promise<void>((r) => c.connect(() => r()));
  const orig = (c as any)._onClose.bind(c);
  (c as any)._onClose = () => { console.log('onClose; queue', JSON.stringify((c as any)._responseQueue), 'remainder', JSON.stringify((c as any)._remainder), 'actions', (c as any)._responseActions.length); orig(); };
  await new Promise<void>((r) => c.send({ from: 'a@b.test', to: ['c@d.test', 'e@d.test'] }, 'x', (err) => { console.log('CB', err?.message, (err as any)?.response); r(); }));
  await peer.close();
});
