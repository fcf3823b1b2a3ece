/**
 * The reference for the inbound benchmark: Slack's own `@slack/socket-mode` client,
 * connected to the Slack emulator in a process of its own (as the worker is), acking
 * each events_api envelope as soon as it arrives. No broker, no store, no handling:
 * the floor that the WebSocket, the client library and the emulator set on this
 * machine for the ack latency.
 *
 * argv: one JSON object { apiUrl, appToken }. Sends "ready" over IPC once connected;
 * exits on SIGTERM or when the parent goes.
 */
import { SocketModeClient } from '@slack/socket-mode';

const { apiUrl, appToken } = JSON.parse(process.argv[2]!) as { apiUrl: string; appToken: string };
const client = new SocketModeClient({
  appToken,
  clientOptions: { slackApiUrl: apiUrl.endsWith('/') ? apiUrl : `${apiUrl}/` },
  logLevel: 'error' as never,
});
client.on('slack_event', async ({ ack }: { ack: () => Promise<void> }) => {
  await ack();
});
await client.start();
process.send?.('ready');
const stop = () => {
  void client.disconnect().finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('disconnect', stop);
