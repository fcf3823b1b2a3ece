import { expect } from 'chai';
import { DURATION_BUCKETS, NO_PLUGIN_METRICS, WorkerMetrics } from '../../../src/core/metrics.js';
import { parseSamples, sampleValue } from '../../support/prometheus.js';

describe('WorkerMetrics', () => {
  it('counts outcomes by function and outcome, and observes durations in seconds', async () => {
    const m = new WorkerMetrics({ processMetrics: false });
    m.observeOutcome({ functionName: 'slack_post_message', outcome: 'succeeded', durationMs: 300 });
    m.observeOutcome({ functionName: 'slack_post_message', outcome: 'succeeded', durationMs: 700 });
    m.observeOutcome({ functionName: 'slack_post_message', outcome: 'failed', code: 'slack_channel_archived', durationMs: 40 });
    m.observeOutcome({ functionName: '(unparsed)', outcome: 'rejected', code: 'invalid_message', durationMs: 1 });
    const text = await m.render();
    expect(sampleValue(text, 'worker_invocations_total', { function: 'slack_post_message', outcome: 'succeeded' })).to.equal(2);
    expect(sampleValue(text, 'worker_invocations_total', { function: 'slack_post_message', outcome: 'failed' })).to.equal(1);
    expect(sampleValue(text, 'worker_invocations_total', { function: '(unparsed)', outcome: 'rejected' })).to.equal(1);
    expect(sampleValue(text, 'worker_invocation_duration_seconds_count', { function: 'slack_post_message' })).to.equal(3);
    expect(sampleValue(text, 'worker_invocation_duration_seconds_sum', { function: 'slack_post_message' })).to.be.closeTo(1.04, 1e-9);
    // 0.04 s and 0.3 s fall at or below 0.5; 0.7 s does not.
    expect(sampleValue(text, 'worker_invocation_duration_seconds_bucket', { function: 'slack_post_message', le: '0.5' })).to.equal(2);
    expect(sampleValue(text, 'worker_invocation_duration_seconds_bucket', { function: 'slack_post_message', le: '1' })).to.equal(3);
    // The error code is not a label: it would multiply the series for little gain.
    expect(text).not.to.contain('slack_channel_archived');
  });

  it('counts a ledger replay both as an outcome and in worker_ledger_replays_total', async () => {
    const m = new WorkerMetrics({ processMetrics: false });
    m.observeOutcome({ functionName: 'test_echo', outcome: 'succeeded', durationMs: 5 });
    expect(sampleValue(await m.render(), 'worker_ledger_replays_total')).to.equal(0);
    m.observeOutcome({ functionName: 'test_echo', outcome: 'replayed', durationMs: 2 });
    m.observeOutcome({ functionName: 'test_echo', outcome: 'replayed', durationMs: 2 });
    const text = await m.render();
    expect(sampleValue(text, 'worker_ledger_replays_total')).to.equal(2);
    expect(sampleValue(text, 'worker_invocations_total', { function: 'test_echo', outcome: 'replayed' })).to.equal(2);
  });

  it('tracks invocations in flight; a done callback called twice counts once', async () => {
    const m = new WorkerMetrics({ processMetrics: false });
    const a = m.invocationStarted();
    const b = m.invocationStarted();
    expect(sampleValue(await m.render(), 'worker_invocations_in_flight')).to.equal(2);
    a();
    a();
    expect(sampleValue(await m.render(), 'worker_invocations_in_flight')).to.equal(1);
    b();
    expect(sampleValue(await m.render(), 'worker_invocations_in_flight')).to.equal(0);
  });

  it('reports broker connection state and reconnects', async () => {
    const m = new WorkerMetrics({ processMetrics: false });
    expect(sampleValue(await m.render(), 'worker_broker_connected')).to.equal(0);
    m.setBrokerConnected(true);
    m.brokerReconnected();
    m.brokerReconnected();
    let text = await m.render();
    expect(sampleValue(text, 'worker_broker_connected')).to.equal(1);
    expect(sampleValue(text, 'worker_broker_reconnects_total')).to.equal(2);
    m.setBrokerConnected(false);
    text = await m.render();
    expect(sampleValue(text, 'worker_broker_connected')).to.equal(0);
  });

  it('labels rate-limit waits with the plugin package bound by the worker and the method', async () => {
    const m = new WorkerMetrics({ processMetrics: false });
    const slack = m.forPlugin('fn_slack');
    slack.rateLimitWait('chat.postMessage', 3);
    slack.rateLimitWait('chat.postMessage', 1);
    slack.rateLimitWait('conversations.history', 30);
    m.forPlugin('fn_other').rateLimitWait('chat.postMessage', 2);
    const text = await m.render();
    const labels = { package: 'fn_slack', method: 'chat.postMessage' };
    expect(sampleValue(text, 'worker_upstream_rate_limit_waits_total', labels)).to.equal(2);
    expect(sampleValue(text, 'worker_upstream_rate_limit_wait_seconds_total', labels)).to.equal(4);
    expect(sampleValue(text, 'worker_upstream_rate_limit_wait_seconds_total', { package: 'fn_slack', method: 'conversations.history' })).to.equal(30);
    expect(sampleValue(text, 'worker_upstream_rate_limit_waits_total', { package: 'fn_other', method: 'chat.postMessage' })).to.equal(1);
  });

  it('ignores a nonsensical wait length but still counts the wait', async () => {
    const m = new WorkerMetrics({ processMetrics: false });
    const p = m.forPlugin('fn_slack');
    p.rateLimitWait('chat.postMessage', Number.NaN);
    p.rateLimitWait('chat.postMessage', -5);
    const text = await m.render();
    expect(sampleValue(text, 'worker_upstream_rate_limit_waits_total', { method: 'chat.postMessage' })).to.equal(2);
    expect(sampleValue(text, 'worker_upstream_rate_limit_wait_seconds_total', { method: 'chat.postMessage' })).to.equal(0);
  });

  it('gives every worker_ metric a help text and keeps them off the global registry', async () => {
    const m = new WorkerMetrics({ processMetrics: false });
    const text = await m.render();
    const names = [
      'worker_invocations_total',
      'worker_invocation_duration_seconds',
      'worker_invocations_in_flight',
      'worker_upstream_rate_limit_waits_total',
      'worker_upstream_rate_limit_wait_seconds_total',
      'worker_broker_reconnects_total',
      'worker_ledger_replays_total',
      'worker_broker_connected',
    ];
    for (const name of names) expect(text, name).to.match(new RegExp(`^# HELP ${name} \\S.+$`, 'm'));
    const { register } = await import('prom-client');
    expect(await register.getSingleMetric('worker_invocations_total')).to.equal(undefined);
    // Two instances do not collide (a global registry would throw "already registered").
    expect(() => new WorkerMetrics({ processMetrics: false })).not.to.throw();
  });

  it('adds the default process metrics under their standard names, and uses the text format content type', async () => {
    const m = new WorkerMetrics();
    // prom-client counts the CPU used since the collector was registered, so spend some first:
    // on a loaded machine the few microseconds between construction and render can round to 0.
    const start = process.cpuUsage().user;
    while (process.cpuUsage().user - start < 20_000) Math.sqrt(Math.random());
    const text = await m.render();
    expect(sampleValue(text, 'process_cpu_user_seconds_total')).to.be.greaterThan(0);
    expect(parseSamples(text).some((s) => s.name === 'nodejs_heap_size_used_bytes')).to.equal(true);
    expect(m.contentType).to.match(/^text\/plain; version=0\.0\.4/);
  });

  it('has increasing duration buckets and a no-op plugin hook', () => {
    expect([...DURATION_BUCKETS].sort((a, b) => a - b)).to.deep.equal(DURATION_BUCKETS);
    expect(() => NO_PLUGIN_METRICS.rateLimitWait('chat.postMessage', 1)).not.to.throw();
  });

  it('lets a plugin define counters, gauges and histograms under worker_plugin_, bound to its package', async () => {
    const m = new WorkerMetrics({ processMetrics: false });
    const p = m.forPlugin('fn_x');
    const c = p.counter('x_events_total', 'events', ['type']);
    c.inc({ type: 'a' });
    p.counter('x_events_total', 'events', ['type']).inc({ type: 'a' }, 2);
    p.gauge('x_connected', 'connected').set({}, 1);
    p.histogram('x_ack_seconds', 'ack', [0.01, 0.1], []).observe({}, 0.05);
    const text = await m.render();
    expect(sampleValue(text, 'worker_plugin_x_events_total', { package: 'fn_x', type: 'a' })).to.equal(3);
    expect(sampleValue(text, 'worker_plugin_x_connected', { package: 'fn_x' })).to.equal(1);
    expect(sampleValue(text, 'worker_plugin_x_ack_seconds_bucket', { package: 'fn_x', le: '0.1' })).to.equal(1);
    expect(() => p.gauge('x_events_total', 'again')).to.throw(/already a counter/);
    expect(() => p.counter('Bad-Name', 'x')).to.throw(/must match/);
    expect(() => p.counter('x_other_total', 'x', ['package'])).to.throw(/not allowed/);
    // Without metrics the same calls do nothing.
    NO_PLUGIN_METRICS.counter('x', 'x').inc();
    NO_PLUGIN_METRICS.histogram('x', 'x', [1]).observe({}, 1);
  });
});
