/**
 * Reading the functions' inputs (inputs.ts): what the schema cannot say is checked here,
 * with errors that say what to fix.
 */
import { expect } from 'chai';
import { FunctionError } from '../../../../src/core/runtime/errors.js';
import {
  boolInput,
  channelInputs,
  emailsInput,
  intInput,
  parseEmails,
  renderTextInput,
  strInput,
  verbChannelInputs,
} from '../../../../src/functions/slack/inputs.js';
import type { SlackConfig } from '../../../../src/functions/slack/config.js';

function thrown(fn: () => unknown): FunctionError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(FunctionError);
    return err as FunctionError;
  }
  throw new Error('expected a FunctionError, got none');
}

describe('fn_slack inputs', () => {
  it('reads typed values, treating a blank text and a value of another type as not given', () => {
    const inputs = { n: 7, s: 'inc-1', blank: '  ', b: false, wrong: '7' };
    expect(intInput(inputs, 'n')).to.equal(7);
    expect(intInput(inputs, 'wrong')).to.equal(undefined);
    expect(strInput(inputs, 's')).to.equal('inc-1');
    expect(strInput(inputs, 'blank')).to.equal(undefined);
    expect(strInput(inputs, 'n')).to.equal(undefined);
    expect(boolInput(inputs, 'b')).to.equal(false);
    expect(boolInput(inputs, 'missing')).to.equal(undefined);
  });

  it('splits an email list on commas, semicolons and spaces, once per address whatever its case', () => {
    expect(parseEmails(' a@x.com, b@y.org;A@X.com  c@z.net ,, not-an-address')).to.deep.equal({
      emails: ['a@x.com', 'b@y.org', 'c@z.net'],
      invalid: ['not-an-address'],
    });
    expect(parseEmails(undefined)).to.deep.equal({ emails: [], invalid: [] });
  });

  it('refuses an email list with something that is not an address, naming it and the input', () => {
    const err = thrown(() => emailsInput({ slack_user_emails: 'a@x.com, bob' }, 'slack_user_emails'));
    expect(err.code).to.equal('invalid_email');
    expect(err.message).to.equal('slack_user_emails has "bob", which is not an email address: give comma-separated addresses');
  });

  it('refuses an empty email list, saying what to give', () => {
    const err = thrown(() => emailsInput({ slack_participant_emails: ' , ' }, 'slack_participant_emails'));
    expect(err.code).to.equal('missing_emails');
    expect(err.message).to.contain('slack_participant_emails is empty');
    expect(emailsInput({ e: 'a@x.com;b@y.org' }, 'e')).to.deep.equal(['a@x.com', 'b@y.org']);
  });

  it('reads the channel inputs; a verb never creates the channel', () => {
    const inputs = { incident_id: 2103, task_id: 7, slack_channel: 'inc-2103', slack_channel_id: '', slack_is_channel_private: true };
    const expected = { incidentId: 2103, taskId: 7, slackChannel: 'inc-2103', slackChannelId: undefined, isPrivate: true };
    expect(channelInputs(inputs)).to.deep.equal(expected);
    expect(verbChannelInputs(inputs)).to.deep.equal({ ...expected, create: false });
  });

  it('lays slack_text out as Slack messages, and refuses an empty one as invalid_slack_text', () => {
    const config = { time_zone: 'UTC', soar_url: '' } as SlackConfig;
    const parts = renderTextInput({ incident_id: 1, slack_text: 'hello *world*' }, config);
    expect(parts).to.have.length(1);
    expect(parts[0]!.text).to.contain('hello');
    const err = thrown(() => renderTextInput({ incident_id: 1, slack_text: '' }, config));
    expect(err.code).to.equal('invalid_slack_text');
    expect(err.message).to.equal('slack_text is empty: there is nothing to post to Slack');
  });
});
