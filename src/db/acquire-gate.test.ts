import { describe, expect, it } from 'vitest';
import { AcquireGate, AcquireTimeoutError } from './acquire-gate.js';

/** A piece of work the test finishes (or fails) when it chooses. */
function held<T = string>() {
  let finish!: (value: T) => void;
  let fail!: (error: Error) => void;
  const done = new Promise<T>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  let started = false;
  return {
    work: () => {
      started = true;
      return done;
    },
    get started() {
      return started;
    },
    finish: (value: T) => finish(value),
    fail: (error: Error) => fail(error),
  };
}

const tick = () => new Promise((r) => setImmediate(r));

describe(AcquireGate.name, () => {
  it('runs work at once while a slot is free and holds the slot until the work settles', async () => {
    const gate = new AcquireGate({ slots: 2, timeoutMs: 10_000 });
    const a = held();
    const b = held();
    const ra = gate.run(a.work);
    const rb = gate.run(b.work);
    expect(a.started && b.started).toBe(true);
    expect(gate.stats()).toEqual({ inUse: 2, waiting: 0, timeouts: 0 });
    a.finish('a');
    b.finish('b');
    await expect(Promise.all([ra, rb])).resolves.toEqual(['a', 'b']);
    expect(gate.stats()).toEqual({ inUse: 0, waiting: 0, timeouts: 0 });
  });

  it('makes work wait while every slot is held, then hands freed slots to waiters in arrival order', async () => {
    const gate = new AcquireGate({ slots: 1, timeoutMs: 10_000 });
    const first = held();
    const second = held();
    const third = held();
    const order: string[] = [];
    const runs = [first, second, third].map((h, i) => gate.run(h.work).then((v) => order.push(`${i}:${v}`)));
    await tick();
    expect([first.started, second.started, third.started]).toEqual([true, false, false]);
    expect(gate.stats()).toMatchObject({ inUse: 1, waiting: 2 });
    first.finish('x');
    await tick();
    expect(second.started).toBe(true);
    expect(third.started).toBe(false);
    second.finish('y');
    await tick();
    third.finish('z');
    await Promise.all(runs);
    expect(order).toEqual(['0:x', '1:y', '2:z']);
    expect(gate.stats()).toEqual({ inUse: 0, waiting: 0, timeouts: 0 });
  });

  it('refuses a waiter past the deadline with a connection-level error, without ever starting its work', async () => {
    const gate = new AcquireGate({ slots: 1, timeoutMs: 30 });
    const holder = held();
    const holding = gate.run(holder.work);
    const late = held();
    const refused = gate.run(late.work);
    await expect(refused).rejects.toBeInstanceOf(AcquireTimeoutError);
    await expect(refused).rejects.toMatchObject({ code: '08001', waitedMs: 30 });
    expect(late.started).toBe(false);
    expect(gate.stats()).toEqual({ inUse: 1, waiting: 0, timeouts: 1 });
    holder.finish('done');
    await holding;
    expect(gate.stats()).toEqual({ inUse: 0, waiting: 0, timeouts: 1 });
  });

  it('gives the slot of a refused waiter to no one twice: later callers still get every slot', async () => {
    const gate = new AcquireGate({ slots: 2, timeoutMs: 30 });
    const holders = [held(), held()];
    const holding = holders.map((h) => gate.run(h.work));
    await expect(gate.run(held().work)).rejects.toBeInstanceOf(AcquireTimeoutError);
    holders.forEach((h) => h.finish('ok'));
    await Promise.all(holding);
    const again = [held(), held()];
    const running = again.map((h) => gate.run(h.work));
    expect(again.every((h) => h.started)).toBe(true);
    again.forEach((h) => h.finish('ok'));
    await Promise.all(running);
    expect(gate.stats().inUse).toBe(0);
  });

  it('frees the slot when the work fails, and passes the failure on unchanged', async () => {
    const gate = new AcquireGate({ slots: 1, timeoutMs: 10_000 });
    const failing = held();
    const waiting = held();
    const failed = gate.run(failing.work);
    const next = gate.run(waiting.work);
    const boom = new Error('boom');
    failing.fail(boom);
    await expect(failed).rejects.toBe(boom);
    await tick();
    expect(waiting.started).toBe(true);
    waiting.finish('after');
    await expect(next).resolves.toBe('after');
    expect(gate.stats().inUse).toBe(0);
  });

  it('frees the slot when the work throws before returning a promise', async () => {
    const gate = new AcquireGate({ slots: 1, timeoutMs: 10_000 });
    await expect(
      gate.run(() => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
    expect(gate.stats().inUse).toBe(0);
  });

  it('refuses a gate without slots or without a deadline', () => {
    expect(() => new AcquireGate({ slots: 0, timeoutMs: 100 })).toThrow(RangeError);
    expect(() => new AcquireGate({ slots: 1, timeoutMs: 0 })).toThrow(RangeError);
  });
});
