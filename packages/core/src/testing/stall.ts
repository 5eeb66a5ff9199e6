/**
 * A real object whose named methods hang while `stalled` (a store that stops answering). The methods
 * are replaced on the object itself, so it keeps its identity: a broker's own store stays its own.
 */
export function stallable<T extends object>(target: T, methods: readonly (keyof T & string)[]) {
  const state = { stalled: false, calls: 0 };
  for (const name of methods) {
    const real = (target[name] as (...args: unknown[]) => unknown).bind(target);
    const stalling = (...args: unknown[]) => {
      state.calls++;
      return state.stalled ? new Promise(() => {}) : real(...args);
    };
    Object.defineProperty(target, name, { value: stalling, configurable: true, writable: true });
  }
  return state;
}
