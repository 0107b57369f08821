/**
 * Runs one of the test kit's TypeScript scripts in a process of its own (the library's sources,
 * through ts-register.mjs and Node's --experimental-transform-types) with one JSON argument,
 * and resolves with what it printed on stdout, parsed as JSON: how a test shows two processes
 * sharing one store.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));

export function runTsChild<T>(script: string, args: unknown, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) =>
    execFile(
      process.execPath,
      ['--import', join(here, 'ts-register.mjs'), '--experimental-transform-types', '--no-warnings', join(here, script), JSON.stringify(args)],
      { timeout: timeoutMs },
      (error, stdout, stderr) => {
        try {
          resolve(JSON.parse(stdout) as T);
        } catch {
          reject(new Error(`the ${script} process failed: ${error?.message ?? ''}\n${stderr}`));
        }
      },
    ),
  );
}
