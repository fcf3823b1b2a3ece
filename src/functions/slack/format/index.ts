/**
 * Rendering of the `slack_text` input into Slack Block Kit messages.
 *
 * `slack_text` is either plain text or an fn_slack style JSON "container" of labelled, typed
 * fields built by a SOAR pre-process script. Every value in it is untrusted incident data, so
 * everything that reaches Slack is escaped (`&`, `<`, `>`): no value can produce a mention
 * (`<!channel>`, `<@U123>`, `<!subteam^…>`), a date token or a disguised link. The only Slack
 * link this module ever emits is the SOAR link it builds itself from the configured template.
 *
 * Output always respects Slack's Block Kit limits; content that does not fit in one message is
 * split (never truncated) and continues in further messages that the caller posts as thread
 * replies.
 *
 * One job per module: escape, entities, html (richtext → mrkdwn), container (parsing),
 * values (typed values), dates (shared with the export), split, message (assembly).
 */
export { SLACK_LIMITS, type RenderOptions, type RenderedMessage } from './limits.js';
export { escapeSlackText, BIDI_CONTROLS } from './escape.js';
export { htmlToMrkdwn } from './html.js';
export { isContainer } from './container.js';
export { formatEpochMillis, makeDateFormatter } from './dates.js';
export { renderSlackText } from './message.js';
