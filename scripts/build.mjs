// Builds dist/esm (ES modules) and dist/cjs (CommonJS), each with its .d.ts files.
// dist/cjs gets its own package.json so Node reads its .js files as CommonJS.
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
// typescript's exports map hides bin/tsc; its package.json is exported
const tsc = join(dirname(require.resolve('typescript/package.json')), 'bin', 'tsc');
rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
for (const project of ['tsconfig.esm.json', 'tsconfig.cjs.json']) {
  execFileSync(process.execPath, [tsc, '-p', project], { stdio: 'inherit', cwd: new URL('..', import.meta.url) });
}
writeFileSync(new URL('../dist/cjs/package.json', import.meta.url), '{ "type": "commonjs" }\n');
