/**
 * Keeps secrets out of logs, replies and error messages.
 *
 * Two nets: the exact secret values the config holds (registered at load, so a token
 * is caught whatever its shape), and patterns for secrets that arrive from elsewhere
 * (Slack tokens, credentials in URLs, bearer headers).
 */

const MASK = '***';

/** Slack tokens (bot, user, app, config, refresh) and similar prefixed secrets. */
const SLACK_TOKEN = /\bxox[abprse]-[A-Za-z0-9-]+/g;
const SLACK_APP_TOKEN = /\bxapp-[A-Za-z0-9-]+/g;
/** `scheme://user:password@host` → keep the user, hide the password. */
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*):([^\s@/]+)@/gi;
const BEARER = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi;

/** Values shorter than this are not registered: masking "1" everywhere would ruin logs. */
const MIN_SECRET_LENGTH = 4;

const secrets = new Set<string>();

/** Remembers a secret value so that {@link redact} masks it wherever it appears. */
export function registerSecret(value: string | undefined | null): void {
  if (typeof value === 'string' && value.length >= MIN_SECRET_LENGTH) secrets.add(value);
}

/**
 * Registers the password of a `scheme://user:password@host` value (the broker or store
 * URL), raw and percent-decoded: the URL pattern below only catches it inside a URL,
 * while a broker error or a caller's message may carry it on its own.
 */
export function registerUrlPassword(value: string): void {
  for (const m of value.matchAll(URL_CREDENTIALS)) {
    const password = m[2]!;
    registerSecret(password);
    try {
      registerSecret(decodeURIComponent(password));
    } catch {
      // not valid percent-encoding: the raw form is registered
    }
  }
}

/** Forgets all registered secrets (tests). */
export function clearSecrets(): void {
  secrets.clear();
}

/** Whether a config key holds a secret, judged by its name. */
export function isSecretKey(key: string): boolean {
  return /(token|secret|password|passwd|api_?key|private_?key|credential)/i.test(key);
}

/**
 * Matches wherever one of the patterns above could match (each needs one of these
 * substrings). Most log lines and replies hold none, and one scan for them is much
 * cheaper than running the four replacements.
 */
const MAYBE_PATTERN = /xox[abprse]-|xapp-|:\/\/|\b(?:bearer|basic)\s/i;

/** Returns `text` with every known secret and secret-shaped substring masked. */
export function redact(text: string): string {
  let out = text;
  for (const secret of secrets) {
    if (out.includes(secret)) out = out.split(secret).join(MASK);
  }
  if (!MAYBE_PATTERN.test(out)) return out;
  return out
    .replace(SLACK_TOKEN, (m) => `${m.slice(0, 5)}${MASK}`)
    .replace(SLACK_APP_TOKEN, `xapp-${MASK}`)
    .replace(URL_CREDENTIALS, `$1:${MASK}@`)
    .replace(BEARER, `$1 ${MASK}`);
}

/** Deep-copies a JSON-like value with every string redacted. */
export function redactValue<T>(value: T): T {
  if (typeof value === 'string') return redact(value) as unknown as T;
  if (Array.isArray(value)) return value.map((v) => redactValue(v)) as unknown as T;
  if (value && typeof value === 'object' && !(value instanceof Date) && !Buffer.isBuffer(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      out[k] = isSecretKey(k) && typeof v === 'string' ? MASK : redactValue(v);
    }
    return out as T;
  }
  return value;
}
