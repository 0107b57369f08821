/**
 * Before any test: the system tools the DNSSEC tests need (unbound, nsd, ldnsutils) are there,
 * or the run stops at once with one line that says what to install, instead of failing after a
 * minute inside many test files. The tests are never skipped.
 */
import { missingDnssecTools } from '../helpers/dnssec.js';

export default function setup(): void {
  const missing = missingDnssecTools();
  if (missing.length === 0) return;
  const packages = [...new Set(missing.map((m) => m.pkg))].join(' ');
  throw new Error(
    `npm test needs ${missing.map((m) => m.name).join(', ')}: install them first (Debian: apt-get install -y ${packages}); .ci/run does this itself`,
  );
}
