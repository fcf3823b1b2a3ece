import { expect } from 'chai';
import { hasBidiControls, stripBidiControls } from '../../../../src/functions/slack/bidi.js';

describe('bidi controls', function () {
  const controls = ['\u061C', '\u200E', '\u200F', '\u202A', '\u202B', '\u202C', '\u202D', '\u202E', '\u2066', '\u2067', '\u2068', '\u2069'];

  it('removes every override, embedding, isolate and mark', function () {
    for (const c of controls) {
      expect(stripBidiControls(`a${c}b${c}`), `U+${c.codePointAt(0)!.toString(16)}`).to.equal('ab');
      expect(hasBidiControls(`x${c}`)).to.equal(true);
    }
    expect(stripBidiControls('invoice\u202Efdp.exe')).to.equal('invoicefdp.exe');
  });

  it('keeps everything else, including right-to-left letters and other invisible characters', function () {
    const text = 'report-שלום-تقرير 2024\u200B\u200D.pdf';
    expect(stripBidiControls(text)).to.equal(text);
    expect(hasBidiControls(text)).to.equal(false);
    // Repeated calls give the same answer (no state kept between them).
    expect(hasBidiControls('a\u202Eb')).to.equal(true);
    expect(hasBidiControls('a\u202Eb')).to.equal(true);
  });
});
