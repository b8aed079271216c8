/**
 * A run's history as the report reads it: the events of Temporal's history that say what the run did, with their
 * payloads decoded (client/report.ts does the decoding, with the client's data converter). Times are epoch ms.
 * Payloads stay `unknown` here: core/report/model.ts parses each with a schema before it reads a field.
 */
export type RunEvent =
  | { kind: 'workflowStarted'; id: number; at: number; input: unknown }
  | { kind: 'phase'; id: number; at: number; phase: string }
  | { kind: 'activityScheduled'; id: number; at: number; activityType: string; input: unknown }
  | { kind: 'activityClosed'; id: number; at: number; scheduledId: number; result?: unknown; failure?: string }
  | { kind: 'childStarted'; id: number; at: number; workflowId: string; input: unknown }
  | { kind: 'childClosed'; id: number; at: number; workflowId: string; result?: unknown; failure?: string }
  | { kind: 'workflowClosed'; id: number; at: number; status: ClosedStatus; result?: unknown; failure?: string; details?: unknown };

export type ClosedStatus = 'completed' | 'failed' | 'cancelled' | 'terminated' | 'timed-out' | 'continued-as-new';

/** A run's history and its child workflows' (by workflow id), as client/report.ts fetched them. */
export interface RunHistory {
  workflowId: string;
  events: RunEvent[];
  children: Record<string, RunEvent[]>;
}
