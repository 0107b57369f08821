#!/usr/bin/env bash
# Runs `npm test` as on a machine with Node and npm only: in a private mount namespace, an empty
# non-executable file is bound over every unbound, nsd, ldns and redis program, so the tests cannot
# start them. Shows first that they are hidden there (npm run test:interop stops with its one
# line), then runs `npm test`, whose exit status this script returns. Needs root (unshare -m);
# CI does not run it: .ci/run installs the programs and runs both commands.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" != --inside ]; then exec unshare -m --propagation private bash "$0" --inside; fi

empty=$(mktemp)
chmod 644 "$empty"
hidden=()
for program in /usr/sbin/unbound* /usr/sbin/nsd* /usr/bin/ldns-* /usr/bin/drill /usr/bin/redis-*; do
  [ -e "$program" ] || continue
  mount --bind "$empty" "$program"
  hidden+=("$program")
done
echo "test-bare: hidden ${#hidden[@]} programs: ${hidden[*]}"
for program in "${hidden[@]}"; do
  if [ -x "$program" ]; then
    echo "test-bare: $program is still executable" >&2
    exit 1
  fi
done
if npm run test:interop >.tmp-bare-interop.log 2>&1; then
  echo "test-bare: npm run test:interop passed, so the programs were not hidden" >&2
  rm -f .tmp-bare-interop.log
  exit 1
fi
echo "test-bare: npm run test:interop stops as it should: $(grep -o 'npm run test:interop needs [^;]*' .tmp-bare-interop.log | head -1)"
rm -f .tmp-bare-interop.log
npm test
