// Entry for @github/local-action (`npx @github/local-action . src/main.ts .env`).
import { actionsRunner } from './action/runner.js';
import { runMain } from './action/main.js';

export async function run(): Promise<void> {
  await runMain(actionsRunner());
}
