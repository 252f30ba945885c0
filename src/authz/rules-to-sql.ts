import { mongoQueryMatcher, type AnyMongoAbility } from '@casl/ability';
import { rulesToCondition } from '@casl/ability/extra';
import { eq, inArray, sql, type SQL } from 'drizzle-orm';
import type { PgColumn } from 'drizzle-orm/pg-core';
import { subjectSpec, type SubjectName, type ValueType } from './subjects.js';

/**
 * A condition that cannot be translated to SQL. Thrown rather than guessed at,
 * so a policy can never silently grant more in SQL than CASL grants in memory.
 * Messages name subjects, fields and operators, never the compared values.
 */
export class UnsupportedConditionError extends Error {
  override readonly name = 'UnsupportedConditionError';

  private constructor(message: string) {
    super(message);
  }

  static operator(operator: string, where: string): UnsupportedConditionError {
    return new UnsupportedConditionError(`operator "${operator}" is not supported in conditions on ${where}`);
  }

  static field(where: string): UnsupportedConditionError {
    return new UnsupportedConditionError(`${where} cannot be used in a condition (unknown, encrypted or a to-many relation)`);
  }

  static operand(operator: string, where: string, type: ValueType): UnsupportedConditionError {
    return new UnsupportedConditionError(`the operand of "${operator}" on ${where} is not a valid ${type} value`);
  }

  static shape(where: string): UnsupportedConditionError {
    return new UnsupportedConditionError(`a condition on ${where} is not a plain object of fields and operators`);
  }
}

/** The shape of a @ucast condition: CASL's `rule.ast`, and what `parseQuery` produces. */
interface ConditionNode {
  operator: string;
  value: unknown;
  field?: string;
}

/** The WHERE that admits exactly the rows `ability.can(action, row, field)` admits. No matching rule → sql`false`. */
export function rulesToSql(ability: AnyMongoAbility, action: string, subject: SubjectName, field?: string): SQL {
  // rulesFor already applies priority, `manage`/`all` and the field filter exactly as `can` does, and
  // rulesToCondition is CASL's own flattening of "first matching rule wins" into AND NOT / OR.
  const where = rulesToCondition(ability.rulesFor(action, subject, field), (rule) => ruleToSql(subject, rule.ast, rule.inverted), {
    and: allOf,
    or: anyOf,
    empty: () => sql`true`,
  });
  return where ?? sql`false`;
}

/** Lower-level: one MongoQuery conditions object of a subject → SQL (throws UnsupportedConditionError for unknown operators/fields). */
export function conditionToSql(subject: SubjectName, conditions: Record<string, unknown>): SQL {
  return nodeToSql(subject, parseQuery(conditions, subject));
}

function ruleToSql(subject: SubjectName, ast: ConditionNode | undefined, inverted: boolean): SQL {
  // The AST is what the ability's own conditionsMatcher parsed, so SQL sees the operators CASL sees:
  // with the default matcher `$or` is parsed as a field named "$or", and is refused below.
  if (!ast) throw UnsupportedConditionError.shape(subject);
  const where = nodeToSql(subject, ast);
  return inverted ? negate(where) : where;
}

// ── MongoQuery → condition nodes, for conditionToSql (same node shapes as @ucast/mongo) ──

const compoundOperators = new Map([
  ['$and', 'and'],
  ['$or', 'or'],
  ['$nor', 'nor'],
]);
const fieldOperators = new Set(['$eq', '$ne', '$lt', '$lte', '$gt', '$gte', '$in', '$nin']);

function parseQuery(query: unknown, where: string): ConditionNode {
  if (!isPlainObject(query)) throw UnsupportedConditionError.shape(where);
  const parts = Object.entries(query).map(([key, value]) =>
    key.startsWith('$') ? parseCompound(key, value, where) : parseField(key, value, where),
  );
  return parts.length === 1 && parts[0] ? parts[0] : { operator: 'and', value: parts };
}

function parseCompound(key: string, value: unknown, where: string): ConditionNode {
  const operator = compoundOperators.get(key);
  if (!operator) throw UnsupportedConditionError.operator(key, where);
  if (!Array.isArray(value) || value.length === 0) throw UnsupportedConditionError.shape(where);
  return { operator, value: value.map((query) => parseQuery(query, where)) };
}

function parseField(field: string, value: unknown, where: string): ConditionNode {
  // Like Mongo: an object with `$` keys is a set of operators, anything else is equality.
  if (!isPlainObject(value) || !Object.keys(value).some((key) => key.startsWith('$'))) return { operator: 'eq', field, value };
  const parts = Object.entries(value).map(([key, operand]): ConditionNode => {
    if (key === '$not') {
      // As in @ucast/mongo: $not takes operators, not a bare value.
      if (!isPlainObject(operand)) throw UnsupportedConditionError.shape(`${where}.${field}`);
      return { operator: 'not', value: [parseField(field, operand, where)] };
    }
    if (!fieldOperators.has(key)) throw UnsupportedConditionError.operator(key, `${where}.${field}`);
    return { operator: key.slice(1), field, value: operand };
  });
  return parts.length === 1 && parts[0] ? parts[0] : { operator: 'and', value: parts };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

// ── condition nodes → SQL ──

// Every fragment built here is two-valued (never NULL): under NOT, SQL's NULL would not turn into
// true the way CASL's `false` does, and inverted rules, $ne, $nin, $not and $nor all negate.
function nodeToSql(subject: SubjectName, node: ConditionNode): SQL {
  switch (node.operator) {
    case 'and':
      return allOf(childrenToSql(subject, node));
    case 'or':
      return anyOf(childrenToSql(subject, node));
    case 'nor':
      return negate(anyOf(childrenToSql(subject, node)));
    case 'not':
      return negate(allOf(childrenToSql(subject, node)));
    // @ucast/js defines $ne and $nin as the negation of $eq and $in, missing related rows included.
    case 'ne':
      return negate(fieldNodeToSql(subject, { ...node, operator: 'eq' }));
    case 'nin':
      return negate(fieldNodeToSql(subject, { ...node, operator: 'in' }));
    default:
      return fieldNodeToSql(subject, node);
  }
}

function childrenToSql(subject: SubjectName, node: ConditionNode): SQL[] {
  if (!Array.isArray(node.value)) throw UnsupportedConditionError.shape(subject);
  return node.value.map((child: ConditionNode) => nodeToSql(subject, child));
}

/** A scalar column reached from the root subject, with the path for error messages. */
interface Target {
  where: string;
  type: ValueType;
  column: PgColumn;
}

function fieldNodeToSql(subject: SubjectName, node: ConditionNode): SQL {
  if (typeof node.field !== 'string') throw UnsupportedConditionError.operator(node.operator, subject);
  return atField(subject, node.field, `${subject}.${node.field}`, (target) => {
    switch (node.operator) {
      case 'eq':
        return membership(target, 'eq', [node.value]);
      case 'in':
        if (!Array.isArray(node.value)) throw UnsupportedConditionError.operand('in', target.where, target.type);
        return membership(target, 'in', node.value);
      case 'lt':
      case 'lte':
      case 'gt':
      case 'gte':
        return range(target, node.operator, node.value);
      default:
        throw UnsupportedConditionError.operator(node.operator, target.where);
    }
  });
}

/** Resolves `a.b.c` through to-one relations, each hop an EXISTS on the parent row. */
function atField(subject: SubjectName, path: string, where: string, build: (target: Target) => SQL): SQL {
  const dot = path.indexOf('.');
  const name = dot === -1 ? path : path.slice(0, dot);
  if (name.startsWith('$')) throw UnsupportedConditionError.operator(name, subject);
  const { fields } = subjectSpec(subject);
  const spec = Object.hasOwn(fields, name) ? fields[name] : undefined;
  if (dot === -1) {
    if (spec?.kind !== 'scalar' || !spec.column) throw UnsupportedConditionError.field(where);
    return build({ where, type: spec.type, column: spec.column });
  }
  // To-many paths would need Mongo's "any element" semantics; no policy needs them yet.
  if (spec?.kind !== 'relation' || spec.cardinality !== 'one') throw UnsupportedConditionError.field(where);
  const inner = atField(spec.subject, path.slice(dot + 1), where, build);
  return sql`exists (select 1 from ${subjectSpec(spec.subject).table} where ${spec.foreignColumn} = ${spec.localColumn} and ${inner})`;
}

/** $eq and $in: CASL's `===` per item (null matches NULL), any element for array columns. */
function membership(target: Target, operator: string, items: unknown[]): SQL {
  const hasNull = items.includes(null);
  const values = items.filter((item) => item !== null).map((item) => toOperand(target, operator, item));
  const { column } = target;
  if (target.type === 'string[]') {
    const elements = values.map((value) => sql`${value}`);
    const parts = elements.length ? [sql`coalesce(${column} && array[${sql.join(elements, sql`, `)}]::text[], false)`] : [];
    if (hasNull) parts.push(sql`(${column} is null or array_position(${column}, null) is not null)`);
    return anyOf(parts);
  }
  const [first] = values;
  const hit = values.length > 1 ? inArray(column, values) : first !== undefined ? eq(column, first) : sql`false`;
  return nullAs(column, () => hasNull, hit);
}

const rangeSymbols = { lt: '<', lte: '<=', gt: '>', gte: '>=' } as const;

function range(target: Target, operator: keyof typeof rangeSymbols, value: unknown): SQL {
  if (target.type === 'string[]') throw UnsupportedConditionError.operator(operator, target.where);
  const { column } = target;
  // "C" orders strings by code point, as JavaScript's `<` does, whatever the database's collation.
  const left = target.type === 'string' ? sql`${column} collate "C"` : sql`${column}`;
  const compared = sql`${left} ${sql.raw(rangeSymbols[operator])} ${sql.param(toOperand(target, operator, value), column)}`;
  // CASL compares null with `<`/`>` coercion (e.g. null < 'M' holds), so ask CASL rather than guess.
  const whenNull = () => mongoQueryMatcher({ value: { [`$${operator}`]: value } })({ value: null });
  return nullAs(column, whenNull, compared);
}

/** Makes `compared` two-valued: a NULL column yields `whenNull`, as in CASL's in-memory check. */
function nullAs(column: PgColumn, whenNull: () => boolean, compared: SQL): SQL {
  if (column.notNull) return compared;
  return whenNull() ? sql`(${column} is null or ${compared})` : sql`(${column} is not null and ${compared})`;
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const isoDatePattern = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/;

/**
 * Refuses operands CASL could never match against a row of this column type (e.g. a number for a
 * text column), since SQL would coerce them and match. uuids must be in PostgreSQL's lowercase form.
 */
function toOperand(target: Target, operator: string, value: unknown): string | number | Date {
  switch (target.type) {
    case 'string':
    case 'string[]':
      if (typeof value === 'string') return value;
      break;
    case 'uuid':
      if (typeof value === 'string' && uuidPattern.test(value)) return value;
      break;
    case 'number':
      if (typeof value === 'number' && Number.isFinite(value)) return value;
      break;
    case 'date': {
      const date = value instanceof Date ? value : typeof value === 'string' && isoDatePattern.test(value) ? new Date(value) : undefined;
      if (date && !Number.isNaN(date.getTime())) return date;
      break;
    }
  }
  throw UnsupportedConditionError.operand(operator, target.where, target.type);
}

function allOf(parts: SQL[]): SQL {
  const [first] = parts;
  if (!first) return sql`true`;
  return parts.length === 1 ? first : sql`(${sql.join(parts, sql` and `)})`;
}

function anyOf(parts: SQL[]): SQL {
  const [first] = parts;
  if (!first) return sql`false`;
  return parts.length === 1 ? first : sql`(${sql.join(parts, sql` or `)})`;
}

function negate(where: SQL): SQL {
  return sql`(not (${where}))`;
}
