/**
 * Settles with `work`, or rejects with `onTimeout()` after `ms`: every wait on a remote system has
 * a bound. `work` is not cancelled (a late rejection is swallowed here, not left unhandled).
 */
export function withTimeout<T>(work: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), ms);
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
