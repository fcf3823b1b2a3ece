/**
 * slack_lookup_user: the Slack user with an email, for a workflow to mention or DM them.
 */
import type { FunctionContext, FunctionResult } from '../../core/runtime/plugin.js';
import type { SlackState } from './state.js';
import { callOptionsFor } from './state.js';
import { userSummary } from './verbs.js';
import { strInput } from './inputs.js';

export async function lookupUser(ctx: FunctionContext, state: SlackState): Promise<FunctionResult> {
  const email = (strInput(ctx.inputs, 'slack_user_email') as string).trim();
  const res = await state.client.call('users.lookupByEmail', { email }, { ...callOptionsFor(ctx), what: `with the email ${email}` });
  const user = userSummary(res.user);
  await ctx.status(`Found Slack user ${String(user.name)} (${String(user.id)})`);
  return { content: user };
}
