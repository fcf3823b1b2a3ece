/**
 * The worker's one users.info cache (src/functions/slack/people.ts), through the real
 * SlackClient against the emulator: each reader's maximum age (mirroring an hour, triage
 * ten minutes), one lookup serving both, a user Slack does not know, and bots.
 */
import { expect } from 'chai';
import { silentLogger } from '../../../../src/core/logging.js';
import { validateSection } from '../../../../src/core/config.js';
import { SLACK_CONFIG_SCHEMA, type SlackConfig } from '../../../../src/functions/slack/config.js';
import { createSlackState, type SlackState } from '../../../../src/functions/slack/state.js';
import { matchActor } from '../../../../src/functions/slack/triage/people.js';
import { LocalPlatform } from '../../../../src/platforms/local/local-platform.js';
import { tempDir } from '../../../support/harness.js';
import { UNUSED_CONVERSATIONS as NO_TABLE } from '../../../support/conversation-conformance.js';
import { useSlackEmulator } from '../../../support/slack-hooks.js';

const MINUTE = 60_000;

describe('fn_slack people cache (users.info)', () => {
  const slack = useSlackEmulator();
  let clock: number;
  let state: SlackState;

  beforeEach(() => {
    clock = Date.parse('2026-12-07T12:00:00Z');
    const config = validateSection<SlackConfig>(
      { file: 'app.config', sections: { fn_slack: { api_token: slack.emu.botToken, api_url: slack.emu.apiUrl, rate_limits: 'off' } } },
      'fn_slack',
      SLACK_CONFIG_SCHEMA,
    );
    state = createSlackState(config, silentLogger(), NO_TABLE, undefined, { now: () => clock });
  });

  // The local platform knows everyone with a valid email: a failed match is Slack's side.
  const platform = new LocalPlatform(tempDir('people-'));

  it('one lookup serves both readers; each takes an answer no older than it accepts', async () => {
    const alice = slack.emu.addUser({ name: 'alice', real_name: 'Alice Analyst', email: 'alice@example.com' });
    expect(await state.people.get(alice.id, 60 * MINUTE)).to.deep.equal({ id: alice.id, name: 'Alice Analyst', email: 'alice@example.com', isBot: false });
    const match = await matchActor(state, platform, alice.id, {});
    expect(match).to.include({ ok: true });
    expect(slack.emu.calls('users.info')).to.equal(1);

    // Eleven minutes on: triage (10 minutes) asks Slack again, mirroring (an hour) does not.
    clock += 11 * MINUTE;
    await state.people.get(alice.id, 60 * MINUTE);
    expect(slack.emu.calls('users.info')).to.equal(1);
    await matchActor(state, platform, alice.id, {});
    expect(slack.emu.calls('users.info')).to.equal(2);
    // Triage's fresh lookup restarts the hour for mirroring too.
    clock += 55 * MINUTE;
    await state.people.get(alice.id, 60 * MINUTE);
    expect(slack.emu.calls('users.info')).to.equal(2);
    clock += 6 * MINUTE;
    await state.people.get(alice.id, 60 * MINUTE);
    expect(slack.emu.calls('users.info')).to.equal(3);
  });

  it('a user Slack does not know is named by the id, without email (so triage says why it cannot match); a bot is a bot', async () => {
    const gone = await state.people.get('U0GONE0000', 60 * MINUTE);
    expect(gone).to.deep.equal({ id: 'U0GONE0000', name: 'U0GONE0000', email: null, isBot: false });
    const unmatched = await matchActor(state, platform, 'U0GONE0000', {});
    expect(unmatched).to.include({ ok: false });
    expect((unmatched as { reason: string }).reason).to.match(/^Slack shows no email for you/);
    const bot = slack.emu.addUser({ name: 'helper', is_bot: true });
    expect(await matchActor(state, platform, bot.id, {})).to.include({ ok: false, reason: 'bots cannot triage incidents' });
  });
});
