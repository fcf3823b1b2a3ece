/**
 * SoarPlatform.addNote against the SOAR emulator: an HTML-escaped comment on the incident
 * or task, found again by its key so that a retry adds nothing.
 */
import { expect } from 'chai';
import { SoarClient } from '../../../../src/platforms/soar/soar-client.js';
import { SoarPlatform } from '../../../../src/platforms/soar/soar-platform.js';
import type { NewNote } from '../../../../src/platforms/platform.js';
import { functionError, rejection } from '../../../support/platform-checks.js';
import { SoarEmulator } from '../../../support/soar-emulator.js';

function note(over: Partial<NewNote> = {}): NewNote {
  return {
    incidentId: 2103,
    text: 'Blocked <script>alert(1)</script> & "quoted"\nsecond line',
    author: { id: 'U1', name: 'Alice <Analyst>', email: 'alice@example.com' },
    created: new Date('2026-12-07T10:00:00.000Z'),
    source: 'slack',
    slack: {
      channel_id: 'C1',
      ts: '1796637600.000100',
      permalink: 'https://emulated.slack.com/archives/C1/p1796637600000100?thread_ts=1&cid=C1',
    },
    key: 'C1:1796637600.000100',
    ...over,
  };
}

describe('SoarPlatform notes', function () {
  let soar: SoarEmulator;
  let client: SoarClient;
  let platform: SoarPlatform;

  beforeEach(async () => {
    soar = await SoarEmulator.start();
    soar.addIncident(2103);
    soar.addIncident(2104);
    soar.addTask(12, 2103);
    client = new SoarClient({
      baseUrl: soar.baseUrl,
      orgId: soar.orgId,
      apiKeyId: soar.apiKeyId,
      apiKeySecret: soar.apiKeySecret,
      retryBaseMs: 5,
      retryMaxMs: 10,
    });
    platform = new SoarPlatform(client);
  });

  afterEach(async () => {
    client.close();
    await soar.close();
  });

  it('posts one HTML comment: author, escaped text with its line breaks, the permalink and the key', async function () {
    const added = await platform.addNote(note());
    expect(added.created).to.equal(true);
    expect(soar.comments).to.have.length(1);
    const c = soar.comments[0]!;
    expect(added.id).to.equal(String(c.id));
    expect(c).to.include({ incidentId: 2103, format: 'html', parentId: null });
    expect(c.taskId).to.equal(undefined);
    expect(c.text).to.equal(
      '<div><p><b>Alice &#60;Analyst&#62;</b> (alice@example.com) in Slack:</p>' +
        '<p>Blocked &#60;script&#62;alert(1)&#60;/script&#62; &#38; &#34;quoted&#34;<br>second line</p>' +
        '<p><a href="https://emulated.slack.com/archives/C1/p1796637600000100?thread_ts=1&#38;cid=C1">View in Slack</a> · [note C1:1796637600.000100]</p></div>',
    );
  });

  it('adds nothing for a key an earlier comment carries (listing first, no second POST)', async function () {
    const first = await platform.addNote(note());
    const again = await platform.addNote(note({ text: 'other', created: new Date() }));
    expect(again).to.deep.equal({ id: first.id, created: false });
    expect(soar.comments).to.have.length(1);
    expect(soar.requestsTo(/\/comments$/, 'POST')).to.have.length(1);
  });

  it('tells a key from a longer key that starts with it (an edit of the same message)', async function () {
    await platform.addNote(note());
    const edit = await platform.addNote(note({ key: 'C1:1796637600.000100:edit:1796637700.000001', text: 'edited' }));
    expect(edit.created).to.equal(true);
    expect(soar.comments).to.have.length(2);
  });

  it('finds the key in a reply to a comment too', async function () {
    const parent = await platform.addNote(note({ key: 'parent' }));
    // A person replied to the note in SOAR, quoting another note's marker.
    const res = await client.postJson<{ id: number }>(
      `/incidents/2103/comments`,
      { text: { format: 'text', content: '[note reply-key]' }, parent_id: Number(parent.id) },
      { what: 'a reply' },
    );
    const again = await platform.addNote(note({ key: 'reply-key' }));
    expect(again).to.deep.equal({ id: String(res.id), created: false });
  });

  it("posts a task's note on the task, and keeps the incident's and the task's keys apart", async function () {
    await platform.addNote(note());
    const onTask = await platform.addNote(note({ taskId: 12 }));
    expect(onTask.created).to.equal(true);
    expect(soar.comments.map((c) => c.taskId ?? null)).to.deep.equal([null, 12]);
    expect(soar.requestsTo(/^\/rest\/orgs\/\d+\/tasks\/12\/comments$/, 'POST')).to.have.length(1);
  });

  it('leaves out a permalink that is not a web link, and an email Slack did not give', async function () {
    await platform.addNote(
      note({ slack: { channel_id: 'C1', ts: '1.2', permalink: 'javascript:alert(1)' }, author: { id: 'U2', name: 'Bob', email: null } }),
    );
    expect(soar.comments[0]!.text).to.equal(
      '<div><p><b>Bob</b> in Slack:</p><p>Blocked &#60;script&#62;alert(1)&#60;/script&#62; &#38; &#34;quoted&#34;<br>second line</p><p>[note C1:1796637600.000100]</p></div>',
    );
  });

  it('says which incident or task SOAR does not know (404), and adds nothing', async function () {
    await functionError(platform.addNote(note({ incidentId: 9999 })), 'not_found', /notes of incident 9999 not found in SOAR org/i);
    await functionError(platform.addNote(note({ taskId: 77 })), 'not_found', /notes of task 77 of incident 2103 not found/i);
    expect(soar.comments).to.have.length(0);
  });

  it('a failed POST is retryable and a retry then adds the note once', async function () {
    soar.fail({ method: 'POST', path: /\/comments$/, kind: 'status', status: 503 });
    const err = await rejection(platform.addNote(note()));
    expect(err.retryable).to.equal(true);
    expect(soar.comments).to.have.length(0);
    expect((await platform.addNote(note())).created).to.equal(true);
    expect((await platform.addNote(note())).created).to.equal(false);
    expect(soar.comments).to.have.length(1);
  });

  it('names the permission a key without write access lacks', async function () {
    const key = soar.addKey({ permissions: ['read_all_incidents'] });
    const limited = new SoarPlatform(
      new SoarClient({ baseUrl: soar.baseUrl, orgId: soar.orgId, apiKeyId: key.id, apiKeySecret: key.secret }),
    );
    await functionError(limited.addNote(note()), 'soar_forbidden', 'edit_all_incidents_fields');
    limited.client.close();
  });
});
