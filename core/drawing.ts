/**
 * docs/machine.md, drawn from the machine itself: every state, every transition with its event and guard, and each
 * state's public phase (its meta). `npm run draw-machine` writes it; test/pure/drawing.test.ts fails when it is stale.
 */
import type { AnyStateNode } from 'xstate';
import { upgradeMachine } from './machine';
import { PROCEDURE } from './procedure';

interface Edge {
  from: string;
  to: string;
  events: string[];
  guard: string;
}

function guardLabel(guard: unknown): string {
  if (!guard || typeof guard !== 'object') return '';
  const { type, params } = guard as { type?: string; params?: Record<string, unknown> };
  const value = params ? Object.values(params).join(', ') : '';
  return type === 'gateEnabled' ? ` [plan has ${value}]` : type === 'failedIn' ? ` [failed in ${value}]` : ` [${type}]`;
}

function edgesOf(node: AnyStateNode): Edge[] {
  const edges: Edge[] = [];
  for (const [event, transitions] of node.transitions) {
    for (const transition of transitions) {
      for (const target of transition.target ?? []) edges.push({ from: node.key, to: target.key, events: [event], guard: guardLabel(transition.guard) });
    }
  }
  return edges;
}

/** Transitions between the same states under the same guard are one arrow, labelled with each of their events. */
function merged(edges: Edge[]): Edge[] {
  const byEnds = new Map<string, Edge>();
  for (const edge of edges) {
    const key = `${edge.from}->${edge.to}${edge.guard}`;
    const seen = byEnds.get(key);
    if (seen) seen.events.push(...edge.events);
    else byEnds.set(key, { ...edge, events: [...edge.events] });
  }
  return [...byEnds.values()];
}

function stateNodes(): AnyStateNode[] {
  return Object.values(upgradeMachine.root.states);
}

function mermaid(): string[] {
  const nodes = stateNodes();
  const lines = ['```mermaid', 'stateDiagram-v2', `  [*] --> ${upgradeMachine.root.initial?.target[0]?.key ?? '?'}`];
  for (const edge of merged(nodes.flatMap(edgesOf))) lines.push(`  ${edge.from} --> ${edge.to}: ${edge.events.join(' / ')}${edge.guard}`);
  for (const node of nodes) if (node.type === 'final') lines.push(`  ${node.key} --> [*]`);
  lines.push('```');
  return lines;
}

function stateTable(): string[] {
  const lines = ['| state | public phase (`status.phase`, `CutoverPhase`) | tags | what the workflow does on entry |', '|---|---|---|---|'];
  for (const node of stateNodes()) {
    const meta = node.meta as { publicPhase?: string } | undefined;
    const entry = node.entry.map((action) => {
      const { type, params } = action as { type: string; params?: Record<string, unknown> };
      const shown = Object.entries(params ?? {}).map(([key, value]) => (typeof value === 'boolean' ? `${key}: ${value}` : String(value)));
      return [type, ...shown].join(' ');
    });
    lines.push(`| ${node.key} | ${meta?.publicPhase ?? ''} | ${[...node.tags].join(', ')} | ${entry.join(', ')} |`);
  }
  return lines;
}

function procedureTable(): string[] {
  const lines = ['| # | phase | what | gate before | gates within |', '|---|---|---|---|---|'];
  PROCEDURE.forEach((row, i) => {
    const before = row.gateBefore ? `${row.gateBefore.gate}${row.gateBefore.always ? ' (always)' : ''}` : '';
    const within = (row.gatesWithin ?? []).map((g) => `${g.gate}: ${g.when}`).join('; ');
    lines.push(`| ${i + 1} | ${row.phase} | ${row.title} | ${before} | ${within} |`);
  });
  return lines;
}

/** The whole of docs/machine.md. */
export function machineDocument(): string {
  return [
    '# The run\'s phase machine',
    '',
    '<!-- Generated from core/procedure.ts and core/machine.ts by `npm run draw-machine`; a test fails when it is stale. -->',
    '',
    '`core/machine.ts` (xstate v5, pure) is made from the procedure\'s table in `core/procedure.ts`. The workflow feeds it',
    'events with `transition()` and performs the actions it names: `runPhase` (batch activities and database',
    'commands), `openGate` (wait for approvals), `awaitOperator` (guided failure) and `runRollback` (compensation).',
    '',
    '## The procedure',
    '',
    ...procedureTable(),
    '',
    '## States and transitions',
    '',
    ...mermaid(),
    '',
    'Any state goes to `rollingBack` on `CANCELLED` (cancelling the run from the Web UI or CLI); the rollback states',
    'ignore it, and the workflow runs them inside `CancellationScope.nonCancellable`. `APPROVED_WITHIN` (a gate inside',
    'a phase was approved) changes no state: the machine\'s context remembers it, so a retried phase does not ask again.',
    '',
    ...stateTable(),
    '',
  ].join('\n');
}
