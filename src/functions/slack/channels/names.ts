/**
 * Slack's channel-name rules, checked before any Slack call so that the analyst sees
 * which name was refused and why.
 */
import { FunctionError } from '../../../core/runtime/errors.js';

/** Slack's channel-name rules: lowercase letters, digits, hyphens, underscores; ≤ 80. */
export const CHANNEL_NAME = /^[a-z0-9_-]{1,80}$/;

/**
 * Validates a channel name input before any Slack call. A leading `#` is dropped;
 * nothing else is changed, so the analyst sees exactly which name was refused.
 */
export function normaliseChannelName(input: string): string {
  const name = input.trim().replace(/^#/, '');
  if (!CHANNEL_NAME.test(name)) {
    const why =
      name.length > 80
        ? `is ${name.length} characters long (at most 80)`
        : /[A-Z]/.test(name)
          ? 'has uppercase letters'
          : name.length === 0
            ? 'is empty'
            : 'has characters Slack does not allow';
    throw new FunctionError(
      `slack_channel "${input}" ${why}: Slack channel names use lowercase letters, digits, hyphens (-) and underscores (_), at most 80 characters`,
      'invalid_channel_name',
    );
  }
  return name;
}
