/**
 * What Slack answers to the Web API methods fn_slack calls: one result type per method,
 * holding the fields the plugin reads (Slack sends more). `SlackClient.call` and
 * `paginate` resolve with `SlackResponse<method>`, so a handler reads `res.channel.id`
 * typed instead of through `any`. A method missing here still works: its answer is typed
 * as unknown fields, to be checked where it is read; add it here when code reads it.
 *
 * Fields Slack always sends in an `ok` answer are required; lists the plugin has always
 * read defensively (`?? []`) stay optional, as they are in @slack/web-api's own types.
 */

/** `response_metadata`, which Slack (and @slack/web-api, for scopes) adds to answers. */
export interface SlackResponseMetadata {
  /** The cursor of the next page; '' or absent on the last page. */
  next_cursor?: string;
  /** The token's scopes, from the `x-oauth-scopes` header (@slack/web-api fills it in). */
  scopes?: string[];
  warnings?: string[];
}

/** What every successful answer has. */
export interface SlackResponseBase {
  ok: true;
  response_metadata?: SlackResponseMetadata;
}

export interface SlackUser {
  id: string;
  name?: string;
  real_name?: string;
  deleted?: boolean;
  is_bot?: boolean;
  tz?: string;
  profile?: { real_name?: string; display_name?: string; email?: string };
}

export interface SlackChannel {
  id: string;
  name?: string;
  is_private?: boolean;
  /** Older private channels ("groups") say this instead of is_private. */
  is_group?: boolean;
  is_archived?: boolean;
  is_member?: boolean;
}

/** A file's shares: channel id → the messages that share it there. */
export type SlackFileShares = Partial<Record<'public' | 'private', Record<string, { ts?: string }[]>>>;

export interface SlackFile {
  id: string;
  name?: string;
  title?: string;
  size?: number;
  permalink?: string;
  url_private?: string;
  shares?: SlackFileShares;
}

/** Message metadata (https://api.slack.com/metadata): fn_slack tags its posts with it. */
export interface SlackMessageMetadata {
  event_type?: string;
  event_payload?: Record<string, unknown>;
}

/** A message as conversations.history and conversations.replies give it. */
export interface SlackMessage {
  ts: string;
  type?: string;
  subtype?: string;
  /** The author; absent for bot and app messages. */
  user?: string;
  bot_id?: string;
  username?: string;
  bot_profile?: { name?: string };
  text?: string;
  thread_ts?: string;
  reply_count?: number;
  files?: SlackFile[];
  /** Legacy attachments (fn_slack once posted its content as one). */
  attachments?: { pretext?: string; text?: string }[];
  metadata?: SlackMessageMetadata;
  /** Block Kit blocks, as posted (read back to redraw a triage card). */
  blocks?: Record<string, unknown>[];
}

export interface SlackBookmark {
  id: string;
  title?: string;
  link?: string;
}

/** conversations.invite reports people it could not invite when called with force. */
export interface SlackInviteFailure {
  user?: string;
  error?: string;
}

/** A page of messages (conversations.history, conversations.replies). */
export interface SlackMessagePage {
  messages?: SlackMessage[];
  has_more?: boolean;
}

/** A modal as views.open and views.update answer it (triage's close form). */
export interface SlackView {
  id: string;
  hash?: string;
  callback_id?: string;
}

/** The result of each method fn_slack calls, by method name. */
export interface SlackMethodResults {
  /** `url`: the workspace's address (`https://acme.slack.com/`), the base of its permalinks. */
  'auth.test': { user_id: string; user: string; team: string; team_id?: string; url?: string };
  'users.info': { user: SlackUser };
  'users.lookupByEmail': { user: SlackUser };
  'conversations.info': { channel: SlackChannel };
  'conversations.list': { channels?: SlackChannel[] };
  'conversations.create': { channel: SlackChannel };
  'conversations.join': { channel?: SlackChannel };
  'conversations.invite': { channel?: SlackChannel; errors?: SlackInviteFailure[] };
  'conversations.kick': Record<never, never>;
  'conversations.members': { members?: string[] };
  'conversations.history': SlackMessagePage;
  'conversations.replies': SlackMessagePage;
  'conversations.open': { channel: { id: string } };
  'conversations.rename': { channel?: SlackChannel };
  'conversations.setTopic': Record<never, never>;
  'conversations.setPurpose': Record<never, never>;
  'conversations.archive': Record<never, never>;
  'chat.postMessage': { ts: string; channel: string };
  'chat.update': { ts: string; channel: string; text?: string };
  'chat.getPermalink': { permalink: string };
  'files.info': { file: SlackFile };
  'files.getUploadURLExternal': { upload_url: string; file_id: string };
  'files.completeUploadExternal': { files?: SlackFile[] };
  'pins.add': Record<never, never>;
  'reactions.add': Record<never, never>;
  'bookmarks.list': { bookmarks?: SlackBookmark[] };
  'bookmarks.add': { bookmark: SlackBookmark };
  'chat.postEphemeral': { message_ts?: string };
  'views.open': { view: SlackView };
  'views.update': { view: SlackView };
}

export type SlackMethod = keyof SlackMethodResults;

/** Methods paged with `cursor` / `response_metadata.next_cursor` that fn_slack pages through. */
export type SlackPagedMethod = 'conversations.list' | 'conversations.members' | 'conversations.history' | 'conversations.replies';

/** Slack's answer to `M`: its result type when listed above, else fields still to be checked. */
export type SlackResponse<M extends string> = SlackResponseBase &
  (M extends SlackMethod ? SlackMethodResults[M] : { [field: string]: unknown });
