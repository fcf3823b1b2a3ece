/**
 * Why a request never reached Slack, in words a person can act on (DNS, refused, TLS,
 * timeout). Kept apart from slack-errors.ts, which translates Slack's own error codes.
 */

/** TLS failures as Node and OpenSSL name them: certificates, handshakes, protocol versions. */
const TLS_CODE = /CERT|SSL|TLS|EPROTO|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/;

/**
 * Why a request never got an answer from Slack, for a person: the DNS lookup, the
 * connection, the TLS handshake or the wait for an answer, with the system's own code
 * (`ENOTFOUND`, `ECONNREFUSED`…) so that it can be searched for. Undefined when `err`
 * carries no network cause (an HTTP status, a Slack error).
 */
export function describeNetworkFailure(err: unknown, timeoutMs?: number): string | undefined {
  for (const cur of causeChain(err, 6)) {
    const code = systemCode(cur);
    if (cur.name === 'TimeoutError' || code === 'ETIMEDOUT' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT') {
      const within = timeoutMs ? ` within ${Math.round(timeoutMs / 100) / 10}s` : '';
      return `timeout: no answer${within}${code ? ` (${code})` : ''}; raise [fn_slack] timeout if Slack is only slow`;
    }
    if (code === 'ENOTFOUND') return `DNS: host name ${field(cur, 'hostname') ?? '?'} not found (ENOTFOUND); check [fn_slack] api_url and the DNS`;
    if (code === 'EAI_AGAIN') return `DNS: lookup of ${field(cur, 'hostname') ?? 'the host name'} failed for now (EAI_AGAIN)`;
    if (code === 'ECONNREFUSED') return `connection refused by ${field(cur, 'address') ?? '?'}:${field(cur, 'port') ?? '?'} (ECONNREFUSED)`;
    if (code === 'ECONNRESET') return 'connection reset by the other end (ECONNRESET)';
    if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return `no route to ${field(cur, 'address') ?? 'the host'} (${code})`;
    if (code && TLS_CODE.test(code)) {
      const detail = String(cur.message ?? '').split('\n')[0]!.replace(/^[0-9A-F]+:error:[0-9A-F]+:/, '');
      return `TLS: ${detail} (${code})`;
    }
    if (cur.message === 'bad port') return 'the port in [fn_slack] api_url is one that HTTP clients refuse to use (bad port)';
    if (code) return `${String(cur.message ?? code).split('\n')[0]} (${code})`;
  }
  return undefined;
}

/** The system's network error code (`ECONNREFUSED`…) in a fetch failure's causes, if any. */
export function networkErrorCode(err: unknown): string | undefined {
  for (const cur of causeChain(err, 5)) {
    const code = systemCode(cur);
    if (code) return code;
  }
  return undefined;
}

/** An error's fields as they may be set, whatever threw it. */
interface ErrorFields {
  name?: unknown;
  message?: unknown;
  code?: unknown;
  original?: unknown;
  cause?: unknown;
  [field: string]: unknown;
}

/**
 * `err`, then what it wraps, outermost first: @slack/web-api keeps the fetch failure in
 * `original`, fetch keeps the socket's error in `cause`.
 */
function* causeChain(err: unknown, depth: number): Generator<ErrorFields> {
  let cur: unknown = err;
  for (let i = 0; i < depth && cur !== null && typeof cur === 'object'; i++) {
    const fields = cur as ErrorFields;
    yield fields;
    cur = fields.original ?? fields.cause;
  }
}

/** A code set by the system or the HTTP client; the worker's own `slack_…` codes are not. */
function systemCode(e: ErrorFields): string | undefined {
  return typeof e.code === 'string' && !e.code.startsWith('slack_') ? e.code : undefined;
}

function field(e: ErrorFields, name: string): string | undefined {
  const v = e[name];
  return typeof v === 'string' || typeof v === 'number' ? String(v) : undefined;
}
