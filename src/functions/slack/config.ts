/**
 * The `[fn_slack]` config section.
 */
import type { JsonSchema } from '../../core/plugin.js';

export interface SlackConfig {
  api_token: string;
  api_url: string;
  username: string;
  soar_url: string;
  template_file: string;
  max_upload_mb: number;
  timeout: number;
  retry_budget: number;
  time_zone: string;
  channel_cache_size: number;
}

export const SLACK_CONFIG_SCHEMA: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['api_token'],
  properties: {
    api_token: {
      type: 'string',
      pattern: '^xox[bp]-',
      // Annotation read by `worker config -c/-u`: the variable a new config refers to.
      'x-env': 'SLACK_BOT_TOKEN',
      description: 'a bot token (xoxb-…); use $SLACK_BOT_TOKEN to keep it out of the file',
    },
    api_url: { type: 'string', pattern: '^https?://', default: 'https://slack.com/api/', description: 'Slack Web API base URL' },
    username: { type: 'string', default: '', description: 'name shown on posts when slack_username is not given (needs chat:write.customize)' },
    soar_url: {
      type: 'string',
      default: '',
      description: 'link back to the incident: a template with {incident_id} and {task_id}',
    },
    template_file: { type: 'string', default: '', description: 'Jinja2-compatible template overriding the export format' },
    max_upload_mb: { type: 'number', exclusiveMinimum: 0, maximum: 1024, default: 100, description: 'larger attachments are refused' },
    timeout: { type: 'number', minimum: 1, default: 30, description: 'seconds per Slack request' },
    retry_budget: {
      type: 'number',
      minimum: 0,
      default: 120,
      description: 'seconds one Slack call may wait on rate limits and outages before a retryable error',
    },
    time_zone: { type: 'string', default: 'UTC', description: 'time zone of dates in messages and exports' },
    channel_cache_size: { type: 'integer', minimum: 0, default: 10000, description: 'channel names remembered (name → id)' },
  },
};
