/** Binary min-heap on (at, seq): earliest time first, then insertion order. */
export class TimeHeap<T> {
  #items: { at: number; seq: number; value: T }[] = [];
  #seq = 0;

  get size(): number {
    return this.#items.length;
  }

  peekAt(): number | undefined {
    return this.#items[0]?.at;
  }

  push(at: number, value: T): void {
    const items = this.#items;
    items.push({ at, seq: this.#seq++, value });
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#less(i, parent)) break;
      this.#swap(i, parent);
      i = parent;
    }
  }

  /** Removes and returns the earliest item if it is due at or before `now`. */
  popDue(now: number): T | undefined {
    const items = this.#items;
    const top = items[0];
    if (!top || top.at > now) return undefined;
    const last = items.pop()!;
    if (items.length > 0) {
      items[0] = last;
      this.#siftDown(0);
    }
    return top.value;
  }

  /** The earliest `n` items, earliest first, left in place: a walk down from the root, O(n²) at worst for small `n`. */
  earliest(n: number): { at: number; value: T }[] {
    const items = this.#items;
    const out: { at: number; value: T }[] = [];
    // Nodes whose parent is already listed: the next earliest is always one of them (heap order).
    const frontier = items.length > 0 ? [0] : [];
    while (out.length < n && frontier.length > 0) {
      let best = 0;
      for (let k = 1; k < frontier.length; k++) if (this.#less(frontier[k]!, frontier[best]!)) best = k;
      const i = frontier[best]!;
      frontier[best] = frontier[frontier.length - 1]!;
      frontier.pop();
      out.push({ at: items[i]!.at, value: items[i]!.value });
      for (const child of [2 * i + 1, 2 * i + 2]) if (child < items.length) frontier.push(child);
    }
    return out;
  }

  #siftDown(i: number): void {
    const n = this.#items.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let min = i;
      if (l < n && this.#less(l, min)) min = l;
      if (r < n && this.#less(r, min)) min = r;
      if (min === i) return;
      this.#swap(i, min);
      i = min;
    }
  }

  #less(a: number, b: number): boolean {
    const x = this.#items[a]!;
    const y = this.#items[b]!;
    return x.at < y.at || (x.at === y.at && x.seq < y.seq);
  }

  #swap(a: number, b: number): void {
    const items = this.#items;
    const t = items[a]!;
    items[a] = items[b]!;
    items[b] = t;
  }
}

/** FIFO with O(1) shift: a growing array and a head index, compacted when half is consumed. */
export class Fifo<T> {
  #items: T[] = [];
  #head = 0;

  get size(): number {
    return this.#items.length - this.#head;
  }

  push(value: T): void {
    this.#items.push(value);
  }

  peek(): T | undefined {
    return this.#head < this.#items.length ? this.#items[this.#head] : undefined;
  }

  /** The oldest `n` items (the next to shift), oldest first. */
  head(n: number): T[] {
    return this.#items.slice(this.#head, this.#head + Math.max(0, n));
  }

  /** The newest `n` items, oldest first. */
  tail(n: number): T[] {
    return this.#items.slice(Math.max(this.#head, this.#items.length - n));
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const value = this.#items[this.#head++];
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return value;
  }
}
