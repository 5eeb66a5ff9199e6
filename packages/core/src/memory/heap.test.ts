import { describe, expect, it } from 'vitest';
import { Fifo, TimeHeap } from './heap.js';

describe('TimeHeap (delayed messages)', () => {
  it('gives back only what is due, earliest first, ties in insertion order', () => {
    const heap = new TimeHeap<string>();
    const items: [number, string][] = [[30, 'c1'], [10, 'a1'], [20, 'b1'], [10, 'a2'], [30, 'c2'], [5, 'z'], [20, 'b2'], [10, 'a3']];
    for (const [at, v] of items) heap.push(at, v);
    expect(heap.size).toBe(8);
    expect(heap.peekAt()).toBe(5);
    expect(heap.popDue(4)).toBeUndefined();
    const out: string[] = [];
    for (let v = heap.popDue(20); v !== undefined; v = heap.popDue(20)) out.push(v);
    expect(out).toEqual(['z', 'a1', 'a2', 'a3', 'b1', 'b2']);
    expect(heap.peekAt()).toBe(30);
    expect([heap.popDue(30), heap.popDue(30), heap.popDue(30)]).toEqual(['c1', 'c2', undefined]);
    expect(heap.size).toBe(0);
    expect(heap.peekAt()).toBeUndefined();
  });

  it('matches a stable sort on many random times', () => {
    const heap = new TimeHeap<number>();
    const input = Array.from({ length: 2_000 }, (_, i) => ({ at: (i * 7919) % 97, i }));
    for (const { at, i } of input) heap.push(at, i);
    const out: number[] = [];
    for (let v = heap.popDue(Infinity); v !== undefined; v = heap.popDue(Infinity)) out.push(v);
    expect(out).toEqual([...input].sort((a, b) => a.at - b.at || a.i - b.i).map((x) => x.i));
  });

  it('lists the earliest n in pop order without removing them (peek)', () => {
    const heap = new TimeHeap<number>();
    const input = Array.from({ length: 500 }, (_, i) => ({ at: (i * 7919) % 31, i }));
    for (const { at, i } of input) heap.push(at, i);
    const sorted = [...input].sort((a, b) => a.at - b.at || a.i - b.i);
    for (const n of [0, 1, 7, 120, 500, 900]) expect(heap.earliest(n)).toEqual(sorted.slice(0, n).map(({ at, i }) => ({ at, value: i })));
    expect(heap.size).toBe(500);
    expect(new TimeHeap<number>().earliest(3)).toEqual([]);
  });
});

describe('Fifo (ready messages, dead letters)', () => {
  it('keeps order, size, head and tail across its compactions', () => {
    const fifo = new Fifo<number>();
    expect([fifo.size, fifo.shift(), fifo.peek()]).toEqual([0, undefined, undefined]);
    for (let i = 0; i < 5_000; i++) fifo.push(i);
    for (let i = 0; i < 3_000; i++) expect(fifo.shift()).toBe(i);
    for (let i = 5_000; i < 6_000; i++) fifo.push(i);
    expect(fifo.size).toBe(3_000);
    expect(fifo.peek()).toBe(3_000);
    expect(fifo.tail(3)).toEqual([5_997, 5_998, 5_999]);
    expect(fifo.tail(10_000)).toHaveLength(3_000);
    expect(fifo.tail(10_000)[0]).toBe(3_000);
    expect(fifo.tail(0)).toEqual([]);
    const rest: number[] = [];
    for (let v = fifo.shift(); v !== undefined; v = fifo.shift()) rest.push(v);
    expect(rest).toEqual(Array.from({ length: 3_000 }, (_, i) => 3_000 + i));
    expect([fifo.size, fifo.peek()]).toEqual([0, undefined]);
  });
});
