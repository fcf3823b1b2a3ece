/**
 * The id and reference checks every platform shares (src/platforms/ids.ts). The
 * platforms' own tests check the same errors through getAttachment and saveExport.
 */
import { expect } from 'chai';
import { FunctionError } from '../../../src/core/runtime/errors.js';
import { checkAttachmentRef, checkId, describeValue, optionalId } from '../../../src/platforms/ids.js';

function thrown(fn: () => unknown): FunctionError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(FunctionError);
    return err as FunctionError;
  }
  expect.fail('expected a FunctionError');
}

describe('platform ids', () => {
  it('describeValue shows numbers and strings, and only the type of anything else', () => {
    expect(describeValue(12)).to.equal('12');
    expect(describeValue(12n)).to.equal('12');
    expect(describeValue('a"b')).to.equal('"a\\"b"');
    expect(describeValue(null)).to.equal('null');
    expect(describeValue({ secret: 'x' })).to.equal('a object');
    expect(describeValue(undefined)).to.equal('a undefined');
  });

  it('checkId accepts positive safe integers and refuses anything else, naming the field and the value', () => {
    expect(checkId(1, 'incident_id')).to.equal(1);
    expect(checkId(Number.MAX_SAFE_INTEGER, 'incident_id')).to.equal(Number.MAX_SAFE_INTEGER);
    for (const [value, shown] of [[0, '0'], [-3, '-3'], [1.5, '1.5'], ['7', '"7"'], [null, 'null'], [2 ** 53, String(2 ** 53)], [Number.NaN, 'NaN']] as const) {
      const err = thrown(() => checkId(value, 'task_id'));
      expect(err.code).to.equal('invalid_id');
      expect(err.retryable).to.equal(false);
      expect(err.message).to.equal(`task_id must be a positive integer, got ${shown}`);
    }
  });

  it('optionalId gives undefined for a missing id and checks a present one', () => {
    expect(optionalId(undefined, 'task_id')).to.equal(undefined);
    expect(optionalId(null, 'task_id')).to.equal(undefined);
    expect(optionalId(4, 'task_id')).to.equal(4);
    expect(thrown(() => optionalId(0, 'task_id')).code).to.equal('invalid_id');
  });

  it('checkAttachmentRef names exactly one file: an attachment or an artifact', () => {
    expect(checkAttachmentRef({ incidentId: 2103, attachmentId: 5 })).to.deep.equal({ incidentId: 2103, taskId: undefined, attachmentId: 5 });
    expect(checkAttachmentRef({ incidentId: 2103, taskId: 9, artifactId: 6 })).to.deep.equal({ incidentId: 2103, taskId: 9, artifactId: 6 });
    const both = thrown(() => checkAttachmentRef({ incidentId: 2103, attachmentId: 5, artifactId: 6 }));
    expect(both.code).to.equal('invalid_reference');
    expect(both.message).to.include('not both (got attachment 5 and artifact 6)');
    const neither = thrown(() => checkAttachmentRef({ incidentId: 2103, taskId: 9 }));
    expect(neither.code).to.equal('invalid_reference');
    expect(neither.message).to.include('to choose the file of incident 2103');
    // Ids are checked before the combination: a bad id is named even when both are given.
    expect(thrown(() => checkAttachmentRef({ incidentId: 2103, attachmentId: -1, artifactId: 6 })).code).to.equal('invalid_id');
  });
});
