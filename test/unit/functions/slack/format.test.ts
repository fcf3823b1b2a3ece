import { expect } from 'chai';
import {
  SLACK_LIMITS,
  escapeSlackText,
  htmlToMrkdwn,
  isContainer,
  renderSlackText,
  type RenderOptions,
  type RenderedMessage,
} from '../../../../src/functions/slack/format/index.js';

type Obj = Record<string, unknown>;

const TEMPLATE = 'https://soar.example.com/#incidents/{incident_id}';
const OPTS: RenderOptions = { mrkdwn: true, soarUrlTemplate: TEMPLATE, incidentId: 2103 };

/** The only `<…>` construct the renderer may produce: its own SOAR link. */
const SOAR_LINK_RE = /<https:\/\/soar\.example\.com\/#incidents\/\d+(?:\/tasks\/\d+)?\|Open (?:incident|task) \d+ in SOAR>/g;

const EXAMPLE = `{"Type of data": "Incident",
 "Additional Text": "Escalated by the night shift",
 "SOAR URL": {"type": "incident", "data": 2103},
 "Incident ID": {"type": "string", "data": "2103"},
 "Description": {"type": "richtext", "data": "<p>Phishing <b>wave</b></p>"},
 "Created": {"type": "datetime", "data": 1541066628000},
 "Confirmed": {"type": "boolean", "data": true},
 "Severity": {"type": "number", "data": 4}}`;

function render(slackText: string | Obj, opts: Partial<RenderOptions> = {}): RenderedMessage[] {
  const text = typeof slackText === 'string' ? slackText : JSON.stringify(slackText);
  return renderSlackText(text, { ...OPTS, ...opts });
}

function collectStrings(v: unknown, out: string[] = []): string[] {
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) for (const e of v) collectStrings(e, out);
  else if (v && typeof v === 'object') for (const e of Object.values(v)) collectStrings(e, out);
  return out;
}

/** Every string sent to Slack: no raw < or > outside the SOAR link, every & an escape. */
function assertNoLeak(messages: RenderedMessage[]): void {
  for (const s of collectStrings(messages)) {
    const stripped = s.replace(SOAR_LINK_RE, '');
    expect(stripped, `unescaped markup in: ${s.slice(0, 200)}`).to.not.match(/[<>]/);
    expect(stripped, `bare & in: ${s.slice(0, 200)}`).to.not.match(/&(?!amp;|lt;|gt;)/);
  }
}

function textOf(obj: unknown): string {
  return (obj as { text: string }).text;
}

/** Checks every Slack limit on every message and block. */
function assertWithinLimits(messages: RenderedMessage[]): void {
  expect(messages.length).to.be.greaterThan(0);
  for (const m of messages) {
    expect(m.text.length).to.be.within(1, SLACK_LIMITS.messageText);
    expect(m.blocks.length).to.be.within(1, SLACK_LIMITS.blocksPerMessage);
    for (const b of m.blocks) {
      if (b['type'] === 'header') {
        const t = b['text'] as Obj;
        expect(t['type']).to.equal('plain_text');
        expect(textOf(t).length).to.be.within(1, SLACK_LIMITS.headerText);
      } else if (b['type'] === 'section') {
        if (b['text']) expect(textOf(b['text']).trim().length).to.be.within(1, SLACK_LIMITS.sectionText);
        if (b['fields']) {
          const fields = b['fields'] as Obj[];
          expect(fields.length).to.be.within(1, SLACK_LIMITS.fieldsPerSection);
          for (const f of fields) expect(textOf(f).length).to.be.within(1, SLACK_LIMITS.fieldText);
        }
        expect(Boolean(b['text']) || Boolean(b['fields'])).to.equal(true);
      } else {
        expect(b['type']).to.equal('context');
        for (const e of b['elements'] as Obj[]) expect(textOf(e).length).to.be.within(1, SLACK_LIMITS.sectionText);
      }
    }
  }
}

function sectionTexts(messages: RenderedMessage[]): string[] {
  return messages.flatMap((m) => m.blocks.filter((b) => b['type'] === 'section' && b['text']).map((b) => textOf(b['text'])));
}

function fieldTexts(messages: RenderedMessage[]): string[] {
  return messages.flatMap((m) =>
    m.blocks.filter((b) => b['type'] === 'section' && b['fields']).flatMap((b) => (b['fields'] as Obj[]).map(textOf)),
  );
}

function fieldValue(messages: RenderedMessage[], label: string): string | undefined {
  const prefix = `*${label}*\n`;
  return fieldTexts(messages).find((f) => f.startsWith(prefix))?.slice(prefix.length);
}

const PAYLOADS = ['<!channel>', '<!here>', '<!everyone>', '<@U123>', '<!subteam^S123|@oncall>', '<http://evil.example|innocent>', '<#C123>', '<!date^1392734382^{date}|x>'];
const PAYLOAD = PAYLOADS.join(' ');

describe('functions/slack/format', () => {
  describe('escapeSlackText', () => {
    it('escapes &, < and > and nothing else', () => {
      expect(escapeSlackText('a & b <!channel> > *c* "d" \'e\'')).to.equal("a &amp; b &lt;!channel&gt; &gt; *c* \"d\" 'e'");
      expect(escapeSlackText('&amp;')).to.equal('&amp;amp;');
      expect(escapeSlackText('🔥 café')).to.equal('🔥 café');
    });
  });

  describe('isContainer', () => {
    it('accepts a non-empty JSON object (surrounding whitespace allowed)', () => {
      expect(isContainer(EXAMPLE)).to.equal(true);
      expect(isContainer('  \n{"a": 1}\n ')).to.equal(true);
    });

    it('rejects plain text and JSON that is not an object', () => {
      for (const s of ['hello', '[1,2]', '42', '"str"', 'null', 'true', '{}', '{not json', '{"a": 1} trailing']) {
        expect(isContainer(s), s).to.equal(false);
      }
    });

    it('accepts raw control characters inside strings (like fn_slack strict=False)', () => {
      expect(isContainer('{"Note": "line 1\nline 2"}')).to.equal(true);
      const msgs = render('{"Note": "line 1\nline 2\ttab"}');
      expect(fieldValue(msgs, 'Note')).to.equal('line 1\nline 2\ttab');
    });
  });

  describe('input validation', () => {
    it('throws a clear error on empty or whitespace slack_text', () => {
      expect(() => render('')).to.throw(Error, /slack_text is empty/);
      expect(() => render('  \n\t ')).to.throw(Error, /slack_text is empty/);
    });

    it('throws when a container has nothing to display', () => {
      expect(() => render({ 'Type of data': '', 'Additional Text': { type: 'string', data: null } })).to.throw(Error, /nothing to display/);
    });
  });

  describe('plain text', () => {
    it('renders one mrkdwn section with escaped text and the same fallback text', () => {
      const msgs = render('Hello *team* & <!here> 🚨');
      expect(msgs).to.have.length(1);
      expect(msgs[0]!.blocks).to.deep.equal([
        { type: 'section', text: { type: 'mrkdwn', text: 'Hello *team* &amp; &lt;!here&gt; 🚨', verbatim: true } },
      ]);
      expect(msgs[0]!.text).to.equal('Hello *team* &amp; &lt;!here&gt; 🚨');
    });

    it('treats JSON that is not an object as plain text', () => {
      expect(render('[1,2]')[0]!.blocks).to.deep.equal([
        { type: 'section', text: { type: 'mrkdwn', text: '[1,2]', verbatim: true } },
      ]);
      expect(render('42')[0]!.text).to.equal('42');
      expect(render('"quoted"')[0]!.text).to.equal('"quoted"');
      expect(render('{}')[0]!.text).to.equal('{}');
    });

    it('keeps multi-line text and normalises CRLF', () => {
      const msgs = render('line 1\r\nline 2\n\nline 4');
      expect(sectionTexts(msgs)).to.deep.equal(['line 1\nline 2\n\nline 4']);
    });
  });

  describe('container layout', () => {
    it('renders the fn_slack example: header, intro, fields in order, SOAR link', () => {
      const msgs = render(EXAMPLE);
      expect(msgs).to.have.length(1);
      const [m] = msgs;
      expect(m!.blocks).to.deep.equal([
        { type: 'header', text: { type: 'plain_text', text: 'Incident', emoji: true } },
        { type: 'section', text: { type: 'mrkdwn', text: 'Escalated by the night shift', verbatim: true } },
        {
          type: 'section',
          fields: [
            { type: 'mrkdwn', text: '*Incident ID*\n2103', verbatim: true },
            { type: 'mrkdwn', text: '*Description*\nPhishing *wave*', verbatim: true },
            { type: 'mrkdwn', text: '*Created*\n2018-11-01 10:03:48 UTC', verbatim: true },
            { type: 'mrkdwn', text: '*Confirmed*\nYes', verbatim: true },
            { type: 'mrkdwn', text: '*Severity*\n4', verbatim: true },
          ],
        },
        {
          type: 'context',
          elements: [{ type: 'mrkdwn', text: '<https://soar.example.com/#incidents/2103|Open incident 2103 in SOAR>', verbatim: true }],
        },
      ]);
      expect(m!.text).to.equal(
        [
          'Incident',
          'Escalated by the night shift',
          '*Incident ID*: 2103',
          '*Description*: Phishing *wave*',
          '*Created*: 2018-11-01 10:03:48 UTC',
          '*Confirmed*: Yes',
          '*Severity*: 4',
          '<https://soar.example.com/#incidents/2103|Open incident 2103 in SOAR>',
        ].join('\n'),
      );
    });

    it('keeps the key order of the JSON text, including integer-like keys', () => {
      const msgs = render('{"Zeta": "z", "10": "ten", "Alpha": "a", "2": "two", "Type of data": "Task", "mid": "m"}');
      expect(fieldTexts(msgs)).to.deep.equal(['*Zeta*\nz', '*10*\nten', '*Alpha*\na', '*2*\ntwo', '*mid*\nm']);
      expect(textOf(msgs[0]!.blocks[0]!['text'])).to.equal('Task');
    });

    it('uses the last value of a duplicated key at its first position (JSON.parse semantics)', () => {
      const msgs = render('{"A": "first", "B": "b", "A": "second"}');
      expect(fieldTexts(msgs)).to.deep.equal(['*A*\nsecond', '*B*\nb']);
    });

    it('accepts fn_slack typed forms of "Type of data" and "Additional Text"', () => {
      const msgs = render({
        'Additional Text': { type: 'string', data: 'New artifact added' },
        'Type of data': { type: 'string', data: 'Artifact' },
        Value: '10.0.0.1',
      });
      expect(msgs[0]!.blocks.map((b) => b['type'])).to.deep.equal(['header', 'section', 'section']);
      expect(textOf(msgs[0]!.blocks[0]!['text'])).to.equal('Artifact');
      expect(textOf(msgs[0]!.blocks[1]!['text'])).to.equal('New artifact added');
      expect(fieldValue(msgs, 'Value')).to.equal('10.0.0.1');
    });

    it('renders a richtext introduction and omits empty header and introduction', () => {
      const msgs = render({ 'Type of data': '', 'Additional Text': { type: 'richtext', data: '<b>Heads up</b>' }, X: 1 });
      expect(msgs[0]!.blocks[0]).to.deep.equal({ type: 'section', text: { type: 'mrkdwn', text: '*Heads up*', verbatim: true } });
      expect(render({ 'Additional Text': '   ', X: 1 })[0]!.blocks.map((b) => b['type'])).to.deep.equal(['section']);
    });

    it('collapses newlines in labels and the header', () => {
      const msgs = render({ 'Type of data': 'Multi\nline', 'Label\nwith  breaks': 'v' });
      expect(textOf(msgs[0]!.blocks[0]!['text'])).to.equal('Multi line');
      expect(fieldTexts(msgs)).to.deep.equal(['*Label with breaks*\nv']);
    });
  });

  describe('value types', () => {
    it('string: bare values, numbers, arrays, objects and fn_slack list reprs', () => {
      const msgs = render({
        Bare: 'plain',
        Num: { type: 'string', data: 2103 },
        List: { type: 'string', data: "[u'Malware', u'Lost PC / laptop / tablet']" },
        Arr: ['a', 'b', 3],
        Obj: { nested: { x: 1 } },
        Unknown: { type: 'select', data: 'High' },
      });
      expect(fieldValue(msgs, 'Bare')).to.equal('plain');
      expect(fieldValue(msgs, 'Num')).to.equal('2103');
      expect(fieldValue(msgs, 'List')).to.equal('Malware, Lost PC / laptop / tablet');
      expect(fieldValue(msgs, 'Arr')).to.equal('a, b, 3');
      expect(fieldValue(msgs, 'Obj')).to.equal('{"nested":{"x":1}}');
      expect(fieldValue(msgs, 'Unknown')).to.equal('High');
    });

    it('null, missing and empty data render as "-"', () => {
      const msgs = render({
        N: null,
        S: { type: 'string', data: '' },
        W: { type: 'string', data: '   ' },
        M: { type: 'number' },
        A: { type: 'string', data: [] },
        R: { type: 'richtext', data: '<p> </p><br>' },
        D: { type: 'datetime', data: null },
      });
      expect(fieldTexts(msgs)).to.deep.equal(['*N*\n-', '*S*\n-', '*W*\n-', '*M*\n-', '*A*\n-', '*R*\n-', '*D*\n-']);
    });

    it('datetime: epoch ms formatted in UTC by default', () => {
      const msgs = render({ C: { type: 'datetime', data: 1541066628000 }, Epoch0: { type: 'datetime', data: 0 }, S: { type: 'datetime', data: '1541066628000' } });
      expect(fieldValue(msgs, 'C')).to.equal('2018-11-01 10:03:48 UTC');
      expect(fieldValue(msgs, 'Epoch0')).to.equal('1970-01-01 00:00:00 UTC');
      expect(fieldValue(msgs, 'S')).to.equal('2018-11-01 10:03:48 UTC');
    });

    it('datetime: honours the configured time zone with its offset', () => {
      const ny = render({ C: { type: 'datetime', data: 1541066628000 } }, { timeZone: 'America/New_York' });
      expect(fieldValue(ny, 'C')).to.equal('2018-11-01 06:03:48 America/New_York (UTC-04:00)');
      const kol = render({ C: { type: 'datetime', data: 1541066628000 } }, { timeZone: 'Asia/Kolkata' });
      expect(fieldValue(kol, 'C')).to.equal('2018-11-01 15:33:48 Asia/Kolkata (UTC+05:30)');
    });

    it('datetime: an unknown time zone is an error naming it, as in the export (never mislabelled as UTC)', () => {
      expect(() => render({ C: { type: 'datetime', data: 1541066628000 } }, { timeZone: 'Not/AZone' })).to.throw(
        RangeError,
        /Invalid time zone "Not\/AZone"/,
      );
    });

    it('datetime: invalid values are shown raw and escaped', () => {
      const msgs = render({
        Word: { type: 'datetime', data: 'yesterday <!here>' },
        Huge: { type: 'datetime', data: 1e20 },
        Bool: { type: 'datetime', data: true },
        Obj: { type: 'datetime', data: { a: '<b>' } },
      });
      expect(fieldValue(msgs, 'Word')).to.equal('yesterday &lt;!here&gt;');
      expect(fieldValue(msgs, 'Huge')).to.equal('100000000000000000000');
      expect(fieldValue(msgs, 'Bool')).to.equal('true');
      expect(fieldValue(msgs, 'Obj')).to.equal('{"a":"&lt;b&gt;"}');
    });

    it('boolean: Yes/No like fn_slack, other values raw', () => {
      const msgs = render({
        T: { type: 'boolean', data: true },
        F: { type: 'boolean', data: false },
        Y: { type: 'boolean', data: 'yes' },
        Z: { type: 'boolean', data: '0' },
        One: { type: 'boolean', data: 1 },
        Odd: { type: 'boolean', data: 'maybe' },
      });
      expect(fieldTexts(msgs)).to.deep.equal(['*T*\nYes', '*F*\nNo', '*Y*\nYes', '*Z*\nNo', '*One*\nYes', '*Odd*\nmaybe']);
    });

    it('number: numbers and numeric strings, other values raw', () => {
      const msgs = render({
        I: { type: 'number', data: 4 },
        Z: { type: 'number', data: 0 },
        F: { type: 'number', data: -3.25 },
        S: { type: 'number', data: ' 12 ' },
        X: { type: 'number', data: 'abc & co' },
      });
      expect(fieldTexts(msgs)).to.deep.equal(['*I*\n4', '*Z*\n0', '*F*\n-3.25', '*S*\n12', '*X*\nabc &amp; co']);
    });

    it('richtext: converted to mrkdwn in fields', () => {
      const msgs = render({ D: { type: 'richtext', data: '<div>Line <strong>one</strong></div><div><em>two</em> &amp; <code>x&lt;y</code></div>' } });
      expect(fieldValue(msgs, 'D')).to.equal('Line *one*\n_two_ &amp; `x&lt;y`');
    });

    it('preserves unicode and emoji everywhere', () => {
      const msgs = render({ 'Type of data': '🔥 Incident — café', 'Ünïcödé 日本語': '👩‍💻 naïve 𝔘', R: { type: 'richtext', data: '<p>😀 &#x1F600; &#128512;</p>' } });
      expect(textOf(msgs[0]!.blocks[0]!['text'])).to.equal('🔥 Incident — café');
      expect(fieldValue(msgs, 'Ünïcödé 日本語')).to.equal('👩‍💻 naïve 𝔘');
      expect(fieldValue(msgs, 'R')).to.equal('😀 😀 😀');
    });
  });

  describe('htmlToMrkdwn', () => {
    it('turns block elements into newlines', () => {
      expect(htmlToMrkdwn('<p>a</p><p>b</p>c<br>d<br/><br />e<div>f</div>')).to.equal('a\nb\nc\nd\n\ne\nf');
      expect(htmlToMrkdwn('<div>one</div><div><br></div><div>three</div>')).to.equal('one\n\nthree');
    });

    it('formats bold, italic, strike, code and headings', () => {
      expect(htmlToMrkdwn('<b>B</b> <strong>S</strong> <i>I</i> <em>E</em> <s>X</s> <code>c</code>')).to.equal('*B* *S* _I_ _E_ ~X~ `c`');
      expect(htmlToMrkdwn('<h2>Title</h2>body')).to.equal('*Title*\nbody');
      expect(htmlToMrkdwn('<b><i>both</i></b>')).to.equal('*_both_*');
    });

    it('keeps whitespace outside markers and does not nest the same marker', () => {
      expect(htmlToMrkdwn('Phishing <b> wave </b>now')).to.equal('Phishing *wave* now');
      expect(htmlToMrkdwn('<b>a <b>b</b> c</b>')).to.equal('*a b c*');
      expect(htmlToMrkdwn('<b>line1<br>line2</b>')).to.equal('*line1*\n*line2*');
      expect(htmlToMrkdwn('x<b> </b>y')).to.equal('x y');
      expect(htmlToMrkdwn('<h3><b>Bold heading</b></h3>next')).to.equal('*Bold heading*\nnext');
    });

    it('renders lists with bullets', () => {
      expect(htmlToMrkdwn('<ul><li>one</li><li><p>two</p></li></ul><ol><li>three</li></ol>')).to.equal('• one\n• two\n• three');
    });

    it('renders pre as a code block preserving whitespace', () => {
      expect(htmlToMrkdwn('<pre>\n  a  &lt; b\n    c\n</pre>after')).to.equal('```  a  &lt; b\n    c```\nafter');
      expect(htmlToMrkdwn('<pre><code>x = 1</code></pre>')).to.equal('```x = 1```');
    });

    it('decodes entities then re-escapes', () => {
      expect(htmlToMrkdwn('a&nbsp;b &amp; &#39;q&#39; &lt;!channel&gt; &quot;x&quot; &eacute; &#x41; &bogus; &#0;')).to.equal(
        "a b &amp; 'q' &lt;!channel&gt; \"x\" é A &amp;bogus; \ufffd",
      );
    });

    it('collapses HTML whitespace', () => {
      expect(htmlToMrkdwn('  <p>\n   many\t\t spaces  \n</p>  ')).to.equal('many spaces');
    });

    it('strips other tags, comments, scripts and styles', () => {
      expect(
        htmlToMrkdwn('<span style="color:red">red</span><!-- secret --><script>alert("<!here>")</script><style>p{}</style><img src="x.png"><u>u</u>'),
      ).to.equal('redu');
      expect(htmlToMrkdwn('<div class="a>b">quoted</div>')).to.equal('quoted');
    });

    it('never produces a Slack link from an anchor', () => {
      expect(htmlToMrkdwn('<a href="http://evil.example">innocent</a>')).to.equal('innocent (http://evil.example)');
      expect(htmlToMrkdwn('<a href="https://x.example/?a=1&amp;b=<2>">https://x.example/?a=1&amp;b=&lt;2&gt;</a>')).to.equal(
        'https://x.example/?a=1&amp;b=&lt;2&gt;',
      );
      expect(htmlToMrkdwn('see <a href=\'http://a|b\'> <b>here</b> </a>!')).to.equal('see *here* (http://a|b) !');
      expect(htmlToMrkdwn('<a href="mailto:x@y">&lt;http://evil|innocent&gt;</a>')).to.equal('&lt;http://evil|innocent&gt; (mailto:x@y)');
      expect(htmlToMrkdwn('<a name="top"></a>anchor')).to.equal('anchor');
    });

    it('treats stray < and malformed markup as text', () => {
      expect(htmlToMrkdwn('1 < 2 and 3 > 2')).to.equal('1 &lt; 2 and 3 &gt; 2');
      expect(htmlToMrkdwn('a <!-- unterminated')).to.equal('a &lt;!-- unterminated');
      expect(htmlToMrkdwn('<b>unclosed')).to.equal('*unclosed*');
      expect(htmlToMrkdwn('x <script>no end')).to.equal('x no end');
      // unescaped Slack syntax inside HTML is markup (a bogus comment / unknown tag), not text
      expect(htmlToMrkdwn('a <!channel> <http://evil|x> <@U1> b')).to.equal('a &lt;@U1&gt; b');
    });
  });

  describe('SOAR link', () => {
    it('builds the link from the template and the incident id', () => {
      const msgs = render({ X: 1, 'SOAR URL': { type: 'incident', data: '42' } });
      const last = msgs[0]!.blocks.at(-1)!;
      expect(last).to.deep.equal({
        type: 'context',
        elements: [{ type: 'mrkdwn', text: '<https://soar.example.com/#incidents/42|Open incident 42 in SOAR>', verbatim: true }],
      });
      expect(msgs[0]!.text.endsWith('<https://soar.example.com/#incidents/42|Open incident 42 in SOAR>')).to.equal(true);
    });

    it('accepts the fn_slack 2.x alias "Resilient URL" and a bare id', () => {
      const msgs = render({ 'Resilient URL': 77 });
      expect(textOf((msgs[0]!.blocks[0]!['elements'] as Obj[])[0])).to.equal('<https://soar.example.com/#incidents/77|Open incident 77 in SOAR>');
    });

    it('falls back to the invocation incident id when data is missing', () => {
      const msgs = render({ 'SOAR URL': { type: 'incident' } });
      expect(msgs[0]!.text).to.equal('<https://soar.example.com/#incidents/2103|Open incident 2103 in SOAR>');
    });

    it('links to a task when the template uses {task_id}', () => {
      const tpl = 'https://soar.example.com/#incidents/{incident_id}/tasks/{task_id}';
      const msgs = render({ 'SOAR URL': { type: 'task', data: 2103 } }, { soarUrlTemplate: tpl, taskId: 55 });
      expect(msgs[0]!.text).to.equal('<https://soar.example.com/#incidents/2103/tasks/55|Open task 55 in SOAR>');
      const noTask = render({ 'SOAR URL': { type: 'task', data: 2103 } }, { soarUrlTemplate: tpl });
      expect(noTask[0]!.text).to.equal('*SOAR URL*: 2103');
    });

    it('puts the link after all fields', () => {
      const msgs = render('{"SOAR URL": {"type": "incident", "data": 2103}, "A": "a", "B": "b"}');
      expect(msgs[0]!.blocks.map((b) => b['type'])).to.deep.equal(['section', 'context']);
      expect(fieldTexts(msgs)).to.deep.equal(['*A*\na', '*B*\nb']);
    });

    it('renders no link and the raw value escaped for an invalid id', () => {
      for (const [data, shown] of [
        ['21a', '21a'],
        [-1, '-1'],
        [0, '0'],
        [1.5, '1.5'],
        ['<!channel>', '&lt;!channel&gt;'],
        ['1|<http://evil|x>', '1|&lt;http://evil|x&gt;'],
        [{ id: 1 }, '{"id":1}'],
      ] as const) {
        const msgs = render({ 'SOAR URL': { type: 'incident', data } });
        expect(msgs[0]!.blocks.some((b) => b['type'] === 'context'), String(data)).to.equal(false);
        expect(fieldTexts(msgs)).to.deep.equal([`*SOAR URL*\n${shown}`]);
        assertNoLeak(msgs);
      }
    });

    it('renders no link without a usable template', () => {
      expect(render({ 'SOAR URL': 5 }, { soarUrlTemplate: undefined })[0]!.text).to.equal('*SOAR URL*: 5');
      expect(render({ 'SOAR URL': 5 }, { soarUrlTemplate: 'javascript:alert({incident_id})' })[0]!.text).to.equal('*SOAR URL*: 5');
      expect(render({ 'SOAR URL': 5 }, { soarUrlTemplate: 'https://x.example/{incident_id}|y' })[0]!.text).to.equal('*SOAR URL*: 5');
      expect(render({ 'SOAR URL': 5 }, { soarUrlTemplate: 'not a url {incident_id}' })[0]!.text).to.equal('*SOAR URL*: 5');
    });

    it('escapes & in the link URL', () => {
      const msgs = render({ 'SOAR URL': 5 }, { soarUrlTemplate: 'https://soar.example.com/?org=1&id={incident_id}' });
      expect(msgs[0]!.text).to.equal('<https://soar.example.com/?org=1&amp;id=5|Open incident 5 in SOAR>');
    });
  });

  describe('mrkdwn=false', () => {
    it('uses plain_text objects everywhere, still escaped, without formatting markers', () => {
      const msgs = render(
        {
          'Type of data': 'Note & <!here>',
          'Additional Text': 'Intro <@U1>',
          'SOAR URL': 2103,
          Text: 'a & b',
          R: { type: 'richtext', data: '<b>bold</b> <i>it</i> <code>c</code> <a href="http://e">l</a>' },
        },
        { mrkdwn: false },
      );
      const types = collectStrings(msgs).filter((s) => s === 'mrkdwn');
      expect(types).to.deep.equal([]);
      expect(msgs[0]!.blocks).to.deep.equal([
        { type: 'header', text: { type: 'plain_text', text: 'Note &amp; &lt;!here&gt;', emoji: true } },
        { type: 'section', text: { type: 'plain_text', text: 'Intro &lt;@U1&gt;', emoji: true } },
        {
          type: 'section',
          fields: [
            { type: 'plain_text', text: 'Text:\na &amp; b', emoji: true },
            { type: 'plain_text', text: 'R:\nbold it c l (http://e)', emoji: true },
          ],
        },
        { type: 'context', elements: [{ type: 'plain_text', text: 'Open incident 2103 in SOAR: https://soar.example.com/#incidents/2103', emoji: true }] },
      ]);
      expect(msgs[0]!.text).to.equal(
        'Note &amp; &lt;!here&gt;\nIntro &lt;@U1&gt;\nText: a &amp; b\nR: bold it c l (http://e)\nOpen incident 2103 in SOAR: https://soar.example.com/#incidents/2103',
      );
      assertNoLeak(msgs);
    });

    it('renders plain text as plain_text sections', () => {
      expect(render('hi <!channel>', { mrkdwn: false })[0]!.blocks).to.deep.equal([
        { type: 'section', text: { type: 'plain_text', text: 'hi &lt;!channel&gt;', emoji: true } },
      ]);
    });
  });

  describe('mentions and links cannot leak', () => {
    it('escapes payloads in header, intro, labels and every field kind', () => {
      const msgs = render({
        'Type of data': PAYLOAD,
        'Additional Text': PAYLOAD,
        [PAYLOAD]: PAYLOAD,
        S: { type: 'string', data: PAYLOAD },
        R: { type: 'richtext', data: `<p>${PAYLOAD}</p><a href="http://evil.example|innocent">${PAYLOAD}</a> &lt;!channel&gt; &lt;@U1&gt; <a href="&lt;!here&gt;">x</a>` },
        D: { type: 'datetime', data: PAYLOAD },
        B: { type: 'boolean', data: PAYLOAD },
        N: { type: 'number', data: PAYLOAD },
        U: { type: PAYLOAD, data: PAYLOAD },
        'SOAR URL': { type: 'incident', data: PAYLOAD },
        'Resilient URL': { type: 'task', data: 9 },
      });
      assertNoLeak(msgs);
      const all = collectStrings(msgs).join('\n');
      // the content is shown (escaped), not dropped
      expect(all).to.include('&lt;!channel&gt; &lt;!here&gt; &lt;!everyone&gt; &lt;@U123&gt;');
      expect(all).to.include('&lt;http://evil.example|innocent&gt;');
      expect(all).to.include('(http://evil.example|innocent)');
      expect(all).to.include('x (&lt;!here&gt;)');
      expect(msgs[0]!.text).to.include(`*SOAR URL*: ${escapeSlackText(PAYLOAD)}`);
      // exactly one link: the one built from the template
      expect(all.match(SOAR_LINK_RE)).to.deep.equal([
        '<https://soar.example.com/#incidents/9|Open incident 9 in SOAR>',
        '<https://soar.example.com/#incidents/9|Open incident 9 in SOAR>',
      ]);
    });

    it('escapes payloads in plain text, labels of long fields and continuation messages', () => {
      const big = `${PAYLOAD}\n`.repeat(4000);
      const plain = render(big);
      expect(plain.length).to.be.greaterThan(1);
      assertNoLeak(plain);
      // as a SOAR editor stores typed text: HTML-escaped inside markup
      const container = render({ 'Type of data': PAYLOAD, [PAYLOAD]: { type: 'richtext', data: `<p>${escapeSlackText(PAYLOAD)}</p>`.repeat(3000) } });
      expect(container.length).to.be.greaterThan(1);
      assertNoLeak(container);
      for (const m of [...plain.slice(1), ...container.slice(1)]) expect(m.text).to.include('&lt;!channel&gt;');
    });

    /** Disguised links, plain-text mentions and zero-width variants of the special mentions. */
    const TRICKS = [
      '<http://evil.example|http://good.example>',
      '<mailto:x@evil.example|help@good.example>',
      '@channel', '@here', '@everyone',
      '<\u200b!channel>', '<!chan\u200bnel>', '\u200b<!here>\u200b', '<\u2060@U123>', '\ufeff<!everyone>',
      '&lt;!channel&gt;', '&#60;!here&#62;',
    ];
    const TRICK = TRICKS.join(' ');

    it('escapes disguised links, zero-width mention variants and entities in every field kind and the fallback text', () => {
      const msgs = render({
        'Type of data': TRICK,
        'Additional Text': TRICK,
        [TRICK]: TRICK,
        S: { type: 'string', data: TRICK },
        R: { type: 'richtext', data: `<p>${TRICK}</p><a href="http://evil.example">http://good.example</a>` },
        D: { type: 'datetime', data: TRICK },
        B: { type: 'boolean', data: TRICK },
        N: { type: 'number', data: TRICK },
        L: { type: 'string', data: [TRICK, { k: TRICK }] },
      });
      assertNoLeak(msgs);
      for (const m of msgs) {
        // The fallback text is what notifications and old clients show: checked on its own.
        expect(m.text).to.not.match(/<(?!https:\/\/soar\.example\.com)/);
        expect(m.text).to.include('&lt;http://evil.example|http://good.example&gt;');
      }
      const all = collectStrings(msgs).join('\n');
      // An anchor shows where it really goes; its text never becomes a link label.
      expect(all).to.include('http://good.example (http://evil.example)');
      // Plain-text mentions stay plain text: chat.postMessage is called without
      // link_names / parse=full, so Slack does not turn them into mentions.
      expect(all).to.include('@channel @here @everyone');
      expect(all).to.not.match(/<[!@#]/);
    });

    it('drops bidi override controls that would make a link display reversed, keeping right-to-left text', () => {
      const spoof = 'see http://evil.example/\u202egro.elpmaxe.doog//:sptth and \u2066x\u2069 \u202ay\u202c';
      const msgs = render({ 'Type of data': spoof, S: { type: 'string', data: spoof }, R: { type: 'richtext', data: `<p>${spoof}</p>` } });
      msgs.push(...render(spoof, { mrkdwn: false }), ...render(`${spoof}\n`.repeat(3000)));
      for (const s of collectStrings(msgs)) expect(s, s.slice(0, 100)).to.not.match(/[\u202a-\u202e\u2066-\u2069]/);
      expect(collectStrings(msgs).join('\n')).to.include('see http://evil.example/gro.elpmaxe.doog//:sptth and x y');
      expect(escapeSlackText('שלום \u200fעולם\u200e مرحبا')).to.equal('שלום \u200fעולם\u200e مرحبا');
    });

    it('escapes disguised links and mentions in plain text and in every thread continuation', () => {
      for (const mrkdwn of [true, false]) {
        const msgs = render(`${TRICK}\n`.repeat(2500), { mrkdwn });
        expect(msgs.length, `mrkdwn=${mrkdwn}`).to.be.greaterThan(1);
        assertNoLeak(msgs);
        for (const m of msgs) {
          expect(m.text).to.include('&lt;http://evil.example|http://good.example&gt;');
          expect(collectStrings(m.blocks).join('\n')).to.include('&lt;\u200b!channel&gt;');
        }
      }
    });

    it('cannot forge a link by splitting an escape entity across chunks', () => {
      // '<' at every position so any split could cut inside &lt;
      const msgs = render('<'.repeat(50000));
      assertNoLeak(msgs);
      const joined = sectionTexts(msgs).join('');
      expect(joined).to.equal('&lt;'.repeat(50000));
      for (const s of sectionTexts(msgs)) expect(s).to.match(/^(&lt;)+$/);
    });
  });

  describe('limits and splitting', () => {
    const words = (n: number): string => {
      const parts: string[] = [];
      let len = 0;
      for (let i = 0; len < n; i++) {
        const w = i % 37 === 0 ? `para-${i} & <x>\n` : `word${i} `;
        parts.push(w);
        len += w.length;
      }
      return parts.join('').slice(0, n);
    };

    it('splits a 100,000-char description into several messages within every limit, losing nothing', () => {
      const description = words(100000);
      expect(description.length).to.equal(100000);
      const msgs = render({ 'Type of data': 'Incident', 'Incident ID': '2103', Description: description, 'SOAR URL': 2103 });
      expect(msgs.length).to.be.greaterThan(1);
      assertWithinLimits(msgs);
      assertNoLeak(msgs);
      // the description is in sections; concatenated they give back the whole (escaped) value
      const joined = sectionTexts(msgs).join('');
      expect(joined).to.equal(`*Description*\n${escapeSlackText(description)}`);
      // the fallback text of every message carries its sections
      for (const m of msgs) {
        for (const b of m.blocks) if (b['type'] === 'section' && b['text']) expect(m.text).to.include(textOf(b['text']));
      }
      // layout: header and field first, link last, continuation markers in between
      expect(msgs[0]!.blocks[0]!['type']).to.equal('header');
      expect(fieldTexts([msgs[0]!])).to.deep.equal(['*Incident ID*\n2103']);
      expect(msgs.at(-1)!.text.endsWith('<https://soar.example.com/#incidents/2103|Open incident 2103 in SOAR>')).to.equal(true);
    });

    it('marks continuation messages "(continued k/N)" and the first one as continued in thread', () => {
      const msgs = render(words(100000));
      const n = msgs.length;
      expect(n).to.be.greaterThan(2);
      expect(msgs[0]!.blocks.at(-1)).to.deep.equal({
        type: 'context',
        elements: [{ type: 'mrkdwn', text: `(1/${n}, continued in thread)`, verbatim: true }],
      });
      expect(msgs[0]!.text.endsWith(`\n(1/${n}, continued in thread)`)).to.equal(true);
      msgs.slice(1).forEach((m, i) => {
        expect(m.blocks[0]).to.deep.equal({
          type: 'context',
          elements: [{ type: 'mrkdwn', text: `(continued ${i + 2}/${n})`, verbatim: true }],
        });
        expect(m.text.startsWith(`(continued ${i + 2}/${n})\n`)).to.equal(true);
      });
      expect(sectionTexts(msgs).join('')).to.equal(escapeSlackText(words(100000)));
    });

    it('prefers newline, then space boundaries', () => {
      const line = 'x'.repeat(99) + '\n'; // 100 chars per line
      const msgs = render(line.repeat(40));
      expect(sectionTexts(msgs).map((s) => s.length)).to.deep.equal([3000, 1000]);
      expect(sectionTexts(msgs)[0]!.endsWith('\n')).to.equal(true);
      const spaced = render(('y'.repeat(9) + ' ').repeat(400));
      expect(sectionTexts(spaced).every((s, i, a) => i === a.length - 1 || s.endsWith(' '))).to.equal(true);
      expect(sectionTexts(spaced).join('')).to.equal(('y'.repeat(9) + ' ').repeat(400));
    });

    it('never splits a surrogate pair or an escape entity on hard cuts', () => {
      const text = '😀a&b'.repeat(30000); // no spaces or newlines
      const msgs = render(text);
      assertWithinLimits(msgs);
      const chunks = sectionTexts(msgs);
      expect(chunks.length).to.be.greaterThan(10);
      for (const c of chunks) {
        expect(c.charCodeAt(0) >= 0xdc00 && c.charCodeAt(0) <= 0xdfff, 'starts with a low surrogate').to.equal(false);
        const last = c.charCodeAt(c.length - 1);
        expect(last >= 0xd800 && last <= 0xdbff, 'ends with a high surrogate').to.equal(false);
        expect(c).to.not.match(/&(a|am|amp)?$/);
        expect(c).to.not.match(/^(mp;|p;|;)/);
      }
      expect(chunks.join('')).to.equal(escapeSlackText(text));
    });

    it('packs 60 fields into sections of at most 10 in one message', () => {
      const obj: Obj = { 'Type of data': 'Incident' };
      for (let i = 1; i <= 60; i++) obj[`Field ${i}`] = { type: 'string', data: `value ${i}` };
      const msgs = render(obj);
      expect(msgs).to.have.length(1);
      assertWithinLimits(msgs);
      const sections = msgs[0]!.blocks.filter((b) => b['type'] === 'section');
      expect(sections).to.have.length(6);
      expect(sections.map((s) => (s['fields'] as Obj[]).length)).to.deep.equal([10, 10, 10, 10, 10, 10]);
      expect(fieldTexts(msgs)).to.deep.equal(Array.from({ length: 60 }, (_, i) => `*Field ${i + 1}*\nvalue ${i + 1}`));
      expect(msgs[0]!.text.split('\n')).to.have.length(61);
    });

    it('splits very many fields across messages within 50 blocks, keeping order', () => {
      const obj: Obj = {};
      for (let i = 1; i <= 700; i++) obj[`F${i}`] = 'v'.repeat(40);
      const msgs = render(obj);
      expect(msgs.length).to.be.greaterThan(1);
      assertWithinLimits(msgs);
      const labels = fieldTexts(msgs).map((f) => f.split('\n')[0]);
      expect(labels).to.deep.equal(Array.from({ length: 700 }, (_, i) => `*F${i + 1}*`));
      expect(msgs[0]!.blocks.length).to.equal(50);
    });

    it('moves a value too long for a field into its own section, keeping order', () => {
      const long = 'L'.repeat(2500);
      const msgs = render({ A: 'a', Long: long, B: 'b' });
      expect(msgs[0]!.blocks).to.deep.equal([
        { type: 'section', fields: [{ type: 'mrkdwn', text: '*A*\na', verbatim: true }] },
        { type: 'section', text: { type: 'mrkdwn', text: `*Long*\n${long}`, verbatim: true } },
        { type: 'section', fields: [{ type: 'mrkdwn', text: '*B*\nb', verbatim: true }] },
      ]);
      expect(msgs[0]!.text).to.equal(`*A*: a\n*Long*\n${long}\n*B*: b`);
    });

    it('counts escaped length: a value within 2000 raw chars but longer once escaped is a section', () => {
      const msgs = render({ A: '<'.repeat(600) });
      expect(fieldTexts(msgs)).to.deep.equal([]);
      expect(sectionTexts(msgs)).to.deep.equal([`*A*\n${'&lt;'.repeat(600)}`]);
    });

    it('splits a field whose label alone exceeds the section limit, losing nothing', () => {
      const label = 'Label '.repeat(700).trim();
      const msgs = render({ [label]: 'value', After: 'a' });
      assertWithinLimits(msgs);
      expect(sectionTexts(msgs).join('')).to.equal(`*${label}*\nvalue`);
      expect(fieldTexts(msgs)).to.deep.equal(['*After*\na']);
    });

    it('truncates only the header block; the full value is in the fallback text', () => {
      const title = 'T'.repeat(146) + ' & more title text';
      const msgs = render({ 'Type of data': title, X: 1 });
      const header = textOf(msgs[0]!.blocks[0]!['text']);
      expect(header.length).to.be.at.most(150);
      expect(header).to.equal('T'.repeat(146) + '…');
      expect(msgs[0]!.text.split('\n')[0]).to.equal(escapeSlackText(title));
      assertWithinLimits(msgs);
    });

    it('does not cut the header inside an entity', () => {
      const msgs = render({ 'Type of data': 'H'.repeat(147) + '&&&&' });
      const header = textOf(msgs[0]!.blocks[0]!['text']);
      expect(header).to.equal('H'.repeat(147) + '…');
    });

    it('keeps an enormous header in sections so nothing is lost', () => {
      const title = 'word '.repeat(2000).trim();
      const msgs = render({ 'Type of data': title, X: 'x' });
      assertWithinLimits(msgs);
      expect(textOf(msgs[0]!.blocks[0]!['text']).endsWith('…')).to.equal(true);
      expect(sectionTexts(msgs).join('')).to.equal(title);
    });

    it('renders 1 MB of text, HTML and fields within Slack\'s limits', () => {
      const mb = 'lorem ipsum <b>dolor</b> & sit amet\n'.repeat(Math.ceil(1_000_000 / 36));
      const plain = render(mb);
      assertWithinLimits(plain);
      expect(sectionTexts(plain).join('')).to.equal(escapeSlackText(mb).trimEnd() + '\n');

      const rich = render({ D: { type: 'richtext', data: '<p>hello <b>world</b> &amp; <i>more</i></p>'.repeat(25000) } });
      assertWithinLimits(rich);
      expect(rich.length).to.be.greaterThan(10);

      // Unclosed tags and comments must not make the HTML scanner backtrack: a
      // quadratic scan of these would run past mocha's timeout.
      assertWithinLimits(render({ D: { type: 'richtext', data: '<a "'.repeat(250000) } }));
      assertWithinLimits(render({ D: { type: 'richtext', data: '<!--<script><b x="'.repeat(60000) } }));
    });
  });
});
