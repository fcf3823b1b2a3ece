/**
 * The `[soar]` config section: how the `soar` platform reaches the IBM SOAR REST API.
 *
 * Read only when `[worker] platform = soar` (a local install never needs it). The key
 * names follow resilient-circuits' `[resilient]` section where one exists there
 * (`org_id`, `api_key_id`, `api_key_secret`, `cafile`, `proxy`...), so a SOAR engineer
 * recognises them.
 */
import { ConfigError } from '../../core/runtime/errors.js';
import { expandHome, validateSection, type LoadedConfig } from '../../core/config.js';
import type { JsonSchema } from '../../core/runtime/plugin.js';
import { registerSecret } from '../../core/redact.js';
import type { PlatformConfigSection } from '../../core/commands/config-writer.js';

export interface SoarSection {
  base_url: string;
  org_id: number;
  api_key_id: string;
  api_key_secret: string;
  cafile: string;
  timeout: number;
  retries: number;
  retry_max_delay: number;
  proxy: string;
  data_table: boolean;
}

/** The section's schema; its descriptions are the comments `worker config -c` writes. */
export const SOAR_SECTION_SCHEMA: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['base_url', 'org_id', 'api_key_id', 'api_key_secret'],
  properties: {
    base_url: {
      type: 'string',
      pattern: '^https?://[^/?#\\s]+/?$',
      description: 'SOAR address, e.g. https://soar.example.com (or https://soar.example.com:8443)',
    },
    org_id: { type: 'integer', minimum: 1, description: 'numeric id of the SOAR organization' },
    api_key_id: {
      type: 'string',
      minLength: 1,
      'x-env': 'SOAR_API_KEY_ID',
      description: 'id of the SOAR API key (Administrator Settings > Users > API Keys)',
    },
    api_key_secret: {
      type: 'string',
      minLength: 1,
      'x-env': 'SOAR_API_KEY_SECRET',
      description: "the API key's secret; keep it in the environment ($SOAR_API_KEY_SECRET)",
    },
    cafile: {
      type: 'string',
      default: '',
      description: 'PEM file of the CA that signed the SOAR certificate; empty: the system CAs; false: do not verify (tests only)',
    },
    timeout: {
      type: 'number',
      exclusiveMinimum: 0,
      default: 60,
      description: 'seconds SOAR may stay silent (connecting, or mid-transfer) before the request fails',
    },
    retries: {
      type: 'integer',
      minimum: 0,
      maximum: 10,
      default: 3,
      description: 'retries of a read (or a request that never connected) after a 5xx or a connection error',
    },
    retry_max_delay: {
      type: 'number',
      minimum: 0,
      default: 10,
      description: 'cap, in seconds, of the exponential backoff between retries',
    },
    proxy: {
      type: 'string',
      default: '',
      // http:// only: the worker speaks plain HTTP to the proxy (a CONNECT tunnel carries the TLS).
      pattern: '^(http://.+)?$',
      description: 'HTTP proxy, e.g. http://user:password@proxy.example.com:3128 (CONNECT tunnel for https)',
    },
    data_table: {
      type: 'boolean',
      default: false,
      description: "also copy the incident/channel mapping to SOAR's slack_conversations_db data table, visible on the incident",
    },
  },
};

/**
 * `[soar]` for `worker config -c / -u`, handed to the config writer through
 * src/platforms/index.ts. `configSectionsFor` writes it active only when
 * `platform = soar` (the required secrets are active `$SOAR_API_KEY_ID` /
 * `$SOAR_API_KEY_SECRET` references, which a local install must not need set), and
 * commented out otherwise, as app.config.example carries it.
 */
export const SOAR_CONFIG_SECTION: PlatformConfigSection = {
  platform: 'soar',
  displayName: 'SOAR',
  name: 'soar',
  schema: SOAR_SECTION_SCHEMA,
  comment: 'The SOAR platform ([worker] platform = soar): attachments in, archive exports out, over the SOAR REST API.',
};

/**
 * Validates `[soar]` (a missing section reports each required key) and registers the
 * secret and any proxy password for redaction, whatever their key names.
 */
export function readSoarSection(config: LoadedConfig): SoarSection {
  if (!config.sections.soar) {
    throw new ConfigError(
      `${config.file}: [worker] platform = soar needs a [soar] section with base_url, org_id, api_key_id and api_key_secret`,
    );
  }
  const section = validateSection<SoarSection>(config, 'soar', SOAR_SECTION_SCHEMA);
  registerSecret(section.api_key_secret);
  if (section.proxy) {
    try {
      const proxy = new URL(section.proxy);
      if (proxy.password) registerSecret(decodeURIComponent(proxy.password));
    } catch {
      throw new ConfigError(`${config.file}: [soar] proxy: not a URL; write it as http://host:port`);
    }
  }
  const cafile = section.cafile.trim();
  if (cafile !== '' && cafile.toLowerCase() !== 'false') section.cafile = expandHome(cafile);
  section.base_url = section.base_url.replace(/\/+$/, '');
  return section;
}

/** Whether `cafile` turns certificate checks off (`false`, as in resilient-circuits). */
export function verifyDisabled(section: Pick<SoarSection, 'cafile'>): boolean {
  return section.cafile.trim().toLowerCase() === 'false';
}
