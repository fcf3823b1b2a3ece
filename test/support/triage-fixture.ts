/**
 * A triage scene for unit tests: the Slack emulator with people and an incident channel,
 * fn_slack's state and a store (function-context.ts), and the incident on the local
 * platform or the SOAR emulator. Envelopes are handed to the triage and command handlers
 * through routeEnvelope, as the inbound path does once it has recorded them.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WebClient } from '@slack/web-api';
import { silentLogger } from '../../src/core/logging.js';
import type { InvocationSteps } from '../../src/core/runtime/plugin.js';
import { COMMAND_HANDLERS } from '../../src/functions/slack/inbound/commands/handlers.js';
import { envelopeKey, routeEnvelope, type EnvelopeKind, type InboundContext } from '../../src/functions/slack/inbound/router.js';
import { TRIAGE_HANDLERS } from '../../src/functions/slack/triage/actions.js';
import { SoarClient } from '../../src/platforms/soar/soar-client.js';
import { SoarPlatform } from '../../src/platforms/soar/soar-platform.js';
import type { Platform } from '../../src/platforms/platform.js';
import { expectOk, runFunction, slackFixture, type SlackFixture } from './function-context.js';
import { SlackEmulator, type EmulatedUser } from './slack-emulator.js';
import { SoarEmulator } from './soar-emulator.js';

export type PlatformKind = 'local' | 'soar';

export interface IncidentSeed {
  name: string;
  severity?: 'Low' | 'Medium' | 'High';
  status?: 'Active' | 'Closed';
  resolution?: string;
}

const SEVERITY_IDS = { Low: 4, Medium: 5, High: 6 } as const;
const RESOLUTION_IDS: Record<string, number> = { Unresolved: 7, Duplicate: 8, 'Not an Issue': 9, Resolved: 10 };

export class TriageScene {
  emu!: SlackEmulator;
  web!: WebClient;
  fx!: SlackFixture;
  soar?: SoarEmulator;
  soarClient?: SoarClient;
  platform!: Platform;
  alice!: EmulatedUser;
  bob!: EmulatedUser;
  /** In Slack, with an email no platform user has (SOAR) / without any email (local). */
  mallory!: EmulatedUser;
  channel!: string;
  private attempts = new Map<string, number>();
  private steps = new Map<string, Map<string, unknown>>();

  constructor(readonly kind: PlatformKind) {}

  async start(overrides: Record<string, string> = {}): Promise<this> {
    this.emu = await SlackEmulator.start();
    this.web = new WebClient(this.emu.botToken, { slackApiUrl: this.emu.apiUrl, retryConfig: { retries: 0 } });
    this.fx = await slackFixture(this.emu.apiUrl, this.emu.botToken, {
      soar_url: 'https://soar.example.com/#incidents/{incident_id}',
      ...overrides,
    });
    this.alice = this.emu.addUser({ name: 'alice', real_name: 'Alice Analyst', email: 'alice@example.com' });
    this.bob = this.emu.addUser({ name: 'bob', real_name: 'Bob Lead', email: 'bob@example.com' });
    this.mallory =
      this.kind === 'soar'
        ? this.emu.addUser({ name: 'mallory', real_name: 'Mallory Guest', email: 'mallory@guest.example' })
        : this.emu.addUser({ name: 'mallory', real_name: 'Mallory Guest' });
    if (this.kind === 'soar') {
      this.soar = await SoarEmulator.start();
      this.soar.addUser({ email: 'alice@example.com', fname: 'Alice', lname: 'Analyst' });
      this.soar.addUser({ email: 'bob@example.com', fname: 'Bob', lname: 'Lead' });
      this.soarClient = new SoarClient({
        baseUrl: this.soar.baseUrl,
        orgId: this.soar.orgId,
        apiKeyId: this.soar.apiKeyId,
        apiKeySecret: this.soar.apiKeySecret,
        retryBaseMs: 10,
        retryMaxMs: 20,
      });
      this.platform = new SoarPlatform(this.soarClient);
    } else {
      this.platform = this.fx.platform;
    }
    return this;
  }

  async stop(): Promise<void> {
    this.soarClient?.close();
    await this.soar?.close();
    await this.fx?.close();
    await this.emu?.close();
  }

  /** Creates the incident on the platform. */
  seed(id: number, inc: IncidentSeed): void {
    if (this.soar) {
      this.soar.addIncident(id, inc.name, {
        severity_code: inc.severity ? SEVERITY_IDS[inc.severity] : null,
        plan_status: inc.status === 'Closed' ? 'C' : 'A',
        resolution_id: inc.resolution ? RESOLUTION_IDS[inc.resolution]! : null,
        resolution_summary: inc.status === 'Closed' ? 'closed in SOAR' : null,
      });
      return;
    }
    const dir = join(this.fx.platformDir, 'incidents', String(id));
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'incident.json'),
      JSON.stringify({
        id,
        name: inc.name,
        severity: inc.severity ?? null,
        status: inc.status ?? 'Active',
        owner: null,
        resolution: inc.resolution ?? null,
        resolution_summary: inc.status === 'Closed' ? 'closed elsewhere' : null,
      }),
    );
  }

  /** Posts the incident's triage card with slack_post_message into #inc-<id> (with alice, bob and mallory); returns its ts. */
  async postCard(id: number): Promise<string> {
    const content = expectOk(
      await runFunction({ ...this.fx, platform: this.platform }, 'slack_post_message', {
        incident_id: id,
        slack_channel: `inc-${id}`,
        slack_is_channel_private: false,
        slack_participant_emails: 'alice@example.com,bob@example.com',
        slack_text: 'Phishing wave: please triage',
        slack_triage_buttons: true,
      }),
    );
    this.channel = String(content.channel_id);
    await this.web.conversations.invite({ channel: this.channel, users: this.mallory.id });
    return String(content.ts);
  }

  /** The stored card message. */
  card(ts: string): Record<string, any> {
    const msg = this.emu.message(this.channel, ts);
    if (!msg) throw new Error(`no message ${ts}`);
    return msg as unknown as Record<string, any>;
  }

  /** Hands a payload to the handlers, as the inbound path would after recording it. */
  async route(kind: EnvelopeKind, payload: Record<string, unknown>): Promise<number> {
    const key = envelopeKey({ kind, payload });
    if (!key) throw new Error('payload without a dedupe key');
    const attempt = (this.attempts.get(key) ?? 0) + 1;
    this.attempts.set(key, attempt);
    // Steps outlive a delivery, as the ledger keeps them for the envelope's next one.
    const recorded = this.steps.get(key) ?? new Map<string, unknown>();
    this.steps.set(key, recorded);
    const steps: InvocationSteps = {
      get: <T>(name: string) => recorded.get(name) as T | undefined,
      record: async (name, value) => void recorded.set(name, value),
    };
    const ctx: InboundContext = {
      state: this.fx.state,
      platform: this.platform,
      store: this.fx.store,
      log: silentLogger(),
      key,
      attempt,
      steps,
      signal: new AbortController().signal,
    };
    return routeEnvelope({ kind, payload, retryAttempt: 0 }, [TRIAGE_HANDLERS, COMMAND_HANDLERS], ctx);
  }

  /** A click in the card, delivered to the handlers. */
  async click(user: EmulatedUser, ts: string, actionId: string, selectedOption?: string): Promise<Record<string, unknown>> {
    const payload = this.emu.click(user.id, this.channel, ts, actionId, selectedOption ? { selectedOption } : {});
    await this.route('interactive', payload);
    return payload;
  }

  /** The texts of the incident's notes (local: the note files; SOAR: the comments, HTML as sent), oldest first. */
  notes(id: number): string[] {
    if (this.soar) return this.soar.comments.filter((c) => c.incidentId === id).map((c) => c.text);
    const dir = join(this.fx.platformDir, 'incidents', String(id), 'notes');
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .filter((n) => !n.startsWith('.'))
      .sort()
      .map((n) => (JSON.parse(readFileSync(join(dir, n), 'utf8')) as { text: string }).text);
  }

  /** Ephemeral texts shown to `user`. */
  told(user: EmulatedUser): string[] {
    return this.emu.ephemerals(user.id).map((m) => m.text);
  }
}
