// humanDuration: the AGE format kubectl prints (apimachinery util/duration.HumanDuration), row by row.
import { describe, expect, it } from 'vitest';
import { humanDuration } from '../../../src/runtime/duration.ts';

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;
const Y = 365 * D;

describe('humanDuration, as kubectl prints AGE', () => {
  it.each([
    ['a negative second of clock skew', -1.5 * S, '0s'],
    ['more skew than that', -2 * S, '<invalid>'],
    ['zero', 0, '0s'],
    ['seconds below two minutes', 119 * S, '119s'],
    ['two minutes exactly', 2 * M, '2m'],
    ['minutes with seconds below ten minutes', 2 * M + 1 * S, '2m1s'],
    ['minutes only from ten minutes', 10 * M + 30 * S, '10m'],
    ['minutes below three hours', 3 * H - 1 * S, '179m'],
    ['three hours exactly', 3 * H, '3h'],
    ['hours with minutes below eight hours', 3 * H + 30 * M, '3h30m'],
    ['hours only below two days', 47 * H + 59 * M, '47h'],
    ['two days exactly', 2 * D, '2d'],
    ['days with hours below eight days', 2 * D + H, '2d1h'],
    ['days only below two years', 400 * D, '400d'],
    ['two years exactly', 2 * Y, '2y'],
    ['years with days below eight years', 2 * Y + D, '2y1d'],
    ['years only from eight years', 9 * Y + 20 * D, '9y'],
  ])('prints %s as kubectl does', (_name, ms, want) => {
    expect(humanDuration(ms)).toBe(want);
  });
});
