/** A mistake in how the command was called: printed as one `celeriac: …` line, exit code 2. */
export class UsageError extends Error {}
