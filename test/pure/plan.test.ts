/** The plan schema and the pure helpers beside it: what validatePlan accepts, and how it reports what it refuses. */
import { describe, expect, it } from 'vitest';
import { type TemplateValues, dbOwner, durationMs, hostCommand, hostTransport, renderCommand, validatePlan } from '../../core/plan';
import { type RawPlan, rawExample, refusal, validExample } from './fixtures';


describe('validatePlan on the example', () => {
  it('accepts examples/appv-lab.yaml', () => {
    const result = validatePlan(rawExample());
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.plan.fleet).toBe('appv-lab');
    expect(result.plan.hosts.map((h) => h.id)).toEqual(['appv-01', 'appv-02', 'appv-03', 'appv-04']);
    expect(dbOwner(result.plan).id).toBe('appv-01');
  });

  it('fills defaults for retry, timeout, transport, gates and execution', () => {
    const plan = validExample((raw) => {
      delete raw.database.checksum.timeout;
      delete raw.execution;
      delete raw.gates;
    });
    const steps = plan.roles['management-server']?.steps;
    expect(steps?.version?.retry).toEqual({ maxAttempts: 3, initialInterval: '1s', backoff: 2, maxInterval: '1m' });
    // A partly given retry policy keeps what is given and fills the rest.
    expect(steps?.upgrade?.retry).toEqual({ maxAttempts: 3, initialInterval: '2s', backoff: 2, maxInterval: '1m' });
    expect(plan.database.checksum?.timeout).toBe('5m');
    expect(plan.execution).toEqual({ maxParallel: 10, batchSize: 200, failureThreshold: 0, hostsPerWorkflow: 1000 });
    expect(plan.transport).toEqual({ kind: 'local' });
    expect(hostTransport(plan, plan.hosts[0]!)).toEqual({ kind: 'local' });
    expect(plan.gates.beforeOffline).toEqual({ instructions: 'Check the plan and the fleet, then approve.', approvers: [], quorum: 1 });
    expect(plan.gates.beforeSchemaUpgrade).toBeUndefined();
  });

  it('accepts database.host naming one of the hosts', () => {
    expect(validExample((raw) => (raw.database.host = 'appv-03')).database.host).toBe('appv-03');
  });
});

describe('validatePlan refusals name the path of the problem', () => {
  const cases: { name: string; mutate: (raw: RawPlan) => void; path: (string | number)[]; at: string; says: string }[] = [
    {
      name: 'wrong type',
      mutate: (raw) => (raw.execution.maxParallel = 'ten'),
      path: ['execution', 'maxParallel'],
      at: 'execution.maxParallel',
      says: 'expected number, received string',
    },
    {
      name: 'duplicate host id',
      mutate: (raw) => (raw.hosts[2].id = 'appv-01'),
      path: ['hosts', 2, 'id'],
      at: 'hosts[2].id',
      says: 'duplicate host id "appv-01" (also hosts[0])',
    },
    {
      name: 'no DB owner',
      mutate: (raw) => (raw.hosts[0].roles = ['management-server']),
      path: ['hosts'],
      at: 'hosts',
      says: 'exactly one host must have the role "db-owner" (it upgrades the database schema); none has',
    },
    {
      name: 'two DB owners',
      mutate: (raw) => raw.hosts[3].roles.push('db-owner'),
      path: ['hosts'],
      at: 'hosts',
      says: 'hosts [0], [3] all have it',
    },
    {
      name: 'unknown role',
      mutate: (raw) => (raw.hosts[0].roles = ['db-owner', 'mgmt-server']),
      path: ['hosts', 0, 'roles', 1],
      at: 'hosts[0].roles[1]',
      says: 'unknown role "mgmt-server"',
    },
    {
      name: 'two application roles on one host',
      mutate: (raw) => {
        raw.roles['reporting-server'] = structuredClone(raw.roles['management-server']);
        raw.hosts[2].roles = ['management-server', 'reporting-server'];
      },
      path: ['hosts', 2, 'roles'],
      at: 'hosts[2].roles',
      says: 'exactly one application role besides "db-owner", found 2',
    },
    {
      name: 'source outside the upgrade path',
      mutate: (raw) => (raw.source = '4.0'),
      path: ['source'],
      at: 'source',
      says: '4.5 cannot be installed over 4.0: upgrade it to 4.1 or 4.1-SP1 first',
    },
    {
      name: 'target without an upgrade path',
      mutate: (raw) => (raw.target = '5.0'),
      path: ['target'],
      at: 'target',
      says: 'no upgrade path leads to 5.0; upgradePaths covers 4.5',
    },
    {
      name: 'bad duration',
      mutate: (raw) => (raw.roles['management-server'].steps.drain.timeout = '2 minutes'),
      path: ['roles', 'management-server', 'steps', 'drain', 'timeout'],
      at: 'roles["management-server"].steps.drain.timeout',
      says: 'expected a duration such as',
    },
    {
      name: 'unknown template key in a run command',
      mutate: (raw) => (raw.roles['management-server'].steps.stop.run = 'labhost {{host}} stop {{nope}}'),
      path: ['roles', 'management-server', 'steps', 'stop', 'run'],
      at: 'roles["management-server"].steps.stop.run',
      says: 'unknown template {{nope}}',
    },
    {
      name: 'unknown template key in an undo command',
      mutate: (raw) => (raw.roles['db-owner'].steps.upgrade.undo = 'labhost {{ hostname }} install {{source}}'),
      path: ['roles', 'db-owner', 'steps', 'upgrade', 'undo'],
      at: 'roles["db-owner"].steps.upgrade.undo',
      says: 'unknown template {{hostname}}',
    },
    {
      name: 'role missing a required step',
      mutate: (raw) => delete raw.roles['management-server'].steps.verify,
      path: ['roles', 'management-server', 'steps', 'verify'],
      at: 'roles["management-server"].steps.verify',
      says: 'the role "management-server" has no "verify" step',
    },
    {
      name: 'a role that stops its service but never starts it',
      mutate: (raw) => delete raw.roles['management-web-service'].steps.start,
      path: ['roles', 'management-web-service', 'steps', 'start'],
      at: 'roles["management-web-service"].steps.start',
      says: 'the role "management-web-service" has a "stop" step, so it needs a "start" step',
    },
    {
      name: 'a service step without its undo',
      mutate: (raw) => delete raw.roles['management-web-service'].steps.stop.undo,
      path: ['roles', 'management-web-service', 'steps', 'stop', 'undo'],
      at: 'roles["management-web-service"].steps.stop.undo',
      says: 'a stop step needs an undo: rollback replays it',
    },
    {
      name: 'a console-only role with a service step',
      mutate: (raw) => (raw.roles.console.steps.drain = raw.roles['management-server'].steps.drain),
      path: ['roles', 'console', 'steps', 'drain'],
      at: 'roles.console.steps.drain',
      says: 'a console host has no service: its role has no "drain" step',
    },
    {
      name: 'db-owner on a console-only host',
      mutate: (raw) => (raw.hosts[1].roles = ['console', 'db-owner']) && (raw.hosts[0].roles = ['management-server']),
      path: ['hosts', 1, 'roles'],
      at: 'hosts[1].roles',
      says: '"db-owner" on appv-02, a console host: a console-only host has no server component to upgrade the database',
    },
    {
      name: 'an in-place upgrade without its restore',
      mutate: (raw) => delete raw.database.restore,
      path: ['database', 'restore'],
      at: 'database.restore',
      says: "an in-place upgrade restores this run's backup on rollback: database.restore is required",
    },
    {
      name: 'a new-database upgrade without the old database',
      mutate: (raw) => (raw.database.strategy = 'new-database') && delete raw.database.restore,
      path: ['database', 'previous'],
      at: 'database.previous',
      says: "a new-database upgrade needs the old database's name: a rollback points every host back at it",
    },
    {
      name: 'a new-database upgrade with a restore',
      mutate: (raw) => Object.assign(raw.database, { strategy: 'new-database', previous: 'APPVDB-OLD' }),
      path: ['database', 'restore'],
      at: 'database.restore',
      says: 'a new-database upgrade leaves the old database intact: a rollback points the hosts back at it and restores nothing',
    },
    {
      name: 'a new-database undo pointing at the new database',
      mutate: (raw) => {
        Object.assign(raw.database, { strategy: 'new-database', previous: 'APPVDB-OLD' });
        delete raw.database.restore;
        raw.roles.console.steps.upgrade.undo = 'labhost {{host}} install {{source}} --database {{database}}';
      },
      path: ['roles', 'console', 'steps', 'upgrade', 'undo'],
      at: 'roles.console.steps.upgrade.undo',
      says: 'an undo points the host back at the old database: {{previousDatabase}}, not {{database}}',
    },
    {
      name: 'database.host naming no host',
      mutate: (raw) => (raw.database.host = 'appv-99'),
      path: ['database', 'host'],
      at: 'database.host',
      says: 'no host has the id "appv-99"',
    },
  ];

  it.each(cases)('$name', ({ mutate, path, at, says }) => {
    const { message, issues } = refusal(mutate);
    expect(issues.map((issue) => issue.path)).toEqual([path]);
    expect(issues[0]?.message).toContain(says);
    expect(message).toContain(says);
    expect(message).toContain(`→ at ${at}`);
  });

  it('unknown top-level key', () => {
    const { message, issues } = refusal((raw) => (raw.extra = true));
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ code: 'unrecognized_keys', keys: ['extra'], path: [] });
    expect(message).toContain('Unrecognized key: "extra"');
  });

  it('unknown key inside a step', () => {
    const { issues } = refusal((raw) => (raw.roles['management-server'].steps.drain.timout = '1m'));
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ code: 'unrecognized_keys', keys: ['timout'], path: ['roles', 'management-server', 'steps', 'drain'] });
  });

  it('reports every problem of a plan in one pass', () => {
    const { message, issues } = refusal((raw) => {
      raw.hosts[1].id = 'appv-01';
      raw.source = '4.0';
      raw.database.host = 'nowhere';
    });
    expect(issues.length).toBeGreaterThanOrEqual(3);
    expect(issues.map((issue) => issue.path)).toEqual(expect.arrayContaining([['hosts', 1, 'id'], ['source'], ['database', 'host']]));
    for (const at of ['hosts[1].id', 'source', 'database.host']) expect(message).toContain(`→ at ${at}`);
  });
});

describe('durationMs', () => {
  it.each([
    ['500ms', 500],
    ['90s', 90_000],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['3d', 259_200_000],
    ['0s', 0],
  ])('%s is %i ms', (duration, ms) => {
    expect(durationMs(duration)).toBe(ms);
  });

  it.each(['', '5', '1.5h', '5 m', '-1s', '10w'])('throws on %j', (duration) => {
    expect(() => durationMs(duration)).toThrow(`not a duration: ${duration}`);
  });
});

describe('renderCommand', () => {
  const values: TemplateValues = { host: 'appv-02', fleet: 'appv-lab', source: '4.1-SP1', target: '4.5', version: '4.5', backup: 'bk-1', database: 'APPVDB', previousDatabase: 'APPVDB' };

  it('substitutes every template key, repeated and with inner spaces', () => {
    expect(renderCommand('{{fleet}}:{{host}}:{{source}}:{{target}}:{{backup}}:{{database}}', values)).toBe('appv-lab:appv-02:4.1-SP1:4.5:bk-1:APPVDB');
    expect(renderCommand('x {{ host }} y {{host}}', values)).toBe('x appv-02 y appv-02');
  });

  it('leaves unknown keys and keys without a value untouched', () => {
    expect(renderCommand('labhost {{nope}} {{target}}', values)).toBe('labhost {{nope}} 4.5');
    const { host: _host, ...withoutHost } = values;
    expect(renderCommand('labhost {{host}} version', withoutHost)).toBe('labhost {{host}} version');
  });
});

describe('hostCommand', () => {
  const plan = validExample();
  const owner = plan.hosts[0]!;
  const other = plan.hosts[1]!;

  it("gives the owner the db-owner role's own upgrade step", () => {
    expect(hostCommand(plan, owner, 'upgrade')).toBe(plan.roles['db-owner']?.steps.upgrade);
    expect(hostCommand(plan, owner, 'upgrade')?.run).toBe('labhost {{host}} install {{target}} --upgrade-schema');
  });

  it("falls back to the application role's step where db-owner defines none", () => {
    expect(hostCommand(plan, owner, 'start')).toBe(plan.roles['management-server']?.steps.start);
  });

  it("gives other hosts their application role's step", () => {
    expect(hostCommand(plan, other, 'upgrade')).toBe(plan.roles['management-server']?.steps.upgrade);
    expect(hostCommand(plan, other, 'upgrade')?.run).toBe('labhost {{host}} install {{target}}');
  });
});
