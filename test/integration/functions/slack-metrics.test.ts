/**
 * fn_slack reports Slack's rate-limit waits through the plugin metrics hook: a spawned
 * `worker run` with the metrics listener on, the Slack Web API emulator answering 429.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { SlackEmulator } from '../../support/slack-emulator.js';
import { writeConfig, type TestConfig } from '../../support/harness.js';
import { invoke, startWorkerRun, stopWorkerRun, type WorkerRun } from '../../support/invocations.js';
import { freePort, httpGet, sampleValue, scrapeUntil } from '../../support/prometheus.js';

describe('fn_slack rate-limit waits in /metrics (RabbitMQ + worker run + Slack emulator)', function () {
  this.timeout(90_000);
  let emu: SlackEmulator;
  let cfg: TestConfig;
  let run: WorkerRun;
  let metricsUrl: string;

  before(async () => {
    emu = await SlackEmulator.start();
    const port = await freePort();
    metricsUrl = `http://127.0.0.1:${port}/metrics`;
    cfg = writeConfig({
      worker: { metrics_port: port },
      sections: { fn_slack: { api_token: emu.botToken, api_url: emu.apiUrl } },
    });
    fs.mkdirSync(path.join(cfg.dir, 'files', 'incidents'), { recursive: true });
    run = await startWorkerRun(cfg);
  });

  after(async () => {
    await stopWorkerRun(run, cfg);
    await emu?.close();
  });

  it('counts each 429 wait by package and Slack method, with the seconds Slack asked for', async () => {
    const labels = { package: 'fn_slack', method: 'chat.postMessage' };
    const before = await httpGet(metricsUrl);
    expect(sampleValue(before.body, 'worker_upstream_rate_limit_waits_total', labels)).to.equal(0);

    // Slack answers the post twice with 429 Retry-After: 1, then lets it through.
    emu.failNext('chat.postMessage', { retryAfter: 1, times: 2 });
    const replies = await invoke(run, 'slack_post_message', {
      incident_id: 4242,
      slack_channel: 'inc-4242',
      slack_is_channel_private: false,
      slack_text: 'rate limited, then posted',
    });
    const final = replies.find((r) => r.complete === true)!;
    expect(final.message, JSON.stringify(final)).to.equal('Completed');
    expect(emu.rateLimitedCount).to.equal(2);

    const text = await scrapeUntil(metricsUrl, (t) =>
      sampleValue(t, 'worker_invocations_total', { function: 'slack_post_message', outcome: 'succeeded' }) === 1,
    );
    expect(sampleValue(text, 'worker_upstream_rate_limit_waits_total', labels)).to.equal(2);
    expect(sampleValue(text, 'worker_upstream_rate_limit_wait_seconds_total', labels)).to.equal(2);
    // Only the method that was rate-limited has a series.
    expect(text).not.to.match(/worker_upstream_rate_limit_waits_total\{[^}]*method="conversations\.create"/);
    // The token never reaches the metrics.
    expect(text).not.to.contain(emu.botToken);
  });
});
