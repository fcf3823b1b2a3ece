/** HTML character references. */

const NAMED_ENTITIES: ReadonlyMap<string, string> = new Map([
  ['amp', '&'], ['lt', '<'], ['gt', '>'], ['quot', '"'], ['apos', "'"], ['nbsp', '\u00a0'],
  ['ensp', '\u2002'], ['emsp', '\u2003'], ['thinsp', '\u2009'], ['zwnj', '\u200c'], ['zwj', '\u200d'],
  ['shy', '\u00ad'], ['copy', '©'], ['reg', '®'], ['trade', '™'], ['hellip', '…'], ['mdash', '—'],
  ['ndash', '–'], ['lsquo', '‘'], ['rsquo', '’'], ['sbquo', '‚'], ['ldquo', '“'], ['rdquo', '”'],
  ['bdquo', '„'], ['laquo', '«'], ['raquo', '»'], ['lsaquo', '‹'], ['rsaquo', '›'], ['bull', '•'],
  ['middot', '·'], ['deg', '°'], ['plusmn', '±'], ['times', '×'], ['divide', '÷'], ['micro', 'µ'],
  ['para', '¶'], ['sect', '§'], ['cent', '¢'], ['pound', '£'], ['yen', '¥'], ['euro', '€'],
  ['curren', '¤'], ['iexcl', '¡'], ['iquest', '¿'], ['frac12', '½'], ['frac14', '¼'], ['frac34', '¾'],
  ['sup1', '¹'], ['sup2', '²'], ['sup3', '³'], ['larr', '←'], ['rarr', '→'], ['uarr', '↑'],
  ['darr', '↓'], ['harr', '↔'], ['rArr', '⇒'], ['lArr', '⇐'], ['hArr', '⇔'], ['ne', '≠'], ['le', '≤'],
  ['ge', '≥'], ['infin', '∞'], ['check', '✓'], ['dagger', '†'], ['Dagger', '‡'], ['permil', '‰'],
  ['prime', '′'], ['Prime', '″'], ['acute', '´'], ['uml', '¨'], ['cedil', '¸'], ['macr', '¯'],
  ['ordf', 'ª'], ['ordm', 'º'], ['not', '¬'], ['brvbar', '¦'], ['szlig', 'ß'], ['agrave', 'à'],
  ['aacute', 'á'], ['acirc', 'â'], ['atilde', 'ã'], ['auml', 'ä'], ['aring', 'å'], ['aelig', 'æ'],
  ['ccedil', 'ç'], ['egrave', 'è'], ['eacute', 'é'], ['ecirc', 'ê'], ['euml', 'ë'], ['igrave', 'ì'],
  ['iacute', 'í'], ['icirc', 'î'], ['iuml', 'ï'], ['ntilde', 'ñ'], ['ograve', 'ò'], ['oacute', 'ó'],
  ['ocirc', 'ô'], ['otilde', 'õ'], ['ouml', 'ö'], ['oslash', 'ø'], ['ugrave', 'ù'], ['uacute', 'ú'],
  ['ucirc', 'û'], ['uuml', 'ü'], ['yacute', 'ý'], ['yuml', 'ÿ'], ['Agrave', 'À'], ['Aacute', 'Á'],
  ['Acirc', 'Â'], ['Atilde', 'Ã'], ['Auml', 'Ä'], ['Aring', 'Å'], ['AElig', 'Æ'], ['Ccedil', 'Ç'],
  ['Egrave', 'È'], ['Eacute', 'É'], ['Ecirc', 'Ê'], ['Euml', 'Ë'], ['Ntilde', 'Ñ'], ['Oacute', 'Ó'],
  ['Ouml', 'Ö'], ['Oslash', 'Ø'], ['Uacute', 'Ú'], ['Uuml', 'Ü'],
]);
/** Entities HTML also recognises without the trailing semicolon. */
const LEGACY_ENTITIES: ReadonlySet<string> = new Set(['amp', 'lt', 'gt', 'quot', 'nbsp', 'copy', 'reg']);

function codePointToString(cp: number): string {
  if (!Number.isFinite(cp) || cp <= 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return '\ufffd';
  return String.fromCodePoint(cp);
}

/** Decodes HTML character references (named, decimal and hex). Unknown names are kept as typed. */
export function decodeEntities(s: string): string {
  if (s.indexOf('&') < 0) return s;
  return s.replace(
    /&(?:#(\d{1,8})|#[xX]([0-9a-fA-F]{1,7})|([a-zA-Z][a-zA-Z0-9]{1,31}))(;?)/g,
    (m: string, dec?: string, hex?: string, name?: string, semi?: string) => {
      if (dec !== undefined) return codePointToString(parseInt(dec, 10));
      if (hex !== undefined) return codePointToString(parseInt(hex, 16));
      if (name !== undefined) {
        const v = NAMED_ENTITIES.get(name);
        if (v !== undefined && (semi === ';' || LEGACY_ENTITIES.has(name))) return v;
      }
      return m;
    },
  );
}
