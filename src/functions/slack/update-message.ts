/**
 * slack_update_message: edits a message the worker posted (chat.update), laid out as
 * slack_post_message lays out slack_text. Repeating the same edit changes nothing, so a
 * redelivery is harmless.
 */
import { FunctionError } from '../../core/runtime/errors.js';
import type { FunctionContext, FunctionResult } from '../../core/runtime/plugin.js';
import type { SlackState } from './state.js';
import { onChannel } from './verbs.js';
import { renderTextInput, strInput } from './inputs.js';

export async function updateMessage(ctx: FunctionContext, state: SlackState): Promise<FunctionResult> {
  const ts = strInput(ctx.inputs, 'slack_ts') as string;
  const parts = renderTextInput(ctx.inputs, state.config);
  if (parts.length > 1) {
    // A post continues long text in its thread; an edit has no thread to continue in.
    throw new FunctionError(
      `slack_text is too long for one Slack message (it would take ${parts.length}): an edit cannot continue in a thread, so shorten it`,
      'slack_text_too_long',
    );
  }
  const [part] = parts as [(typeof parts)[0]];
  const { channel } = await onChannel(ctx, state, (channel, deps) =>
    state.client.call(
      'chat.update',
      { channel: channel.id, ts, text: part.text, blocks: JSON.stringify(part.blocks) },
      { ...deps.callOpts, what: `${ts} in #${channel.name}` },
    ),
  );
  await ctx.status(`Updated message ${ts} in #${channel.name}`);
  return { content: { channel: channel.name, channel_id: channel.id, ts, text: part.text } };
}
