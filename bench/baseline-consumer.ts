/**
 * The plain-consumer baseline of the rate-limit benchmark: what a straightforward
 * integration would do without the worker. One invocation at a time (prefetch 1), the
 * Slack SDK's WebClient with its default retry policy (it waits out each 429's
 * Retry-After by itself), and only the calls the work needs: conversations.create once
 * per channel, chat.postMessage + chat.getPermalink per post, files.uploadV2 per upload.
 * No ledger, no progress messages.
 *
 * argv: QUEUE AMQP_URL API_URL TOKEN PLATFORM_DIR. Sends "ready" over IPC once consuming.
 */
import fs from 'node:fs';
import path from 'node:path';
import amqp from 'amqplib';
import { LogLevel, WebClient } from '@slack/web-api';

const [queue, amqpUrl, apiUrl, token, platformDir] = process.argv.slice(2) as [string, string, string, string, string];
// Default retry policy and rate-limit handling; only the SDK's console logging is turned down.
const web = new WebClient(token, { slackApiUrl: apiUrl, logLevel: LogLevel.ERROR });
const channelIds = new Map<string, string>();

async function channelId(name: string): Promise<string> {
  let id = channelIds.get(name);
  if (!id) {
    const res = await web.conversations.create({ name, is_private: false });
    id = String(res.channel?.id);
    channelIds.set(name, id);
  }
  return id;
}

async function handle(fn: string, inputs: Record<string, any>): Promise<Record<string, unknown>> {
  const channel = await channelId(String(inputs.slack_channel));
  if (fn === 'slack_post_message') {
    const posted = await web.chat.postMessage({ channel, text: String(inputs.slack_text) });
    const link = await web.chat.getPermalink({ channel, message_ts: String(posted.ts) });
    return { channel_id: channel, ts: posted.ts, url: link.permalink };
  }
  const dir = path.join(platformDir, 'incidents', String(inputs.incident_id), 'attachments', String(inputs.attachment_id));
  const name = fs.readdirSync(dir)[0]!;
  const up = await web.files.uploadV2({ channel_id: channel, file: fs.readFileSync(path.join(dir, name)), filename: name, initial_comment: String(inputs.slack_text) });
  return { channel_id: channel, ok: up.ok };
}

const connection = await amqp.connect(amqpUrl, { noDelay: true });
const ch = await connection.createChannel();
await ch.assertQueue(queue, { durable: true });
await ch.prefetch(1);
await ch.consume(queue, (msg) => {
  if (!msg) return;
  void (async () => {
    const request = JSON.parse(msg.content.toString('utf8')) as { function: { name: string }; inputs: Record<string, unknown> };
    let reply: Record<string, unknown>;
    try {
      const content = await handle(request.function.name, request.inputs);
      reply = { message_type: 0, message: 'Completed', complete: true, results: { version: 2, success: true, content } };
    } catch (err) {
      reply = { message_type: 1, message: String((err as Error).message), complete: true };
    }
    ch.sendToQueue(String(msg.properties.replyTo), Buffer.from(JSON.stringify(reply)), { correlationId: msg.properties.correlationId });
    ch.ack(msg);
  })();
});
process.send?.('ready');
const stop = () => void connection.close().finally(() => process.exit(0));
process.on('disconnect', stop);
process.on('SIGTERM', stop);
