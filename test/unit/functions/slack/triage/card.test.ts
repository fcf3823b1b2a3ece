/**
 * The triage card's blocks: added after the message, redrawn in place (replacing only
 * its own blocks), kept within Slack's 50 blocks, and escaping what the platform says.
 */
import { expect } from 'chai';
import { cardBlocks, incidentIdOf, redrawCard, withCard } from '../../../../../src/functions/slack/triage/card.js';
import { incidentSummaryBlocks } from '../../../../../src/functions/slack/triage/incident-blocks.js';
import type { IncidentSummary } from '../../../../../src/platforms/platform.js';

type Json = Record<string, any>;

const INC: IncidentSummary = {
  id: 2103,
  name: 'Phishing wave',
  description: '',
  severity: 'Medium',
  status: 'Active',
  owner: { id: 7, email: 'alice@example.com', name: 'Alice <@U0ADMIN>' },
  resolution: null,
  resolution_summary: null,
};

const section = (text: string): Json => ({ type: 'section', text: { type: 'mrkdwn', text } });

describe('triage card blocks', function () {
  it('adds the actions after the message and refuses a first part with no room left', function () {
    const blocks = withCard([section('hello')], 2103);
    expect(blocks.map((b) => b.type)).to.deep.equal(['section', 'actions']);
    expect(() =>
      withCard(
        Array.from({ length: 50 }, (_, i) => section(String(i))),
        2103,
      ),
    ).to.throw(/no room for the triage card/);
  });

  it('redraws only its own blocks, shows the state and keeps the severity selected', function () {
    const first = redrawCard(withCard([section('hello')], 2103), INC, 'Severity set to Medium by Bob');
    const again = redrawCard(first, { ...INC, severity: 'High' }, 'Severity set to High by Bob');
    expect(again.map((b) => b.block_id ?? b.type)).to.deep.equal(['section', 'triage-state:2103', 'triage-last:2103', 'triage:2103']);
    expect((again[3] as Json).elements[1].initial_option.value).to.equal('High');
    expect(JSON.stringify(again)).to.include('Severity set to High by Bob').and.not.to.include('set to Medium');
  });

  it('leaves a closed incident without actions', function () {
    const blocks = cardBlocks({ ...INC, status: 'Closed', resolution: 'Duplicate' }, undefined);
    expect(blocks.map((b) => b.type)).to.deep.equal(['section']);
    expect(JSON.stringify(blocks)).to.include('Closed (Duplicate)');
  });

  it('stays within 50 blocks, giving up the last-change line and then the state before the actions', function () {
    const message = Array.from({ length: 48 }, (_, i) => section(String(i)));
    expect(
      redrawCard(message, INC, 'x')
        .map((b) => b.block_id ?? 'message')
        .slice(48),
    ).to.deep.equal(['triage-state:2103', 'triage:2103']);
    expect(
      redrawCard([...message, section('49')], INC, 'x')
        .slice(49)
        .map((b) => b.block_id),
    ).to.deep.equal(['triage:2103']);
  });

  it('escapes the owner and the names in the summary and the card', function () {
    const text = JSON.stringify([
      ...cardBlocks(INC, 'Assigned to <!here> by x'),
      ...incidentSummaryBlocks({ ...INC, name: '<!channel>' }, undefined),
    ]);
    expect(text).to.include('Alice &lt;@U0ADMIN&gt;').and.to.include('&lt;!here&gt;').and.to.include('&lt;!channel&gt;');
    expect(text).to.not.match(/<[@!]/);
  });

  it('reads incident ids from action values, refusing anything but a positive integer', function () {
    expect(incidentIdOf('2103')).to.equal(2103);
    for (const bad of ['0', '-1', '2103x', '', '1e3', '99999999999999999', undefined, 2103]) expect(incidentIdOf(bad)).to.equal(undefined);
  });
});
