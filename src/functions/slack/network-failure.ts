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
  let cur: any = err;
  for (let depth = 0; cur && depth < 6; depth++) {
    const code = typeof cur.code === 'string' && !cur.code.startsWith('slack_') ? (cur.code as string) : undefined;
    if (cur.name === 'TimeoutError' || code === 'ETIMEDOUT' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT') {
      const within = timeoutMs ? ` within ${Math.round(timeoutMs / 100) / 10}s` : '';
      return `timeout: no answer${within}${code ? ` (${code})` : ''}; raise [fn_slack] timeout if Slack is only slow`;
    }
    if (code === 'ENOTFOUND') return `DNS: host name ${cur.hostname ?? '?'} not found (ENOTFOUND); check [fn_slack] api_url and the DNS`;
    if (code === 'EAI_AGAIN') return `DNS: lookup of ${cur.hostname ?? 'the host name'} failed for now (EAI_AGAIN)`;
    if (code === 'ECONNREFUSED') return `connection refused by ${cur.address ?? '?'}:${cur.port ?? '?'} (ECONNREFUSED)`;
    if (code === 'ECONNRESET') return 'connection reset by the other end (ECONNRESET)';
    if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return `no route to ${cur.address ?? 'the host'} (${code})`;
    if (code && TLS_CODE.test(code)) {
      const detail = String(cur.message ?? '').split('\n')[0]!.replace(/^[0-9A-F]+:error:[0-9A-F]+:/, '');
      return `TLS: ${detail} (${code})`;
    }
    if (cur.message === 'bad port') return 'the port in [fn_slack] api_url is one that HTTP clients refuse to use (bad port)';
    if (code) return `${String(cur.message ?? code).split('\n')[0]} (${code})`;
    cur = cur.original ?? cur.cause;
  }
  return undefined;
}
