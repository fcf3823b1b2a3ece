/**
 * The bot token scopes fn_slack's functions need, and why. Used by selftest (compare
 * with the token's granted scopes) and by the Slack app manifest.
 */
export const REQUIRED_SCOPES: Record<string, string> = {
  'channels:read': 'find public channels by name and id (conversations.list/info)',
  'groups:read': 'find private channels the app is in',
  'channels:manage': 'create, rename and archive public channels, set their topic, invite and remove participants',
  'groups:write': 'create, rename and archive private channels, set their topic, invite and remove participants',
  'channels:join': 'join an existing public channel before posting',
  'channels:history':
    'export public channel conversations; find earlier posts on redelivery; receive public channel messages (message.channels) to mirror',
  'groups:history': 'export private channel conversations; receive private channel messages (message.groups) to mirror',
  'chat:write': 'post and edit messages, send direct messages',
  'im:write': 'open a direct message with a person (slack_send_direct_message)',
  'im:history': 'find direct messages sent by an earlier attempt on redelivery; receive direct messages to the bot (message.im)',
  'pins:write': 'pin messages (slack_pin_message)',
  'reactions:write': 'add reactions (slack_add_reaction)',
  'bookmarks:read': 'find a bookmark added by an earlier attempt (slack_add_bookmark)',
  'bookmarks:write': 'add bookmarks (slack_add_bookmark)',
  'chat:write.customize': 'post under slack_username',
  'files:write': 'upload attachments',
  'files:read': 'read the upload share to link to it',
  'users:read': 'name the authors in exports and in slack_get_conversation',
  'users:read.email': "find participants by email; authors' emails in slack_get_conversation",
};

/**
 * The further bot scopes the inbound half needs (with `[fn_slack] app_token` or
 * `events_port`). Socket Mode itself needs `connections:write` on the app-level token,
 * which is not a bot scope.
 */
export const INBOUND_SCOPES: Record<string, string> = {
  'app_mentions:read': 'receive @mentions of the bot (app_mention events: incident lookups)',
  commands: 'the slash command ([fn_slack] command, default /soar)',
};

/** Required scopes missing from `granted` (with `inbound`, the inbound half's too). */
export function missingScopes(granted: string[], inbound = false): string[] {
  const have = new Set(granted);
  const needed = inbound ? [...Object.keys(REQUIRED_SCOPES), ...Object.keys(INBOUND_SCOPES)] : Object.keys(REQUIRED_SCOPES);
  return needed.filter((s) => !have.has(s));
}
