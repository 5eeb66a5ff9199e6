import type { Client } from './scripts.js';

type Listener = () => void;

/**
 * The result store's pub/sub side.
 * 1. One subscriber connection, opened on first use, SSUBSCRIBEd to each queue's `done` channel
 *    while someone waits on that queue.
 * 2. Routes a published task id to the callers waiting for that id.
 * 3. After a reconnect, pokes every waiter so it re-reads the store: a message published while the
 *    connection was down is lost, the stored record is not.
 */
export class Subscriber {
  readonly #make: () => Client;
  #conn: Client | undefined;
  readonly #channels = new Map<string, { ready: Promise<unknown>; ids: Map<string, Set<Listener>> }>();
  #closed = false;

  constructor(make: () => Client) {
    this.#make = make;
  }

  /** Calls `onStored` when `id` is published on `channel` (and after reconnects); resolves once subscribed. */
  async listen(channel: string, id: string, onStored: Listener): Promise<() => void> {
    if (this.#closed) return () => {};
    const conn = this.#connection();
    let entry = this.#channels.get(channel);
    if (!entry) {
      entry = { ready: conn.ssubscribe(channel), ids: new Map() };
      this.#channels.set(channel, entry);
    }
    let set = entry.ids.get(id);
    if (!set) entry.ids.set(id, (set = new Set()));
    set.add(onStored);
    const stop = () => {
      set.delete(onStored);
      if (set.size === 0) entry.ids.delete(id);
      if (entry.ids.size === 0 && this.#channels.get(channel) === entry) {
        this.#channels.delete(channel);
        if (!this.#closed) conn.sunsubscribe(channel).catch(() => {});
      }
    };
    try {
      await entry.ready;
    } catch (err) {
      stop();
      throw err;
    }
    return stop;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const conn = this.#conn;
    this.#conn = undefined;
    this.#channels.clear();
    if (conn) conn.disconnect();
  }

  #connection(): Client {
    if (this.#conn) return this.#conn;
    const conn = this.#make();
    // A message is the comma-separated ids of one settle batch (task ids cannot contain commas).
    conn.on('smessage', (channel: string, message: string) => {
      const ids = this.#channels.get(channel)?.ids;
      if (!ids) return;
      for (const id of message.split(',')) {
        const listeners = ids.get(id);
        if (listeners) for (const fn of [...listeners]) fn();
      }
    });
    let first = true;
    conn.on('ready', () => {
      if (first) return void (first = false);
      for (const entry of this.#channels.values()) for (const set of entry.ids.values()) for (const fn of [...set]) fn();
    });
    conn.on('error', () => {}); // reconnects on its own; waiters time out if it never comes back
    return (this.#conn = conn);
  }
}
