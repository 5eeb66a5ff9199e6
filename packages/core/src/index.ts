/**
 * @celeriac/core — typed tasks, the broker contract, and the in-memory backend.
 *
 *   const app = createApp({ broker: 'memory://' });
 *   const add = app.task('math.add', { input: z.object({ a: z.number(), b: z.number() }) }, ({ a, b }) => a + b);
 *   const handle = await add.enqueue({ a: 1, b: 2 });
 *   console.log(await handle.result({ timeoutMs: 5_000 })); // 3, once a Worker runs
 */
export { App, createApp } from './app.js';
export type { AppOptions, Connection, TaskDefinition } from './app.js';
export { Schedule } from './schedule.js';
export type { MissedPolicy, ScheduleDefinition } from './schedule.js';
export { Task } from './task.js';
export type { TaskContext, TaskHandler } from './task.js';
export { TaskHandle } from './handle.js';
export type { ResultOptions } from './handle.js';
export {
  BackendError,
  CeleriacError,
  ControlUnavailableError,
  LeaseLostError,
  NonRetryableError,
  ResultTimeoutError,
  TaskFailedError,
  TaskRevokedError,
  TaskTimeoutError,
  UnknownTaskError,
  ValidationError,
  describeIssues,
  toErrorInfo,
} from './errors.js';
export type { ErrorCode, ErrorInfo } from './errors.js';
export { MAX_PRIORITY, assertValidMessage, encodeMessage, isPlainEnvelope, parseMessage, taskMessageSchema } from './envelope.js';
export type { ParseExpectations, ParsedMessage, TaskMessage } from './envelope.js';
export { DEFAULT_BROKER_OPTIONS, MAX_PEEK, MAX_PEEK_BYTES, peekedMessages, peekOptions } from './broker.js';
export { DEAD_LETTER_NOT_FOUND, DEAD_LETTER_QUEUED, redriveMessage } from './redrive.js';
export type { Redriven } from './redrive.js';
export type { Broker, BrokerCapabilities, BrokerOptions, DeadLetter, Delivery, FetchRequest, PeekOptions, Published, PublishOptions, QueueStats, RedriveResult } from './broker.js';
export type { FinalState, KeyClaim, KeyRef, MarkStore, ResultBackend, Store, ResultBackendCapabilities, Settlement, StoreOptions, TaskRef, TaskResult, TaskState } from './results.js';
export { assertQueueName, assertTaskId, assertTaskName, queueNamePattern, taskIdPattern, taskNamePattern } from './names.js';
export { enqueueOptionsSchema, parseOptions, retryPolicySchema, taskOptionsSchema } from './options.js';
export type { EnqueueOptions, RetryPolicy, TaskOptions } from './options.js';
export { attemptOf, backoffDelay, nextAttempt } from './retry.js';
export { Attempt } from './attempt.js';
export type { Claim } from './attempt.js';
export { KEY_BUSY_DELAY_MS, runDelivery } from './execution.js';
export { MAX_KEPT_PAYLOAD_BYTES } from './settlement.js';
export type { RunOptions, RunOutcome, TaskEvent } from './execution.js';
export { connectBroker, connectResults, redactUrl } from './connect.js';
export { withTimeout } from './timeout.js';
export type { BackendModule } from './connect.js';
export { childLogger, consoleLogger, jsonLogger, levelEnabled, silentLogger } from './logger.js';
export type { LogLevel, Logger } from './logger.js';
export { MemoryBroker } from './memory/broker.js';
export { MemoryResultBackend } from './memory/results.js';
export { MemoryCoordination } from './memory/coordination.js';
export { Control } from './control/control.js';
export type { RevokeOptions, RevokeResult } from './control/control.js';
export type { Progress } from './control/progress.js';
export { Inspect } from './control/inspect.js';
export type { QueueDetail, QueueInfo, QueuedTask, ScheduleRuns, TaskInfo } from './control/inspect.js';
export { HEARTBEAT_MS, REGISTRY, WORKER_TTL_MS, declareSchedules, noteQueues, scheduleMarkName } from './control/registry.js';
export type { ActiveTask, ScheduleDeclaration, TaskCounts, WorkerInfo } from './control/registry.js';
export { CONTROL_POLL_MS, EMPTY_CONTROL_STATE, KINDS as CONTROL_KINDS, MAX_REVOCATIONS, coordinationOf, readControlState } from './control/state.js';
export type { ControlState, Revocation } from './control/state.js';
export { DEFAULT_LIST_LIMIT, GLOBAL_SCOPE, assertKind, assertScope, assertSemaphoreName, assertSemaphoreOptions, encodeRecord, listLimit } from './coordination.js';
export type { Coordination, Hold, ListOptions, RecordRef, SemaphoreRef, StoredRecord } from './coordination.js';
