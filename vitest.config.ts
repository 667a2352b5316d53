import { defineConfig } from 'vitest/config';

/**
 * Two projects: `unit` (in-process, no real servers: fast to run while working) and
 * `integration` (real processes and MCP servers, real Redis, a real browser). `vitest run` runs
 * both; `--project unit` or `--project integration` runs one.
 */
const INTEGRATION = ['test/e2e/**/*.test.ts', 'test/redis/**/*.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/**/*.test.ts'], exclude: INTEGRATION } },
      // The browser test of the audit report is test/e2e/audit-report-browser.test.ts.
      { extends: true, test: { name: 'integration', include: INTEGRATION } },
    ],
  },
});
