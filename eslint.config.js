// ESLint flat config: type-aware rules for the TypeScript sources and tests, ESLint's
// recommended rules for the plain JavaScript (bench, demo, scripts, bin).
//
// TypeScript 7 is a native compiler with no JavaScript compiler API, and typescript-eslint
// reads types through that API (its peer range is typescript <6.1). So the project installs
// the two side by side, the layout TypeScript 7's release notes give for API-based tools:
//   "typescript": "npm:@typescript/typescript6@~6.0.2"  the 6.0 API, imported by typescript-eslint
//   "@typescript/native": "npm:typescript@^7.0.2"       TypeScript 7, whose bin is `tsc`
// `tsc` (typecheck) and scripts/build.mjs run TypeScript 7; only the linter sees 6.0, which
// reads the same tsconfig.json and reports it clean. `~` keeps 6.0.x: 6.1 is outside the peer
// range. When typescript-eslint supports TypeScript 7, `typescript` goes back to ^7.
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  globalIgnores(['dist/', 'coverage/', '.tmp/', 'bench/results/']),
  {
    files: ['**/*.ts'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    // The promise and exhaustiveness checks of recommendedTypeChecked. The rest of that set is
    // left out: on this code it reports mostly deliberate idioms (control characters in the
    // sanitiser's regular expressions, `expect.any()` in tests, `_dropped` rest omissions).
    rules: {
      // A promise nobody awaits loses its rejection: an SMTP or DNS failure would vanish.
      '@typescript-eslint/no-floating-promises': 'error',
      // An async function where a void callback is expected (socket and server events) has
      // the same effect.
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      // A new level, stage or record kind must be handled by every switch over it.
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
    },
  },
  {
    files: ['**/*.{js,mjs}'],
    extends: [js.configs.recommended],
    languageOptions: { globals: globals.node },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
  },
);
