/**
 * The "Close…" modal's submission as Slack sends it back (`view.state.values[block][action]`):
 * read into a resolution and summary, and refused with a reason when it is not one the
 * modal offered (a forged or stale view).
 */
import { expect } from 'chai';
import { closeModal, readCloseSubmission } from '../../../../../src/functions/slack/triage/modal.js';

const target = { incidentId: 2103, channelId: 'C0123ABC', ts: '1712345678.000100' };

/** A submission of the modal closeModal builds, with the given input state. */
function submitted(resolution: unknown, summary: unknown): Record<string, unknown> {
  const view = closeModal(target);
  return {
    ...view,
    state: {
      values: {
        resolution: { value: { type: 'static_select', selected_option: resolution } },
        summary: { value: { type: 'plain_text_input', value: summary } },
      },
    },
  };
}

describe('triage close modal submission', function () {
  it('reads the chosen resolution, the trimmed summary and the card it belongs to', function () {
    const read = readCloseSubmission(submitted({ text: { type: 'plain_text', text: 'Duplicate' }, value: 'Duplicate' }, '  duplicate of 2099 '));
    expect(read).to.deep.equal({ target, resolution: 'Duplicate', summary: 'duplicate of 2099' });
  });

  it('refuses a resolution the modal did not offer, none at all, and a view without state', function () {
    expect(readCloseSubmission(submitted({ value: 'Deleted' }, 'x'))).to.match(/^choose a resolution \(Resolved, /);
    expect(readCloseSubmission(submitted(null, 'x'))).to.match(/^choose a resolution/);
    expect(readCloseSubmission(closeModal(target))).to.match(/^choose a resolution/);
    expect(readCloseSubmission({ ...submitted({ value: 'Resolved' }, 'x'), state: 'not an object' })).to.match(/^choose a resolution/);
  });

  it('refuses an empty summary and a view that names no incident', function () {
    expect(readCloseSubmission(submitted({ value: 'Resolved' }, '   '))).to.equal('write a resolution summary');
    expect(readCloseSubmission(submitted({ value: 'Resolved' }, 42))).to.equal('write a resolution summary');
    expect(readCloseSubmission({ ...submitted({ value: 'Resolved' }, 'x'), private_metadata: '{"incident_id": "2103"}' })).to.equal(
      'the form names no valid incident',
    );
    expect(readCloseSubmission(undefined)).to.equal('the form carries no incident');
  });
});
