/**
 * Answering through an interaction's `response_url` (a POST of the message as JSON).
 * The URL is a credential for that one answer: it is never logged or put in an error.
 */

/** Posts `body`; undefined when Slack took it, else what went wrong (without the URL). */
export async function postToResponseUrl(url: string, body: Record<string, unknown>, timeoutMs: number): Promise<string | undefined> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'not a URL';
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return `a ${parsed.protocol} URL`;
  try {
    const res = await fetch(parsed, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const answer = (await res.json().catch(() => ({}))) as { ok?: boolean; error?: string };
    if (res.ok && answer.ok !== false) return undefined;
    return `HTTP ${res.status}${answer.error ? ` ${answer.error}` : ''}`;
  } catch (err) {
    return (err as Error).name === 'TimeoutError' ? `no answer within ${Math.round(timeoutMs / 1000)}s` : (err as Error).message;
  }
}
