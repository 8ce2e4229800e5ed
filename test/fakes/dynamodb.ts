/**
 * A stateful fake of the DynamoDB table behind the Document client, driven through
 * aws-sdk-client-mock. Modelled rules:
 * - GetItem / PutItem / UpdateItem with ConditionExpression: a false condition fails with
 *   ConditionalCheckFailedException and writes nothing.
 *   https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html
 * - Expressions: attribute_exists / attribute_not_exists, = <> < <= > >=, AND / OR / NOT,
 *   parentheses, #names and :values; UpdateExpression SET / ADD (numbers) / REMOVE.
 *   https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.OperatorsAndFunctions.html
 *   https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.UpdateExpressions.html
 * - A sparse GSI: only items with the index's partition key attribute appear; Query on it sorts by
 *   the sort key and pages (LastEvaluatedKey / ExclusiveStartKey).
 *   https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-indexes-general-sparse-indexes.html
 * - A reserved word used bare in an expression fails the request with ValidationException
 *   ("Attribute name is a reserved keyword"). RESERVED below is the part of the 573-word list
 *   that names this table's attributes or words like them, not the whole list.
 *   https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ReservedWords.html
 * - Numbers: the Document client refuses to marshall a JS number outside the safe integers, or
 *   NaN / Infinity (this fake sits behind aws-sdk-client-mock, before marshalling, so it repeats
 *   that refusal). https://docs.aws.amazon.com/AWSJavaScriptSDK/v3/latest/Package/-aws-sdk-util-dynamodb/
 * The real engine behind the real client is test/wire/dynalite.ts.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  type GetCommandInput,
  PutCommand,
  type PutCommandInput,
  QueryCommand,
  type QueryCommandInput,
  DeleteCommand,
  type DeleteCommandInput,
  UpdateCommand,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { awsError } from './errors';

type Item = Record<string, unknown>;
type Names = Record<string, string> | undefined;
type Values = Record<string, unknown> | undefined;

export interface IndexDef {
  readonly partition: string;
  readonly sort: string;
}

const RESERVED = new Set(
  ['ACTION', 'AT', 'COUNT', 'DATA', 'DATE', 'FAMILY', 'KEY', 'MINUTE', 'NAME', 'RECORD', 'SIZE', 'SOURCE', 'STATUS', 'TIME', 'TTL', 'TYPE', 'USER', 'VALUE', 'VALUES', 'ZONE'],
);

function checkReserved(name: string): void {
  if (RESERVED.has(name.toUpperCase())) throw awsError('ValidationException', `Invalid expression: Attribute name is a reserved keyword; reserved keyword: ${name}`);
}

/** What the Document client's marshaller refuses (util-dynamodb convertToAttr). */
function checkNumbers(value: unknown, where: string): void {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`Special numeric value ${value} is not allowed (${where})`);
    if (Math.abs(value) > Number.MAX_SAFE_INTEGER) throw new Error(`Number ${value} is greater than Number.MAX_SAFE_INTEGER. Use NumberValue from @aws-sdk/lib-dynamodb. (${where})`);
  } else if (Array.isArray(value)) value.forEach((v, i) => checkNumbers(v, `${where}[${i}]`));
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) checkNumbers(v, `${where}.${k}`);
}

function clone<T>(value: T): T {
  return structuredClone(value);
}

/** A tiny recursive-descent evaluator of DynamoDB condition and key-condition expressions. */
export function evaluateCondition(expression: string, item: Item | undefined, names: Names, values: Values): boolean {
  const tokens = expression.match(/\(|\)|,|<>|<=|>=|=|<|>|[#:]?[A-Za-z_][A-Za-z0-9_]*/g) ?? [];
  let pos = 0;
  const peek = () => tokens[pos];
  const next = () => tokens[pos++];
  const path = (token: string | undefined): string => {
    if (token === undefined) throw new Error(`bad expression: ${expression}`);
    if (token.startsWith('#')) {
      const name = names?.[token];
      if (name === undefined) throw awsError('ValidationException', `An expression attribute name used in the document path is not defined; attribute name: ${token}`);
      return name;
    }
    checkReserved(token);
    return token;
  };
  const operand = (token: string | undefined): unknown => {
    if (token?.startsWith(':')) {
      if (!values || !(token in values)) throw awsError('ValidationException', `An expression attribute value used in expression is not defined; attribute value: ${token}`);
      return values[token];
    }
    return item?.[path(token)];
  };
  const compare = (a: unknown, op: string, b: unknown): boolean => {
    if (a === undefined || b === undefined) return op === '<>' ? a !== b : false;
    switch (op) {
      case '=':
        return JSON.stringify(a) === JSON.stringify(b);
      case '<>':
        return JSON.stringify(a) !== JSON.stringify(b);
      case '<':
        return (a as number) < (b as number);
      case '<=':
        return (a as number) <= (b as number);
      case '>':
        return (a as number) > (b as number);
      case '>=':
        return (a as number) >= (b as number);
      default:
        throw new Error(`operator ${op}`);
    }
  };
  const primary = (): boolean => {
    const token = next();
    if (token === '(') {
      const value = or();
      if (next() !== ')') throw new Error(`missing ) in ${expression}`);
      return value;
    }
    if (token?.toUpperCase() === 'NOT') return !primary();
    if (token === 'attribute_exists' || token === 'attribute_not_exists') {
      if (next() !== '(') throw new Error(`bad function call in ${expression}`);
      const name = path(next());
      if (next() !== ')') throw new Error(`bad function call in ${expression}`);
      const exists = item !== undefined && item[name] !== undefined;
      return token === 'attribute_exists' ? exists : !exists;
    }
    // begins_with(path, :prefix) — https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.OperatorsAndFunctions.html
    if (token === 'begins_with') {
      if (next() !== '(') throw new Error(`bad function call in ${expression}`);
      const value = operand(next());
      if (next() !== ',') throw new Error(`bad function call in ${expression}`);
      const prefix = operand(next());
      if (next() !== ')') throw new Error(`bad function call in ${expression}`);
      return typeof value === 'string' && typeof prefix === 'string' && value.startsWith(prefix);
    }
    const left = operand(token);
    const op = next() ?? '';
    const right = operand(next());
    return compare(left, op, right);
  };
  const and = (): boolean => {
    let value = primary();
    while (peek()?.toUpperCase() === 'AND') {
      next();
      const rhs = primary();
      value = value && rhs;
    }
    return value;
  };
  const or = (): boolean => {
    let value = and();
    while (peek()?.toUpperCase() === 'OR') {
      next();
      const rhs = and();
      value = value || rhs;
    }
    return value;
  };
  const result = or();
  if (pos !== tokens.length) throw new Error(`unparsed tail in ${expression}`);
  return result;
}

function applyUpdate(expression: string, item: Item, names: Names, values: Values): Item {
  const result = clone(item);
  const resolve = (token: string) => {
    if (token.startsWith('#')) return names?.[token] ?? token;
    checkReserved(token);
    return token;
  };
  const value = (token: string) => {
    if (!values || !(token in values)) throw awsError('ValidationException', `value ${token} not defined`);
    return values[token];
  };
  const clauses = expression.split(/\b(SET|ADD|REMOVE)\b/i).map((s) => s.trim()).filter(Boolean);
  for (let i = 0; i < clauses.length; i += 2) {
    const keyword = (clauses[i] ?? '').toUpperCase();
    for (const part of (clauses[i + 1] ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
      if (keyword === 'SET') {
        const [lhs, rhs] = part.split('=').map((s) => s.trim());
        result[resolve(lhs ?? '')] = value(rhs ?? '');
      } else if (keyword === 'ADD') {
        const [lhs, rhs] = part.split(/\s+/);
        const name = resolve(lhs ?? '');
        const current = result[name];
        if (current !== undefined && typeof current !== 'number') throw awsError('ValidationException', 'ADD needs a number');
        result[name] = ((current as number | undefined) ?? 0) + (value(rhs ?? '') as number);
      } else if (keyword === 'REMOVE') {
        delete result[resolve(part)];
      } else {
        throw new Error(`unsupported update clause ${keyword}`);
      }
    }
  }
  return result;
}

export class FakeDynamoDb {
  readonly client = DynamoDBDocumentClient.from(
    new DynamoDBClient({ region: 'eu-west-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } }),
    { marshallOptions: { removeUndefinedValues: true } },
  );
  readonly mock = mockClient(this.client);
  readonly items = new Map<string, Item>();
  readonly calls = { Get: 0, Put: 0, Update: 0, Query: 0, Delete: 0, ConditionalCheckFailed: 0 };

  constructor(
    readonly tableName = 'portsnare',
    readonly indexes: Record<string, IndexDef> = { active: { partition: 'activeKey', sort: 'expiresAt' }, changes: { partition: 'chgKey', sort: 'chgAt' } },
    /** items per Query page (DynamoDB pages at 1 MB; a small page exercises pagination) */
    readonly pageSize = 25,
  ) {
    this.mock.on(GetCommand).callsFake(async (input: GetCommandInput) => this.get(input));
    this.mock.on(PutCommand).callsFake(async (input: PutCommandInput) => this.put(input));
    this.mock.on(UpdateCommand).callsFake(async (input: UpdateCommandInput) => this.update(input));
    this.mock.on(QueryCommand).callsFake(async (input: QueryCommandInput) => this.query(input));
    this.mock.on(DeleteCommand).callsFake(async (input: DeleteCommandInput) => this.remove(input));
  }

  private remove(input: DeleteCommandInput) {
    this.calls.Delete++;
    this.table(input.TableName);
    const key = this.key(input.Key);
    this.check(input.ConditionExpression, this.items.get(key), input.ExpressionAttributeNames, input.ExpressionAttributeValues);
    this.items.delete(key);
    return {};
  }

  private key(key: Item | undefined): string {
    if (!key || typeof key.pk !== 'string' || typeof key.sk !== 'string') throw awsError('ValidationException', 'The provided key element does not match the schema');
    return `${key.pk}\u0000${key.sk}`;
  }

  private table(name: string | undefined): void {
    if (name !== this.tableName) throw awsError('ResourceNotFoundException', `Requested resource not found: Table: ${name} not found`);
  }

  item(pk: string, sk: string): Item | undefined {
    const item = this.items.get(`${pk}\u0000${sk}`);
    return item ? clone(item) : undefined;
  }

  private get(input: GetCommandInput) {
    this.calls.Get++;
    this.table(input.TableName);
    const item = this.items.get(this.key(input.Key));
    return item ? { Item: clone(item) } : {};
  }

  private check(expression: string | undefined, existing: Item | undefined, names: Names, values: Values): void {
    if (expression && !evaluateCondition(expression, existing, names, values)) {
      this.calls.ConditionalCheckFailed++;
      throw awsError('ConditionalCheckFailedException', 'The conditional request failed');
    }
  }

  private put(input: PutCommandInput) {
    this.calls.Put++;
    checkNumbers(input.Item, 'Item');
    checkNumbers(input.ExpressionAttributeValues, 'ExpressionAttributeValues');
    this.table(input.TableName);
    const key = this.key(input.Item);
    this.check(input.ConditionExpression, this.items.get(key), input.ExpressionAttributeNames, input.ExpressionAttributeValues);
    this.items.set(key, clone(input.Item as Item));
    return {};
  }

  private update(input: UpdateCommandInput) {
    this.calls.Update++;
    checkNumbers(input.ExpressionAttributeValues, 'ExpressionAttributeValues');
    this.table(input.TableName);
    const key = this.key(input.Key);
    const existing = this.items.get(key);
    this.check(input.ConditionExpression, existing, input.ExpressionAttributeNames, input.ExpressionAttributeValues);
    const updated = applyUpdate(input.UpdateExpression ?? '', existing ?? clone(input.Key as Item), input.ExpressionAttributeNames, input.ExpressionAttributeValues);
    this.items.set(key, updated);
    return { Attributes: clone(updated) };
  }

  private query(input: QueryCommandInput) {
    this.calls.Query++;
    this.table(input.TableName);
    const index = input.IndexName === undefined ? { partition: 'pk', sort: 'sk' } : this.indexes[input.IndexName];
    if (!index) throw awsError('ValidationException', `The table does not have the specified index: ${input.IndexName}`);
    const matches = [...this.items.values()]
      .filter((item) => item[index.partition] !== undefined && item[index.sort] !== undefined)
      .filter((item) => evaluateCondition(input.KeyConditionExpression ?? '', item, input.ExpressionAttributeNames, input.ExpressionAttributeValues))
      .sort((a, b) => {
        const x = a[index.sort] as number | string;
        const y = b[index.sort] as number | string;
        return x < y ? -1 : x > y ? 1 : this.key(a) < this.key(b) ? -1 : 1;
      });
    // ScanIndexForward false: descending sort key order; Limit: at most that many items a page
    // https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Query.html
    if (input.ScanIndexForward === false) matches.reverse();
    let start = 0;
    if (input.ExclusiveStartKey) {
      const after = this.key(input.ExclusiveStartKey);
      start = matches.findIndex((item) => this.key(item) === after) + 1;
    }
    const size = input.Limit !== undefined ? Math.min(input.Limit, this.pageSize) : this.pageSize;
    const page = matches.slice(start, start + size);
    const last = page[page.length - 1];
    const more = start + size < matches.length;
    return {
      Items: page.map(clone),
      Count: page.length,
      ...(more && last ? { LastEvaluatedKey: { pk: last.pk, sk: last.sk, [index.partition]: last[index.partition], [index.sort]: last[index.sort] } } : {}),
    };
  }
}
