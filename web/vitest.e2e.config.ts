/**
 * Browser end-to-end tests (web/e2e): a real CivicSync server started by e2e/global-setup.ts and
 * Debian's Chromium driven by playwright-core. Sequential, with long timeouts.
 *
 *   npm run build && CIVICSYNC_WEB_DIR=$PWD/dist npx vitest run --config vitest.e2e.config.ts
 */
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['e2e/**/*.e2e.test.ts'],
    environment: 'node',
    globalSetup: ['e2e/global-setup.ts'],
    fileParallelism: false,
    maxWorkers: 1,
    sequence: { concurrent: false },
    testTimeout: 120_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
    reporters: ['verbose'],
  },
});
