/**
 * A redis-server of a test's own (Debian's redis-server, installed by .ci/run) on a random
 * loopback port, with no persistence: the real shared store the tests prove shared state with.
 *
 * Part of the test kit shared by test/, demo/ and bench/: erasable TypeScript only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { tmpdir } from 'node:os';

export const REDIS_SERVER = '/usr/bin/redis-server';

export interface RedisProcess {
  port: number;
  stop(): Promise<void>;
}

/** A redis-server of this test's own on a random loopback port, with no persistence. */
export async function startRedis(): Promise<RedisProcess> {
  let output = '';
  for (let tries = 0; tries < 10; tries++) {
    const port = randomInt(20000, 60000);
    const child: ChildProcess = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', tmpdir()], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    output = '';
    const ready = await new Promise<boolean>((resolve) => {
      const seen = (chunk: Buffer) => {
        output += chunk.toString('utf8');
        if (output.includes('Ready to accept connections')) resolve(true);
      };
      child.stdout?.on('data', seen);
      child.stderr?.on('data', seen);
      child.once('error', (error) => {
        output += String(error);
        resolve(false);
      });
      child.once('exit', () => resolve(false));
    });
    if (ready) {
      return {
        port,
        stop: () =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGTERM');
          }),
      };
    }
    child.kill('SIGKILL');
    if (!/in use/i.test(output)) break;
  }
  throw new Error(`the test's redis-server (${REDIS_SERVER}) did not start on a loopback port: ${output.trim()}`);
}
