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
          // Projects with different worker limits need their own group: unit runs first.
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          sequence: { groupOrder: 1 },
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
