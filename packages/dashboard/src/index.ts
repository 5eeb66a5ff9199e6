/**
 * @celeriac/dashboard — a live web view of queues, tasks, workers and schedules, its JSON API and /metrics.
 *
 *   import { createDashboard } from '@celeriac/dashboard';
 *   const dashboard = createDashboard(app);                  // app: your celeriac app (createApp)
 *   expressApp.use('/admin/queues', dashboard.handler);      // or node:http, Fastify, Hono
 *   // or on a server of its own: const { url } = await serveDashboard(app, { port: 5555 });
 */
export { createDashboard } from './dashboard.js';
export type { Dashboard } from './dashboard.js';
export { serveDashboard } from './server.js';
export { dashboardCommand } from './command.js';
export type { ServedDashboard } from './server.js';
export type { DashboardOptions, ServeOptions } from './options.js';
export type { ApiError, DeadLetterView, DeadLettersView, Info, QueueSummary, QueueView, QueuesView, RedriveResult, RevokeResult, SchedulesView, Series, TaskView, WorkersView } from './api.js';
