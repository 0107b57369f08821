// Builds dist/esm (ES modules) and dist/cjs (CommonJS), each with its .d.ts files and no source
// maps (tsconfig.esm.json, tsconfig.cjs.json: maps would point into lib/, which is not shipped).
// dist/cjs gets its own package.json so Node reads its .js files as CommonJS.
// It is the prepare script too: npm runs it on `npm install` in a checkout, on `npm pack`, and in
// the temporary clone it makes when an app installs the package from a git URL.
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
let tsc;
try {
  // The compiler is TypeScript 7, installed as @typescript/native (package.json and
  // eslint.config.js say why `typescript` itself is 6.0). Its exports map hides bin/tsc; its
  // package.json is exported.
  tsc = join(dirname(require.resolve('@typescript/native/package.json')), 'bin', 'tsc');
} catch {
  console.error(
    'scripts/build.mjs: cannot build dist/ because TypeScript (@typescript/native, a devDependency) is not installed (was npm run with --omit=dev?): run npm install',
  );
  process.exit(1);
}
rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
for (const project of ['tsconfig.esm.json', 'tsconfig.cjs.json']) {
  try {
    execFileSync(process.execPath, [tsc, '-p', project], { stdio: 'inherit', cwd: new URL('..', import.meta.url) });
  } catch (error) {
    console.error(
      `scripts/build.mjs: tsc -p ${project} failed (${error.status != null ? `exit ${error.status}` : error.message}), so dist/ is incomplete: see the errors above`,
    );
    process.exit(1);
  }
}
writeFileSync(new URL('../dist/cjs/package.json', import.meta.url), '{ "type": "commonjs" }\n');
