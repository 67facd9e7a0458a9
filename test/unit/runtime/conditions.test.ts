import { describe, expect, it } from 'vitest';
import type { Condition } from '../../../src/api/index.ts';
import {
  clearProgress,
  markReconciling,
  markStalled,
  setCondition,
} from '../../../src/runtime/conditions.ts';

const T0 = new Date('2026-01-01T00:00:00Z');
const T1 = new Date('2026-01-01T00:05:00Z');
const ready = (over: Partial<Condition> = {}): Condition => ({
  type: 'Ready',
  status: 'False',
  observedGeneration: 1,
  lastTransitionTime: T0.toISOString(),
  reason: 'RolloutProgressing',
  message: 'Rolling out.',
  ...over,
});

describe('setCondition', () => {
  const cases: {
    name: string;
    given: Condition[] | undefined;
    set: { status: Condition['status']; reason: string; message: string };
    generation: number;
    wantTransition: string;
  }[] = [
    {
      name: 'adds a missing condition at now',
      given: undefined,
      set: { status: 'False', reason: 'RolloutProgressing', message: 'Rolling out.' },
      generation: 1,
      wantTransition: T1.toISOString(),
    },
    {
      name: 'keeps lastTransitionTime when nothing but the generation changed',
      given: [ready()],
      set: { status: 'False', reason: 'RolloutProgressing', message: 'Rolling out.' },
      generation: 2,
      wantTransition: T0.toISOString(),
    },
    {
      name: 'moves lastTransitionTime when the status changes',
      given: [ready()],
      set: { status: 'True', reason: 'RolloutProgressing', message: 'Rolling out.' },
      generation: 1,
      wantTransition: T1.toISOString(),
    },
    {
      name: 'moves lastTransitionTime when the reason changes',
      given: [ready()],
      set: { status: 'False', reason: 'RolloutHalted', message: 'Rolling out.' },
      generation: 1,
      wantTransition: T1.toISOString(),
    },
    {
      name: 'moves lastTransitionTime when the message changes',
      given: [ready()],
      set: { status: 'False', reason: 'RolloutProgressing', message: '2/5 nodes active.' },
      generation: 1,
      wantTransition: T1.toISOString(),
    },
  ];

  it.each(cases)('$name', ({ given, set, generation, wantTransition }) => {
    const got = setCondition(given, { type: 'Ready', ...set }, generation, T1);
    expect(got).toHaveLength(1);
    expect(got[0]).toEqual({
      type: 'Ready',
      ...set,
      observedGeneration: generation,
      lastTransitionTime: wantTransition,
    });
  });

  it('keeps the other conditions and their order', () => {
    const stalled = ready({ type: 'Stalled', status: 'True', reason: 'RolloutHalted' });
    const got = setCondition(
      [ready(), stalled],
      { type: 'Ready', status: 'True', reason: 'RolloutComplete', message: 'Done.' },
      1,
      T1,
    );
    expect(got.map((c) => c.type)).toEqual(['Ready', 'Stalled']);
    expect(got[1]).toBe(stalled);
  });

  it('does not mutate its input', () => {
    const given = [ready()];
    setCondition(
      given,
      { type: 'Ready', status: 'True', reason: 'RolloutComplete', message: 'Done.' },
      1,
      T1,
    );
    expect(given).toEqual([ready()]);
  });
});

describe('kstatus helpers', () => {
  const cases: {
    name: string;
    given: Condition[];
    act: (c: Condition[]) => Condition[];
    wantTypes: string[];
  }[] = [
    {
      name: 'markStalled removes Reconciling',
      given: [ready(), ready({ type: 'Reconciling', status: 'True' })],
      act: (c) => markStalled(c, 'RolloutHalted', 'Halted.', 1, T1),
      wantTypes: ['Ready', 'Stalled'],
    },
    {
      name: 'markReconciling removes Stalled',
      given: [ready(), ready({ type: 'Stalled', status: 'True' })],
      act: (c) => markReconciling(c, 'RolloutProgressing', 'Rolling out.', 1, T1),
      wantTypes: ['Ready', 'Reconciling'],
    },
    {
      name: 'clearProgress removes both',
      given: [
        ready(),
        ready({ type: 'Stalled', status: 'True' }),
        ready({ type: 'Reconciling', status: 'True' }),
      ],
      act: clearProgress,
      wantTypes: ['Ready'],
    },
  ];
  it.each(cases)('$name', ({ given, act, wantTypes }) => {
    expect(act(given).map((c) => c.type)).toEqual(wantTypes);
  });

  it('sets the marked condition True, stamped with the generation', () => {
    const [stalled] = markStalled([], 'RolloutHalted', 'Node n1 rolled back.', 7, T1);
    expect(stalled).toMatchObject({
      type: 'Stalled',
      status: 'True',
      observedGeneration: 7,
      reason: 'RolloutHalted',
    });
  });
});
