#!/usr/bin/env node
// The nodemailer-tls-policy command: `probe`, `check-policy` and `tls-reports` (run it with --help).
// It runs the built package: `npm run build` makes dist/, which the published package ships.
let cli;
try {
  cli = await import('../dist/esm/cli/index.js');
} catch (error) {
  if (error?.code === 'ERR_MODULE_NOT_FOUND' && String(error.message).includes('cli/index.js')) {
    process.stderr.write('nodemailer-tls-policy: the package is not built (dist/esm/cli/index.js is missing): run `npm run build`\n');
    process.exit(3);
  }
  throw error;
}

// Piped into `head`: stop writing quietly.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
}

const status = await cli.main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env });
process.exitCode = status;
// Sessions end with QUIT and close on their own; a server slow to answer it must not keep the
// command alive once the report is written.
setTimeout(() => process.exit(status), 2000).unref();
