/**
 * A small JSON Schema 2020-12 validator for the schemas CivicSync uses (the contract schemas and
 * the collection definitions' record schemas), without eval. Keywords: type, enum, const,
 * properties, required, additionalProperties, patternProperties, propertyNames, minProperties,
 * maxProperties, items, prefixItems, minItems, maxItems, uniqueItems, minLength, maxLength,
 * pattern, format (date-time, date, time, uuid; others are not asserted), minimum, maximum,
 * exclusiveMinimum, exclusiveMaximum, multipleOf, allOf, anyOf, oneOf, not, if/then/else, $ref
 * (to "#/$defs/…" and to other registered schema files) and $defs. Annotations (title,
 * description, default, $schema, $id, examples, $comment) are ignored. Problems are reported with
 * a JSON Pointer into the instance.
 */
import type { JsonSchema, ValidationProblem } from './api';
import { canonicalize, jsonEqual } from './jcs';

export type Schema = JsonSchema | boolean;

/** Schemas that other schemas refer to by file name ("change.schema.json") or by $id. */
export class SchemaRegistry {
  private readonly byName = new Map<string, JsonSchema>();

  add(schema: JsonSchema, name?: string): this {
    const id = typeof schema['$id'] === 'string' ? (schema['$id'] as string) : undefined;
    if (id) {
      this.byName.set(id, schema);
      this.byName.set(baseName(id), schema);
    }
    if (name) this.byName.set(baseName(name), schema);
    return this;
  }

  find(ref: string): JsonSchema | undefined {
    return this.byName.get(ref) ?? this.byName.get(baseName(ref));
  }
}

function baseName(uri: string): string {
  const i = uri.lastIndexOf('/');
  return i < 0 ? uri : uri.slice(i + 1);
}

export interface ValidateOptions {
  readonly registry?: SchemaRegistry;
  /** Stop after this many problems (default 20). */
  readonly maxProblems?: number;
}

export function validateJson(schema: Schema, instance: unknown, options: ValidateOptions = {}): ValidationProblem[] {
  const v = new Validator(options.registry ?? new SchemaRegistry(), options.maxProblems ?? 20);
  v.check(schema, instance, '', rootOf(schema));
  return v.problems;
}

function rootOf(schema: Schema): JsonSchema {
  return typeof schema === 'boolean' ? {} : schema;
}

const patternCache = new Map<string, RegExp>();
function regex(source: string): RegExp {
  let r = patternCache.get(source);
  if (!r) {
    try {
      r = new RegExp(source, 'u');
    } catch {
      r = new RegExp(source);
    }
    patternCache.set(source, r);
  }
  return r;
}

function escapePointer(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

function typeOf(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'array';
  if (typeof x === 'number') return Number.isInteger(x) ? 'integer' : 'number';
  return typeof x;
}

function hasType(x: unknown, t: string): boolean {
  const actual = typeOf(x);
  if (t === 'number') return actual === 'number' || actual === 'integer';
  return actual === t;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const TIME = /^(\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-](\d{2}):(\d{2}))$/;

function validDate(s: string): boolean {
  const m = DATE.exec(s);
  if (!m) return false;
  const y = Number(m[1]);
  const mo = Number(m[2]);
  const d = Number(m[3]);
  if (mo < 1 || mo > 12 || d < 1) return false;
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1]!;
  return d <= days;
}

function validTime(s: string): boolean {
  const m = TIME.exec(s);
  if (!m) return false;
  const h = Number(m[1]);
  const mi = Number(m[2]);
  const sec = Number(m[3]);
  if (h > 23 || mi > 59 || sec > 60) return false;
  if (m[6] !== undefined && (Number(m[6]) > 23 || Number(m[7]) > 59)) return false;
  return true;
}

/** RFC 3339 date-time, as JSON Schema's "date-time" format. */
export function isDateTime(s: string): boolean {
  const i = s.search(/[Tt]/);
  return i === 10 && validDate(s.slice(0, 10)) && validTime(s.slice(11));
}

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

function checkFormat(format: string, s: string): boolean {
  switch (format) {
    case 'date-time':
      return isDateTime(s);
    case 'date':
      return validDate(s);
    case 'time':
      return validTime(s);
    case 'uuid':
      return UUID.test(s);
    default:
      return true;
  }
}

function describe(x: unknown): string {
  const t = typeOf(x);
  return t === 'integer' ? 'number' : t;
}

class Validator {
  readonly problems: ValidationProblem[] = [];
  constructor(
    private readonly registry: SchemaRegistry,
    private readonly max: number,
  ) {}

  private report(field: string, message: string): void {
    if (this.problems.length < this.max) this.problems.push({ field, message });
  }

  /** Whether the instance matches, without reporting. */
  private matches(schema: Schema, x: unknown, path: string, root: JsonSchema): boolean {
    const sub = new Validator(this.registry, 1);
    sub.check(schema, x, path, root);
    return sub.problems.length === 0;
  }

  private resolve(ref: string, root: JsonSchema): { schema: Schema; root: JsonSchema } {
    const hash = ref.indexOf('#');
    const doc = hash < 0 ? ref : ref.slice(0, hash);
    const fragment = hash < 0 ? '' : ref.slice(hash + 1);
    let base: JsonSchema = root;
    if (doc !== '') {
      const found = this.registry.find(doc);
      if (!found) throw new Error('unresolved $ref ' + ref);
      base = found;
    }
    let target: unknown = base;
    if (fragment !== '') {
      for (const raw of fragment.replace(/^\//, '').split('/')) {
        const token = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
        target = isObject(target) ? target[token] : undefined;
      }
    }
    if (target === undefined || (typeof target !== 'boolean' && !isObject(target))) throw new Error('unresolved $ref ' + ref);
    return { schema: target as Schema, root: base };
  }

  check(schema: Schema, x: unknown, path: string, root: JsonSchema): void {
    if (schema === true) return;
    if (schema === false) {
      this.report(path, 'no value is allowed here');
      return;
    }
    const s = schema as Record<string, unknown>;
    const before = this.problems.length;

    if (typeof s['$ref'] === 'string') {
      const r = this.resolve(s['$ref'] as string, root);
      this.check(r.schema, x, path, r.root);
    }

    if (s['type'] !== undefined) {
      const types = Array.isArray(s['type']) ? (s['type'] as string[]) : [s['type'] as string];
      if (!types.some((t) => hasType(x, t))) {
        this.report(path, `expected ${types.join(' or ')} but found ${describe(x)}`);
        return;
      }
    }
    if (Array.isArray(s['enum']) && !(s['enum'] as unknown[]).some((e) => jsonEqual(e, x))) {
      this.report(path, 'must be one of ' + (s['enum'] as unknown[]).map((e) => JSON.stringify(e)).join(', '));
    }
    if ('const' in s && !jsonEqual(s['const'], x)) {
      this.report(path, 'must be ' + JSON.stringify(s['const']));
    }

    if (typeof x === 'string') this.checkString(s, x, path);
    if (typeof x === 'number') this.checkNumber(s, x, path);
    if (Array.isArray(x)) this.checkArray(s, x, path, root);
    if (isObject(x)) this.checkObject(s, x, path, root);

    if (Array.isArray(s['allOf'])) for (const sub of s['allOf'] as Schema[]) this.check(sub, x, path, root);
    if (Array.isArray(s['anyOf']) && !(s['anyOf'] as Schema[]).some((sub) => this.matches(sub, x, path, root))) {
      this.report(path, 'does not match any of the allowed forms');
    }
    if (Array.isArray(s['oneOf'])) {
      const n = (s['oneOf'] as Schema[]).filter((sub) => this.matches(sub, x, path, root)).length;
      if (n !== 1) this.report(path, n === 0 ? 'does not match any of the allowed forms' : 'matches more than one of the allowed forms');
    }
    if (s['not'] !== undefined && this.matches(s['not'] as Schema, x, path, root)) {
      this.report(path, 'must not match the excluded form');
    }
    if (s['if'] !== undefined) {
      if (this.matches(s['if'] as Schema, x, path, root)) {
        if (s['then'] !== undefined) this.check(s['then'] as Schema, x, path, root);
      } else if (s['else'] !== undefined) {
        this.check(s['else'] as Schema, x, path, root);
      }
    }
    void before;
  }

  private checkString(s: Record<string, unknown>, x: string, path: string): void {
    const len = [...x].length;
    if (typeof s['minLength'] === 'number' && len < (s['minLength'] as number)) {
      this.report(path, (s['minLength'] as number) === 1 ? 'must not be empty' : `must be at least ${s['minLength']} characters`);
    }
    if (typeof s['maxLength'] === 'number' && len > (s['maxLength'] as number)) {
      this.report(path, `must be at most ${s['maxLength']} characters`);
    }
    if (typeof s['pattern'] === 'string' && !regex(s['pattern'] as string).test(x)) {
      this.report(path, `does not match the pattern ${s['pattern']}`);
    }
    if (typeof s['format'] === 'string' && !checkFormat(s['format'] as string, x)) {
      this.report(path, `is not a valid ${s['format']}`);
    }
  }

  private checkNumber(s: Record<string, unknown>, x: number, path: string): void {
    const n = (k: string) => (typeof s[k] === 'number' ? (s[k] as number) : undefined);
    const min = n('minimum');
    const max = n('maximum');
    const xmin = n('exclusiveMinimum');
    const xmax = n('exclusiveMaximum');
    const mult = n('multipleOf');
    if (min !== undefined && x < min) this.report(path, `must be at least ${min}`);
    if (max !== undefined && x > max) this.report(path, `must be at most ${max}`);
    if (xmin !== undefined && x <= xmin) this.report(path, `must be greater than ${xmin}`);
    if (xmax !== undefined && x >= xmax) this.report(path, `must be less than ${xmax}`);
    if (mult !== undefined && mult > 0) {
      const q = x / mult;
      if (Math.abs(q - Math.round(q)) > 1e-9) this.report(path, `must be a multiple of ${mult}`);
    }
  }

  private checkArray(s: Record<string, unknown>, x: unknown[], path: string, root: JsonSchema): void {
    if (typeof s['minItems'] === 'number' && x.length < (s['minItems'] as number)) this.report(path, `must have at least ${s['minItems']} items`);
    if (typeof s['maxItems'] === 'number' && x.length > (s['maxItems'] as number)) this.report(path, `must have at most ${s['maxItems']} items`);
    if (s['uniqueItems'] === true) {
      const seen = new Set<string>();
      x.forEach((item, i) => {
        const k = canonicalize(item);
        if (seen.has(k)) this.report(`${path}/${i}`, 'repeats an earlier item');
        seen.add(k);
      });
    }
    const prefix = Array.isArray(s['prefixItems']) ? (s['prefixItems'] as Schema[]) : [];
    x.forEach((item, i) => {
      if (i < prefix.length) this.check(prefix[i]!, item, `${path}/${i}`, root);
      else if (s['items'] !== undefined) this.check(s['items'] as Schema, item, `${path}/${i}`, root);
    });
  }

  private checkObject(s: Record<string, unknown>, x: Record<string, unknown>, path: string, root: JsonSchema): void {
    const keys = Object.keys(x);
    if (Array.isArray(s['required'])) {
      for (const r of s['required'] as string[]) {
        if (!(r in x) || x[r] === undefined) this.report(`${path}/${escapePointer(r)}`, `required property '${r}' not found`);
      }
    }
    if (typeof s['minProperties'] === 'number' && keys.length < (s['minProperties'] as number)) {
      this.report(path, `must have at least ${s['minProperties']} properties`);
    }
    if (typeof s['maxProperties'] === 'number' && keys.length > (s['maxProperties'] as number)) {
      this.report(path, `must have at most ${s['maxProperties']} properties`);
    }
    const props = isObject(s['properties']) ? (s['properties'] as Record<string, Schema>) : {};
    const patterns = isObject(s['patternProperties']) ? (s['patternProperties'] as Record<string, Schema>) : {};
    for (const k of keys) {
      const v = x[k];
      if (v === undefined) continue;
      const p = `${path}/${escapePointer(k)}`;
      if (s['propertyNames'] !== undefined && !this.matches(s['propertyNames'] as Schema, k, p, root)) {
        this.report(p, `'${k}' is not an allowed property name`);
      }
      let known = false;
      if (Object.prototype.hasOwnProperty.call(props, k)) {
        known = true;
        this.check(props[k]!, v, p, root);
      }
      for (const [pattern, sub] of Object.entries(patterns)) {
        if (regex(pattern).test(k)) {
          known = true;
          this.check(sub, v, p, root);
        }
      }
      if (!known && s['additionalProperties'] !== undefined) {
        if (s['additionalProperties'] === false) this.report(p, `property '${k}' is not allowed`);
        else this.check(s['additionalProperties'] as Schema, v, p, root);
      }
    }
  }
}
