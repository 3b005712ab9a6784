import { defineConfig } from 'vitest/config';

// Two projects: `unit` (pure logic, no database, fast) and `integration` (real PostgreSQL:
// embedded by default, or BLUEGREEN_TEST_URL — an admin URL able to create roles/databases).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/helpers/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          // Each file gets its own databases; files run in parallel on one cluster.
          fileParallelism: true,
          maxWorkers: 2,
        },
      },
    ],
  },
});
