import { actionsRunner } from './action/runner.js';
import { runPost } from './action/post.js';

export async function run(): Promise<void> {
  await runPost(actionsRunner());
}
