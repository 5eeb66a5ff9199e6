import { ValidationError } from './errors.js';

// Names end up inside Redis keys and AMQP queue names: a closed alphabet keeps a name from
// escaping its key (no `{`, `}`, spaces or `:` in queue names, which would move hash slots).
const QUEUE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$/;
const TASK_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,199}$/;

export const queueNamePattern = QUEUE_NAME;
/** Task ids as enqueue makes (UUIDs) or accepts them (`enqueue(…, { id })`). */
export const taskIdPattern = /^[A-Za-z0-9_.:-]{1,200}$/;

export function assertTaskId(id: string): string {
  if (typeof id !== 'string' || !taskIdPattern.test(id)) throw new ValidationError('INVALID_NAME', `invalid task id ${JSON.stringify(id)}: a task id is 1–200 characters from A–Z a–z 0–9 _ . : -`);
  return id;
}
export const taskNamePattern = TASK_NAME;

export function assertQueueName(name: string): string {
  if (!QUEUE_NAME.test(name)) {
    throw new ValidationError(
      'INVALID_NAME',
      `invalid queue name ${JSON.stringify(name)}: use 1–100 characters from A–Z a–z 0–9 _ . - (not starting with . or -)`,
    );
  }
  return name;
}

export function assertTaskName(name: string): string {
  if (!TASK_NAME.test(name)) {
    throw new ValidationError(
      'INVALID_NAME',
      `invalid task name ${JSON.stringify(name)}: use 1–200 characters from A–Z a–z 0–9 _ . : - (e.g. "math.add")`,
    );
  }
  return name;
}
