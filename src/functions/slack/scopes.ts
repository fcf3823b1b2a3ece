/**
 * The bot token scopes fn_slack's functions need, and why. Used by selftest (compare
 * with the token's granted scopes) and by the Slack app manifest.
 */
export const REQUIRED_SCOPES: Record<string, string> = {
  'channels:read': 'find public channels by name and id (conversations.list/info)',
  'groups:read': 'find private channels the app is in',
  'channels:manage': 'create and archive public channels, invite participants',
  'groups:write': 'create and archive private channels, invite participants',
  'channels:join': 'join an existing public channel before posting',
  'channels:history': 'export public channel conversations; find earlier posts on redelivery',
  'groups:history': 'export private channel conversations',
  'chat:write': 'post messages',
  'chat:write.customize': 'post under slack_username',
  'files:write': 'upload attachments',
  'files:read': 'read the upload share to link to it',
  'users:read': 'name the authors in exports',
  'users:read.email': 'find participants by email',
};

/** Required scopes missing from `granted`. */
export function missingScopes(granted: string[]): string[] {
  const have = new Set(granted);
  return Object.keys(REQUIRED_SCOPES).filter((s) => !have.has(s));
}
