// Unit tests of the version logic the conformance suite uses to pick its expectations.
import { describe, expect, it } from 'vitest';
import { atLeast, byVersion, missing, parseVersion } from './version.ts';

const v = (major: string, minor: string, gitVersion?: string) => parseVersion({ major, minor, gitVersion });

describe('parseVersion', () => {
  it.each([
    [
      { major: '1', minor: '20', gitVersion: 'v1.20.2' },
      { major: 1, minor: 20, text: '1.20.2' },
    ],
    [
      { major: '1', minor: '32', gitVersion: 'v1.32.0-devcluster' },
      { major: 1, minor: 32, text: '1.32.0-devcluster' },
    ],
    [
      { major: '1', minor: '27+', gitVersion: 'v1.27.3-gke.100' },
      { major: 1, minor: 27, text: '1.27.3-gke.100' },
    ],
    [
      { major: '1', minor: '24' },
      { major: 1, minor: 24, text: '1.24' },
    ],
  ])('reads %j', (body, expected) => {
    expect(parseVersion(body)).toEqual(expected);
  });

  it.each([[{}], [{ major: '1' }], [{ major: 'one', minor: '2' }]])('refuses %j', (body) => {
    expect(() => parseVersion(body)).toThrow('/version has no numeric major and minor');
  });
});

describe('atLeast', () => {
  it.each([
    ['1', '20', '1.20', true],
    ['1', '20', '1.21', false],
    ['1', '20', '1.9', true],
    ['1', '32', '1.25', true],
    ['2', '0', '1.40', true],
    ['1', '40', '2.0', false],
  ])('%s.%s is at least %s: %s', (major, minor, release, expected) => {
    expect(atLeast(v(major, minor), release)).toBe(expected);
  });

  it('refuses a release that is not major.minor', () => {
    expect(() => atLeast(v('1', '20'), '1.20.1')).toThrow('a release is written major.minor');
  });
});

describe('missing', () => {
  it.each([
    [
      '1',
      '20',
      'v1.20.2',
      'fieldValidation',
      '1.25',
      'fieldValidation needs Kubernetes 1.25; server is 1.20.2',
    ],
    ['1', '25', 'v1.25.0', 'fieldValidation', '1.25', undefined],
    ['1', '32', 'v1.32.0-devcluster', 'OpenAPI v3', '1.24', undefined],
  ])('%s.%s (%s) and %s since %s', (major, minor, git, feature, release, expected) => {
    expect(missing(v(major, minor, git), feature, release)).toBe(expected);
  });
});

describe('byVersion', () => {
  it.each([
    ['19', 'old'],
    ['20', 'old'],
    ['21', 'new'],
    ['32', 'new'],
  ])('1.%s with a change in 1.21 expects %s', (minor, expected) => {
    expect(byVersion(v('1', minor), '1.21', { before: 'old', from: 'new' })).toBe(expected);
  });
});
