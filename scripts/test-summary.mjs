// Prints the plain closing line of a test run, "N passed, N failed", from vitest's JSON report
// (`vitest run --reporter=json --outputFile=<file>`), for readers that do not know vitest's own
// summary. Usage: node scripts/test-summary.mjs <report.json>
// Exit status: 0 when the report says the run succeeded, 1 when it failed or there is no
// readable report (then the tests did not run to the end, and this says so in one line).
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

const file = process.argv[2];
if (!file) {
  console.log('test-summary: no report file given: usage is node scripts/test-summary.mjs <vitest JSON report>');
  process.exit(2);
}

let text;
try {
  text = readFileSync(file, 'utf8');
} catch (error) {
  const what = error?.code === 'ENOENT' ? 'is missing' : `cannot be read (${error?.code ?? error})`;
  console.log(
    `no test summary: the test report ${file} ${what}, so the tests did not run to the end (npm test typechecks first and stops there when the typecheck fails; npm run test:interop stops at once when unbound, nsd, the ldns tools or redis-server are missing): see the output above`,
  );
  process.exit(1);
}

let report;
try {
  report = JSON.parse(text);
} catch (error) {
  console.log(`no test summary: the test report ${file} is not JSON (${error.message}); the test run was cut short while writing it: see the output above`);
  process.exit(1);
}
const count = (key) => (Number.isInteger(report?.[key]) ? report[key] : undefined);
const passed = count('numPassedTests');
const failed = count('numFailedTests');
if (passed === undefined || failed === undefined || typeof report.success !== 'boolean') {
  console.log(`no test summary: the test report ${file} is not a vitest JSON report (it lacks numPassedTests, numFailedTests or success)`);
  process.exit(1);
}

console.log(`${passed} passed, ${failed} failed`);
const skipped = (count('numPendingTests') ?? 0) + (count('numTodoTests') ?? 0);
if (skipped > 0) console.log(`${skipped} skipped or todo`);
// A test file that fails before any of its tests runs (an import that throws, a failing
// beforeAll) counts no failed test: name it, or the line above would read as a clean run.
const results = Array.isArray(report.testResults) ? report.testResults : [];
const broken = results
  .filter((r) => r?.status === 'failed' && !(Array.isArray(r.assertionResults) && r.assertionResults.some((a) => a?.status === 'failed')))
  .map((r) => relative(process.cwd(), String(r.name)));
if (broken.length > 0) console.log(`${broken.length} test file(s) failed outside their tests: ${broken.join(', ')}`);
if (!report.success && failed === 0 && broken.length === 0)
  console.log('vitest reported the run as failed although no test failed (an error outside the tests): see the output above');
process.exit(report.success && failed === 0 ? 0 : 1);
