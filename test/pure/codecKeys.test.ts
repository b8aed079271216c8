/** CUTOVER_CODEC_KEYS, parsed: the keys by reference, newest first, and every way the setting is refused. */
import { describe, expect, it } from 'vitest';
import { parseCodecKeys } from '../../core/codecKeys';

describe('CUTOVER_CODEC_KEYS', () => {
  it('lists keys by reference, newest first, separated by commas or blanks', () => {
    expect(parseCodecKeys('2026-11=env:CUTOVER_CODEC_KEY_NEW, 2026-05=file:/etc/cutover/codec-2026-05.key')).toEqual({
      ok: true,
      keys: [
        { id: '2026-11', ref: { source: 'env', name: 'CUTOVER_CODEC_KEY_NEW' } },
        { id: '2026-05', ref: { source: 'file', path: '/etc/cutover/codec-2026-05.key' } },
      ],
    });
    expect(parseCodecKeys('a=env:CUTOVER_CODEC_KEY_A\nb=env:CUTOVER_CODEC_KEY_B')).toMatchObject({ ok: true, keys: [{ id: 'a' }, { id: 'b' }] });
  });

  it.each([
    ['a key itself instead of a reference', 'k1=c2VjcmV0', /"c2VjcmV0" is not a secret reference: use env:NAME or file:\/absolute\/path/],
    ['an unknown reference scheme', 'k1=vault:kv/cutover', /"vault:kv\/cutover" is not a secret reference/],
    ['a relative file', 'k1=file:codec.key', /file: takes an absolute path/],
    ['an entry without an id', 'env:CUTOVER_CODEC_KEY_A', /is not ID=REFERENCE/],
    ['a variable any plan could name', 'k1=env:DB_KEY', /env:DB_KEY must be named CUTOVER_CODEC_\.\.\./],
    ['a duplicate id', 'k1=env:CUTOVER_CODEC_KEY_A,k1=env:CUTOVER_CODEC_KEY_B', /key id k1 is listed twice[^]*→ at \[1\]/],
    ['nothing', ' , ', /no key is listed/],
  ])('refuses %s, with the reason', (_what, setting, reason) => {
    const parsed = parseCodecKeys(setting);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.message).toMatch(reason);
  });
});
