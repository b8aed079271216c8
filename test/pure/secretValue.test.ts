/** readSecretValue (core/secrets.ts): what the codec's keys, its token and a worker's secrets read a reference as. */
import { describe, expect, it } from 'vitest';
import { readSecretValue } from '../../core/secrets';

const files: Record<string, string> = { '/run/password': 'pa55\n', '/run/key': 'line one\nline two\r\n', '/run/bare': 'x' };
const readFile = (path: string) => {
  const text = files[path];
  if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file, open '${path}'`), { code: 'ENOENT' });
  return text;
};

describe('a secret reference read', () => {
  it('is the variable, unless it is unset or empty', () => {
    const env = { SET: 's3cret', EMPTY: '' };
    expect(readSecretValue({ source: 'env', name: 'SET' }, env, readFile)).toEqual({ value: 's3cret' });
    expect(readSecretValue({ source: 'env', name: 'EMPTY' }, env, readFile)).toEqual({ problem: 'the variable EMPTY is not set' });
    expect(readSecretValue({ source: 'env', name: 'UNSET' }, env, readFile, ' on this worker')).toEqual({ problem: 'the variable UNSET is not set on this worker' });
  });

  it("is the file without one trailing newline, which echo adds; the file's own lines stay", () => {
    expect(readSecretValue({ source: 'file', path: '/run/password' }, {}, readFile)).toEqual({ value: 'pa55' });
    expect(readSecretValue({ source: 'file', path: '/run/key' }, {}, readFile)).toEqual({ value: 'line one\nline two' });
    expect(readSecretValue({ source: 'file', path: '/run/bare' }, {}, readFile)).toEqual({ value: 'x' });
  });

  it("names the error code of a file that cannot be read, never a value", () => {
    expect(readSecretValue({ source: 'file', path: '/run/none' }, {}, readFile, ' on this worker')).toEqual({ problem: 'the file cannot be read on this worker: ENOENT' });
  });
});
