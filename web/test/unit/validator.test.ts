import { describe, expect, it } from 'vitest';
import type { JsonSchema } from '../../src/sync/api';
import { BUILT_IN_COLLECTIONS } from '../../src/sync/builtins';
import { SchemaRegistry, isDateTime, validateJson } from '../../src/sync/validator';
import { COLLECTIONS, CONTRACTS, listJson, readJson } from './repo';

const schemaFiles = listJson(CONTRACTS + 'schemas');
const registry = new SchemaRegistry();
for (const f of schemaFiles) registry.add(readJson<JsonSchema>(CONTRACTS + 'schemas/' + f), f);
const schema = (name: string) => registry.find(name + '.schema.json')!;
const appointments = readJson<{ schema: JsonSchema }>(COLLECTIONS + 'appointments.json').schema;

describe('JSON Schema validator on the contract', () => {
  const examples = listJson(CONTRACTS + 'examples');

  it('finds golden examples to check', () => {
    expect(examples.length).toBeGreaterThan(15);
  });

  for (const file of examples) {
    it(`golden example ${file} matches its schema`, () => {
      const name = file.split('.')[0]!;
      const s = schema(name);
      expect(s, `schema for ${file}`).toBeDefined();
      expect(validateJson(s, readJson(CONTRACTS + 'examples/' + file), { registry })).toEqual([]);
    });
  }

  it('every collection definition matches collection-definition.schema.json', () => {
    for (const n of ['appointments', 'clinics', 'subsidy_claims']) {
      expect(validateJson(schema('collection-definition'), readJson(COLLECTIONS + n + '.json'), { registry })).toEqual([]);
    }
  });

  it('the data of each create in push-request.clinic-day.json is a valid appointment', () => {
    const push = readJson<{ mutations: { op: string; collection: string; data?: Record<string, unknown> }[] }>(
      CONTRACTS + 'examples/push-request.clinic-day.json',
    );
    const creates = push.mutations.filter((m) => m.collection === 'appointments' && m.op === 'create');
    expect(creates.length).toBeGreaterThan(0);
    for (const m of creates) expect(validateJson(appointments, m.data)).toEqual([]);
    // The update carries only changed fields; applied to the create, the record stays valid.
    const updates = push.mutations.filter((m) => m.collection === 'appointments' && m.op === 'update');
    for (const u of updates) {
      const full: Record<string, unknown> = { ...creates[0]!.data };
      for (const [k, v] of Object.entries(u.data ?? {})) if (v === null) delete full[k]; else full[k] = v;
      expect(validateJson(appointments, full)).toEqual([]);
    }
  });

  const mutation = () => structuredClone(readJson<{ mutations: Record<string, unknown>[] }>(CONTRACTS + 'examples/push-request.clinic-day.json').mutations[0]!);

  it('refuses broken mutations with JSON Pointers to the problem', () => {
    const cases: [string, (m: Record<string, unknown>) => void, string][] = [
      ['missing required field', (m) => delete m['recordId'], '/recordId'],
      ['wrong type', (m) => (m['deviceSeq'] = '41'), '/deviceSeq'],
      ['bad enum', (m) => (m['op'] = 'upsert'), '/op'],
      ['bad date-time', (m) => (m['clientTime'] = '2026-11-22 07:12'), '/clientTime'],
      ['extra property', (m) => (m['extra'] = 1), '/extra'],
      ['pattern mismatch', (m) => (m['hlc'] = '1795331564120-0-x'), '/hlc'],
      ['bad uuid', (m) => (m['mutationId'] = 'not-a-uuid'), '/mutationId'],
      ['create with a base version (if/then const)', (m) => (m['baseVersion'] = 3), '/baseVersion'],
      ['below minimum', (m) => (m['deviceSeq'] = 0), '/deviceSeq'],
    ];
    for (const [what, breakIt, pointer] of cases) {
      const m = mutation();
      breakIt(m);
      const problems = validateJson(schema('mutation'), m, { registry });
      expect(problems.map((p) => p.field), what).toContain(pointer);
    }
  });

  it('a delete with data is refused (not: required)', () => {
    const m = { ...mutation(), op: 'delete', baseVersion: 2 };
    expect(validateJson(schema('mutation'), m, { registry }).length).toBeGreaterThan(0);
    delete (m as Record<string, unknown>)['data'];
    expect(validateJson(schema('mutation'), m, { registry })).toEqual([]);
  });

  it('follows $ref into other files: a push with a broken mutation is refused at its place', () => {
    const push = readJson<{ mutations: Record<string, unknown>[] }>(CONTRACTS + 'examples/push-request.clinic-day.json');
    (push.mutations[1] as Record<string, unknown>)['op'] = 'nope';
    expect(validateJson(schema('push-request'), push, { registry }).map((p) => p.field)).toContain('/mutations/1/op');
  });
});

describe('JSON Schema validator on records', () => {
  const good = { patientName: 'Nimali Perera', clinicId: 'clinic-badulla-03', slotStart: '2026-11-23T09:30:00+05:30' };
  it('refuses broken appointments', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ ...good, patientName: undefined }, '/patientName'],
      [{ ...good, patientName: '' }, '/patientName'],
      [{ ...good, slotStart: '2026-02-30T09:30:00+05:30' }, '/slotStart'],
      [{ ...good, slotStart: '23 Nov 9:30' }, '/slotStart'],
      [{ ...good, status: 'lost' }, '/status'],
      [{ ...good, notes: 'a note' }, '/notes'],
      [{ ...good, notes: ['ok', 5] }, '/notes/1'],
      [{ ...good, colour: 'blue' }, '/colour'],
      [{ ...good, clinicId: 12 }, '/clinicId'],
    ];
    for (const [data, pointer] of cases) {
      const clean = JSON.parse(JSON.stringify(data)) as Record<string, unknown>;
      expect(validateJson(appointments, clean).map((p) => p.field), pointer).toContain(pointer);
    }
    expect(validateJson(appointments, good)).toEqual([]);
  });

  it('checks numbers: exclusiveMinimum and minimum of subsidy claims', () => {
    const claims = readJson<{ schema: JsonSchema }>(COLLECTIONS + 'subsidy_claims.json').schema;
    const c = { farmerId: 'F1', crop: 'paddy', season: 'maha-2026' };
    expect(validateJson(claims, { ...c, areaHectares: 0 }).map((p) => p.field)).toEqual(['/areaHectares']);
    expect(validateJson(claims, { ...c, amountRequested: -1 }).map((p) => p.field)).toEqual(['/amountRequested']);
    expect(validateJson(claims, { ...c, areaHectares: 0.5, amountRequested: 0 })).toEqual([]);
  });

  it('date-time follows RFC 3339', () => {
    for (const ok of ['2026-11-22T08:02:00.417Z', '2026-11-23T09:30:00+05:30', '2024-02-29T23:59:60Z', '2026-11-22t08:02:00z']) expect(isDateTime(ok), ok).toBe(true);
    for (const bad of ['2026-11-22T08:02:00', '2026-11-22', '2025-02-29T00:00:00Z', '2026-13-01T00:00:00Z', '2026-11-22T24:00:00Z', '2026-11-22T08:02Z', ' 2026-11-22T08:02:00Z']) expect(isDateTime(bad), bad).toBe(false);
  });
});

describe('built-in collections', () => {
  it('the library copy equals the core definitions', () => {
    const files = ['appointments', 'clinics', 'subsidy_claims'].map((n) => readJson(COLLECTIONS + n + '.json'));
    expect(BUILT_IN_COLLECTIONS).toEqual(files);
  });
});
