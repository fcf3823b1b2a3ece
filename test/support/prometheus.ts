/**
 * Reading the Prometheus text format in tests: fetch `/metrics`, pick one sample.
 */
import net, { type AddressInfo } from 'node:net';

/** One sample line: `name{label="value",...} number`. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the sample lines of a Prometheus text exposition (comments skipped). */
export function parseSamples(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

/**
 * The value of the sample named `name` whose labels include `labels`; 0 when there is
 * none (a labelled counter has no line until its first increment). Throws when several
 * samples match, so a test cannot pass by reading the wrong series.
 */
export function sampleValue(text: string, name: string, labels: Record<string, string> = {}): number {
  const matching = parseSamples(text).filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (matching.length > 1) throw new Error(`${matching.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return matching[0]?.value ?? 0;
}

/** GETs a URL and returns status, content type and body text. */
export async function httpGet(url: string, method = 'GET'): Promise<{ status: number; contentType: string; body: string }> {
  const res = await fetch(url, { method });
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', body: await res.text() };
}

/** A TCP port that was free a moment ago (the OS picks it; the tiny reuse race is acceptable in tests). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Scrapes `url` until `predicate(text)` holds (the runner counts an outcome just after
 * the broker confirms the reply, so a caller can see the reply a moment before the
 * counter moves). Returns the last scrape; throws with it after `timeoutMs`.
 */
export async function scrapeUntil(url: string, predicate: (text: string) => boolean, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { status, body } = await httpGet(url);
    if (status === 200 && predicate(body)) return body;
    if (Date.now() > deadline) throw new Error(`metrics at ${url} did not reach the expected state:\n${body}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
