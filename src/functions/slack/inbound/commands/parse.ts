/**
 * What a person asked for, from a mention's text (`<@U0BOT> incident 2103`) or a slash
 * command's (`incident 2103`): the incident look-up, with or without an id, or help.
 * Ids are checked here, so that a bad one gets an answer saying what an id looks like.
 */

export type Command =
  | { kind: 'incident'; incidentId: number }
  /** `incident` alone: the incident of the channel it was said in. */
  | { kind: 'channel_incident' }
  | { kind: 'help' }
  /** `incident <something that is not an id>`. */
  | { kind: 'bad_id'; given: string }
  /** Anything else: answered with the help. */
  | { kind: 'unknown' };

/** Mentions of users (the bot among them) anywhere in the text: `<@U123>` or `<@U123|name>`. */
const MENTION = /<@[UW][A-Z0-9]+(?:\|[^>]*)?>/g;
const ID = /^#?([1-9][0-9]{0,15})$/;

export function parseCommand(text: unknown): Command {
  const words = (typeof text === 'string' ? text : '').replace(MENTION, ' ').trim().split(/\s+/).filter(Boolean);
  const verb = (words[0] ?? '').toLowerCase();
  if (verb === 'help' && words.length === 1) return { kind: 'help' };
  if (verb !== 'incident' || words.length > 2) return { kind: 'unknown' };
  if (words.length === 1) return { kind: 'channel_incident' };
  const m = ID.exec(words[1]!);
  const id = m ? Number(m[1]) : NaN;
  if (!Number.isSafeInteger(id)) return { kind: 'bad_id', given: words[1]!.slice(0, 40) };
  return { kind: 'incident', incidentId: id };
}
