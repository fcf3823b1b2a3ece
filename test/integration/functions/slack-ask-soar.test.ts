/**
 * slack_ask on the SOAR platform: the answer (and an expiry) is also added as a note on the
 * incident — who, what, when — once, however often the ask is finished.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { SoarClient } from '../../../src/platforms/soar/soar-client.js';
import { SoarPlatform } from '../../../src/platforms/soar/soar-platform.js';
import type { Store } from '../../../src/core/store/store.js';
import { askIdOf } from '../../../src/functions/slack/ask/ask-function.js';
import { finishAsk } from '../../../src/functions/slack/ask/ask-finish.js';
import { SlackEmulator, type EmulatedUser } from '../../support/slack-emulator.js';
import { SoarEmulator } from '../../support/soar-emulator.js';
import { tempDir } from '../../support/harness.js';
import { AskNode, openAskStore, ReplyCollector } from '../../support/ask-fixture.js';

describe('slack_ask on the SOAR platform: the answer becomes a note', function () {
  this.timeout(30_000);
  let emu: SlackEmulator;
  let soar: SoarEmulator;
  let client: SoarClient;
  let alice: EmulatedUser;
  let replies: ReplyCollector;
  let store: Store;
  let node: AskNode;

  beforeEach(async () => {
    emu = await SlackEmulator.start();
    alice = emu.addUser({ name: 'alice', real_name: 'Alice Analyst', email: 'alice@example.com' });
    emu.seedChannel({ name: 'inc-8001', members: [emu.botUserId, alice.id] });
    soar = await SoarEmulator.start();
    soar.addIncident(8001);
    client = new SoarClient({
      baseUrl: soar.baseUrl,
      orgId: soar.orgId,
      apiKeyId: soar.apiKeyId,
      apiKeySecret: soar.apiKeySecret,
      retryBaseMs: 5,
      retryMaxMs: 10,
    });
    replies = await ReplyCollector.open();
    const dir = tempDir('slack-ask-soar-');
    fs.mkdirSync(path.join(dir, 'files'));
    store = await openAskStore('sqlite', path.join(dir, 'worker.db'));
    node = await AskNode.start({ store, platform: new SoarPlatform(client), apiUrl: emu.apiUrl, token: emu.botToken });
  });

  afterEach(async () => {
    await node.close();
    await store.close();
    await replies.close();
    client.close();
    await soar.close();
    await emu.close();
  });

  it('an answer adds one note saying who answered what and when; finishing again adds none', async () => {
    const run = node.invoke(replies, {
      incident_id: 8001,
      slack_channel: 'inc-8001',
      slack_question: 'Block sender evil@example.net?',
      slack_answers: 'Block,Ignore',
    });
    expect(await run.done).to.equal('ack');
    const ts = emu.messages(emu.channelByName('inc-8001')!.id)[0]!.ts;
    await node.click(emu.click(alice.id, emu.channelByName('inc-8001')!.id, ts, `ask:${askIdOf(run.id)}:0`));
    await replies.waitForFinal(run.id);
    expect(soar.comments).to.have.length(1);
    const c = soar.comments[0]!;
    expect(c.incidentId).to.equal(8001);
    expect(c.text)
      .to.contain('Alice Analyst')
      .and.contain('Block sender evil@example.net?')
      .and.contain('Block, answered by alice@example.com (Alice Analyst) at ')
      .and.contain(`[note ask:${askIdOf(run.id)}]`);
    await finishAsk(node.state.asks!, (await node.state.asks!.table.get(askIdOf(run.id)))!);
    expect(soar.comments).to.have.length(1);
  });

  it('an expiry adds a note too', async () => {
    const run = node.invoke(replies, {
      incident_id: 8001,
      slack_channel: 'inc-8001',
      slack_question: 'Escalate?',
      slack_answers: 'Yes,No',
      slack_ask_timeout: 1,
      slack_default_answer: 'No',
    });
    await run.done;
    await replies.waitForFinal(run.id);
    expect(soar.comments).to.have.length(1);
    expect(soar.comments[0]!.text).to.contain('Expired at').and.contain('the default answer No was given');
  });
});
